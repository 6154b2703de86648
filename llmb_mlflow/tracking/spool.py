"""A run's unsent data on disk: what the writer spilled while the tracking store was down, and
what was still unsent when the training ended, until it is sent (by the writer once the store
is back, or by ``llmb runs sync``).

One folder per run under ``spool_root()``:

- ``segment_<n>.jsonl``, numbered in the order they were written: one entry per line, in the
  order the training logged them: a metric point ``[key, value, timestamp ms, step]`` or an
  artifact ``{"kind", "step", "file"}`` (a checkpoint also carries ``links``, the points its
  logged model is linked to).
- each artifact's file, named after its segment: ``s<n>_snapshot_<step>.npz`` (with its
  weights) and ``s<n>_checkpoint_<step>/checkpoint.pt``.
- ``sent.json``: how far the segments have been sent (a segment number and a byte offset).
- ``run.json``: the run id, its tracking URI and final status; while a writer is still
  spilling, no status but that writer's process (host, pid, start time).

Every file is written under a temporary name and renamed, and a segment only after the files
it lists: a half-written spill is never read as valid, and a writer killed mid-spill loses only
what it had not yet spilled. ``llmb runs sync`` sends a folder whose run ended, or whose writer
is gone (that run is ended FAILED); one still being written belongs to its writer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from .. import processes
from ..formats import snapshot as snapshot_format
from ..errors import LLMBError
from ..paths import user_data_dir

MANIFEST = "run.json"
CURSOR = "sent.json"
SNAPSHOT, CHECKPOINT = "snapshot", "checkpoint"
PARTIAL = ".partial"
_SEGMENT = re.compile(r"segment_(\d{6})\.jsonl$")
_SPILLED = re.compile(r"s(\d{6})_")  # an artifact file's segment

Point = tuple[str, float, int, int]  # key, value, timestamp (ms), step


def spool_root() -> Path:
    return user_data_dir("spool", "LLMB_SPOOL_DIR")


@dataclass
class Artifact:
    """A snapshot (``item``: the Snapshot) or checkpoint (``item``: its file's path) to send;
    ``size``: the bytes it holds; ``links``: a checkpoint's linked points; ``file``: its file
    in a spool folder, once read from one."""
    kind: str
    step: int
    item: object
    size: int = 0
    links: list[Point] = field(default_factory=list)
    file: str = ""


@dataclass
class Spooled:
    """A spool folder: its run, and how much is still unsent."""
    run_id: str
    tracking_uri: str
    status: str
    folder: Path
    points: int = 0
    snapshots: int = 0
    checkpoints: int = 0

    def describe(self) -> str:
        return (f"{self.points} metric point(s), {self.snapshots} snapshot(s) and "
                f"{self.checkpoints} checkpoint(s)")


def write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + PARTIAL)
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def _writer() -> dict:
    pid, started = processes.identity()
    return {"host": socket.gethostname(), "pid": pid, "started": started}


def write_manifest(folder: Path, run_id: str, tracking_uri: str, status: str | None) -> None:
    """``status`` None: this process is still writing the run (a sync leaves it alone)."""
    manifest = {"run_id": run_id, "tracking_uri": tracking_uri, "status": status,
                **({} if status else {"writer": _writer()})}
    write_atomically(folder / MANIFEST, json.dumps(manifest, indent=1).encode())


def _writer_alive(writer: dict) -> bool:
    if writer.get("host") != socket.gethostname():
        return True  # not ours to judge
    started = writer.get("started")
    return isinstance(started, (int, float)) and processes.is_alive(writer.get("pid"), started)


# -- segments ----------------------------------------------------------------------------------

def segment_path(folder: Path, seq: int) -> Path:
    return folder / f"segment_{seq:06d}.jsonl"


def segments(folder: Path) -> list[int]:
    """The segment numbers in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for f in folder.iterdir() if (m := _SEGMENT.match(f.name)))


def write_segment(folder: Path, seq: int, entries: list, keep_first: bool = False) -> int:
    """Write ``entries`` (points and Artifacts, in order) as segment ``seq``: the artifacts'
    files first, then the segment. A checkpoint file is linked or copied in; its original is
    removed once the segment is in place, except the first entry's if ``keep_first`` (it is
    being sent from there). Returns the byte offset just after the first entry."""
    lines, originals = [], []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Artifact):
            lines.append(json.dumps(entry))
            continue
        if entry.kind == SNAPSHOT:
            name = f"s{seq:06d}_{SNAPSHOT}_{entry.step:08d}.npz"
            write_atomically(folder / name, snapshot_format.encode(entry.item, whole=True))
        else:
            source = Path(entry.item)
            name = f"s{seq:06d}_{CHECKPOINT}_{entry.step:08d}/{source.name}"
            _link_or_copy(source, folder / name)
            if not (keep_first and index == 0):
                originals.append(source)
        line = {"kind": entry.kind, "step": entry.step, "file": name}
        if entry.kind == CHECKPOINT:
            line["links"] = [list(point) for point in entry.links]
        lines.append(json.dumps(line))
    text = "".join(line + "\n" for line in lines).encode()
    write_atomically(segment_path(folder, seq), text)
    for original in originals:
        original.unlink(missing_ok=True)
    return len(lines[0].encode()) + 1 if lines else 0


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + PARTIAL)
    partial.unlink(missing_ok=True)
    try:
        os.link(source, partial)
    except OSError:  # another file system
        shutil.copyfile(source, partial)
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
    os.replace(partial, target)


def read_entries(folder: Path, seq: int, offset: int, max_points: int) -> tuple[list, int, bool]:
    """From segment ``seq`` at ``offset``: up to ``max_points`` points in a row, or one
    artifact; the offset after them, and whether that is the segment's end."""
    entries = []
    with open(segment_path(folder, seq), "rb") as f:
        f.seek(offset)
        while len(entries) < max_points:
            start = f.tell()
            line = f.readline()
            if not line:
                break
            entry = json.loads(line)
            if isinstance(entry, dict):
                if entries:  # an artifact goes alone
                    f.seek(start)
                    break
                entries.append(_artifact(folder, entry))
                break
            entries.append(tuple(entry))
        end = f.tell()
        return entries, end, not f.read(1)


def _artifact(folder: Path, line: dict) -> Artifact:
    name = line["file"]
    path = folder / name
    if line["kind"] == SNAPSHOT:
        snap = snapshot_format.decode(path.read_bytes(), str(path))
        return Artifact(SNAPSHOT, int(line["step"]), snap, file=name)
    if not path.is_file():
        raise LLMBError(f"the unsent data in {folder} is unreadable ({name} is missing)")
    links = [tuple(point) for point in line.get("links", [])]
    return Artifact(CHECKPOINT, int(line["step"]), str(path), links=links, file=name)


def remove_file(folder: Path, artifact: Artifact) -> None:
    """An artifact's file (a checkpoint's folder) in ``folder``, once it is sent."""
    if artifact.file:
        top = folder / artifact.file.split("/")[0]
        shutil.rmtree(top, ignore_errors=True) if top.is_dir() else top.unlink(missing_ok=True)


def read_cursor(folder: Path) -> tuple[int, int]:
    """(segment, byte offset): everything before it is sent."""
    try:
        cursor = json.loads((folder / CURSOR).read_text())
        return int(cursor["segment"]), int(cursor["offset"])
    except FileNotFoundError:
        return 0, 0


def write_cursor(folder: Path, seq: int, offset: int) -> None:
    write_atomically(folder / CURSOR, json.dumps({"segment": seq, "offset": offset}).encode())


def remove_segment(folder: Path, seq: int) -> None:
    """Segment ``seq``, sent, and any file of it still there."""
    segment_path(folder, seq).unlink(missing_ok=True)
    for path in folder.glob(f"s{seq:06d}_*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


# -- whole folders -----------------------------------------------------------------------------

def load(folder: Path) -> Spooled:
    """A spool folder's run and what it still holds (counted, not read into memory), after
    removing what a writer killed mid-spill left half-written; a damaged folder is a one-line
    LLMBError. A run whose writer is gone without ending it is FAILED."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if "artifacts" in manifest or (folder / "metrics.jsonl").exists():
            raise LLMBError(f"the unsent data in {folder} is in the layout of an LLMBreaker from before "
                            "December 1, which this version does not read; it is left as it is")
        _tidy(folder)
        spooled = Spooled(manifest["run_id"], manifest["tracking_uri"], manifest["status"] or "FAILED", folder)
        cursor = read_cursor(folder)
        for seq in segments(folder):
            if seq < cursor[0]:
                continue
            with open(segment_path(folder, seq), "rb") as f:
                f.seek(cursor[1] if seq == cursor[0] else 0)
                for line in f:
                    if line.startswith(b"["):
                        spooled.points += 1
                    else:
                        entry = json.loads(line)
                        if not (folder / entry["file"]).is_file():
                            raise ValueError(f"{entry['file']} is missing")
                        spooled.snapshots += entry["kind"] == SNAPSHOT
                        spooled.checkpoints += entry["kind"] == CHECKPOINT
        return spooled
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LLMBError(f"the unsent data in {folder} is unreadable ({exc})") from None


def _tidy(folder: Path) -> None:
    """Remove half-written files, sent segments and files no complete segment lists."""
    cursor = read_cursor(folder)[0]
    kept = {seq for seq in segments(folder) if seq >= cursor}
    for path in folder.iterdir():
        spilled = _SPILLED.match(path.name)
        segment = _SEGMENT.match(path.name)
        if (path.name.endswith(PARTIAL) or (spilled and int(spilled.group(1)) not in kept)
                or (segment and int(segment.group(1)) not in kept)):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def pending() -> list[Path]:
    """Spool folders holding something to send and no live writer, oldest first."""
    root = spool_root()
    if not root.is_dir():
        return []
    folders = []
    for folder in root.iterdir():
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            folders.append(folder)  # load says what is wrong with it
            continue
        if isinstance(manifest, dict) and not manifest.get("status") and _writer_alive(manifest.get("writer") or {}):
            continue
        folders.append(folder)
    return sorted(folders, key=lambda f: (f / MANIFEST).stat().st_mtime)
