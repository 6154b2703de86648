"""The viewer's server side: poll cost, scrub latency and memory, through Dash's real endpoint.

    python bench/viewer.py [--snapshots 100] [--runs 5]

Builds, in a fresh sqlite store, a 20,000-step run (the four per-step metrics) and `--runs`
runs of a real `medium` model with `--snapshots` snapshots each (captured from the model between
training steps, logged under steps 0, 100, 200, ...). Requests go through Flask's test client
to `/_dash-update-component`, so the times are the server's own.

- poll: the live-poll callback on the 20,000-step run with 10 new steps since the last poll;
  server time and response size (targets: <= 20 ms, <= 5 KB);
- scrub: moving to a random step redraws every panel of both tabs (targets: p95 <= 100 ms),
  first visit (cold) and again (warm);
- memory: the process's resident memory after scrubbing through every snapshot of each run
  (bounded: the caches are LRU).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from llmb_mlflow.training.config import build_config  # noqa: E402
from llmb_mlflow.training.corpus import load_corpus, prepare_dataset  # noqa: E402
from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker  # noqa: E402
from llmb_mlflow.training.tracker import RunDescription  # noqa: E402
from llmb_mlflow.training.trainer import Trainer  # noqa: E402


def long_run(uri: str, trainer, steps: int) -> str:
    tracker = MlflowTracker(uri)
    tracker.start(RunDescription(params=trainer.describe()))
    for step in range(1, steps + 1):
        tracker.log_metrics(step, {"train_loss": 2 + 1 / step, "lr": 1e-3, "grad_norm": 0.5,
                                   "tokens_per_sec": 1e5})
        if step % 100 == 0:
            tracker.log_metrics(step, {"val_loss": 2.1 + 1 / step, "eval_train_loss": 2.0})
    tracker.finish("FINISHED")
    return tracker.run_id


def snapshot_run(uri: str, data, snapshots: int, seed: int) -> str:
    config = build_config("medium", seed=seed, max_iters=100 * snapshots)
    trainer = Trainer(config, data)
    tracker = MlflowTracker(uri)
    tracker.start(RunDescription(params=trainer.describe()))
    tracker.wants_checkpoints = False
    for i in range(snapshots):
        step = 100 * i
        if i:
            tracker.log_metrics(step, {"train_loss": trainer.train_step()["train_loss"]})
        tracker.log_metrics(step, {"val_loss": 4.2 - i / snapshots})
        tracker.log_snapshot(trainer.probe.capture(trainer.model, step))
    tracker.finish("FINISHED")
    return tracker.run_id


class Endpoint:
    def __init__(self, app):
        self.client = app.server.test_client()
        self.outputs = {key: value for key, value in app.callback_map.items()}

    def call(self, output_prefix: str, inputs: dict, state: dict, changed: str):
        key = next(k for k in self.outputs if k.startswith(output_prefix))
        spec = self.outputs[key]
        body = {
            "output": key,
            "outputs": [{"id": o.split(".")[0], "property": o.split(".")[1].split("@")[0]}
                        for o in key.strip(".").split("...")],
            "inputs": [{**i, "value": inputs.get(i["id"])} for i in spec["inputs"]],
            "state": [{**s, "value": state.get(s["id"])} for s in spec["state"]],
            "changedPropIds": [changed],
        }
        started = time.perf_counter()
        response = self.client.post("/_dash-update-component", json=body)
        elapsed = time.perf_counter() - started
        if response.status_code not in (200, 204):
            raise RuntimeError(f"{output_prefix}: HTTP {response.status_code} {response.data[:300]!r}")
        return elapsed, response.data


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def p95(values):
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="llmb-bench-")
    os.chdir(folder)
    uri = f"sqlite:///{folder}/mlflow.db"
    data = prepare_dataset(load_corpus("shakespeare"), 128)
    print("building runs...", flush=True)
    long_id = long_run(uri, Trainer(build_config("medium"), data), 20_000)
    snap_ids = [snapshot_run(uri, data, args.snapshots, seed) for seed in range(args.runs)]

    from dash_app.app import create_app

    app = create_app(uri)
    endpoint = Endpoint(app)

    # Poll: the viewer has seen the run up to step 19,990 and asks for what is new.
    state = {"run_id": long_id, "status": "RUNNING", "max_iters": 20000, "last_step": 19990,
             "last_train": 19990, "last_val": 19900, "ema": 2.0, "smoothing": 0.6}
    steps = list(range(0, 20001, 100))
    times, sizes = [], []
    for i in range(30):
        elapsed, body = endpoint.call("..loss-chart.extendData", {"poll": i}, {"run-state": state,
                                      "steps": steps}, "poll.n_intervals")
        times.append(elapsed)
        sizes.append(len(body))
    print(f"poll on a 20,000-step run (10 new steps): median {statistics.median(times) * 1e3:.1f} ms, "
          f"p95 {p95(times) * 1e3:.1f} ms server time, {max(sizes) / 1024:.2f} KB "
          f"(targets <= 20 ms, <= 5 KB)")
    quiet = {**state, "last_train": 20000, "last_val": 20000}
    elapsed, body = endpoint.call("..loss-chart.extendData", {"poll": 99}, {"run-state": quiet,
                                  "steps": steps}, "poll.n_intervals")
    print(f"poll with nothing new: {elapsed * 1e3:.1f} ms, {len(body) / 1024:.2f} KB")

    # Scrub and memory.
    print(f"memory before scrubbing: {rss_mb():.0f} MB", flush=True)
    for n, run_id in enumerate(snap_ids):
        run_steps = [100 * i for i in range(args.snapshots)]
        state = {"run_id": run_id, "status": "FINISHED", "max_iters": run_steps[-1], "last_step": run_steps[-1],
                 "last_train": run_steps[-1], "last_val": run_steps[-1], "ema": 2.0, "smoothing": 0.6}
        order = random.Random(n).sample(run_steps, len(run_steps))
        cold, warm = [], []
        for label, times in (("cold", cold), ("warm", warm)):
            for step in order:
                view = {"live": False, "playing": False, "step": step}
                t_watch, _ = endpoint.call("..samples.children", {"view": view, "temperature": 1.0, "tabs": "watch"},
                                           {"run-state": state, "steps": run_steps}, "view.data")
                t_att, _ = endpoint.call("..attention-grid.figure", {"view": view, "tabs": "attention", "layer": 0,
                                         "head": 0}, {"run-state": state, "steps": run_steps}, "view.data")
                times.append(t_watch + t_att)
        print(f"run {n + 1}: scrub all panels p95 cold {p95(cold) * 1e3:.0f} ms, warm {p95(warm) * 1e3:.0f} ms "
              f"(median {statistics.median(cold) * 1e3:.0f} / {statistics.median(warm) * 1e3:.0f}); "
              f"memory {rss_mb():.0f} MB", flush=True)


if __name__ == "__main__":
    main()
