"""Training a MicroGPT: settings, corpora, the model, the loop and what it reports to. Knows nothing of MLflow."""
