"""tools.bench: see tools/__init__.py."""
