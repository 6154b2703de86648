"""LLMBreaker on MLflow: train a tiny character-level GPT and watch it learn.

Importing the package is cheap and never imports torch, so the viewer can use the
read side (``llmb_mlflow.library.reader``, ``llmb_mlflow.formats.snapshot``) without it.
"""

__version__ = "0.1.0"
