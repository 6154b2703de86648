"""The ``llmb`` command: parses and prints, nothing more."""
