"""tools.codec: see tools/__init__.py."""
