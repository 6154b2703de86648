"""What a run's writer has not sent yet: in memory up to a bound, beyond it spilled to the run's
spool folder, so a store that stays down for hours does not grow the trainer without bound.

The training (or the tracking helper) adds metric points and artifacts; memory holds them in
the order they came. Once they hold more than ``SPILL_BYTES`` (a point counts ``POINT_BYTES``,
a snapshot its arrays and weights, a checkpoint its file), a thread of the backlog moves all of
memory to a new segment of the spool folder (``spool.py``) and memory starts again empty. The
writer takes its batches oldest first: the segments in order, from where ``sent.json`` says it
got to, then memory. A batch being sent from memory while a spill takes it is not sent again
from the segment: once its request succeeds, the segment's cursor moves past it.

If the run ends with the store still down, ``save`` spills what is left and writes the final
status into ``run.json``: the folder is then what ``llmb runs sync`` sends. A folder whose
segments are all sent is removed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from . import spool
from .spool import CHECKPOINT, Artifact

SPILL_BYTES = 4 * 2**20  # unsent data a writer keeps in memory before spilling it to disk
POINT_BYTES = 200  # a metric point in memory, as measured in the tracking helper (bench/outage_memory.py)
MAX_POINTS = 1000  # points per batch: MLflow's log_batch limit
RETRY_SPILL = 1.0  # seconds before spilling again after a spill failed (a full disk)


def snapshot_size(snap) -> int:
    arrays = (snap.sample_ids, snap.topk_ids, snap.topk_probs, snap.embedding, snap.probe_ids,
              snap.attention)
    return sum(getattr(a, "nbytes", 0) for a in arrays) + len(snap.weights or b"")


@dataclass
class Batch:
    """Points in a row, or one Artifact; from memory (``seq`` None) or from segment ``seq``,
    ending at byte ``end``."""
    entries: list
    seq: int | None = None
    end: int = 0
    last: bool = False  # the end of its segment

    @property
    def artifact(self) -> Artifact | None:
        return self.entries[0] if isinstance(self.entries[0], Artifact) else None


class Backlog:
    def __init__(self, folder: Path, run_id: str, tracking_uri: str, bound: int = SPILL_BYTES,
                 adopted: bool = False):
        """``adopted``: the folder is an ended run's spool, which ``llmb runs sync`` removes
        once the run is ended; else it goes as soon as it is all sent."""
        self.folder, self.run_id, self.tracking_uri, self.bound = folder, run_id, tracking_uri, bound
        self.adopted = adopted
        self._memory: deque = deque()
        self.memory_bytes = 0  # what the entries in memory hold, as counted above
        self.added = self.left_memory = 0  # entries added; entries sent from memory or spilled
        self._mem = threading.Lock()  # memory, the segment list and the flight; held briefly
        self._disk = threading.Lock()  # the folder's files; held through a spill
        self._segments = [seq for seq in spool.segments(folder) if seq >= spool.read_cursor(folder)[0]]
        self._next_seq = max(spool.segments(folder), default=0) + 1
        self._spilling = 0  # entries between memory and a segment
        self._flight = 0  # entries at memory's head being sent
        self._flight_spilled: tuple[int, int] | None = None  # where a spill put them
        self.spills, self.spill_error = 0, None
        self._closed = False
        self._wanted = threading.Event()
        self._thread = threading.Thread(target=self._spill_loop, name="llmb-spill", daemon=True)
        self._thread.start()

    # -- the producer ------------------------------------------------------------------------

    def add_points(self, points: list) -> None:
        with self._mem:
            self._memory.extend(points)
            self.added += len(points)
            self.memory_bytes += POINT_BYTES * len(points)
            over = self.memory_bytes > self.bound
        if over:
            self._wanted.set()

    def add_artifact(self, artifact: Artifact) -> None:
        with self._mem:
            self._memory.append(artifact)
            self.added += 1
            self.memory_bytes += artifact.size
            over = self.memory_bytes > self.bound
        if over:
            self._wanted.set()

    def unsent(self) -> int:
        """Entries in memory, plus segments on disk, plus entries being spilled (0: all sent)."""
        with self._mem:
            return len(self._memory) + len(self._segments) + self._spilling

    # -- the writer ----------------------------------------------------------------------------

    def next(self) -> Batch | None:
        """The oldest unsent batch, or None."""
        with self._disk:
            while self._segments:
                seq = self._segments[0]
                cursor = spool.read_cursor(self.folder)
                offset = cursor[1] if cursor[0] == seq else 0
                entries, end, last = spool.read_entries(self.folder, seq, offset, MAX_POINTS)
                if entries:
                    return Batch(entries, seq, end, last)
                self._segment_sent(seq)
            with self._mem:
                entries = []
                for entry in self._memory:
                    if isinstance(entry, Artifact):
                        entries = entries or [entry]
                        break
                    entries.append(entry)
                    if len(entries) == MAX_POINTS:
                        break
                self._flight, self._flight_spilled = len(entries), None
                return Batch(entries) if entries else None

    def done(self, batch: Batch, sent: bool) -> None:
        """The writer's request for ``batch`` ended, ``sent`` or not."""
        with self._disk:
            if self._closed:
                return
            if batch.seq is not None:
                if sent:
                    self._moved_past(batch.seq, batch.end, batch.last, batch.artifact)
                return
            with self._mem:
                spilled, count = self._flight_spilled, self._flight
                self._flight, self._flight_spilled = 0, None
                if sent and spilled is None:
                    self.left_memory += count
                    for _ in range(count):
                        entry = self._memory.popleft()
                        self.memory_bytes -= entry.size if isinstance(entry, Artifact) else POINT_BYTES
            artifact = batch.artifact
            if artifact is not None and artifact.kind == CHECKPOINT and (sent or spilled):
                Path(artifact.item).unlink(missing_ok=True)  # stored, or copied into a segment
            if sent and spilled is not None:
                seq, end = spilled
                self._moved_past(seq, end, end == spool.segment_path(self.folder, seq).stat().st_size, None)

    def _moved_past(self, seq: int, end: int, last: bool, artifact: Artifact | None) -> None:
        spool.write_cursor(self.folder, seq, end)
        if artifact is not None:
            spool.remove_file(self.folder, artifact)
        if last:
            self._segment_sent(seq)

    def _segment_sent(self, seq: int) -> None:
        spool.write_cursor(self.folder, seq + 1, 0)
        spool.remove_segment(self.folder, seq)
        with self._mem:
            self._segments.remove(seq)
            drained = not self._segments and not self._spilling
        if drained and not self.adopted:
            import shutil

            shutil.rmtree(self.folder, ignore_errors=True)  # all sent: nothing to sync

    # -- spilling ------------------------------------------------------------------------------

    def _spill_loop(self) -> None:
        while self._wanted.wait() and not self._closed:
            self._wanted.clear()
            if self.memory_bytes > self.bound and not self.spill():
                time.sleep(RETRY_SPILL)  # the disk refused; memory keeps it meanwhile

    def spill(self, status: str | None = None) -> bool:
        """Move memory to a new segment (with ``status``: the run ended, this folder is its
        spool). False if the disk refused (memory keeps everything then)."""
        with self._disk:
            with self._mem:
                entries = list(self._memory)
                flight, size = self._flight, self.memory_bytes
                self._memory.clear()
                self.memory_bytes, self._spilling = 0, len(entries)
            seq = self._next_seq
            try:
                if entries or status:
                    self.folder.mkdir(parents=True, exist_ok=True)
                    if not (self.folder / spool.MANIFEST).is_file() or status:
                        spool.write_manifest(self.folder, self.run_id, self.tracking_uri, status)
                offset = spool.write_segment(self.folder, seq, entries, keep_first=flight > 0) if entries else 0
            except OSError as exc:
                self.spill_error = str(exc)
                with self._mem:
                    self._memory.extendleft(reversed(entries))
                    self.memory_bytes += size
                    self._spilling = 0
                return False
            with self._mem:
                self._spilling = 0
                self.left_memory += len(entries)
                if entries:
                    self._next_seq += 1
                    self._segments.append(seq)
                    self.spills += 1
                if flight:
                    self._flight, self._flight_spilled = 0, (seq, offset)
            return True

    def save(self, status: str) -> Path:
        """The run ended with data unsent: everything goes to the folder, which then holds the
        run's final ``status``; nothing is sent from here any more."""
        if not self.spill(status):
            raise OSError(self.spill_error)
        self.close()
        return self.folder

    def close(self) -> None:
        with self._disk:
            self._closed = True
        self._wanted.set()
