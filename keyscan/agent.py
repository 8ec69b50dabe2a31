"""Coding-agent hooks (``keyscan hook agent``)."""
