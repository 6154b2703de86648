"""The door to the MLflow tracking store: connecting, one-line failures, and every use of MLflow's internals."""
