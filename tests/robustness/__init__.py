"""Trust boundaries and fault injection (issue 5): one test module per group of cases."""
