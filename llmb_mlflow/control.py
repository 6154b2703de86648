"""Controlling a running training through the tracking store: pause, resume, stop, step once,
checkpoint now. Works across processes and machines that share the store.

Controllers write run tags; the trainer's writer thread reads them about once a second and the
training loop acts between two steps. Requests that must not be lost (step once, checkpoint
now) are counters, so two quick clicks are two requests.

- ``llmb.control.state``: ``run`` | ``pause`` | ``stop`` (what controllers want)
- ``llmb.control.steps``: how many single steps were requested (while paused)
- ``llmb.control.checkpoints``: how many "checkpoint now" requests were made
- ``llmb.state``: what the trainer is doing: ``running`` | ``paused`` | ``stopping``
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LLMBError
from .store import RUN_KIND_TAG, TRAINING_RUN, missing_as, store_errors

STATE_TAG = "llmb.control.state"
STEPS_TAG = "llmb.control.steps"
CHECKPOINTS_TAG = "llmb.control.checkpoints"
TRAINER_STATE_TAG = "llmb.state"
COMMANDS = ("pause", "resume", "stop", "step", "checkpoint")


@dataclass(frozen=True)
class Control:
    state: str = "run"
    steps: int = 0
    checkpoints: int = 0

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> "Control":
        def count(key):
            value = tags.get(key, "0")
            return int(value) if value.isdigit() else 0

        state = tags.get(STATE_TAG, "run")
        return cls(state if state in ("run", "pause", "stop") else "run", count(STEPS_TAG),
                   count(CHECKPOINTS_TAG))


def send(client, run_id: str, command: str) -> None:
    """Ask the training of ``run_id`` to pause, resume, stop, step once or checkpoint now."""
    if command not in COMMANDS:
        raise LLMBError(f"unknown command {command!r}; use one of {', '.join(COMMANDS)}")
    with store_errors(client.tracking_uri), missing_as(f"no run with id {run_id!r}"):
        run = client.get_run(run_id)
    tags = run.data.tags
    if tags.get(RUN_KIND_TAG) != TRAINING_RUN:
        raise LLMBError(f"run {run_id} is not an LLMBreaker training run")
    if run.info.status != "RUNNING":
        raise LLMBError(f"run {run_id} is not running (it is {run.info.status})")
    current = Control.from_tags(tags)
    if command == "step" and current.state != "pause":
        raise LLMBError(f"run {run_id} is not paused; pause it before stepping")
    updates = {
        "pause": {STATE_TAG: "pause"},
        "resume": {STATE_TAG: "run"},
        "stop": {STATE_TAG: "stop"},
        "step": {STEPS_TAG: str(current.steps + 1)},
        "checkpoint": {CHECKPOINTS_TAG: str(current.checkpoints + 1)},
    }[command]
    with store_errors(client.tracking_uri):
        for key, value in updates.items():
            client.set_tag(run_id, key, value)


def trainer_state(tags: dict[str, str], status: str) -> str:
    """What to call a run in listings: RUNNING runs say whether they are paused."""
    if status != "RUNNING":
        return status
    state = tags.get(TRAINER_STATE_TAG)
    return f"RUNNING ({state})" if state in ("paused", "stopping") else status
