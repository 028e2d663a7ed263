"""`fnnkit serve`: a verified model behind HTTP on Ray Serve."""
