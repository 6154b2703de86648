"""Starting ``llmb train`` / ``llmb resume`` as processes of their own.

Used by the viewer's New training and Load and by ``llmb demo``. Each training runs in a new
session, so it outlives a browser refresh and a Ctrl-C meant for the viewer; it is stopped through
its run (the viewer's Stop button, ``llmb runs stop``) and always checkpoints first. ``start``
returns at once with the launch's id, a random token; what the launch is (its process, its log,
who asked for it) is kept in a record beside its log in this user's log folder, never in the id.
Anyone on this machine who knows the id (any worker of a server, a page polling it) can follow
it with ``state``, which reads the process only from the record and checks it is still that
training before it signals it. ``launch`` waits. ``stop`` ends a training this process started
(``llmb demo`` on its way out), relaying what it says.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock

from .. import processes
from ..numbers import env_count
from ..errors import LLMBError, shown
from ..run_layout import RUN_ANNOUNCEMENT

RUN_LINE = re.compile(re.escape(RUN_ANNOUNCEMENT) + r" ([0-9a-f]{32})")
LAUNCH_ID_PATTERN = r"(?P<command>train|resume)-(?P<token>[0-9a-f]{32})"
LAUNCH_ID = re.compile(LAUNCH_ID_PATTERN)
START_TIMEOUT = 120.0  # importing torch and reading a 20 MB corpus on a busy machine
FORGOTTEN_AFTER = 7 * 86400.0  # a record (and log) of a launch that ended is kept this long


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


@dataclass(frozen=True)
class Record:
    """What ``start`` keeps of a launch: the process it started (its pid and exact start time),
    its command, and who asked for it (a signed-in user's name, or None)."""

    pid: int
    created: float
    command: str
    owner: str | None


def log_dir() -> str:
    """``$LLMB_LOG_DIR``, else ``$TMPDIR/llmbreaker-logs-UID``: a folder of this user's only
    (made with mode 0700; one that is a link or another user's is refused)."""
    given = os.environ.get("LLMB_LOG_DIR")
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = given or os.path.join(tempfile.gettempdir(), f"llmbreaker-logs-{uid if uid is not None else 'user'}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    found = os.lstat(path)
    if not stat.S_ISDIR(found.st_mode) or (uid is not None and found.st_uid != uid):
        raise LLMBError(f"the log folder {path} is not a folder of this user's; set LLMB_LOG_DIR to one")
    return path


def start(args: list[str], tracking_uri: str, env: dict[str, str | None] | None = None,
          at_most: int | None = None, owner: str | None = None) -> Started:
    """Start ``llmb COMMAND ARGS...`` (``args`` = COMMAND, ARGS...; ARGS may end with ``--`` and
    positional arguments) logging to ``tracking_uri`` and return at once. The URI reaches it in
    its environment (``MLFLOW_TRACKING_URI``), never on its command line, where every user of the
    machine could read a password in it. ``env``: more environment variables for it (credentials
    go here too; None removes one); ``at_most``: refuse while that many trainings started this
    way by this user run on this machine; ``owner``: who asks (``state`` follows the launch only
    for them).

    Its compute threads sleep while they wait for work (OpenMP's passive wait policy) unless
    ``OMP_WAIT_POLICY`` says otherwise: a training started here shares the machine with the
    viewer and, usually, the browser drawing it, and spinning threads stall whenever these take
    a core (measured on 2 cores with the demo's page open: 30 % more steps a minute; alone,
    spinning is ~13 % faster, which is why ``llmb train`` keeps it)."""
    import psutil

    if args[0] not in ("train", "resume"):
        raise ValueError(f"not a training command: {args[0]}")
    command = [sys.executable, "-m", "llmb_mlflow", *args]
    env = {name: value for name, value in {**os.environ, **(env or {})}.items() if value is not None}
    env.update(PYTHONUNBUFFERED="1", MLFLOW_TRACKING_URI=tracking_uri)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    token = secrets.token_hex(16)
    launch_id = f"{args[0]}-{token}"
    folder = log_dir()
    with _STARTING, FileLock(os.path.join(folder, ".starting.lock")):  # one start at a time for this user
        if at_most is not None and (count := running()) >= at_most:
            running_now = "1 training started here is" if count == 1 else f"{count} trainings started here are"
            raise LLMBError(f"{running_now} running, and at most {at_most} may run at once: stop one or wait "
                            "for one to end")
        log_path = _log_path(launch_id)
        with _create(log_path) as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            created = processes.identity(process.pid)[1]
        except psutil.Error:  # ended already: its log says why
            created = 0.0
        try:
            with _create(_record_path(launch_id)) as file:
                json.dump(asdict(Record(process.pid, created, args[0], owner)), file)
        except OSError as exc:  # a training nobody could follow, count or stop from a page
            process.kill()
            raise LLMBError(f"could not keep the launch's record in {folder}: {exc.strerror or exc}") from None
    threading.Thread(target=process.wait, daemon=True, name="llmb-reaper").start()
    return Started(launch_id, process, str(log_path))


_STARTING = threading.Lock()


def running() -> int:
    """How many trainings ``start`` started for this user (whichever process started them: a
    server's other worker, another viewer, a viewer before its restart) still run."""
    count = 0
    for path in Path(log_dir()).glob("*.json"):
        record = _read_record(path)
        if record is not None and _process(record, path.with_suffix(".log")) is not None:
            count += 1
        elif record is None or _ended_long_ago(path):
            for stale in (path, path.with_suffix(".log")):
                stale.unlink(missing_ok=True)
    return count


def default_at_most() -> int:
    """Trainings a viewer starts at most at once: ``LLMB_MAX_TRAININGS``, else one per core this
    process may use (trainings on one machine share its cores: more only queue for them)."""
    return env_count("LLMB_MAX_TRAININGS", processes.usable_cores(), "trainings")


def _log_path(launch_id: str) -> Path:
    return Path(log_dir()) / f"{launch_id}.log"


def _record_path(launch_id: str) -> Path:
    return Path(log_dir()) / f"{launch_id}.json"


def _create(path: Path):
    """A new file only this user can read; never one that exists, nor through a link."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600), "w")


def _read_record(path: Path) -> Record | None:
    try:
        found = json.loads(path.read_text())
        return Record(int(found["pid"]), float(found["created"]), str(found["command"]),
                      None if found["owner"] is None else str(found["owner"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _ended_long_ago(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > FORGOTTEN_AFTER
    except OSError:
        return False


def _process(record: Record, log_path: Path):
    """The launch's process if it still runs and is still that training: the same pid started
    at the same moment, running ``-m llmb_mlflow COMMAND`` with its output in the launch's log;
    None otherwise."""
    import psutil

    process = processes.find(record.pid, record.created)
    if process is None:
        return None
    try:  # start times agree only to within processes.SAME_START; the command and the log settle it
        if process.cmdline()[1:4] != ["-m", "llmb_mlflow", record.command]:
            return None
        if sys.platform.startswith("linux") and os.readlink(f"/proc/{record.pid}/fd/1") != str(log_path.resolve()):
            return None
        return process
    except (psutil.Error, OSError):
        return None


def state(launch_id, timeout: float = START_TIMEOUT, owner: str | None = None, may_stop: bool = True) -> str | None:
    """The run id of a started training once it has its run, None while it is starting; an
    LLMBError if it did not start (its log's last line says why) or not within ``timeout`` (then
    it is stopped, if ``may_stop``). Only launches ``start`` recorded for ``owner`` are known."""
    match = LAUNCH_ID.fullmatch(launch_id) if isinstance(launch_id, str) else None
    record = _read_record(_record_path(launch_id)) if match else None
    if record is None or record.owner != owner or record.command != match["command"]:
        raise LLMBError(f"no training was started as {shown(launch_id)} here")
    log_path = _log_path(launch_id)
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        raise LLMBError(f"no training was started as {shown(launch_id)} here") from None
    found = RUN_LINE.search(text)
    if found:
        return found.group(1)
    process = _process(record, log_path)
    if process is None:
        text = log_path.read_text(errors="replace")  # it may have written its run line as it ended
        found = RUN_LINE.search(text)
        if found:
            return found.group(1)
        raise LLMBError(f"the training did not start: {_last_line(text)}")
    if time.time() - record.created > timeout:
        if may_stop:
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
