"""`fnnkit serve`: a verified model as an HTTP service on Ray Serve.

Rooms: ``payload`` (what /predict accepts, checked without Ray), ``app_config`` (what is
deployed), ``app`` (the Ray Serve deployment; imports Ray), ``runtime`` (start or join Ray,
deploy, tear down). Nothing here imports Ray at package import time.
"""
