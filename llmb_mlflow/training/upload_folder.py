"""The folder of corpora uploaded in the viewer, and reading a file kept there safely: no link
is followed, and a file with another name elsewhere (a hard link, whose content may change under
it) or that is not a regular file is refused. ``uploads`` keeps files here; a training reads its
corpus through ``read_kept``."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from ..errors import LLMBError
from ..paths import user_data_dir

DIGEST_CHARS = 16


def upload_dir() -> Path:
    """Where corpora uploaded in the viewer are kept (trainings and resumes read them later)."""
    return user_data_dir("uploads", "LLMB_UPLOAD_DIR")


def read_kept(path, max_bytes: int) -> bytes | None:
    """The bytes of the upload kept at ``path`` (a training's corpus), checked as ``find_upload``
    checks it; None if ``path`` is not in the upload folder."""
    path = Path(os.path.abspath(Path(path).expanduser()))
    if path.parent.parent != Path(os.path.abspath(upload_dir())):
        return None
    try:
        raw = read(path.parent, path.name, max_bytes)
    except OSError:
        raw = None
    if raw is None or digest(raw) != path.parent.name:
        raise LLMBError(f"{path.name} in the upload folder is not a file the viewer stored as it is now "
                        "(a link, not a regular file, or changed since); upload it again")
    return raw


def read(folder: Path, name: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``name`` in ``folder``, neither a symbolic link, nor in a
    linked folder, nor with another name anywhere (a hard link), at most ``max_bytes``; OSError
    otherwise (a FIFO is refused without waiting for a writer)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    folder_fd = os.open(folder, flags | os.O_DIRECTORY)
    try:
        fd = os.open(name, flags, dir_fd=folder_fd)
    finally:
        os.close(folder_fd)
    with os.fdopen(fd, "rb") as f:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1 or found.st_size > max_bytes:
            raise OSError(f"{name} is not a regular file with one link, of at most {max_bytes} bytes")
        raw = f.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise OSError(f"{name} grew past {max_bytes} bytes")
    return raw


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:DIGEST_CHARS]
