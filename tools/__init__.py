"""splitwire's Python tools, one package whose import root is the repository root.

Run a tool as a module from the root, e.g. ``python3 -m tools.train.train``;
running its file (``python3 tools/train/train.py``) works too: an entry script
run that way makes the repository root its import root before importing
``tools.*``.
"""
