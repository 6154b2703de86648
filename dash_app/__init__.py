"""The LLMBreaker viewer: a Dash app that replays how a MicroGPT learned, step by step.

It reads MLflow only through ``llmb_mlflow.library.reader`` and never imports torch."""
