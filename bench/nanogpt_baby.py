"""nanoGPT's CPU configuration on Shakespeare, through LLMBreaker's trainer.

    python bench/nanogpt_baby.py [--max-iters 2000] [--loop-steps 200]

1. Loop overhead, side by side in this run: ``Trainer.train_step`` against a bare
   nanoGPT-style step (same model, same batches: forward, backward, clip, AdamW, loss.item()),
   interleaved; prints the ratio.
2. The full training (``--preset baby --batch-size 12 --max-iters 2000``, lr 1e-3 cosine to
   1e-4, warm-up 100, dropout 0) untracked; prints the validation loss at the last step and
   ms/step. Reference, from nanoGPT's README on this kind of 2-core machine: val loss
   1.88-1.89 in ~65-70 s at ~32 ms/step. Target: <= 1.88.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from llmb_mlflow.config import build_config
from llmb_mlflow.corpus import load_corpus, prepare_dataset
from llmb_mlflow.tracker import Tracker
from llmb_mlflow.trainer import Trainer


def bare_step(trainer: Trainer) -> None:
    """nanoGPT's train.py inner loop, without LLMBreaker's metrics."""
    tc = trainer.config.train
    x, y = trainer.batch("train", tc.batch_size, trainer.batch_rng)
    _, loss, _ = trainer.model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), tc.grad_clip)
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.item()


def per_step(fn, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--loop-steps", type=int, default=200)
    args = parser.parse_args()
    config = build_config("baby", batch_size=12, max_iters=args.max_iters, lr=1e-3, dropout=0.0)
    data = prepare_dataset(load_corpus("shakespeare"), config.model.block_size)

    ours, bare = [], []
    loop = Trainer(config, data)
    for _ in range(4):
        ours.append(per_step(loop.train_step, args.loop_steps // 4))
        bare.append(per_step(lambda: bare_step(loop), args.loop_steps // 4))
    print(f"loop: trainer {statistics.median(ours) * 1e3:.1f} ms/step, bare nanoGPT-style "
          f"{statistics.median(bare) * 1e3:.1f} ms/step, ratio "
          f"{statistics.median(ours) / statistics.median(bare):.3f}", flush=True)

    trainer = Trainer(config, data)
    evals = []

    class Recorder(Tracker):
        def log_metrics(self, step, metrics):
            if "val_loss" in metrics:
                evals.append((step, metrics["val_loss"]))

    started = time.perf_counter()
    step_times = []
    trainer.run(Recorder(), on_progress=lambda step, m: step_times.append(12 * 64 / m["tokens_per_sec"]))
    total = time.perf_counter() - started
    for step, loss in evals[:: max(len(evals) // 5, 1)] + evals[-1:]:
        print(f"  step {step:5d}  val loss {loss:.4f}")
    print(f"baby, batch 12, {args.max_iters} steps: val loss {evals[-1][1]:.4f} at step {evals[-1][0]} "
          f"(target <= 1.88; nanoGPT 1.88-1.89), {statistics.median(step_times) * 1e3:.1f} ms/step median "
          f"(nanoGPT ~32), {total:.1f} s in all with {len(evals)} evaluations")


if __name__ == "__main__":
    main()
