"""keyscan's version: a leaf module, so that anything may import it without importing the
public API (``keyscan/__init__.py`` re-exports it)."""

__version__ = "0.1.0"
