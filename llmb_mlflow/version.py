"""This release of LLMBreaker (setup.cfg has it too)."""

__version__ = "0.1.0"
