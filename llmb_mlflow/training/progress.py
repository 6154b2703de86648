"""The training progress display: a live bar on a terminal, a line per evaluation otherwise."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..run_layout import TRAIN_LOSS, VAL_LOSS


class TrainingProgress:
    def __init__(self, total: int, trainer, refresh_seconds: float = 0.1):
        self.total = total
        self.trainer = trainer
        self.refresh_seconds = refresh_seconds
        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self._last_draw = 0.0
        self._progress = Progress(
            TextColumn("step"), MofNCompleteColumn(), BarColumn(),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}"),
            TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, disable=not self.live,
        )
        self._task = self._progress.add_task("train", total=total, completed=trainer.step,
                                             loss="-", val="-")

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        self._progress.__exit__(*exc)

    def update(self, step: int, metrics: dict) -> None:
        val = self.trainer.last_eval.get(VAL_LOSS)
        is_eval = VAL_LOSS in metrics
        now = time.monotonic()
        if self.live and (is_eval or step == self.total or now - self._last_draw >= self.refresh_seconds):
            self._last_draw = now
            self._progress.update(self._task, completed=step, loss=f"{metrics[TRAIN_LOSS]:.3f}",
                                  val="-" if val is None else f"{val:.3f}")
        elif not self.live and is_eval:
            print(f"step {step}/{self.total}  loss {metrics[TRAIN_LOSS]:.4f}  val {val:.4f}",
                  file=sys.stderr, flush=True)
