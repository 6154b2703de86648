"""The tracking helper's side of ``process``: an MlflowTracker fed from the training's
connection (``messages``) until the run ends.

A reader thread takes the training's messages off the connection as they come, as bytes: it
unpickles nothing, so it imports nothing and never sees a module that the main thread is still
importing (a dataclass unpickled there once met a half-imported ``typing`` and killed the
reader). It answers the training's pings at once, so the training knows the helper is alive
even while the main thread waits on the store. The main thread loads MLflow, then unpickles and
applies the messages in order, and tells the training how many of them are safe (``ack``: their
data is stored, or spilled to disk): the training keeps the rest, to spool them itself if this
helper breaks down. If the reader dies
all the same, the main thread notices within a second, stores everything it took and ends the
run FAILED, saying why.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import sys
import threading
from collections import deque
from dataclasses import dataclass

from ..errors import LLMBError
from ..store.client import first_line
from . import messages as m

LOST_READER = "the tracking process stopped reading the training's reports"
GONE = "the training's process ended before it ended its run (killed, or out of memory)"


def serve(conn, settings: dict, training_pid: int, argv: list[str]) -> None:
    """The helper's main: an MlflowTracker fed from ``conn`` until the run ends. ``argv``: the
    training's command line, which MLflow's context tags describe."""
    sys.argv = argv
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    inbox: queue.Queue = queue.Queue()
    reply = _Replies(conn)
    reader = threading.Thread(target=_read, args=(conn, inbox, reply), name="llmb-tracking-read",
                              daemon=True)
    reader.start()  # drain the pipe now
    _warm_up(settings.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or "")
    from .mlflow_tracker import MlflowTracker

    try:
        _Helper(lambda: MlflowTracker(**settings, pid=training_pid), inbox, reply, reader).run()
    except Exception as exc:  # a bug here must not leave the training tracked by nobody, silently
        reply(m.Failed(f"tracking failed: {first_line(exc)}"))
        reply(m.Ended(f"tracking failed: {first_line(exc)}"))
        raise
    os._exit(0)  # everything is stored; MLflow's exit handlers have nothing left to do


def _warm_up(uri: str) -> None:
    """Load what opening the store and creating the run need, while the training loads torch.

    The helper is never a notebook, but MLflow's context tags ask whether it is by importing
    IPython (0.5 s of CPU, which a training using every core pays for): here that import fails
    at once, as it does where IPython is not installed."""
    from ..store import compat as mlflow_compat

    sys.modules.setdefault("IPython", None)
    mlflow_compat.load_store_code(uri)
    mlflow_compat.context_tags({})  # its context providers import what they look for


def _read(conn, inbox: queue.Queue, reply) -> None:
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            inbox.put(None)
            return
        if data == m.PING:
            reply(m.Alive())
        else:
            inbox.put(data)


class _Replies:
    def __init__(self, conn):
        self.conn, self.lock = conn, threading.Lock()

    def __call__(self, message) -> None:
        with self.lock:
            try:
                self.conn.send(message)
            except (OSError, ValueError):
                pass  # the training is gone; the helper still ends the run


@dataclass(frozen=True)
class _Gone:
    """The training closed the connection."""


@dataclass(frozen=True)
class _Lost:
    """The reader thread died."""


class _Helper:
    def __init__(self, open_tracker, inbox: queue.Queue, reply: _Replies, reader: threading.Thread):
        self.open_tracker, self.inbox, self.reply, self.reader = open_tracker, inbox, reply, reader
        self.tracker = None
        self.started = False
        self.taken = 0  # messages taken from the training
        self.marks: deque = deque()  # (messages taken, the backlog's entries added by then)
        self.marks_lock = threading.Lock()
        self.ended = threading.Event()

    def run(self) -> None:
        while not self.ended.is_set():
            self._handle(self._next())
            if self.started and not self.ended.is_set():
                with self.marks_lock:
                    self.marks.append((self.taken, self.tracker.backlog.added))

    def _handle(self, message) -> None:
        """Apply one of the training's messages; ``ended`` is set after the last."""
        from ..run_layout import FAILED

        match message:
            case m.Finish(status, failure):
                self._end(status, failure=failure)
            case _Gone():
                self._end(FAILED, failure=GONE)
            case _Lost():
                self._end(FAILED, LOST_READER)
            case m.Start(description):
                if not self._start(description):
                    self._drain()
            case m.Metrics(step, metrics, at_ms) if self.started:
                self.tracker.log_metrics(step, metrics, at_ms)
            case m.Snapshot(snapshot) if self.started:
                self.tracker.log_snapshot(snapshot)
            case m.Checkpoint(step, payload) if self.started:
                self.tracker.log_checkpoint(step, payload)
            case m.State(state) if self.started:
                self.tracker.report_state(state)

    def _next(self):
        """The training's next message; ``_Gone()`` once it closed the connection, ``_Lost()``
        if the reader died."""
        while True:
            try:
                data = self.inbox.get(timeout=1.0)
            except queue.Empty:
                if not self.reader.is_alive() and self.inbox.empty():
                    return _Lost()
                continue
            if data is None:
                return _Gone()
            self.taken += 1
            return pickle.loads(data)

    def _start(self, description) -> bool:
        try:  # the store is opened only now: a training that fails to load leaves it untouched
            self.tracker = self.open_tracker()
            self.tracker.start(description)
        except Exception as exc:
            problem = str(exc) if isinstance(exc, LLMBError) else f"tracking failed: {first_line(exc)}"
            self.reply(m.Failed(problem))
            self.reply(m.Ended(problem))
            return False
        from ..store.client import resolve_uri

        # MLflow retries a failed HTTP request for minutes (7 times, doubling its wait) inside
        # one call, so a server restart never reached our writer: it was neither counted nor
        # said at the end. From now on a request fails at once and the writer retries, keeping
        # the data (and spilling it), unless the user chose MLflow's retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        tracker, self.started = self.tracker, True
        self.reply(m.RunStarted(tracker.run_id, tracker.run_name, tracker.uri, tracker.experiment,
                                tracker.uri == resolve_uri(None)))
        threading.Thread(target=self._relay, daemon=True).start()
        return True

    def _relay(self) -> None:
        """Send the controllers' requests, write failures and the unsent data in memory to the
        training as they change."""
        last = None
        while not self.ended.is_set():
            self.tracker.wait_for_control(1.0)
            self._acknowledge()
            now = m.Relayed(self.tracker.control(), self.tracker.failed_writes, self.tracker.last_failure,
                            self.tracker.backlog.memory_bytes, self.tracker.last_error)
            if now != last:
                self.reply(now)
                last = now

    def _acknowledge(self) -> None:
        """Tell the training which messages are safe: those whose entries have all left the
        backlog's memory (it is first in, first out)."""
        safe = None
        left = self.tracker.backlog.left_memory
        with self.marks_lock:
            while self.marks and self.marks[0][1] <= left:
                safe = self.marks.popleft()[0]
        if safe is not None:
            self.reply(m.Ack(safe))

    def _end(self, status: str, why: str | None = None, failure: str | None = None) -> None:
        """``why``: the helper ends the run of its own accord (its reader is dead), which the
        training hears as an error; ``failure``: why the training failed."""
        error = None
        self.ended.set()
        if self.started:
            try:
                self.tracker.finish(status, failure or why)
            except LLMBError as exc:
                error = str(exc)
        self.reply(m.Ack(self.taken))  # stored, or in the run's spool (or lost with its disk)
        if why:
            error = f"{why}; {error}" if error else why
        if self.tracker is None:
            self.reply(m.Ended(error))
        else:
            self.reply(m.Ended(error, self.tracker.failed_writes, self.tracker.last_failure))

    def _drain(self) -> None:
        """The run could not start: wait for the training to finish or go, then end."""
        while not isinstance(self._next(), (m.Finish, _Gone, _Lost)):
            pass
        self.ended.set()
