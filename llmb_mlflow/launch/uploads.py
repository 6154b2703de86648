"""Corpora uploaded in the viewer: checked, kept on this machine, and named by an opaque id.

The page only ever holds an upload's id (``upload:<content hash>/<file name>``), never a
path: a training started from the page gets the path this module finds for a valid id, and an
id counts only if the file under it still has the content its hash names, so nothing but a
file the viewer stored itself can be trained on. Both read it through ``upload_folder``, which
follows no link and refuses a file that is not regular or has another name elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from ..training.corpus import MAX_CORPUS_BYTES, decode_corpus_bytes
from ..numbers import env_count
from ..errors import LLMBError, shown
from ..training.upload_folder import DIGEST_CHARS, digest as _digest, read as _read, upload_dir

DEFAULT_SPACE_MB = 500
_ID = re.compile(rf"upload:(?P<digest>[0-9a-f]{{{DIGEST_CHARS}}})/(?P<name>\w[\w.\- ]*(?i:\.txt))")


@dataclass(frozen=True)
class Upload:
    id: str
    name: str
    path: Path
    new: bool = field(default=False, compare=False)  # written by this store_upload, not kept already


def store_upload(filename: str, raw: bytes) -> Upload:
    """Check an uploaded corpus and keep it under ``upload_dir()``, named as uploaded (made
    safe), in a folder named by its content hash (the same file uploaded twice is kept once)."""
    name = safe_name(filename)
    if not name.lower().endswith(".txt"):
        raise LLMBError(f"upload a .txt file (got {shown(filename)})")
    if len(raw) > MAX_CORPUS_BYTES:
        raise LLMBError(f"{name} is {len(raw) / 2**20:.1f} MB; the limit is {MAX_CORPUS_BYTES // 2**20} MB")
    decode_corpus_bytes(raw, name)
    digest = _digest(raw)
    folder = upload_dir() / digest
    path = folder / name
    try:
        upload_dir().mkdir(parents=True, exist_ok=True)
        with _lock():
            new = not _holds(path, digest)
            if not new:
                os.utime(path, follow_symlinks=False)  # uploaded again: used now
            else:
                make_room(len(raw))
                folder.mkdir(parents=True, exist_ok=True)
                handle, partial = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".partial")
                try:
                    with os.fdopen(handle, "wb") as f:
                        f.write(raw)
                    os.replace(partial, path)
                finally:
                    if os.path.exists(partial):
                        os.remove(partial)
    except OSError as exc:
        raise LLMBError(f"could not keep {name} on this machine ({exc.strerror or exc})") from None
    return Upload(f"upload:{digest}/{name}", name, path, new)


def forget_upload(upload: Upload) -> None:
    """Remove what ``store_upload`` wrote for a request that was then refused (an upload that was
    kept already stays)."""
    if upload.new:
        with _lock():
            upload.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                upload.path.parent.rmdir()


def _lock() -> FileLock:
    """One upload at a time makes room, is written or forgotten (the lock beside the folder)."""
    return FileLock(upload_dir().with_name(upload_dir().name + ".lock"))


def upload_space() -> int:
    """Bytes the upload folder may hold: ``LLMB_UPLOAD_SPACE_MB`` (default 500) megabytes."""
    return env_count("LLMB_UPLOAD_SPACE_MB", DEFAULT_SPACE_MB, "megabytes") * 2**20


def make_room(size: int) -> None:
    """Make room for ``size`` more bytes in the upload folder: past ``upload_space()``, the least
    recently used uploads go first (each use of one touches it), except those a running training
    reads; refused in one line if that is not enough."""
    space = upload_space()
    if size > space:
        raise LLMBError(f"this file is {size / 2**20:.1f} MB and the upload folder holds at most {space // 2**20} MB")
    kept = sorted(_kept(), key=lambda item: item[1])  # (path, last used, size), least recent first
    total = sum(size_ for *_, size_ in kept)
    if total + size <= space:
        return
    in_use = _read_by_trainings()
    for path, _, size_ in kept:
        if total + size <= space:
            break
        if str(path) not in in_use:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # its hash's folder, once empty
            total -= size_
    if total + size > space:
        raise LLMBError(f"the upload folder is full: {total / 2**20:.1f} MB of {space // 2**20} MB hold corpora "
                        "that running trainings read; try again when one has ended")


def _kept() -> list[tuple[Path, float, int]]:
    found = []
    for path in upload_dir().glob("*/*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                stat = path.stat()
                found.append((path, stat.st_mtime, stat.st_size))
    return found


def _read_by_trainings() -> set[str]:
    """Every argument of this machine's running LLMBreaker trainings (their corpora among them)."""
    from ..processes import training_commands

    return {part.partition("=")[2] or part for command in training_commands() for part in command}


def is_upload_id(value) -> bool:
    """Whether ``value`` has the form of an upload id (``find_upload`` checks the file)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def find_upload(upload_id) -> Upload:
    """The upload an id names; refused unless it is well formed and its file is a regular
    file in the upload folder whose content still matches the id's hash."""
    match = _ID.fullmatch(upload_id) if is_upload_id(upload_id) else None
    if not match or not _holds(upload_dir() / match["digest"] / match["name"], match["digest"]):
        raise LLMBError(f"no uploaded corpus {shown(upload_id)} on this viewer; upload the file again")
    path = upload_dir() / match["digest"] / match["name"]
    with contextlib.suppress(OSError):
        os.utime(path, follow_symlinks=False)  # used now: the last to go when room is made
    return Upload(upload_id, match["name"], path)


def _holds(path: Path, digest: str) -> bool:
    """Whether ``path`` is a file kept in the upload folder whose content has ``digest``."""
    try:
        return _digest(_read(path.parent, path.name, MAX_CORPUS_BYTES)) == digest
    except OSError:
        return False


def upload_at(path) -> Upload:
    """The upload whose file is at ``path`` (a training's dataset, as its run records it)."""
    try:
        digest, name = Path(path).relative_to(upload_dir()).parts
    except (TypeError, ValueError):
        raise LLMBError(f"{shown(path)} is not a file uploaded here") from None
    return find_upload(f"upload:{digest}/{name}")


def safe_name(filename, max_bytes: int = 120) -> str:
    """The uploaded file's own name, without folders, with only letters, digits, ``. - _``
    and spaces, not hidden, and short enough for any file system (its extension kept)."""
    base = Path(filename if isinstance(filename, str) else "").name
    name = re.sub(r"[^\w.\- ]", "_", base).strip().lstrip(".-_ ") or "corpus.txt"
    stem, dot, extension = name.rpartition(".") if "." in name else (name, "", "")
    while len(name.encode()) > max_bytes and stem:
        stem = stem[:-1]
        name = f"{stem}{dot}{extension}".strip() or "corpus.txt"
    return name
