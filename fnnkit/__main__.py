"""`python -m fnnkit` is the same as the `fnnkit` command."""

from fnnkit.cli import main

main()
