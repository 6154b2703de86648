"""Checkpointing and saving a model to the library: time per checkpoint and per save, and
whether either grows with the run's length.

    python bench/registry_save.py [--repeats 10]

Two `medium` runs in a fresh sqlite store: a short one (100 steps of metrics) and a long one
(20,000 steps). Each writes checkpoints at its last step (its logged model made READY, the
losses linked: timed from handing the checkpoint over until it is stored), alternating; then
saves of both alternate. Prints the median times (saves: target <= 1 s) and the ratios long /
short (target <= 1.2x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from llmb_mlflow.training.config import build_config  # noqa: E402
from llmb_mlflow.training.corpus import load_corpus, prepare_dataset  # noqa: E402
from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker  # noqa: E402
from llmb_mlflow.library.registry import ModelLibrary  # noqa: E402
from llmb_mlflow.training.tracker import RunDescription  # noqa: E402
from llmb_mlflow.training.trainer import Trainer  # noqa: E402


def run_with_metrics(uri, trainer, steps: int) -> MlflowTracker:
    """A run holding ``steps`` steps of the four per-step metrics, still open."""
    tracker = MlflowTracker(uri)
    tracker.start(RunDescription(params=trainer.describe(), dataset=trainer.dataset,
                                 model_params={"n_layer": trainer.model_config.n_layer}))
    for step in range(1, steps + 1):
        tracker.log_metrics(step, {"train_loss": 2.0 + step * 1e-6, "lr": 1e-3, "grad_norm": 0.5,
                                   "tokens_per_sec": 1e5})
        if step % 100 == 0:
            tracker.log_metrics(step, {"val_loss": 2.1, "eval_train_loss": 2.0})
    tracker.flush(timeout=600)
    return tracker


def checkpoint_seconds(tracker, trainer, step: int) -> float:
    """Hand the tracker a checkpoint at ``step`` and wait until it is stored."""
    trainer.step, trainer.last_checkpoint_step = step, None
    started = time.perf_counter()
    trainer.checkpoint_into(trainer.recorder(tracker).attach())
    tracker.flush()
    return time.perf_counter() - started


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
    runs = {"step 100": (run_with_metrics(uri, trainer, 100), 100),
            "step 20,000": (run_with_metrics(uri, trainer, 20_000), 20_000)}
    checkpoints = {label: [] for label in runs}
    for attempt in range(args.repeats):
        for label, (tracker, step) in runs.items():
            checkpoints[label].append(checkpoint_seconds(tracker, trainer, step - attempt))
    for tracker, _ in runs.values():
        tracker.finish("FINISHED")
    short, long = (tracker.run_id for tracker, _ in runs.values())
    library = ModelLibrary(uri)
    library.save(short, "warm-up")
    times = {"step 100": [], "step 20,000": []}
    for _ in range(args.repeats):
        for label, run_id in (("step 100", short), ("step 20,000", long)):
            started = time.perf_counter()
            library.save(run_id, "bench-" + label.split()[-1].replace(",", ""))
            times[label].append(time.perf_counter() - started)
    stored = {label: statistics.median(values) for label, values in checkpoints.items()}
    for label, value in stored.items():
        print(f"checkpoint of a medium model at {label} stored as a logged model: median "
              f"{value * 1e3:.1f} ms over {args.repeats}")
    print(f"ratio step 20,000 / step 100: {stored['step 20,000'] / stored['step 100']:.2f} (target <= 1.2)")
    medians = {label: statistics.median(values) for label, values in times.items()}
    for label, value in medians.items():
        print(f"save of a medium checkpoint at {label}: median {value * 1e3:.1f} ms "
              f"over {args.repeats} (target <= 1000 ms)")
    print(f"ratio step 20,000 / step 100: {medians['step 20,000'] / medians['step 100']:.2f} "
          f"(target <= 1.2)")


if __name__ == "__main__":
    main()
