"""Every value a viewer callback receives, checked as if a stranger typed it.

A callback's arguments come from the page, and anyone who reaches the viewer can post any JSON
to its ``_dash-update-component`` endpoint without a browser. Each function here takes one such
value and returns it in the type the code needs, or raises LLMBError with one line that names
the field as the page labels it and shows what was sent. Whether a run, an experiment or a
model exists and is ours is checked against the store (ViewerData, ModelLibrary), not here.

The page's own bookkeeping (the shown run's state, the scrubber's view, the snapshot steps)
is checked against pydantic models: it is data the server wrote, so a value that does not fit
can only come from a crafted request.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StrictBool, StrictInt, StrictStr, ValidationError

from llmb_mlflow.errors import LLMBError, shown
from llmb_mlflow.launch.launcher import LAUNCH_ID_PATTERN
from llmb_mlflow.run_layout import ENDED, RUNNING

MAX_NAME = 250
MAX_SNAPSHOTS = 100_000
LARGEST = 2**62  # no setting comes near; bigger numbers are refused before any arithmetic
MAX_TOKEN_ID = 2**20  # the largest vocabularies in use have a few hundred thousand tokens
RUN_ID = r"[a-zA-Z0-9][a-zA-Z0-9_\-]{0,255}"  # MLflow's rule for run ids (ASCII)
STATUSES = (RUNNING, "SCHEDULED", *ENDED)

Step = Annotated[int, Field(strict=True, ge=-LARGEST, le=LARGEST)]  # anyone may log any step


def name(value, label: str, optional: bool = False, max_length: int = MAX_NAME) -> str | None:
    """A name typed or picked in a field: text, at most ``max_length`` characters, no control
    characters."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise LLMBError(f"{label} is empty")
    if not isinstance(value, str):
        raise LLMBError(f"{label} must be text (got {shown(value)})")
    value = value.strip()
    if len(value) > max_length:
        raise LLMBError(f"{label} is {len(value)} characters long; the limit is {max_length} "
                        f"(got {shown(value)})")
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise LLMBError(f"{label} may not contain control characters (got {shown(value)})")
    return value


def argument(value, label: str, optional: bool = False) -> str | None:
    """A name that goes on a training's command line: a ``name`` that does not look like an
    option."""
    value = name(value, label, optional)
    if value is not None and value.startswith("-"):
        raise LLMBError(f"{label} may not start with '-' (got {shown(value)})")
    return value


def run_id(value, label: str = "run") -> str:
    if not isinstance(value, str) or not re.fullmatch(RUN_ID, value):
        raise LLMBError(f"{label} {shown(value)} is not an MLflow run id")
    return value


def form_number(value, label: str, whole: bool):
    """A number field of a form: None when left empty, else an int (``whole``) or a float;
    ranges are the settings' own (``config``)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LLMBError(f"{label} must be a number (got {shown(value)})")
    if isinstance(value, float) and not math.isfinite(value):
        raise LLMBError(f"{label} must be a finite number (got {shown(value)})")
    if abs(value) > LARGEST:
        raise LLMBError(f"{label} is far out of range (got {shown(value)})")
    if whole:
        if value != int(value):
            raise LLMBError(f"{label} must be a whole number (got {shown(value)})")
        return int(value)
    return value


def whole(value, label: str, low: int, high: int) -> int:
    number = form_number(value, label, whole=True)
    if number is None or not low <= number <= high:
        raise LLMBError(f"{label} must be a whole number from {low} to {high} (got {shown(value)})")
    return number


def number(value, label: str, low: float, high: float) -> float:
    found = form_number(value, label, whole=False)
    if found is None or not low <= found <= high:
        raise LLMBError(f"{label} must be a number from {low} to {high} (got {shown(value)})")
    return found


def choice(value, label: str, options):
    if isinstance(value, bool) or value not in options:
        raise LLMBError(f"{label} must be one of {', '.join(map(str, options))} (got {shown(value)})")
    return value


def text(value, max_length: int = 2000) -> str:
    """Free text the page holds (its address's query string): a string, else empty."""
    return value[:max_length] if isinstance(value, str) else ""


def label(value) -> str:
    """A run id or name the page sent, fit to quote in a one-line message."""
    return value if isinstance(value, str) and re.fullmatch(RUN_ID, value) else shown(value)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class RunState(_Strict):
    """What the page keeps about the shown run between polls (``run-state``)."""

    run_id: Annotated[StrictStr, Field(pattern=f"^{RUN_ID}$")]
    status: Literal[STATUSES]
    max_iters: Step | None = None
    start_time: Step | None = None
    first_step: Step = 0
    trainer_state: Annotated[StrictStr, Field(max_length=40)] | None = None
    silence: Annotated[StrictStr, Field(max_length=200)] | None = None
    updated: Step | None = None
    last_step: Step = 0
    pace_step: Step | None = None  # the first step this page saw the training reach, and when
    pace_time: Step | None = None
    last_train: Step | None = None
    last_val: Step | None = None
    ema: FiniteFloat | None = None
    smoothing: Annotated[FiniteFloat, Field(ge=0, le=0.99)] = 0.6
    drawn: Annotated[StrictStr, Field(max_length=400)] | None = None  # the chart's scale and compared run


class View(_Strict):
    """The scrubber's state (``view``): see ``assets/scrubber.js``."""

    live: StrictBool = True
    playing: StrictBool = False
    step: Step | None = None


class PendingLaunch(_Strict):
    """A training the page started and follows until it has its run (``launcher.state``), with
    what to say then (the server wrote both messages; ``{run}`` stands for the run)."""

    id: Annotated[StrictStr, Field(pattern=f"^{LAUNCH_ID_PATTERN}$")]
    done: Annotated[StrictStr, Field(max_length=400)]
    failed: Annotated[StrictStr, Field(max_length=400)]


class Playground(_Strict):
    """The Token Playground's text so far (and its ids), and how many moves of its turn it holds."""

    text: Annotated[StrictStr, Field(max_length=4000)]
    ids: Annotated[list[Annotated[StrictInt, Field(ge=0, lt=MAX_TOKEN_ID)]], Field(max_length=4000)] | None = None
    turn: Annotated[StrictInt, Field(ge=0, le=LARGEST)] = 0
    done: Annotated[StrictInt, Field(ge=0, le=4000)] = 0


class PlaygroundMoves(_Strict):
    """The Token Playground's moves, kept by the page (assets/playground.js): its prompt, the seed
    of its draws, its turn (a new prompt or Regenerate starts one) and every move since (-1: draw
    a token; else the id of a picked one)."""

    prompt: Annotated[StrictStr, Field(max_length=500)]
    seed: Annotated[StrictInt, Field(ge=0, le=2**31)]
    turn: Annotated[StrictInt, Field(ge=0, le=LARGEST)]
    moves: Annotated[list[Annotated[StrictInt, Field(ge=-1, lt=MAX_TOKEN_ID)]], Field(max_length=4000)]


class PendingSave(_Strict):
    """A save waiting for the checkpoint its live training was asked for."""

    run_id: Annotated[StrictStr, Field(pattern=f"^{RUN_ID}$")]
    name: Annotated[StrictStr, Field(max_length=MAX_NAME)]
    step: Step
    since: Step  # ms since the epoch
    token: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")]  # makes the save happen once


class _Steps(_Strict):
    steps: Annotated[list[Step], Field(max_length=MAX_SNAPSHOTS)]


def run_state(value) -> dict:
    return _model(RunState, value, "the page's run state").model_dump()


def pending_launch(value) -> dict:
    return _model(PendingLaunch, value, "the page's started training").model_dump()


def pending_save(value) -> dict:
    return _model(PendingSave, value, "the page's waiting save").model_dump()


def playground(value) -> dict:
    return _model(Playground, value, "the playground's text").model_dump()


def playground_moves(value) -> dict:
    return _model(PlaygroundMoves, value, "the playground's list of moves").model_dump()


def view(value) -> dict:
    return _model(View, value, "the scrubber's state").model_dump()


def steps(value) -> list[int]:
    """The shown run's snapshot steps, ascending."""
    return sorted(set(_model(_Steps, {"steps": value}, "the page's snapshot steps").steps))


def _model(model, value, label):
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise LLMBError(f"{label} is malformed ({where + ': ' if where else ''}{error['msg']}); "
                        "reload the page") from None
