"""tools.train: see tools/__init__.py."""
