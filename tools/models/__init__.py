"""tools.models: see tools/__init__.py."""
