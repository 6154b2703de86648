"""Trainings sharing a machine: N identical trainings started together, against the same N run
one after another.

    python bench/shared_machine.py [--max-n 4] [--with-default]

Each training is ``llmb train --preset small --max-iters 300 --eval-interval 100 --batch-size 16
--no-tracking`` in a process of its own. One alone is timed three times, alternating with one
alone at PyTorch's default (a thread per core, ``--threads`` = all cores): their ratio is the
cost of taking a share when alone (target <= 1.02). Then for N = 2..max-n: N started together
against N x one alone (target <= 0.8). ``--with-default`` also runs N together at PyTorch's
default, as every training did before (slow: 3 took 64 s here). Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

TRAIN = [sys.executable, "-m", "llmb_mlflow", "train", "--preset", "small", "--max-iters", "300",
         "--eval-interval", "100", "--batch-size", "16", "--no-tracking"]


def together(n: int, extra: list[str]) -> float:
    """Wall time of ``n`` trainings started at once, until the last one ends."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    started = time.perf_counter()
    procs = [subprocess.Popen([*TRAIN, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
             for _ in range(n)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a training failed: {err.decode()[-500:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=4)
    parser.add_argument("--with-default", action="store_true")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    default = ["--threads", str(cores)]
    alone, alone_default = [], []
    for _ in range(3):
        alone.append(together(1, []))
        alone_default.append(together(1, default))
    one = statistics.median(alone)
    print(f"{cores} cores. One alone: {one:.1f} s with its share, {statistics.median(alone_default):.1f} s at "
          f"PyTorch's default; ratio {one / statistics.median(alone_default):.3f} (target <= 1.02)", flush=True)
    for n in range(2, args.max_n + 1):
        wall = together(n, [])
        line = (f"N={n}: together {wall:.1f} s, one after another {n * one:.1f} s, "
                f"ratio {wall / (n * one):.2f} (target <= 0.8)")
        if args.with_default:
            line += f"; at PyTorch's default together {together(n, default):.1f} s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
