"""The training loop: AdamW with warm-up and cosine decay, periodic evaluation and snapshots.

It reports to a ``Tracker`` and never touches MLflow itself, so it runs the same with
tracking off. Step ``s`` is the model after ``s`` optimizer updates: ``train_loss`` at
step ``s`` is the loss of update ``s`` (1..max_iters); evaluations (``val_loss``,
``eval_train_loss`` and a snapshot) happen at step 0, every ``eval_interval`` and at the end.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, astuple, replace
from typing import Callable

import numpy as np
import torch

from . import precision, style
from .config import RunConfig
from .corpus import Dataset
from .model import MicroGPT
from .probes import SnapshotProbe
from .recording import Recorder, TrainingStopped
from ..run_layout import (
    EVAL_METRICS, EVAL_TRAIN_LOSS, GRAD_NORM, LR, SOURCE_STYLE_PARAMS, STYLE_MATCH, TOKENS_PER_SEC, TRAIN_LOSS,
    VAL_LOSS,
)
from .tracker import RunDescription, Tracker

ProgressCallback = Callable[[int, dict], None]
EVAL_TOKENS = 4096  # tokens per forward pass when evaluating (measured best on CPU)


def style_metrics(profile: style.Profile, sample: str) -> dict[str, float]:
    """The run contract's ``style_*`` metrics of one sample."""
    return {name if name == STYLE_MATCH else f"style_{name}": value for name, value in style.match(profile, sample).items()}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class Trainer:
    def __init__(self, config: RunConfig, dataset: Dataset, device: str | None = None,
                 precision_choice: str = "auto"):
        self.config = config
        self.dataset = dataset
        self.device = device or default_device()
        self.precision = precision.resolve(precision_choice, self.device)
        tc = config.train
        torch.manual_seed(tc.seed)
        self.model_config = replace(config.model, vocab_size=dataset.tokenizer.vocab_size)
        self.model = MicroGPT(self.model_config).to(self.device)
        self.optimizer = self.model.optimizer(tc.lr, tc.weight_decay, (tc.beta1, tc.beta2))
        self.step = 0
        self.splits = {
            "train": torch.from_numpy(dataset.train_ids.astype(np.int64)),
            "val": torch.from_numpy(dataset.val_ids.astype(np.int64)),
        }
        self.batch_rng = torch.Generator().manual_seed(tc.seed)
        self.probe = SnapshotProbe.of_dataset(dataset, self.model_config.block_size, tc.sample_chars,
                                              tc.temperature, tc.seed, keep_weights=tc.step_weights)
        self.last_eval: dict[str, float] = {}
        self.last_train: dict[str, float] = {}
        self.last_checkpoint_step: int | None = None
        self.stop_requested = False
        self.updating = False
        # One process unless distributed.DataParallel.attach makes this a rank of several.
        self.forward_model = self.model
        self.lead, self.world_size = True, 1
        self.agree: Callable[[int], int] = lambda wish: wish
        self.mean: Callable[[float], float] = lambda value: value

    @classmethod
    def from_checkpoint(cls, state: dict, config: RunConfig, dataset: Dataset,
                        device: str | None = None, precision_choice: str | None = None) -> "Trainer":
        """A trainer continuing from a checkpoint (see ``checkpoint.load``) with ``config``;
        in the checkpoint's precision unless ``precision_choice`` says otherwise."""
        from .checkpoint import check_resumable

        check_resumable(state)
        device = device or default_device()
        choice = precision_choice or precision.resumed(state.get("precision"), device)
        trainer = cls(config, dataset, device, choice)
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        tc = config.train
        for group in trainer.optimizer.param_groups:  # the new settings win over the saved ones
            group["betas"] = (tc.beta1, tc.beta2)
            if group["weight_decay"]:
                group["weight_decay"] = tc.weight_decay
        trainer.step = trainer.last_checkpoint_step = int(state["step"])
        trainer.batch_rng.set_state(state["rng_state"])
        if state.get("embedding_basis") is not None:
            trainer.probe.basis = state["embedding_basis"].numpy()
        losses = state.get("losses", {})
        trainer.last_eval = {k: losses[k] for k in EVAL_METRICS if k in losses}
        trainer.last_train = {k: losses[k] for k in (TRAIN_LOSS,) if k in losses}
        return trainer

    def describe(self) -> dict[str, object]:
        return {
            **self.config.as_params(),
            "dataset": self.dataset.name,
            "vocab_size": self.model_config.vocab_size,
            "n_params": self.model.num_parameters(),
            "device": self.device,
            "precision": self.precision,
            **dict(zip(SOURCE_STYLE_PARAMS, (round(v, 4) for v in astuple(self.style_profile.statistics)))),
        }

    def lr_at(self, step: int) -> float:
        """Linear warm-up to ``lr`` over ``warmup`` steps, then cosine decay to ``final_lr``."""
        tc = self.config.train
        if step <= tc.warmup:
            return tc.lr * step / max(tc.warmup, 1) if tc.warmup else tc.lr
        progress = (step - tc.warmup) / max(tc.max_iters - tc.warmup, 1)
        coeff = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return tc.final_lr + coeff * (tc.lr - tc.final_lr)

    def computing(self):
        """The context the model's training and evaluation passes run in (``precision``)."""
        return precision.compute(self.precision, self.device)

    def batch(self, split: str, batch_size: int, generator: torch.Generator):
        data = self.splits[split]
        block = self.model_config.block_size
        starts = torch.randint(len(data) - block - 1, (batch_size,), generator=generator)
        offsets = torch.arange(block + 1)
        windows = data[starts[:, None] + offsets]
        windows = windows.to(self.device, non_blocking=True)
        return windows[:, :-1], windows[:, 1:]

    @torch.inference_mode()
    def evaluate(self) -> dict[str, float]:
        """Mean loss over ``eval_iters`` batches of each split; the same batches every time,
        several put through the model at once (up to EVAL_TOKENS tokens: fewer, larger passes)."""
        tc = self.config.train
        self.model.eval()
        result = {}
        per_pass = max(1, EVAL_TOKENS // (tc.batch_size * self.model_config.block_size))
        with self.computing():  # one context: the cast weights are reused by every pass
            for split, key in (("val", VAL_LOSS), ("train", EVAL_TRAIN_LOSS)):
                generator = torch.Generator().manual_seed(tc.seed + 1)
                total = count = 0
                for first in range(0, tc.eval_iters, per_pass):
                    batches = [self.batch(split, tc.batch_size, generator)
                               for _ in range(min(per_pass, tc.eval_iters - first))]
                    x, y = (torch.cat(parts) for parts in zip(*batches))
                    total += float(self.model(x, y)[1]) * y.numel()
                    count += y.numel()
                result[key] = total / count
        self.model.train()
        return result

    def request_stop(self) -> None:
        """Stop between two steps (safe to call from a signal handler or another thread)."""
        self.stop_requested = True

    def train_step(self) -> dict[str, float]:
        """One optimizer update; ``step`` advances only once the update is complete."""
        tc = self.config.train
        started = time.perf_counter()
        step = self.step + 1
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.batch("train", tc.batch_size, self.batch_rng)
        with self.computing():
            _, loss, _ = self.forward_model(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.updating = True  # parameters and step change together
        self.optimizer.step()
        self.step = step
        self.updating = False
        loss_value, grad_value = self.mean(loss.item()), grad_norm.item()
        self.last_train = {TRAIN_LOSS: loss_value}
        elapsed = time.perf_counter() - started
        return {
            TRAIN_LOSS: loss_value,
            LR: lr,
            GRAD_NORM: grad_value,
            TOKENS_PER_SEC: x.numel() * self.world_size / max(elapsed, 1e-9),
        }

    def is_eval_step(self, step: int) -> bool:
        tc = self.config.train
        return step == 0 or step % tc.eval_interval == 0 or step == tc.max_iters

    def is_checkpoint_step(self, step: int) -> bool:
        interval = self.config.train.checkpoint_interval
        return step == self.config.train.max_iters or (interval > 0 and step % interval == 0)

    def recorder(self, tracker: Tracker, description: RunDescription | None = None,
                 last_step: int | None = None) -> Recorder:
        """What this training records through, as a training of its user's records through
        ``llmb.record``: its checkpoints hold the optimizer, so they can be resumed."""
        from . import checkpoint

        return Recorder(self.model, self.probe, tracker, description, dump=lambda step, losses: checkpoint.dump(self),
                        agree=lambda wish: self.agree(wish), stopping=lambda: self.stop_requested,
                        last_step=last_step, last_checkpoint=self.last_checkpoint_step)

    def description(self, run_name: str | None = None, tags: dict[str, str] | None = None) -> RunDescription:
        return RunDescription(params=self.describe(), tags=tags or {}, run_name=run_name, dataset=self.dataset,
                              model_params={**asdict(self.model_config), "n_params": self.model.num_parameters()})

    def checkpoint_into(self, recorder: Recorder) -> None:
        """A checkpoint of the current step, unless it has one."""
        if recorder.last_checkpoint != self.step:
            recorder.checkpoint(self.step)
        self.last_checkpoint_step = recorder.last_checkpoint

    def run(self, into: Recorder | Tracker, on_progress: ProgressCallback | None = None,
            stop_at: int | None = None) -> None:
        """Train to ``max_iters`` (or to ``stop_at``, to continue later), recording every step and
        evaluation ``into`` a recorder, or a tracker whose run has started."""
        end = min(stop_at or self.config.train.max_iters, self.config.train.max_iters)
        rec = into if isinstance(into, Recorder) else self.recorder(into).attach()
        rec.last_step = end
        try:
            self._steps(rec, end, on_progress)
        finally:
            self.last_checkpoint_step = rec.last_checkpoint  # (one asked for between steps too)

    def _steps(self, rec: Recorder, end: int, on_progress: ProgressCallback | None) -> None:
        if self.step == 0:
            rec.log(0, **self._evaluate_into(rec))
        elif self.step < end:
            rec.between_steps(self.step)  # a pause asked before this training went on
        while self.step < end:
            if rec.stop_requested:
                raise TrainingStopped(f"stopped at step {self.step}")
            metrics, evaluated = self.train_step(), {}
            if self.is_eval_step(self.step):
                metrics.update(self._evaluate_into(rec))
                evaluated = self.last_eval if self.lead else {}  # (logged with the snapshot)
            rec.log_metrics(self.step, **metrics)
            if self.is_checkpoint_step(self.step):
                self.checkpoint_into(rec)
            if on_progress:
                on_progress(self.step, {**metrics, **evaluated})
            rec.between_steps(self.step)

    def _evaluate_into(self, rec: Recorder) -> dict[str, float]:
        """Evaluate and take a snapshot: the metrics of the step that are not yet logged."""
        if not self.lead:  # the lead rank evaluates for everyone
            return {}
        self.last_eval = self.evaluate()
        sample = rec.snapshot(self.step, **self.last_eval)
        return {} if sample is None else style_metrics(self.style_profile, sample)

    @functools.cached_property
    def style_profile(self) -> style.Profile:
        """The training text's style, which each evaluation's sample is measured against."""
        return style.profile(self.dataset.tokenizer.decode(self.dataset.train_ids[:style.PROFILE_CHARS]))


def run_training(trainer: Trainer, tracker: Tracker, run_name: str | None = None,
                 tags: dict[str, str] | None = None,
                 on_start: Callable[[], None] | None = None,
                 on_progress: ProgressCallback | None = None) -> str:
    """Run ``trainer`` under ``tracker`` and close the run with the right status:
    FINISHED, KILLED on Ctrl-C (after a last checkpoint), FAILED on an error."""
    rec = trainer.recorder(tracker, trainer.description(run_name, tags))
    with rec:
        if on_start:
            on_start()
        try:
            trainer.run(rec, on_progress)
        except (KeyboardInterrupt, TrainingStopped):
            if trainer.step > 0 and not trainer.updating:
                trainer.checkpoint_into(rec)
            raise
    return rec.status
