"""A run's unsent data, kept on disk when the tracking store is still unreachable as a training
ends, until ``llmb runs sync`` sends it.

One folder per run under ``spool_root()``: ``metrics.jsonl`` (one ``[key, value, timestamp
ms, step]`` per line), a ``snapshot_<step>.npz`` per snapshot, a ``checkpoint_<step>/``
folder per checkpoint (the file keeps its name) and, written last, ``run.json`` (run id, tracking URI, final status, the artifacts
in order). Every file is written under a temporary name and renamed, so a folder without
``run.json`` holds nothing yet and a spool is never half-visible. Sending twice is harmless:
MLflow drops a metric point it already has and an artifact stored again replaces itself.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import snapshot as snapshot_format
from .errors import LLMBError
from .paths import user_data_dir

MANIFEST = "run.json"
METRICS = "metrics.jsonl"
SNAPSHOT, CHECKPOINT = "snapshot", "checkpoint"


def spool_root() -> Path:
    return user_data_dir("spool", "LLMB_SPOOL_DIR")


@dataclass
class Spooled:
    """What a run still has to send: metric points and, in order, ``(SNAPSHOT, step, Snapshot)``
    and ``(CHECKPOINT, step, path of the checkpoint file)`` items."""
    run_id: str
    tracking_uri: str
    status: str
    points: list[tuple[str, float, int, int]] = field(default_factory=list)
    artifacts: list[tuple[str, int, object]] = field(default_factory=list)
    folder: Path | None = None

    def describe(self) -> str:
        kinds = [kind for kind, _, _ in self.artifacts]
        return (f"{len(self.points)} metric point(s), {kinds.count(SNAPSHOT)} snapshot(s) and "
                f"{kinds.count(CHECKPOINT)} checkpoint(s)")


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def save(spooled: Spooled) -> Path:
    """Keep ``spooled`` on disk (in its own folder again if it came from one); returns the folder."""
    folder = spooled.folder or spool_root() / spooled.run_id
    folder.mkdir(parents=True, exist_ok=True)
    listed = []
    for kind, step, item in spooled.artifacts:
        if kind == SNAPSHOT:
            name = f"{kind}_{step:08d}.npz"
            _write_atomically(folder / name, snapshot_format.encode(item, with_weights=True))
        else:
            name = f"{kind}_{step:08d}/{Path(item).name}"
            if Path(item) != folder / name:
                (folder / name).parent.mkdir(exist_ok=True)
                shutil.move(str(item), folder / name)
        listed.append([kind, step, name])
    lines = "".join(json.dumps(list(point)) + "\n" for point in spooled.points)
    _write_atomically(folder / METRICS, lines.encode())
    manifest = {"run_id": spooled.run_id, "tracking_uri": spooled.tracking_uri,
                "status": spooled.status, "artifacts": listed}
    _write_atomically(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
    keep = {MANIFEST, METRICS, *(name.split("/")[0] for _, _, name in listed)}
    for stale in folder.iterdir():  # items an earlier attempt did send
        if stale.name in keep:
            continue
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    return folder


def load(folder: Path) -> Spooled:
    """A spool folder's contents; a damaged one is a one-line LLMBError."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        points = [tuple(json.loads(line)) for line in (folder / METRICS).read_text().splitlines() if line]
        artifacts = []
        for kind, step, name in manifest["artifacts"]:
            path = folder / name
            if kind == SNAPSHOT:
                artifacts.append((kind, int(step), snapshot_format.decode(path.read_bytes(), str(path))))
            elif path.is_file():
                artifacts.append((kind, int(step), str(path)))
            else:
                raise ValueError(f"{name} is missing")
        return Spooled(manifest["run_id"], manifest["tracking_uri"], manifest["status"], points,
                       artifacts, folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LLMBError(f"the unsent data in {folder} is unreadable ({exc})") from None


def pending() -> list[Path]:
    """Spool folders holding something to send, oldest first."""
    root = spool_root()
    if not root.is_dir():
        return []
    folders = [f for f in root.iterdir() if (f / MANIFEST).is_file()]
    return sorted(folders, key=lambda f: (f / MANIFEST).stat().st_mtime)
