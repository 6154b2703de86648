"""A long outage of the tracking server: how much the writer grows, and how long it takes to catch
up once the server is back.

    python bench/outage_memory.py [--points 1000000] [--keys 10] [--burst 50000]

A real ``mlflow server`` (sqlite, served artifacts, in a temporary folder) and a run tracked as
``llmb train`` tracks one: through the tracking helper process, whose ``MlflowTracker`` is the
writer. The server is stopped; the training side reports ``--points`` metric points (``--keys``
per step) as fast as it can, in bursts of ``--burst`` points, each once the helper has spilled
the one before (0: all at once; the helper then also holds the messages it has not yet read,
which a training, at a few hundred points a second, never makes it do); once all but the last
bound's worth are spilled to the run's spool
folder, the helper's resident memory is measured against its level before the outage, beside
what an unbounded writer would hold (the bytes a point takes in memory, measured here with
tracemalloc as the helper holds them, times the points). Then the server is restarted and the
run finished: the time to drain is until every point is stored and the run ended.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # the writer retries by itself
os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import psutil  # noqa: E402

from conftest import start_mlflow_server, stop_process  # noqa: E402
from llmb_mlflow.tracking.spill import POINT_BYTES, SPILL_BYTES  # noqa: E402
from llmb_mlflow.training.tracker import RunDescription  # noqa: E402
from llmb_mlflow.tracking import messages  # noqa: E402
from llmb_mlflow.tracking.process import TrackingProcess  # noqa: E402


def bytes_per_point(keys: list[str], steps: int = 20_000) -> float:
    """A point's memory as the helper holds it: unpickled from the training's message."""
    tracemalloc.start()
    held: deque = deque()
    start = tracemalloc.get_traced_memory()[0]
    for step in range(steps):
        message = pickle.loads(pickle.dumps(messages.Metrics(step, {k: step + 0.5 for k in keys}, 0)))
        held.extend((key, float(value), message.at_ms, message.step) for key, value in message.metrics.items())
    size = (tracemalloc.get_traced_memory()[0] - start) / len(held)
    tracemalloc.stop()
    return size


def spilled_points(folder: Path) -> int:
    return sum(segment.read_bytes().count(b"\n") for segment in folder.glob("segment_*.jsonl"))


def until(condition, what: str, timeout: float = 1800.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10, help="metric points per step")
    parser.add_argument("--burst", type=int, default=50_000, help="points reported at once (0: all)")
    args = parser.parse_args()
    keys = [f"outage/m{i}" for i in range(args.keys)]
    steps = args.points // args.keys
    total = steps * args.keys

    folder = Path(tempfile.mkdtemp(prefix="llmb-bench-outage-"))
    os.environ["LLMB_SPOOL_DIR"] = str(folder / "spool")
    per_point = bytes_per_point(keys)
    import mlflow.store.tracking.sqlalchemy_store as sqlalchemy_store

    (folder / "template").mkdir()
    sqlalchemy_store.SqlAlchemyStore(f"sqlite:///{folder / 'template' / 'mlflow.db'}", str(folder / "mlruns"))
    uri, server = start_mlflow_server(folder / "template" / "mlflow.db", folder)
    port = int(uri.rsplit(":", 1)[1])
    try:
        tracker = TrackingProcess(uri)
        tracker.start(RunDescription(params={"purpose": "outage benchmark"}, run_name="outage"))
        until(lambda: tracker.run_id, "the run")
        helper = next(p for p in psutil.Process().children()
                      if "llmb_mlflow.tracking.process" in " ".join(p.cmdline()))
        before = helper.memory_info().rss
        stop_process(server)

        started = time.perf_counter()
        peak = before
        spool = folder / "spool" / tracker.run_id
        burst = max(1, (args.burst or total) // args.keys)
        for step in range(steps):
            tracker.log_metrics(step, {key: step + 0.5 for key in keys})
            if (step + 1) % burst == 0 or step + 1 == steps:
                reported = (step + 1) * args.keys
                until(lambda: spilled_points(spool) >= reported - SPILL_BYTES // POINT_BYTES, "the spills")
                peak = max(peak, helper.memory_info().rss)
        logged = time.perf_counter() - started
        after = helper.memory_info().rss
        peak = max(peak, after)
        segments = len(list(spool.glob("segment_*.jsonl")))
        on_disk = sum(f.stat().st_size for f in spool.rglob("*") if f.is_file())

        uri, server = start_mlflow_server(folder / "template" / "mlflow.db", folder, port=port)
        started = time.perf_counter()
        tracker.finish("FINISHED")
        drained = time.perf_counter() - started

        from llmb_mlflow.library.reader import RunReader

        stored = len(RunReader(uri).client.get_metric_history(tracker.run_id, keys[-1]))
        print(f"outage: {total:,} points reported in {logged:.1f} s ({args.keys} a step, "
              f"{f'bursts of {args.burst:,}' if args.burst else 'all at once'}), "
              f"spilled as {segments} segments ({on_disk / 2**20:.0f} MB on disk)")
        print(f"helper RSS: {before / 2**20:.0f} MB before, {after / 2**20:.0f} MB after "
              f"(growth {(after - before) / 2**20:.1f} MB, peak growth {(peak - before) / 2**20:.1f} MB); "
              f"bound {SPILL_BYTES / 2**20:.0f} MB of unsent data")
        print(f"unbounded: {per_point:.0f} bytes a point x {total:,} points = "
              f"{per_point * total / 2**20:.0f} MB")
        print(f"drain after the store returned: {drained:.1f} s "
              f"({total / drained:,.0f} points/s); {keys[-1]} has {stored:,} of {steps:,} points, "
              f"spool folder {'left' if spool.exists() else 'removed'}")
    finally:
        stop_process(server)


if __name__ == "__main__":
    main()
