"""tools.deploy: see tools/__init__.py."""
