"""``fnnkit tune``: from a latency bound and an accuracy floor to the deployment that meets them best."""
