"""keyscan: find, verify and revoke hardcoded OpenAI credentials."""

__version__ = "0.1.0"
