"""The messages between a training (``process.TrackingProcess``) and its tracking helper
(``helper.serve``): small frozen records, pickled down the connection. A ping is bytes, not a
pickle, so the helper's reader answers it without unpickling anything."""

from __future__ import annotations

from dataclasses import dataclass

PING = b"ping"


# -- from the training -------------------------------------------------------------------------

@dataclass(frozen=True)
class Start:
    description: object  # tracker.RunDescription, its dataset as a process.DatasetInfo


@dataclass(frozen=True)
class Metrics:
    step: int
    metrics: dict
    at_ms: int


@dataclass(frozen=True)
class Snapshot:
    snapshot: object


@dataclass(frozen=True)
class Checkpoint:
    step: int
    payload: bytes
    links: tuple = ()  # (key, value, ms, step) of the linked metrics' latest points, kept for the spool


@dataclass(frozen=True)
class State:
    state: str


@dataclass(frozen=True)
class Finish:
    status: str
    failure: str | None = None  # why the training failed, one line


DATA = (Metrics, Snapshot, Checkpoint)  # what the training keeps until the helper took it


# -- from the helper ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Alive:
    """The answer to a ping."""


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    run_name: str
    uri: str
    experiment: str
    default_store: bool  # ``uri`` is where MLflow logs when told nothing


@dataclass(frozen=True)
class Ack:
    taken: int  # the first ``taken`` messages are stored, or spilled to disk


@dataclass(frozen=True)
class Relayed:
    """The controllers' requests and the writer's health, sent whenever they change."""

    control: object  # tracker.Control
    failed_writes: int
    last_failure: str | None
    unsent_bytes: int
    last_error: str | None


@dataclass(frozen=True)
class Failed:
    problem: str  # why the helper cannot track; raised in the training


@dataclass(frozen=True)
class Ended:
    error: str | None  # None: the run ended as the training asked
    failed_writes: int | None = None  # None: no run was started
    last_failure: str | None = None
