"""The interface the training loop reports to. It knows nothing of MLflow; the base class
tracks nothing (``llmb train --no-tracking``), ``mlflow_tracker.MlflowTracker`` logs a run."""

from __future__ import annotations

from dataclasses import dataclass, field

RUN_FINISHED, RUN_FAILED, RUN_KILLED = "FINISHED", "FAILED", "KILLED"


@dataclass
class RunDescription:
    """What a tracker learns about a training before its first step."""

    params: dict[str, object]
    tags: dict[str, str] = field(default_factory=dict)
    run_name: str | None = None


class Tracker:
    """Does nothing; subclasses record. ``wants_*`` spare the trainer work nobody uses."""

    wants_snapshots = False
    wants_checkpoints = False
    run_id: str | None = None

    def start(self, description: RunDescription) -> None:
        pass

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def log_snapshot(self, snapshot) -> None:
        pass

    def log_checkpoint(self, step: int, payload: bytes) -> None:
        pass

    def finish(self, status: str) -> None:
        pass
