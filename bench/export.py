"""Exporting a 50-snapshot ``medium`` run as a GIF and as an MP4: seconds and file size.

    python bench/export.py [--snapshots 50] [--eval-interval 20] [--repeats 3] [--keep]

Trains the run first, as a user would: ``llmb train --preset medium --max-iters 980
--eval-interval 20 --eval-iters 5`` into a sqlite store in a temporary folder (a snapshot at
step 0 and at every evaluation: 50). Then runs ``llmb export RUN --format gif`` and ``--format
mp4`` at their default settings, alternately, each a command of its own (what a user waits
for: start-up, reading the store, drawing every frame, encoding). Prints each command's wall
time and its file's size, and the medians. Targets: the GIF in <= 20 s and <= 10 MB.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def llmb(args: list[str], env: dict, folder: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "llmb_mlflow", *args], env=env, cwd=folder,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"llmb {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=50)
    parser.add_argument("--eval-interval", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the store and the files it wrote")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="llmb-bench-")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"}
    steps = (args.snapshots - 1) * args.eval_interval
    print(f"training a medium run: {steps} steps, a snapshot every {args.eval_interval} ...", flush=True)
    seconds, out = llmb(["train", "--preset", "medium", "--max-iters", str(steps), "--eval-interval",
                         str(args.eval_interval), "--eval-iters", "5", "--checkpoint-interval", "0",
                         "--no-system-metrics", "--run-name", "bench-export"], env, folder)
    run_id = re.search(r"Run ([0-9a-f]{32})", out).group(1)
    print(f"trained in {seconds:.0f} s (run {run_id})")
    results = {"gif": [], "mp4": []}
    for _ in range(args.repeats):
        for fmt in results:
            seconds, out = llmb(["export", run_id, "--format", fmt, "--overwrite"], env, folder)
            frames = re.search(r"\((\d+) frames", out).group(1)
            size = os.path.getsize(os.path.join(folder, f"bench-export.{fmt}")) / 2**20
            results[fmt].append((seconds, size))
            print(f"  {fmt}: {frames} frames, {seconds:5.1f} s, {size:5.2f} MB", flush=True)
    for fmt, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        size = runs[-1][1]
        target = "  (target <= 20 s and <= 10 MB)" if fmt == "gif" else ""
        print(f"{fmt}: median {seconds:.1f} s, {size:.2f} MB{target}")
    if args.keep:
        print(f"kept: {folder}")
    else:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
