"""tools.eval: see tools/__init__.py."""
