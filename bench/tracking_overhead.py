"""Tracking overhead: the same training tracked in MLflow vs untracked, interleaved in one run.

    python bench/tracking_overhead.py [--preset medium] [--max-iters 300] [--rounds 2]

Prints each timing, the median ratio tracked/untracked (target <= 1.03) and the snapshot
sizes of the tracked runs (target <= 150 KB for medium). The store is a fresh sqlite DB in a
temporary folder, migrated before timing starts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from llmb_mlflow.config import build_config  # noqa: E402
from llmb_mlflow.corpus import load_corpus, prepare_dataset  # noqa: E402
from llmb_mlflow.mlflow_tracker import SNAPSHOT_METRIC, MlflowTracker  # noqa: E402
from llmb_mlflow.reader import RunReader  # noqa: E402
from llmb_mlflow.tracker import Tracker  # noqa: E402
from llmb_mlflow.trainer import Trainer, run_training  # noqa: E402


def timed_run(config, data, tracker) -> float:
    trainer = Trainer(config, data)
    started = time.perf_counter()
    run_training(trainer, tracker)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--max-iters", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    config = build_config(args.preset, max_iters=args.max_iters)
    data = prepare_dataset(load_corpus("shakespeare"), config.model.block_size)
    folder = tempfile.mkdtemp(prefix="llmb-bench-")
    os.chdir(folder)
    uri = f"sqlite:///{folder}/mlflow.db"
    MlflowTracker(uri)  # migrate the new database before timing

    tracked, untracked, run_ids = [], [], []
    print(f"{args.preset}, {args.max_iters} steps, eval every {config.train.eval_interval}; "
          f"store {uri}", flush=True)
    for round_ in range(args.rounds):
        untracked.append(timed_run(config, data, Tracker()))
        tracker = MlflowTracker(uri)
        tracked.append(timed_run(config, data, tracker))
        run_ids.append(tracker.run_id)
        print(f"round {round_ + 1}: untracked {untracked[-1]:.2f} s, tracked {tracked[-1]:.2f} s, "
              f"ratio {tracked[-1] / untracked[-1]:.3f}", flush=True)
    ratios = [t / u for t, u in zip(tracked, untracked)]
    print(f"tracking overhead: median ratio {statistics.median(ratios):.3f} (target <= 1.03)")

    reader = RunReader(uri)
    sizes = reader.metric(run_ids[-1], SNAPSHOT_METRIC).values
    print(f"snapshot size: max {sizes.max() / 1024:.1f} KB, mean {sizes.mean() / 1024:.1f} KB "
          f"over {len(sizes)} snapshots (target <= 150 KB for medium)")
    sys.exit(0)


if __name__ == "__main__":
    main()
