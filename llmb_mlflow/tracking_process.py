"""Tracking a training from a process of its own, so the training never waits for MLflow.

``llmb train`` and ``llmb resume`` give their trainer a ``TrackingProcess``: it starts a helper
process (``python -m llmb_mlflow.tracking_process``) that loads MLflow while the training
loads torch and its corpus, then opens the store and runs an ``MlflowTracker`` there, while
the training's first steps run. What the trainer reports is queued and sent down a socket by
a thread; the training thread never pickles, never blocks on the store and never shares its
interpreter lock with MLflow's client. The helper sends back the run's id once the run
exists, the controllers' requests (pause, stop, step, checkpoint), write failures, and how
the run's end went. Measured in ``bench/command_startup.py``.

While the store is down the helper's writer keeps at most ``spill.SPILL_BYTES`` of unsent data
in memory and spills the rest to the run's spool folder (``spill.py``); the helper reads the
training's messages as they come, so neither process grows with the outage. How much waits in
the helper's memory is relayed back (``unsent_bytes``), with the write failures.

The helper ignores Ctrl-C, SIGTERM and SIGHUP: the training decides when the run ends. If the
training process disappears without ending the run (killed), the helper stores everything it
received and ends the run FAILED, so nothing the training reported is lost.

This module imports neither MLflow nor torch: the helper starts by importing it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace

from .control import Control
from .errors import LLMBError
from .store import first_line
from .tracker import Tracker

GONE = "the tracking process ended unexpectedly"


@dataclass(frozen=True)
class DatasetInfo:
    """What the run's dataset input needs of a corpus, without its text."""

    name: str
    digest: str
    source: str
    bundled: bool
    counts: dict

    @classmethod
    def of(cls, dataset) -> "DatasetInfo":
        return cls(dataset.name, dataset.digest, dataset.source, dataset.bundled, dataset.profile())

    def profile(self) -> dict:
        return self.counts


class TrackingProcess(Tracker):
    """A Tracker whose ``MlflowTracker`` runs in a helper process (see the module's doc)."""

    wants_snapshots = True
    wants_checkpoints = True

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None,
                 source: str | None = None, system_metrics: float | None = None):
        self.uri, self.experiment = tracking_uri, experiment
        self.run_id: str | None = None
        self.run_name: str | None = None
        self.default_store = False  # the run is where MLflow logs when told nothing
        self.failed_writes, self.last_failure = 0, None
        self.unsent_bytes = 0  # unsent data in the helper's memory, as last relayed
        self._control = Control()
        self._error: str | None = None  # why the helper cannot track; raised in the training
        self._raised = False
        self._ended: str | None = None  # once the helper is done: "", or what went wrong
        self._changed = threading.Condition()
        self._outbox: queue.Queue = queue.Queue()
        if tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):  # else MLflow's local default
            from .store import check_reachable

            check_reachable(tracking_uri or os.environ["MLFLOW_TRACKING_URI"])
        settings = {"tracking_uri": tracking_uri, "source": source, "system_metrics": system_metrics,
                    **({"experiment": experiment} if experiment else {})}
        self._socket, self._conn, self._process = _start_helper(settings)
        self._threads = [threading.Thread(target=self._send, name="llmb-tracking-send", daemon=True),
                         threading.Thread(target=self._receive, name="llmb-tracking-receive", daemon=True)]
        for thread in self._threads:
            thread.start()

    # -- the Tracker interface, called by the training thread ---------------------------

    def start(self, description) -> None:
        if description.dataset is not None:
            description = replace(description, dataset=DatasetInfo.of(description.dataset))
        self._outbox.put(("start", description))

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self._outbox.put(("metrics", step, dict(metrics), int(time.time() * 1000)))

    def log_snapshot(self, snapshot) -> None:
        self._outbox.put(("snapshot", snapshot))

    def log_checkpoint(self, step: int, payload: bytes) -> None:
        self._outbox.put(("checkpoint", step, payload))

    def report_state(self, state: str) -> None:
        self._outbox.put(("state", state))

    def control(self) -> Control:
        if self._error:
            self._raised = True
            raise LLMBError(self._error)
        return self._control

    def wait_for_control(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def finish(self, status: str) -> None:
        """Wait until the helper has stored everything and ended the run with ``status``."""
        self._outbox.put(("finish", status))
        with self._changed:
            self._changed.wait_for(lambda: self._ended is not None)
        self.close()
        if self._ended and not self._raised:
            raise LLMBError(self._ended)

    def close(self) -> None:
        """Let the helper go (without a run, for a training that failed before it started) and
        release the connection once neither thread uses it."""
        self._outbox.put(None)
        with contextlib.suppress(OSError):  # wakes the thread reading it; the helper sees its end
            self._socket.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5.0)
        if not any(thread.is_alive() for thread in self._threads):
            # (a thread still in the connection would read or write whatever file next gets its number)
            self._conn.close()
            self._socket.close()
        threading.Thread(target=self._process.wait, daemon=True).start()  # no zombie left

    # -- the pipe --------------------------------------------------------------------------

    def _send(self) -> None:
        while (item := self._outbox.get()) is not None:
            try:
                self._conn.send(item)
            except (OSError, ValueError):  # the helper is gone; _receive says so
                return

    def _receive(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                message = ("ended", GONE)
            kind = message[0]
            with self._changed:
                if kind == "run":
                    self.run_id, self.run_name, self.uri, self.experiment, self.default_store = message[1:]
                elif kind == "control":
                    self._control, self.failed_writes, self.last_failure, self.unsent_bytes = message[1:]
                elif kind == "failed":
                    self._error = message[1]
                elif kind == "ended":
                    self._ended = message[1] or ""
                    if len(message) > 2:
                        self.failed_writes, self.last_failure = message[2:]
                    if message[1] == GONE:  # nothing tracks this training any more
                        self._error = self._error or GONE
                self._changed.notify_all()
            if kind == "ended":
                return


# -- the helper process ----------------------------------------------------------------------

def _start_helper(settings: dict):
    """``python -m llmb_mlflow.tracking_process FD PID``, a connection to it on a socket pair.
    (Not multiprocessing's spawn: it would run the caller's main script again in the helper.)"""
    from multiprocessing.connection import Connection

    ours, theirs = socket.socketpair()
    with theirs:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(theirs.fileno()), str(os.getpid())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
    conn = Connection(os.dup(ours.fileno()))
    conn.send((settings, sys.argv))
    return ours, conn, process


def serve(conn, settings: dict, training_pid: int, argv: list[str]) -> None:
    """The helper's main: an MlflowTracker fed from ``conn`` until the run ends. ``argv``: the
    training's command line, which MLflow's context tags describe."""
    sys.argv = argv
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    inbox: queue.Queue = queue.Queue()
    threading.Thread(target=_read, args=(conn, inbox), daemon=True).start()  # drain the pipe now
    reply = _Replies(conn)
    _warm_up(settings.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or "")
    from .mlflow_tracker import MlflowTracker

    try:
        _Helper(lambda: MlflowTracker(**settings, pid=training_pid), inbox, reply).run()
    except Exception as exc:  # a bug here must not leave the training tracked by nobody, silently
        reply("failed", f"tracking failed: {first_line(exc)}")
        reply("ended", f"tracking failed: {first_line(exc)}")
        raise
    os._exit(0)  # everything is stored; MLflow's exit handlers have nothing left to do


def _warm_up(uri: str) -> None:
    """Load what opening the store and creating the run need, while the training loads torch.

    The helper is never a notebook, but MLflow's context tags ask whether it is by importing
    IPython (0.5 s of CPU, which a training using every core pays for): here that import fails
    at once, as it does where IPython is not installed."""
    from . import mlflow_compat

    sys.modules.setdefault("IPython", None)
    mlflow_compat.load_store_code(uri)
    mlflow_compat.context_tags({})  # its context providers import what they look for


def _read(conn, inbox: queue.Queue) -> None:
    while True:
        try:
            inbox.put(conn.recv())
        except (EOFError, OSError):
            inbox.put(("gone",))
            return


class _Replies:
    def __init__(self, conn):
        self.conn, self.lock = conn, threading.Lock()

    def __call__(self, *message) -> None:
        with self.lock:
            try:
                self.conn.send(message)
            except (OSError, ValueError):
                pass  # the training is gone; the helper still ends the run


class _Helper:
    def __init__(self, open_tracker, inbox: queue.Queue, reply: _Replies):
        self.open_tracker, self.inbox, self.reply = open_tracker, inbox, reply
        self.tracker = None
        self.started = False
        self.ended = threading.Event()

    def run(self) -> None:
        from .run_layout import FAILED

        while True:
            message = self.inbox.get()
            kind = message[0]
            if kind == "finish" or kind == "gone":
                self._end(message[1] if kind == "finish" else FAILED)
                return
            if kind == "start":
                if not self._start(message[1]):
                    self._drain()
                    return
            elif self.started:
                self._apply(kind, message[1:])

    def _start(self, description) -> bool:
        try:  # the store is opened only now: a training that fails to load leaves it untouched
            self.tracker = self.open_tracker()
            self.tracker.start(description)
        except Exception as exc:
            problem = str(exc) if isinstance(exc, LLMBError) else f"tracking failed: {first_line(exc)}"
            self.reply("failed", problem)
            self.reply("ended", problem)
            return False
        from .store import resolve_uri

        tracker, self.started = self.tracker, True
        self.reply("run", tracker.run_id, tracker.run_name, tracker.uri, tracker.experiment,
                   tracker.uri == resolve_uri(None))
        threading.Thread(target=self._relay, daemon=True).start()
        return True

    def _apply(self, kind: str, args: tuple) -> None:
        if kind == "metrics":
            self.tracker.log_metrics(*args)
        elif kind == "snapshot":
            self.tracker.log_snapshot(*args)
        elif kind == "checkpoint":
            self.tracker.log_checkpoint(*args)
        elif kind == "state":
            self.tracker.report_state(*args)

    def _relay(self) -> None:
        """Send the controllers' requests, write failures and the unsent data in memory to the
        training as they change."""
        last = None
        while not self.ended.is_set():
            self.tracker.wait_for_control(1.0)
            now = (self.tracker.control(), self.tracker.failed_writes, self.tracker.last_failure,
                   self.tracker.backlog.memory_bytes)
            if now != last:
                self.reply("control", *now)
                last = now

    def _end(self, status: str) -> None:
        error = None
        self.ended.set()
        if self.started:
            try:
                self.tracker.finish(status)
            except LLMBError as exc:
                error = str(exc)
        if self.tracker is None:
            self.reply("ended", error)
        else:
            self.reply("ended", error, self.tracker.failed_writes, self.tracker.last_failure)

    def _drain(self) -> None:
        """The run could not start: wait for the training to finish or go, then end."""
        while self.inbox.get()[0] not in ("finish", "gone"):
            pass


if __name__ == "__main__":
    from multiprocessing.connection import Connection

    _conn = Connection(int(sys.argv[1]))
    _settings, _argv = _conn.recv()
    serve(_conn, _settings, int(sys.argv[2]), _argv)
