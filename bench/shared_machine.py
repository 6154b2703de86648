"""Trainings sharing a machine: N identical trainings started together, against the same N run
one after another.

    python bench/shared_machine.py [--alone 4] [--control] [--max-n 4] [--max-iters 300] [--with-default]

Each training is ``llmb train --preset small --max-iters 300 --eval-interval 100 --batch-size 16
--no-tracking`` in a process of its own (``--max-iters`` lengthens them all, for series with
less noise). One alone with its share is timed against one alone at PyTorch's default (a
thread per core, ``--threads`` = all cores), ``--alone`` pairs of them, which goes first
swapping from pair to pair. The median of the pairs' ratios is the cost of taking a share when
alone (target <= 1.02); their CPU times are printed beside. Wall times vary by ±15 % from run
to run here: ``--control`` times PyTorch's default twice in each round, so the same series
shows what a ratio of identical commands looks like. Then for N = 2..max-n: N started together
against N x one alone (target <= 0.8). ``--with-default`` also runs N together at PyTorch's
default, as every training did before (slow: 3 took 64 s here). Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

from pairs import describe, positive

TRAIN = [sys.executable, "-m", "llmb_mlflow", "train", "--preset", "small", "--eval-interval", "100",
         "--batch-size", "16", "--no-tracking"]


def together(n: int, extra: list[str], iters: int) -> tuple[float, float]:
    """Wall time of ``n`` trainings started at once, until the last one ends, and their CPU time."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    procs = [subprocess.Popen([*TRAIN, "--max-iters", str(iters), *extra], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env)
             for _ in range(n)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a training failed: {err.decode()[-500:]}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _pairs(ours: list[tuple[float, float]], theirs: list[tuple[float, float]]) -> str:
    ratios = [a[0] / b[0] for a, b in zip(ours, theirs)]
    wall, cpu = ([statistics.median(run[i] for run in runs) for runs in (ours, theirs)] for i in (0, 1))
    return (f"{describe(ratios)} (pairs {', '.join(f'{r:.2f}' for r in ratios)}); "
            f"medians {wall[0]:.1f} / {wall[1]:.1f} s, CPU time {cpu[0]:.1f} / {cpu[1]:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alone", type=positive, default=4, help="pairs of one alone (default 4)")
    parser.add_argument("--max-n", type=positive, default=4, help="largest N started together (1: none)")
    parser.add_argument("--max-iters", type=positive, default=300, help="steps of every training (default 300)")
    parser.add_argument("--control", action="store_true",
                        help="also time one alone at PyTorch's default a second time in each pair")
    parser.add_argument("--with-default", action="store_true")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    default = ["--threads", str(cores)]
    variants = {"share": [], "default": [], **({"control": []} if args.control else {})}
    for pair in range(args.alone):
        for name in (list(variants) if pair % 2 == 0 else list(variants)[::-1]):
            variants[name].append(together(1, [] if name == "share" else default, args.max_iters))
    one = statistics.median(wall for wall, _ in variants["share"])
    print(f"{cores} cores. One alone with its share against PyTorch's default: "
          f"{_pairs(variants['share'], variants['default'])} (target <= 1.02)", flush=True)
    if args.control:
        print(f"Control, PyTorch's default against itself (the noise): "
              f"{_pairs(variants['control'], variants['default'])}", flush=True)
    for n in range(2, args.max_n + 1):
        wall, _ = together(n, [], args.max_iters)
        line = (f"N={n}: together {wall:.1f} s, one after another {n * one:.1f} s, "
                f"ratio {wall / (n * one):.2f} (target <= 0.8)")
        if args.with_default:
            line += f"; at PyTorch's default together {together(n, default, args.max_iters)[0]:.1f} s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
