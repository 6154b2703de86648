"""Saving a model to the library: time per save, and whether it grows with the run's length.

    python bench/registry_save.py [--repeats 10]

Two `medium` runs in a fresh sqlite store: a short one (checkpoint at step 100, 100 steps of
metrics) and a long one (20,000 steps of metrics, a checkpoint at step 20,000). Saves of both
alternate; prints the median save time of each (target <= 1 s) and their ratio
(target <= 1.2x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from llmb_mlflow.config import build_config  # noqa: E402
from llmb_mlflow.corpus import load_corpus, prepare_dataset  # noqa: E402
from llmb_mlflow.mlflow_tracker import MlflowTracker  # noqa: E402
from llmb_mlflow.registry import ModelLibrary  # noqa: E402
from llmb_mlflow.tracker import RunDescription  # noqa: E402
from llmb_mlflow.trainer import Trainer  # noqa: E402


def run_with_checkpoint(uri, trainer, steps: int) -> str:
    """A run holding ``steps`` steps of the four per-step metrics and a checkpoint at the end."""
    tracker = MlflowTracker(uri)
    tracker.start(RunDescription(params=trainer.describe()))
    for step in range(1, steps + 1):
        tracker.log_metrics(step, {"train_loss": 2.0, "lr": 1e-3, "grad_norm": 0.5,
                                   "tokens_per_sec": 1e5})
        if step % 100 == 0:
            tracker.log_metrics(step, {"val_loss": 2.1, "eval_train_loss": 2.0})
    trainer.step = steps
    trainer.checkpoint_into(tracker)
    tracker.finish("FINISHED")
    return tracker.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    config = build_config("medium")
    trainer = Trainer(config, prepare_dataset(load_corpus("shakespeare"), config.model.block_size))
    trainer.train_step()
    folder = tempfile.mkdtemp(prefix="llmb-bench-")
    os.chdir(folder)
    uri = f"sqlite:///{folder}/mlflow.db"
    short = run_with_checkpoint(uri, trainer, 100)
    long = run_with_checkpoint(uri, trainer, 20_000)
    library = ModelLibrary(uri)
    library.save(short, "warm-up")
    times = {"step 100": [], "step 20,000": []}
    for _ in range(args.repeats):
        for label, run_id in (("step 100", short), ("step 20,000", long)):
            started = time.perf_counter()
            library.save(run_id, "bench-" + label.split()[-1].replace(",", ""))
            times[label].append(time.perf_counter() - started)
    medians = {label: statistics.median(values) for label, values in times.items()}
    for label, value in medians.items():
        print(f"save of a medium checkpoint at {label}: median {value * 1e3:.1f} ms "
              f"over {args.repeats} (target <= 1000 ms)")
    print(f"ratio step 20,000 / step 100: {medians['step 20,000'] / medians['step 100']:.2f} "
          f"(target <= 1.2)")


if __name__ == "__main__":
    main()
