"""The ``llmb`` command: parses and prints, nothing more."""

from .main import main

__all__ = ["main"]
