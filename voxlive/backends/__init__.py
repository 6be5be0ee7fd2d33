"""Model backends, chosen by name in models.yaml, shared by all calls: each module declares
itself to the registry (registry.py), and loader.py builds what a profile names."""
