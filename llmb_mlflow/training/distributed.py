"""Data-parallel training under ``torchrun`` (gloo on CPU, NCCL on GPUs).

Every rank trains the same model on batches of its own and DDP averages the gradients, so a
step sees ``batch_size`` x ``world_size`` sequences. Rank 0 alone evaluates, takes snapshots,
writes checkpoints and talks to MLflow: the run looks like a single-process one (plus the tag
``llmb.world_size``). Before each step the ranks agree on what to do (train, wait, stop) by
taking the most cautious wish of any rank, so pause, step-once and stop requests, which only
rank 0 hears, and a Ctrl-C that reaches any rank, act on all of them together.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

TRAIN, WAIT, STOP = 0, 1, 2  # ordered: the largest wish wins


def world() -> tuple[int, int]:
    """(rank, world size) as torchrun sets them; (0, 1) when run alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def local_device() -> str:
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return "cpu"


class DataParallel:
    def __init__(self):
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=30))
        self.rank, self.size = dist.get_rank(), dist.get_world_size()
        self.device = local_device()  # NCCL reduces tensors on the GPU
        self.agreed_to_stop = False

    def attach(self, trainer) -> None:
        """Make ``trainer`` one rank of the data-parallel training."""
        from torch.nn.parallel import DistributedDataParallel

        trainer.forward_model = DistributedDataParallel(trainer.model)
        trainer.lead = self.rank == 0
        trainer.agree = self.agree
        trainer.mean = self.mean
        trainer.world_size = self.size
        if self.rank:  # batches of its own, reproducible from the seed, the rank and the step
            trainer.batch_rng.manual_seed(trainer.config.train.seed + 7919 * self.rank + trainer.step)

    def agree(self, wish: int) -> int:
        decision = torch.tensor([wish], device=self.device)
        dist.all_reduce(decision, op=dist.ReduceOp.MAX)
        decided = int(decision.item())
        self.agreed_to_stop = decided == STOP
        return decided

    def mean(self, value: float) -> float:
        total = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return float(total.item()) / self.size

    def finish(self) -> None:
        """Wait until every rank is done: rank 0 still evaluates, checkpoints and closes the run
        after the others have taken their last step, and a rank that tears the process group
        down under a busy peer can abort (gloo: "terminate called without an active exception")."""
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()
