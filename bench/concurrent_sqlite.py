"""Concurrent trainers on one local sqlite store, with the viewer polling: errors and lost points.

    python bench/concurrent_sqlite.py [--trainers 4] [--seconds 600] [--rounds 5]

1. Opening a brand-new store together: N processes open one fresh sqlite store at the same
   moment, ``--rounds`` times, first with MLflow's own client, then through LLMBreaker's
   ``store.client`` (which serialises the first open with a lock file); prints how many failed.
2. N ``llmb train`` processes started together on a brand-new store (a tiny model, so the store,
   not the CPU, is the bottleneck: each logs every step, a snapshot every 25 steps and a
   checkpoint every 200), while the viewer's data layer (``dash_app.data.ViewerData``) polls
   every run twice a second as the live viewer does (run, new points, snapshot list, newest
   snapshot). Then it stops them
   through the store and counts, per run, the ``train_loss`` points stored against the steps
   trained (every step exactly once), the write passes the trainers had to retry, reader errors
   and trainers that failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from dash_app.data import ViewerData  # noqa: E402
from llmb_mlflow.library import control  # noqa: E402
from llmb_mlflow.launch.launcher import launch  # noqa: E402
from llmb_mlflow.library.reader import RunReader  # noqa: E402

TRAINING = ["train", "--preset", "small", "--n-layer", "1", "--n-embd", "16", "--n-head", "2",
            "--block-size", "16", "--batch-size", "8", "--eval-iters", "2", "--eval-interval", "25",
            "--checkpoint-interval", "200", "--max-iters", "10000000"]


def poll_like_the_viewer(uri: str, run_ids: list[str], stop: threading.Event, stats: dict) -> None:
    """The viewer's own data layer, doing what its 0.5 s poll and the live scrubber do."""
    data = ViewerData(uri)
    seen = {run_id: -1 for run_id in run_ids}
    while not stop.is_set():
        for run_id in run_ids:
            try:
                run = data.run(run_id)
                steps, _ = data.new_points(run_id, "train_loss", seen[run_id], run)
                if steps:
                    seen[run_id] = steps[-1]
                snapshot_steps = data.snapshot_steps(run_id, run)
                if snapshot_steps:
                    data.snapshot(run_id, snapshot_steps[-1])
                stats["polls"] += 1
            except Exception as exc:  # noqa: BLE001 - counting every kind of failure
                stats["errors"] += 1
                stats["last_error"] = str(exc).splitlines()[0][:200]
        stop.wait(0.5)


OPENERS = {
    "MLflow's client": "from mlflow import MlflowClient; c = MlflowClient({uri!r}, {uri!r}); "
                       "c.search_experiments(); c.search_registered_models()",
    "llmb_mlflow.store.client.client": "from llmb_mlflow.store.client import client; client({uri!r})",
}


def open_together(processes: int, rounds: int) -> None:
    for label, code in OPENERS.items():
        failed = 0
        for _ in range(rounds):
            uri = f"sqlite:///{tempfile.mkdtemp(prefix='llmb-open-')}/mlflow.db"
            openers = [subprocess.Popen([sys.executable, "-c", code.format(uri=uri)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL) for _ in range(processes)]
            failed += sum(p.wait() != 0 for p in openers)
        print(f"opening a brand-new store with {processes} processes at once, {rounds} rounds, "
              f"{label}: {failed} of {processes * rounds} failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    open_together(args.trainers, args.rounds)

    folder = tempfile.mkdtemp(prefix="llmb-concurrency-")
    os.chdir(folder)
    uri = f"sqlite:///{folder}/mlflow.db"
    trainings = [launch([*TRAINING, "--run-name", f"t{i}"], uri) for i in range(args.trainers)]
    run_ids = [t.run_id for t in trainings]
    stats = {"polls": 0, "errors": 0, "last_error": None}
    stop = threading.Event()
    poller = threading.Thread(target=poll_like_the_viewer, args=(uri, run_ids, stop, stats))
    poller.start()
    time.sleep(args.seconds)  # the benchmark's duration
    stop.set()
    poller.join()
    client = RunReader(uri).client
    for run_id in run_ids:
        control.send(client, run_id, "stop")
    codes = [t.process.wait(timeout=300) for t in trainings]

    reader = RunReader(uri)
    total_lost = total_retried = 0
    print(f"{args.trainers} trainers started together on a brand-new store + a polling viewer, "
          f"{args.seconds:.0f} s, {uri}")
    for training, code in zip(trainings, codes):
        run = reader.run(training.run_id)
        steps = reader.metric(training.run_id, "train_loss", run=run).steps.tolist()
        lost = run.last_step - len(set(steps))
        duplicated = len(steps) - len(set(steps))
        log = open(training.log_path).read()
        retried = sum(int(n) for n in re.findall(r"Note: (\d+) write\(s\) to the tracking store failed", log))
        total_lost += lost + duplicated
        total_retried += retried
        print(f"  {run.run_name}: exit {code}, status {run.status}, {run.last_step} steps, "
              f"{len(steps)} train_loss points, lost {lost}, duplicated {duplicated}, "
              f"retried write passes {retried}")
    failed = sum(code != 130 for code in codes)
    print(f"viewer polls {stats['polls']}, poll errors {stats['errors']}"
          + (f" (last: {stats['last_error']})" if stats["last_error"] else ""))
    print(f"TOTAL: errors {stats['errors'] + failed} (poll errors + failed trainers), "
          f"lost points {total_lost}, retried write passes {total_retried}")
    sys.exit(1 if stats["errors"] + failed + total_lost else 0)


if __name__ == "__main__":
    main()
