"""LLMBreaker on MLflow: train a tiny character-level GPT and watch it learn.

Importing the package is cheap and never imports torch, so the viewer can use the
read side (``llmb_mlflow.library.reader``, ``llmb_mlflow.formats.snapshot``) without it.
"""

from .version import __version__


def record(model, tokenizer=None, probe_text=None, **options):
    """Record a training you wrote in an MLflow run, as LLMBreaker records its own; see
    ``llmb_mlflow.recorder.record``."""
    from .recorder import record as recorder

    return recorder(model, tokenizer, probe_text, **options)
