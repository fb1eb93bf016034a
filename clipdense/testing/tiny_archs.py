"""Importing this module registers the tiny test architectures
(:func:`clipdense.testing.register_tiny_models`), so that a config can name
them through ``custom_imports = dict(imports=['clipdense.testing.tiny_archs'])``
and run from the command line (tools/test.py, demo/image_demo.py)."""
from . import register_tiny_models

TINY_ARCHS = register_tiny_models()
