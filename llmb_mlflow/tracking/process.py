"""Tracking a training from a process of its own, so the training never waits for MLflow.

``llmb train`` and ``llmb resume`` give their trainer a ``TrackingProcess``: it starts a helper
process (``python -m llmb_mlflow.tracking.process``) that loads MLflow while the training
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

The training pings the helper every second and keeps each report until the helper says it took
it (``unsent.py``). A helper that dies, or stays silent for ``ANSWER_SECONDS`` (it is then
killed), ends the training with one line; the reports it did not take go to a spool folder of
the run, for ``llmb runs sync``. The helper's own side is ``helper.py``; their messages are ``messages.py``.

This module imports neither MLflow nor torch: the helper starts by importing it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace

from ..errors import LLMBError
from ..training.tracker import Control, Tracker
from . import messages as m
from .unsent import Unsent, keep_unsent

GONE = "the tracking process ended unexpectedly"
STUCK = "the tracking process stopped answering"
PING_SECONDS = 1.0  # the helper's reader answers a ping at once, whatever its main thread does
ANSWER_SECONDS = 10.0  # a helper silent this long is stuck
FIRST_ANSWER_SECONDS = 60.0  # before its first answer: it may still be starting on a busy machine


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
        self.last_error: str | None = None  # the helper's writes fail now, as last relayed
        self.unsent_bytes = 0  # unsent data in the helper's memory, as last relayed
        self._control = Control()
        self._error: str | None = None  # why the helper cannot track; raised in the training
        self._raised = False
        self._ended: str | None = None  # once the helper is done: "", or what went wrong
        self._changed = threading.Condition()
        self._outbox: queue.Queue = queue.Queue()
        self._unsent = Unsent()  # sent, not yet taken by the helper
        if tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):  # else MLflow's local default
            from ..store.client import check_reachable

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
        self._outbox.put(m.Start(description))

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self._outbox.put(m.Metrics(step, dict(metrics), int(time.time() * 1000)))

    def log_snapshot(self, snapshot) -> None:
        if snapshot.vocab is not None and not snapshot.vocab.is_chars:  # the helper has the run's, from Start
            snapshot = replace(snapshot, vocab=None)
        self._outbox.put(m.Snapshot(snapshot))

    def log_checkpoint(self, step: int, payload: bytes) -> None:
        self._outbox.put(m.Checkpoint(step, payload))

    def report_state(self, state: str) -> None:
        self._outbox.put(m.State(state))

    def control(self) -> Control:
        if self._error:
            self._raised = True
            raise LLMBError(self._error)
        return self._control

    def wait_for_control(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def finish(self, status: str, failure: str | None = None) -> None:
        """Wait until the helper has stored everything and ended the run with ``status``. If it
        broke down instead, what it did not take goes to the spool, which the error names."""
        self._outbox.put(m.Finish(status, failure))
        try:
            with self._changed:
                while not self._changed.wait_for(lambda: self._ended is not None, 1.0):
                    pass  # (a timed wait lets a second Ctrl-C or SIGTERM through)
        except BaseException:
            self.close()
            raise
        self.close()
        unsent = self._unsent.take(self._outbox)
        if unsent and (self.run_id or self._ended in (GONE, STUCK)):  # (not a run that failed to start)
            raise LLMBError(keep_unsent(unsent, self, status, self._ended or GONE))
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
        pinged = time.monotonic()
        while True:
            try:
                item = self._outbox.get(timeout=max(0.0, pinged + PING_SECONDS - time.monotonic()))
            except queue.Empty:
                item = m.PING
            try:
                if item is None:
                    return
                if time.monotonic() - pinged >= PING_SECONDS:
                    self._conn.send_bytes(m.PING)
                    pinged = time.monotonic()
                if item is not m.PING:
                    self._unsent.add(item)
                    self._conn.send(item)
            except (OSError, ValueError):  # the helper is gone; _receive says so
                return

    def _receive(self) -> None:
        # Silence is counted in one-second waits, not by the clock: a process stopped (Ctrl-Z, a
        # debugger) for a while finds the clock moved on when it resumes, the helper no less alive.
        allowed, quiet = FIRST_ANSWER_SECONDS, 0  # a helper may take long to start on a busy machine
        while True:
            try:
                if self._conn.poll(1.0):
                    message = self._conn.recv()
                    allowed, quiet = ANSWER_SECONDS, 0
                elif (quiet := quiet + 1) < allowed:
                    continue
                else:
                    self._process.kill()  # stuck: it takes nothing more, so nothing is sent twice
                    message = m.Ended(STUCK)
            except (EOFError, OSError):
                message = m.Ended(GONE)
            with self._changed:
                self._take(message)
                self._changed.notify_all()
            if isinstance(message, m.Ended):
                return

    def _take(self, message) -> None:
        """What the helper says, as the training sees it (``_changed`` held)."""
        match message:
            case m.RunStarted():
                self.run_id, self.run_name, self.uri = message.run_id, message.run_name, message.uri
                self.experiment, self.default_store = message.experiment, message.default_store
            case m.Ack(taken):
                self._unsent.taken(taken)
            case m.Relayed():
                self._control, self.unsent_bytes = message.control, message.unsent_bytes
                self.failed_writes, self.last_failure = message.failed_writes, message.last_failure
                self.last_error = message.last_error
            case m.Failed(problem):
                self._error = problem
            case m.Ended(error):
                self._ended = error or ""
                if message.failed_writes is not None:
                    self.failed_writes, self.last_failure = message.failed_writes, message.last_failure
                if error:  # before the training's end: nothing tracks it any more
                    self._error = self._error or error


# -- the helper process ----------------------------------------------------------------------

def _start_helper(settings: dict):
    """``python -m llmb_mlflow.tracking.process FD PID``, a connection to it on a socket pair.
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


if __name__ == "__main__":
    from multiprocessing.connection import Connection

    from llmb_mlflow.tracking.helper import serve

    _conn = Connection(int(sys.argv[1]))
    _settings, _argv = _conn.recv()
    serve(_conn, _settings, int(sys.argv[2]), _argv)
