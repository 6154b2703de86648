"""Tracking overhead: the same training tracked in MLflow vs untracked, side by side.

    python bench/tracking_overhead.py [--preset medium] [--intervals 8]

Two trainers with the same configuration and seed advance in alternation, one evaluation
interval (100 steps, ending in an evaluation and, for the tracked one, a snapshot) at a time,
so the shared machine's drifting load hits both alike. The tracked trainer's chunk is timed
until its writer thread has stored everything (``flush``): an upper bound, since in a real run
that writing overlaps training. The tracked run logs MLflow's system metrics as `llmb train`
does (every 10 s). Prints the ratio tracked/untracked (target <= 1.03) and the
snapshot sizes (target <= 150 KB for medium). The store is a fresh sqlite database in a
temporary folder.
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
from llmb_mlflow.run_layout import SNAPSHOT_BYTES  # noqa: E402
from llmb_mlflow.library.reader import RunReader  # noqa: E402
from llmb_mlflow.training.tracker import RunDescription, Tracker  # noqa: E402
from llmb_mlflow.training.trainer import Trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--intervals", type=int, default=8)
    parser.add_argument("--system-metrics", type=float, default=10.0, metavar="SECONDS",
                        help="MLflow's system metrics every SECONDS, as llmb train logs them (0: off)")
    args = parser.parse_args()

    probe = build_config(args.preset)
    interval = probe.train.eval_interval
    config = build_config(args.preset, max_iters=interval * args.intervals)
    data = prepare_dataset(load_corpus("shakespeare"), config.model.block_size)
    folder = tempfile.mkdtemp(prefix="llmb-bench-")
    os.chdir(folder)
    tracker = MlflowTracker(f"sqlite:///{folder}/mlflow.db", system_metrics=args.system_metrics or None)

    tracked, untracked = Trainer(config, data), Trainer(config, data)
    tracker.start(RunDescription(params=tracked.describe(), dataset=tracked.dataset))
    quiet = Tracker()
    print(f"{args.preset}: {args.intervals} intervals of {interval} steps, alternating", flush=True)
    times = {"tracked": [], "untracked": []}
    for i in range(args.intervals):
        stop = (i + 1) * interval
        order = [("tracked", tracked, tracker), ("untracked", untracked, quiet)]
        for name, trainer, sink in (order if i % 2 else order[::-1]):
            started = time.perf_counter()
            trainer.run(sink, stop_at=stop)
            if sink is tracker:
                tracker.flush()
            times[name].append(time.perf_counter() - started)
        print(f"  steps {stop - interval + 1:5d}-{stop}: tracked {times['tracked'][-1]:6.2f} s, "
              f"untracked {times['untracked'][-1]:6.2f} s, "
              f"ratio {times['tracked'][-1] / times['untracked'][-1]:.3f}", flush=True)
    tracker.finish("FINISHED")
    assert tracked.last_eval == untracked.last_eval, "tracking changed the training"

    ratios = [t / u for t, u in zip(times["tracked"], times["untracked"])]
    total = sum(times["tracked"]) / sum(times["untracked"])
    print(f"tracking overhead: ratio of totals {total:.3f}, median per interval "
          f"{statistics.median(ratios):.3f} (target <= 1.03)")
    sizes = RunReader(tracker.uri).metric(tracker.run_id, SNAPSHOT_BYTES).values
    print(f"snapshot size: max {sizes.max() / 1024:.1f} KB, mean {sizes.mean() / 1024:.1f} KB "
          f"over {len(sizes)} snapshots (target <= 150 KB for {args.preset})")


if __name__ == "__main__":
    main()
