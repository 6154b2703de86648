"""What recording costs a nanoGPT user: nanoGPT's own train.py, with docs/examples/nanogpt.patch
applied and without, side by side.

    python bench/nanogpt_record.py [--nanogpt PATH] [--pairs 2] [--max-iters 2000]

Runs nanoGPT's CPU recipe from its README (``config/train_shakespeare_char.py --device=cpu
--compile=False --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4
--n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0``, evaluating
every 250 steps as its config says) in two copies of the same nanoGPT folder: one unchanged,
one patched, which records every step, a snapshot at each evaluation and the model's weights
beside it in an MLflow run (a sqlite store in a temporary folder, made before the first timed
run). The two alternate, each in a fresh process, the order reversed every other pair.
Printed: wall time and last validation loss of each run, and the median of the pairs' wall
time ratios with its interval (``bench/pairs.py``). Target: patched / unpatched <= 1.05, the
same validation loss within noise (the patch draws no random numbers from the training's
generators, so the losses should match to the last digit).

``--nanogpt PATH``: a nanoGPT folder (default: ../shared/clients/nanogpt beside this checkout,
karpathy/nanoGPT's files unmodified). Its ``data/shakespeare_char`` is prepared from this
package's copy of the corpus (nanoGPT's ``prepare.py`` would download it).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from pairs import describe, positive

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
          "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
          "--n_embd=128", "--lr_decay_iters={iters}", "--max_iters={iters}", "--dropout=0.0"]
VAL_LOSS = re.compile(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)")


def copy_of(source: Path, folder: Path, patched: bool) -> Path:
    target = folder / ("patched" if patched else "unpatched")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("out*", "__pycache__"))
    data = target / "data" / "shakespeare_char"
    if not (data / "train.bin").is_file():
        text = gzip.decompress((resources.files("llmb_mlflow") / "corpora" / "shakespeare.txt.gz").read_bytes())
        (data / "input.txt").write_bytes(text)
        subprocess.run([sys.executable, "prepare.py"], cwd=data, check=True, capture_output=True)
    if patched:
        subprocess.run(["git", "apply", str(ROOT / "docs" / "examples" / "nanogpt.patch")], cwd=target, check=True)
    return target


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Wall time of ``command`` and the validation loss it reports last."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{cwd.name} failed:\n{(done.stdout + done.stderr)[-2000:]}")
    return elapsed, float(VAL_LOSS.findall(done.stdout)[-1][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", type=Path, metavar="PATH", default=ROOT.parent / "shared" / "clients" / "nanogpt")
    parser.add_argument("--pairs", type=positive, default=2)
    parser.add_argument("--max-iters", type=positive, default=2000)
    args = parser.parse_args()
    if not (args.nanogpt / "train.py").is_file():
        sys.exit(f"--nanogpt {args.nanogpt}: not a nanoGPT folder (no train.py)")
    folder = Path(tempfile.mkdtemp(prefix="llmb-bench-"))
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"}
    runs = {patched: copy_of(args.nanogpt, folder, patched) for patched in (False, True)}
    command = [sys.executable, "train.py", *(a.format(iters=args.max_iters) for a in RECIPE)]
    from llmb_mlflow.store.client import client

    client(env["MLFLOW_TRACKING_URI"])  # the store exists before the first timed run
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for i in range(args.pairs):
        for patched in ((False, True) if i % 2 == 0 else (True, False)):
            elapsed, loss = timed(command, runs[patched], env)
            results[patched].append((elapsed, loss))
            print(f"  {'patched' if patched else 'unpatched':9s} {elapsed:6.1f} s, val loss {loss:.4f} "
                  f"at step {args.max_iters}", flush=True)
    for patched, name in ((False, "unpatched"), (True, "patched (recorded)")):
        print(f"{name}: {statistics.median(r[0] for r in results[patched]):.1f} s, val loss "
              f"{statistics.median(r[1] for r in results[patched]):.4f} (medians of {args.pairs})")
    ratios = [p[0] / u[0] for p, u in zip(results[True], results[False])]
    print(f"wall time patched / unpatched: {describe(ratios)} (target <= 1.05)")


if __name__ == "__main__":
    main()
