"""Controlling a running training through the tracking store: pause, resume, stop, step once,
checkpoint now. Works across processes and machines that share the store.

Controllers write run tags; the trainer's writer thread reads them about once a second and the
training loop acts between two steps. Requests that must not be lost (step once, checkpoint
now) are counters, so two quick clicks are two requests.

- ``llmb.control.state``: ``run`` | ``pause`` | ``stop`` (what controllers want)
- ``llmb.control.steps``: how many single steps were requested (while paused)
- ``llmb.control.checkpoints``: how many "checkpoint now" requests were made
- ``llmb.state``: what the trainer is doing: ``running`` | ``paused`` | ``stopping``
- ``llmb.heartbeat``: when the trainer last said it is alive (ms since the epoch, every 5 s),
  and ``llmb.host``/``llmb.pid``: where it runs. A RUNNING run whose trainer has gone silent,
  or whose process is gone from this machine, has crashed and can be marked FAILED.
"""

from __future__ import annotations

import os
import socket
import time

from .. import processes
from ..errors import LLMBError
from ..training.tracker import Control
from ..run_layout import (
    CONTROL_CHECKPOINTS_TAG, CONTROL_PAUSE, CONTROL_RUN, CONTROL_STATE_TAG, CONTROL_STEPS_TAG,
    CONTROL_STOP, FAILED, FAILURE_TAG, HEARTBEAT_TAG, HOST_TAG, KIND_TAG, PID_STARTED_TAG, PID_TAG, RUNNING, TRAINER_ENDED,
    TRAINER_PAUSED, TRAINER_STATE_TAG, TRAINER_STOPPING, TRAINING_RUN,
)

MAX_FAILURE_CHARS = 500
from ..store.client import missing_as, store_errors
from ..numbers import whole_number

STALE_SECONDS = 60.0  # silent this long (LLMB_STALE_SECONDS overrides): crashed
COMMANDS = ("pause", "resume", "stop", "step", "checkpoint")


def not_a_training_run(run_id: str) -> LLMBError:
    return LLMBError(f"run {run_id} is not an LLMBreaker training run")


def send(client, run_id: str, command: str) -> None:
    """Ask the training of ``run_id`` to pause, resume, stop, step once or checkpoint now."""
    if command not in COMMANDS:
        raise LLMBError(f"unknown command {command!r}; use one of {', '.join(COMMANDS)}")
    run = _running_training(client, run_id)
    current = Control.from_tags(run.data.tags)
    if command == "step" and current.state != CONTROL_PAUSE:
        raise LLMBError(f"run {run_id} is not paused; pause it before stepping")
    updates = {
        "pause": {CONTROL_STATE_TAG: CONTROL_PAUSE},
        "resume": {CONTROL_STATE_TAG: CONTROL_RUN},
        "stop": {CONTROL_STATE_TAG: CONTROL_STOP},
        "step": {CONTROL_STEPS_TAG: str(current.steps + 1)},
        "checkpoint": {CONTROL_CHECKPOINTS_TAG: str(current.checkpoints + 1)},
    }[command]
    with store_errors(client.tracking_uri):
        for key, value in updates.items():
            client.set_tag(run_id, key, value)


def _running_training(client, run_id: str):
    with store_errors(client.tracking_uri), missing_as(f"no run with id {run_id!r}"):
        run = client.get_run(run_id)
    if run.data.tags.get(KIND_TAG) != TRAINING_RUN:
        raise not_a_training_run(run_id)
    if run.info.status != RUNNING:
        raise LLMBError(f"run {run_id} is not running (it is {run.info.status})")
    return run


def trainer_state(tags: dict[str, str], status: str, start_time: int | None = None) -> str:
    """What to call a run in listings: RUNNING runs say whether they are paused or seem dead."""
    if status != RUNNING:
        return status
    problem = silence(tags, status, start_time)
    if problem:
        return f"{RUNNING} ({problem})"
    state = tags.get(TRAINER_STATE_TAG)
    return f"{RUNNING} ({state})" if state in (TRAINER_PAUSED, TRAINER_STOPPING) else status


def heartbeat_tags() -> dict[str, str]:
    return {HEARTBEAT_TAG: str(int(time.time() * 1000))}


def stale_seconds() -> float:
    value = os.environ.get("LLMB_STALE_SECONDS", "")
    try:
        return float(value) if value else STALE_SECONDS
    except ValueError:
        raise LLMBError(f"LLMB_STALE_SECONDS must be a number of seconds, got {value!r}") from None


def silence(tags: dict[str, str], status: str, start_time: int | None = None,
            now_ms: int | None = None) -> str | None:
    """Why a RUNNING run's trainer looks dead ("crashed: ...", "stale: ..."), or None."""
    if status != RUNNING:
        return None
    if tags.get(HOST_TAG) == socket.gethostname() and _process_gone(tags.get(PID_TAG), tags.get(PID_STARTED_TAG)):
        return "crashed: its process is gone"
    beat = tags.get(HEARTBEAT_TAG, "")
    last = whole_number(beat) or start_time or 0
    silent = ((now_ms or time.time() * 1000) - last) / 1000
    if silent > stale_seconds():
        return f"stale: silent for {_duration(silent)}"
    return None


def process_tags(pid: int | None = None) -> dict[str, str]:
    """Where the training's process (this one unless ``pid``) runs, and which process it is: a
    reused process id is not taken for it, since the process's start time is recorded too."""
    pid, started = processes.identity(pid)
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_STARTED_TAG: str(int(started * 1000))}


def _process_gone(pid: str | None, started: str | None) -> bool:
    """Whether the process a run records on this machine has ended (or its id now belongs to
    a process that started at another time). A pid tag that is no process id says nothing."""
    if processes.process_id(pid) is None:
        return False
    recorded = whole_number(started)  # ms; without it, any process with the id is taken for it
    return not processes.is_alive(pid, None if recorded is None else recorded / 1000)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def mark_failed(client, run_id: str, force: bool = False) -> str:
    """End a crashed training's run as FAILED; returns why it was judged crashed."""
    run = _running_training(client, run_id)
    problem = silence(run.data.tags, run.info.status, run.info.start_time)
    if not problem and not force:
        raise LLMBError(f"run {run_id} is alive (its trainer reported within {stale_seconds():.0f} s); "
                        f"stop it with 'llmb runs stop {run_id}', or give --force")
    with store_errors(client.tracking_uri):
        end_run(client, run_id, FAILED)
    return problem or "forced"


def end_run(client, run_id: str, status: str, failure: str | None = None) -> None:
    """End the run with ``status``: first its trainer state says how it ended (and ``failure``
    why it failed), and its heartbeat, meaningless from now on, goes, so no ended run claims to
    be running."""
    from mlflow.exceptions import MlflowException

    if failure and failure.strip():
        client.set_tag(run_id, FAILURE_TAG, failure.strip().splitlines()[0][:MAX_FAILURE_CHARS])
    client.set_tag(run_id, TRAINER_STATE_TAG, TRAINER_ENDED[status])
    try:
        client.delete_tag(run_id, HEARTBEAT_TAG)
    except MlflowException:  # already gone, or refused: the status below is what matters
        pass
    client.set_terminated(run_id, status)
