"""Starting ``llmb train`` / ``llmb resume`` as processes of their own.

Used by the viewer's New training and Load and by ``llmb demo``. Each training runs in a new
session, so it outlives a browser refresh and a Ctrl-C meant for the viewer; it is stopped through
its run (the viewer's Stop button, ``llmb runs stop``) and always checkpoints first. Its output
goes to a log file named by the launch's id, which says when the training has its run or why it
did not start. ``start`` returns at once: anyone on this machine who knows the id (any worker
of a server, a page polling it) can follow it with ``state``; ``launch`` waits. ``stop``
ends a training this process started (``llmb demo`` on its way out), relaying what it says.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock

from .errors import LLMBError
from .run_layout import RUN_ANNOUNCEMENT

RUN_LINE = re.compile(re.escape(RUN_ANNOUNCEMENT) + r" ([0-9a-f]{32})")
LAUNCH_ID_PATTERN = r"(?P<command>train|resume)-(?P<started>\d{13})-(?P<pid>\d{1,10})-(?P<token>[0-9a-f]{12})"
LAUNCH_ID = re.compile(LAUNCH_ID_PATTERN)
START_TIMEOUT = 120.0  # importing torch and reading a 20 MB corpus on a busy machine


@dataclass(frozen=True)
class Started:
    """A training on its way: ``id`` names it (and its log file) for ``state``."""

    id: str
    process: subprocess.Popen
    log_path: str


@dataclass(frozen=True)
class Launched:
    run_id: str
    process: subprocess.Popen
    log_path: str


def log_dir() -> str:
    path = os.environ.get("LLMB_LOG_DIR") or os.path.join(tempfile.gettempdir(), "llmbreaker-logs")
    os.makedirs(path, exist_ok=True)
    return path


def start(args: list[str], tracking_uri: str, env: dict[str, str | None] | None = None,
          at_most: int | None = None) -> Started:
    """Start ``llmb COMMAND --tracking-uri=URI ARGS...`` (``args`` = COMMAND, ARGS...; ARGS may
    end with ``--`` and positional arguments) and return at once. ``env``: more environment
    variables for it (credentials go here, never into its arguments; None removes one);
    ``at_most``: refuse while
    that many trainings started this way run on this machine.

    Its compute threads sleep while they wait for work (OpenMP's passive wait policy) unless
    ``OMP_WAIT_POLICY`` says otherwise: a training started here shares the machine with the
    viewer and, usually, the browser drawing it, and spinning threads stall whenever these take
    a core (measured on 2 cores with the demo's page open: 30 % more steps a minute; alone,
    spinning is ~13 % faster, which is why ``llmb train`` keeps it)."""
    if args[0] not in ("train", "resume"):
        raise ValueError(f"not a training command: {args[0]}")
    command = [sys.executable, "-m", "llmb_mlflow", args[0], f"--tracking-uri={tracking_uri}", *args[1:]]
    env = {name: value for name, value in {**os.environ, **(env or {})}.items() if value is not None}
    env.update(PYTHONUNBUFFERED="1", MLFLOW_TRACKING_URI=tracking_uri)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    token, started = secrets.token_hex(6), int(time.time() * 1000)
    log_path = _log_path(args[0], token)
    with _STARTING, FileLock(os.path.join(log_dir(), ".starting.lock")):  # one start at a time on this machine
        if at_most is not None and (count := running()) >= at_most:
            running_now = "1 training started here is" if count == 1 else f"{count} trainings started here are"
            raise LLMBError(f"{running_now} running, and at most {at_most} may run at once: stop one or wait "
                            "for one to end")
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    threading.Thread(target=process.wait, daemon=True, name="llmb-reaper").start()
    return Started(f"{args[0]}-{started}-{process.pid}-{token}", process, str(log_path))


_STARTING = threading.Lock()


def running() -> int:
    """How many trainings ``start`` started run on this machine, whichever process started them
    (a server's other worker, another viewer, a viewer before its restart)."""
    return sum(command[:1] in (["train"], ["resume"]) and command[1:2] != []
               and command[1].startswith("--tracking-uri=") for command in llmb_commands())


def llmb_commands() -> list[list[str]]:
    """The arguments of this machine's ``python -m llmb_mlflow ...`` processes (what ``start``
    starts), after ``-m llmb_mlflow``."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if command[1:3] == ["-m", "llmb_mlflow"]:
            found.append(command[3:])
    return found


def default_at_most() -> int:
    """Trainings a viewer starts at most at once: ``LLMB_MAX_TRAININGS``, else one per core this
    process may use (trainings on one machine share its cores: more only queue for them)."""
    given = os.environ.get("LLMB_MAX_TRAININGS", "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise LLMBError(f"LLMB_MAX_TRAININGS must be a whole number of at least 1, got {given!r}")
        return int(given)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _log_path(command: str, token: str) -> Path:
    return Path(log_dir()) / f"{command}-{token}.log"


def state(launch_id: str, timeout: float = START_TIMEOUT) -> str | None:
    """The run id of a started training once it has its run, None while it is starting; an
    LLMBError if it did not start (its log's last line says why) or not within ``timeout``."""
    import psutil

    match = LAUNCH_ID.fullmatch(launch_id) if isinstance(launch_id, str) else None
    if not match:
        raise LLMBError(f"no training was started as {launch_id!r} here")
    log_path = _log_path(match["command"], match["token"])
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        raise LLMBError(f"no training was started as {launch_id!r} here") from None
    found = RUN_LINE.search(text)
    if found:
        return found.group(1)
    try:
        process = psutil.Process(int(match["pid"]))
        # not a zombie, nor a newer process that was given the same id
        alive = (process.status() != psutil.STATUS_ZOMBIE
                 and abs(process.create_time() * 1000 - int(match["started"])) < 5000)
    except psutil.Error:
        alive = False
    if not alive:
        text = log_path.read_text(errors="replace")  # it may have written its run line as it ended
        found = RUN_LINE.search(text)
        if found:
            return found.group(1)
        raise LLMBError(f"the training did not start: {_last_line(text)}")
    if time.time() - int(match["started"]) / 1000 > timeout:
        process.terminate()
        raise LLMBError(f"the training did not start within {timeout:.0f} s (log: {log_path.name})")
    return None


def launch(args: list[str], tracking_uri: str, timeout: float = START_TIMEOUT) -> Launched:
    """``start``, then ``wait_for_run``."""
    return wait_for_run(start(args, tracking_uri), timeout)


def wait_for_run(started: Started, timeout: float = START_TIMEOUT) -> Launched:
    """Wait until a started training has created its MLflow run (see ``state``)."""
    while True:
        run_id = state(started.id, timeout)
        if run_id:
            return Launched(run_id, started.process, started.log_path)
        time.sleep(0.1)  # polling the child's log; it writes the line within seconds


def stop(training: Started | Launched, relay: Callable[[str], None]) -> int:
    """Stop a training this process started as SIGTERM does (after its current step it
    checkpoints and ends its run KILLED; a second SIGTERM aborts the step), pass each line it
    writes from then on to ``relay``, and return its exit code once it has exited. A training
    that has ended already is left as it is."""
    process = training.process
    if process.poll() is not None:
        return process.returncode
    with open(training.log_path, errors="replace") as log:
        log.seek(0, os.SEEK_END)
        process.terminate()
        unfinished = ""
        while True:
            ended = process.poll() is not None
            *lines, unfinished = (unfinished + log.read()).split("\n")
            for line in lines:
                relay(line)
            if ended:
                break
            time.sleep(0.1)  # polling the child's log as it writes its last lines
    if unfinished:
        relay(unfinished)
    return process.returncode


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "it exited without a word").removeprefix("Error: ")
