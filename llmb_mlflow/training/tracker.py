"""The interface the training loop reports to. It knows nothing of MLflow; the base class
tracks nothing (``llmb train --no-tracking``), ``mlflow_tracker.MlflowTracker`` logs a run."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..numbers import whole_number
from ..run_layout import CONTROL_CHECKPOINTS_TAG, CONTROL_RUN, CONTROL_STATE_TAG, CONTROL_STATES, CONTROL_STEPS_TAG


def failure_of(error: BaseException) -> str:
    """``ErrorType: the first line of its message``: what a failed run keeps of why."""
    said = str(error).strip().splitlines()
    return f"{type(error).__name__}: {said[0]}" if said else type(error).__name__


@dataclass(frozen=True)
class Control:
    """What controllers ask of a training (run tags, see ``library.control``)."""

    state: str = CONTROL_RUN
    steps: int = 0
    checkpoints: int = 0

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> "Control":
        def count(key):
            return whole_number(tags.get(key)) or 0

        state = tags.get(CONTROL_STATE_TAG, CONTROL_RUN)
        return cls(state if state in CONTROL_STATES else CONTROL_RUN, count(CONTROL_STEPS_TAG),
                   count(CONTROL_CHECKPOINTS_TAG))


@dataclass
class RunDescription:
    """What a tracker learns about a training before its first step."""

    params: dict[str, object]
    tags: dict[str, str] = field(default_factory=dict)
    run_name: str | None = None
    dataset: object = None  # corpus.Dataset: what the run trains and evaluates on
    model_params: dict[str, object] = field(default_factory=dict)  # the model's shape
    vocabulary: object = None  # formats.vocabulary.Vocabulary of tokens, kept once for the run's snapshots


class Tracker:
    """Does nothing; subclasses record. ``wants_*`` spare the trainer work nobody uses. The
    attributes say where the run is and how writing it goes; a tracker without a run keeps
    these defaults."""

    wants_snapshots = False
    wants_checkpoints = False
    run_id: str | None = None
    run_name: str | None = None
    uri: str | None = None  # the tracking store
    experiment: str | None = None
    default_store: bool = False  # ``uri`` is where MLflow logs when told nothing
    failed_writes: int = 0  # writes that failed and were retried
    last_failure: str | None = None  # the last of them
    last_error: str | None = None  # while writes fail: why, else None

    def start(self, description: RunDescription) -> None:
        pass

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def log_snapshot(self, snapshot) -> None:
        pass

    def log_checkpoint(self, step: int, payload: bytes) -> None:
        pass

    def control(self) -> Control:
        """The latest requests from controllers (pause, stop, step once, checkpoint now)."""
        return Control()

    def wait_for_control(self, timeout: float) -> None:
        """Block until new requests may have arrived (at most ``timeout`` seconds)."""

    def report_state(self, state: str) -> None:
        """Tell controllers what the trainer is doing: running, paused or stopping."""

    def finish(self, status: str, failure: str | None = None) -> None:
        """End the run with ``status``; ``failure``: why it failed, one line."""
