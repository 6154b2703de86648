"""Real training on Shakespeare: the model learns (the loss falls well below chance)."""

import math

from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
from llmb_mlflow.library.reader import RunReader

from conftest import train_tiny


def test_loss_falls_on_shakespeare(store_uri, shakespeare):
    tracker = MlflowTracker(store_uri)
    train_tiny(shakespeare, tracker, n_layer=2, n_embd=32, block_size=32, batch_size=16,
               max_iters=200, eval_interval=100, eval_iters=5, lr=3e-3, warmup=10)
    reader = RunReader(store_uri)
    val = reader.metric(tracker.run_id, "val_loss")
    assert val.steps.tolist() == [0, 100, 200]
    assert abs(val.values[0] - math.log(65)) < 0.1  # chance level before training
    assert val.values[1] < val.values[0] - 1.0
    assert val.values[2] < 2.8
    train = reader.metric(tracker.run_id, "train_loss").values
    assert train[-20:].mean() < train[:20].mean() - 1.0
    # The last sample uses mostly the corpus' most frequent letters and spaces.
    sample = reader.snapshot(tracker.run_id, 200).sample
    assert sum(c in " etaoinshrdlu\n" for c in sample) / len(sample) > 0.6
