"""What a training reported that its tracking helper never took, because the helper died or
stopped answering: the training keeps each report until the helper acknowledges it, and at
its end writes the rest to a spool folder of the run, as the helper does during a store
outage, for ``llmb runs sync``."""

from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from dataclasses import replace

from ..run_layout import CHECKPOINT_LINKS
from . import messages as m


class Unsent:
    """The reports sent to the helper and not yet taken by it, numbered as sent."""

    def __init__(self):
        self._lock = threading.Lock()
        self._kept: deque = deque()
        self._sent = 0
        self._latest: dict[str, tuple] = {}  # each linked metric's latest point, for checkpoints

    def add(self, message) -> None:
        with self._lock:
            self._sent += 1
            if isinstance(message, m.DATA):
                self._kept.append((self._sent, self._with_links(message)))

    def taken(self, count: int) -> None:
        """The helper took the first ``count`` messages."""
        with self._lock:
            while self._kept and self._kept[0][0] <= count:
                self._kept.popleft()

    def take(self, outbox) -> list:
        """Everything not taken: what was sent, then what was never sent (``outbox``)."""
        with self._lock:
            left = [message for _, message in self._kept]
            self._kept.clear()
            while not outbox.empty():
                message = outbox.get_nowait()
                if isinstance(message, m.DATA):
                    left.append(self._with_links(message))
            return left

    def _with_links(self, message):
        if isinstance(message, m.Metrics):
            self._latest.update((key, (key, float(value), message.at_ms, message.step))
                                for key, value in message.metrics.items() if key in CHECKPOINT_LINKS)
        elif isinstance(message, m.Checkpoint):
            return replace(message, links=tuple(self._latest.values()))
        return message


def keep_unsent(messages: list, tracking, status: str, why: str) -> str:
    """Spool ``messages`` (from ``Unsent.take``) for ``tracking``'s run, ended with ``status``;
    the one line that says why and where they are."""
    if not tracking.run_id:
        return f"{why}; no MLflow run was created, so this training is not tracked"
    from . import spool
    from .spill import Backlog, snapshot_size
    from ..store.client import first_line

    folder = spool.spool_root() / f"{tracking.run_id}-{os.getpid()}"
    try:
        backlog = Backlog(folder, tracking.run_id, tracking.uri, bound=2**62)
        for message in messages:
            match message:
                case m.Metrics(step, metrics, at_ms):
                    backlog.add_points([(key, float(value), at_ms, step) for key, value in metrics.items()])
                case m.Snapshot(snap):
                    backlog.add_artifact(spool.Artifact(spool.SNAPSHOT, snap.step, snap, snapshot_size(snap)))
                case m.Checkpoint(step, payload, links):
                    backlog.add_artifact(spool.Artifact(spool.CHECKPOINT, step, _file_of(payload, folder.parent),
                                                        len(payload), list(links)))
        backlog.save(status)
        described = spool.load(folder).describe()
    except OSError as exc:
        return (f"{why}; the training's last reports to run {tracking.run_id} are lost: they could "
                f"not be kept on disk ({first_line(exc)})")
    return (f"{why}; {described} of run {tracking.run_id} are kept in {folder}: send them with "
            f"`llmb runs sync`")


def _file_of(payload: bytes, folder) -> str:
    """A checkpoint's bytes in a file, which the spool moves into its folder."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(prefix=".checkpoint-", dir=folder)
    with os.fdopen(handle, "wb") as f:
        f.write(payload)
    return path
