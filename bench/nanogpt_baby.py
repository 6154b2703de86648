"""LLMBreaker against nanoGPT on nanoGPT's own CPU recipe, side by side.

    python bench/nanogpt_baby.py [--nanogpt PATH] [--pairs 2] [--max-iters 2000]

nanoGPT's README runs its baby model on a CPU with
``python train.py config/train_shakespeare_char.py --device=cpu --compile=False
--eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4
--n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0`` (9 evaluations, a
checkpoint whenever the validation loss improves). Ours is
``llmb train --preset baby --batch-size 12 --max-iters 2000``: the same model and optimiser,
tracked in MLflow (a sqlite store in a temporary folder), with 21 evaluations, a snapshot at
each and two checkpoints; ours again evaluating as often as nanoGPT (``--eval-interval
250``: 9 evaluations); and ours in float32 (``--precision fp32``), as nanoGPT computes on a CPU
(ours takes bfloat16 mixed precision where the CPU multiplies it natively, see
``llmb_mlflow/training/precision.py``). The commands run in turn, each in a fresh process, the order reversed
every other round; printed: wall time of each, the validation loss each reports at its last
step, and the ratios of the medians (target: ours <= 0.90 of nanoGPT's, at the same loss
within noise).

``--nanogpt PATH``: a checkout of https://github.com/karpathy/nanoGPT. Its
``data/shakespeare_char`` is prepared from this package's copy of the same corpus if it has
not been (nanoGPT's ``prepare.py`` would download it). Without it, only ours runs and the
comparison is skipped.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

NANOGPT_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
                "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
                "--n_embd=128", "--lr_decay_iters={iters}", "--max_iters={iters}", "--dropout=0.0"]
NANOGPT_LOSS = re.compile(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)")
OUR_LOSS = re.compile(r"Done: step (\d+), val loss ([\d.]+)")


def prepare_nanogpt(path: Path) -> None:
    data = path / "data" / "shakespeare_char"
    if not (path / "train.py").is_file():
        sys.exit(f"--nanogpt {path}: not a nanoGPT checkout (no train.py)")
    if (data / "train.bin").is_file() and (data / "meta.pkl").is_file():
        return
    text = gzip.decompress((resources.files("llmb_mlflow") / "corpora" / "shakespeare.txt.gz").read_bytes())
    (data / "input.txt").write_bytes(text)
    subprocess.run([sys.executable, "prepare.py"], cwd=data, check=True, capture_output=True)
    print(f"prepared {data} from llmb_mlflow's copy of tiny Shakespeare", flush=True)


def timed(command: list[str], cwd: Path, env: dict, pattern: re.Pattern) -> tuple[float, float]:
    """Wall time of ``command`` and the validation loss its output reports last."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(command[:3])} failed:\n{(done.stdout + done.stderr)[-2000:]}")
    found = pattern.findall(done.stdout + done.stderr)
    return elapsed, float(found[-1][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", type=Path, metavar="PATH", help="a nanoGPT checkout")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--max-iters", type=int, default=2000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="llmb-bench-"))
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"}
    ours = [sys.executable, "-m", "llmb_mlflow", "train", "--preset", "baby", "--batch-size", "12",
            "--max-iters", str(args.max_iters)]
    ours_as_often = [*ours, "--eval-interval", str(max(1, args.max_iters // 8))]
    ours_fp32 = [*ours, "--precision", "fp32"]
    theirs = None
    if args.nanogpt:
        prepare_nanogpt(args.nanogpt)
        theirs = [sys.executable, "train.py", *(a.format(iters=args.max_iters) for a in NANOGPT_ARGS),
                  f"--out_dir={folder / 'nanogpt-out'}"]
    from llmb_mlflow.store.client import client

    client(env["MLFLOW_TRACKING_URI"])  # the store exists before the first timed run
    results: dict[str, list[tuple[float, float]]] = {"llmb": [], "llmb-9": [], "llmb-fp32": [], "nanoGPT": []}
    for i in range(args.pairs):
        order = [("llmb", ours, folder, OUR_LOSS), ("llmb-9", ours_as_often, folder, OUR_LOSS),
                 ("llmb-fp32", ours_fp32, folder, OUR_LOSS), ("nanoGPT", theirs, args.nanogpt, NANOGPT_LOSS)]
        for name, command, cwd, pattern in (order if i % 2 == 0 else order[::-1]):
            if command is None:
                continue
            elapsed, loss = timed(command, cwd, env, pattern)
            results[name].append((elapsed, loss))
            print(f"  {name:9s} {elapsed:6.1f} s, val loss {loss:.4f} at step {args.max_iters}", flush=True)

    def median(name: str, index: int) -> float:
        return statistics.median(r[index] for r in results[name])

    print(f"llmb (tracked, 21 evaluations with snapshots): {median('llmb', 0):.1f} s, "
          f"val loss {median('llmb', 1):.4f} (medians of {args.pairs})")
    print(f"llmb (tracked, 9 evaluations with snapshots): {median('llmb-9', 0):.1f} s, "
          f"val loss {median('llmb-9', 1):.4f}")
    print(f"llmb --precision fp32 (tracked, 21 evaluations): {median('llmb-fp32', 0):.1f} s, "
          f"val loss {median('llmb-fp32', 1):.4f}")
    if not theirs:
        print("comparison with nanoGPT skipped: give --nanogpt PATH (a nanoGPT checkout)")
        return
    print(f"nanoGPT (9 evaluations): {median('nanoGPT', 0):.1f} s, val loss {median('nanoGPT', 1):.4f}")
    print(f"wall time llmb / nanoGPT: {median('llmb', 0) / median('nanoGPT', 0):.3f} (target <= 0.90)")
    print(f"wall time llmb / nanoGPT, both evaluating 9 times: {median('llmb-9', 0) / median('nanoGPT', 0):.3f}")
    print(f"wall time llmb --precision fp32 / nanoGPT: {median('llmb-fp32', 0) / median('nanoGPT', 0):.3f}")


if __name__ == "__main__":
    main()
