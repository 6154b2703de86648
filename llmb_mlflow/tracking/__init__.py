"""The writer: a training's run in MLflow, written from a helper process, kept through store outages."""
