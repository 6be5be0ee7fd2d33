"""Model backends, chosen by name in models.yaml (see loader.py), shared by all calls."""
