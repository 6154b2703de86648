"""What tracking costs a whole ``llmb train`` command: start-up, steps and end, side by side.

    python bench/command_startup.py [--pairs 3] [--max-iters 1000] [--threads N]

Runs ``llmb train --preset small --max-iters 1000 --eval-interval 250 --batch-size 32``
tracked (a sqlite store in a temporary folder, created before the first timed run) and with
``--no-tracking``, alternately, each in a fresh process. Prints, per run and as medians: the
whole command's wall time and CPU time (with its tracking helper's, which the training reaps
as it ends), the time from starting the command to the start of its first training step, and
to the end of its last step. ``--threads N`` runs both with ``--threads N`` (``--threads 1``
leaves a core of two to the helper). The ratios' median comes with its exact interval
(``bench/pairs.py``). Targets: tracked / untracked whole-command ratio <= 1.05
(median of the pairs), first step tracked vs untracked <= 1.2 s apart.

The first step is timed from inside the command: ``llmb_mlflow.training.trainer`` is patched as it is
imported (never earlier, so the command loads exactly what it would), and the step's start
time is written to stderr.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from pairs import describe, positive

# Run in the command's process: patch Trainer.train_step once the trainer module is imported.
HOOK = r"""
import importlib.abc, importlib.machinery, sys, time

class Patch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "llmb_mlflow.training.trainer":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            step = module.Trainer.train_step
            def timed(trainer):
                if not hasattr(trainer, "_bench_first"):
                    trainer._bench_first = True
                    print(f"BENCH first-step {time.time():.3f}", file=sys.stderr, flush=True)
                result = step(trainer)
                if trainer.step == trainer.config.train.max_iters:
                    print(f"BENCH last-step {time.time():.3f}", file=sys.stderr, flush=True)
                return result
            module.Trainer.train_step = timed
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Patch())
sys.argv = ["llmb", *sys.argv[1:]]
from llmb_mlflow.cli.main import main
main()
"""


def run(args: list[str], env: dict, folder: str) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run([sys.executable, "-c", HOOK, *args], env=env, cwd=folder,
                          capture_output=True, text=True)
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"the command failed:\n{done.stderr[-2000:]}")
    marks = dict(line.split()[1:] for line in done.stderr.splitlines() if line.startswith("BENCH "))
    return {"whole": ended - started, "first": float(marks["first-step"]) - started,
            "last": float(marks["last-step"]) - started, "tail": ended - float(marks["last-step"]),
            "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=positive, default=3)
    parser.add_argument("--max-iters", type=positive, default=1000)
    parser.add_argument("--threads", type=positive, help="compute threads of both commands (default: theirs)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="llmb-bench-")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
           "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"}
    command = ["train", "--preset", "small", "--max-iters", str(args.max_iters), "--eval-interval", "250",
               "--batch-size", "32", *(["--threads", str(args.threads)] if args.threads else [])]
    from llmb_mlflow.store.client import client

    client(env["MLFLOW_TRACKING_URI"])  # the store exists, as it does for every run but a first
    results = {"tracked": [], "untracked": []}
    print(f"llmb {' '.join(command)}: tracked and --no-tracking alternately, {args.pairs} pairs", flush=True)
    for i in range(args.pairs):
        order = [("tracked", []), ("untracked", ["--no-tracking"])]
        for name, extra in (order if i % 2 == 0 else order[::-1]):
            result = run([*command, *extra], env, folder)
            results[name].append(result)
            print(f"  {name:9s} whole {result['whole']:6.2f} s (CPU {result['cpu']:6.2f} s), first step at {result['first']:5.2f} s, "
                  f"last step done at {result['last']:6.2f} s ({result['last'] - result['first']:6.2f} s of steps), "
                  f"then {result['tail']:4.2f} s to exit", flush=True)

    def median(name, key):
        return statistics.median(r[key] for r in results[name])

    ratios = [t["whole"] / u["whole"] for t, u in zip(results["tracked"], results["untracked"])]
    print(f"whole command tracked / untracked: {describe(ratios)} "
          f"(pairs {', '.join(f'{r:.3f}' for r in ratios)}; target <= 1.05)")
    print(f"first step: tracked {median('tracked', 'first'):.2f} s, untracked {median('untracked', 'first'):.2f} s, "
          f"{median('tracked', 'first') - median('untracked', 'first'):+.2f} s apart (target <= 1.2 s)")
    print(f"after the last step: tracked {median('tracked', 'tail'):.2f} s, "
          f"untracked {median('untracked', 'tail'):.2f} s to exit")
    print(f"CPU time: tracked {median('tracked', 'cpu'):.1f} s, untracked {median('untracked', 'cpu'):.1f} s "
          f"({median('tracked', 'cpu') - median('untracked', 'cpu'):+.1f} s)")


if __name__ == "__main__":
    main()
