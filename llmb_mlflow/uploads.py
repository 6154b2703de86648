"""Corpora uploaded in the viewer: checked, kept on this machine, and named by an opaque id.

The page only ever holds an upload's id (``upload:<content hash>/<file name>``), never a
path: a training started from the page gets the path this module finds for a valid id, and an
id counts only if the file under it still has the content its hash names, so nothing but a
file the viewer stored itself can be trained on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .corpus import MAX_CORPUS_BYTES, decode_corpus_bytes
from .errors import LLMBError, shown
from .paths import user_data_dir

DIGEST_CHARS = 16
_ID = re.compile(rf"upload:(?P<digest>[0-9a-f]{{{DIGEST_CHARS}}})/(?P<name>\w[\w.\- ]*(?i:\.txt))")


@dataclass(frozen=True)
class Upload:
    id: str
    name: str
    path: Path


def upload_dir() -> Path:
    """Where corpora uploaded in the viewer are kept (trainings and resumes read them later)."""
    return user_data_dir("uploads", "LLMB_UPLOAD_DIR")


def store_upload(filename: str, raw: bytes) -> Upload:
    """Check an uploaded corpus and keep it under ``upload_dir()``, named as uploaded (made
    safe), in a folder named by its content hash (the same file uploaded twice is kept once)."""
    name = safe_name(filename)
    if not name.lower().endswith(".txt"):
        raise LLMBError(f"upload a .txt file (got {filename!r})")
    if len(raw) > MAX_CORPUS_BYTES:
        raise LLMBError(f"{name} is {len(raw) / 2**20:.1f} MB; the limit is {MAX_CORPUS_BYTES // 2**20} MB")
    decode_corpus_bytes(raw, name)
    digest = _digest(raw)
    folder = upload_dir() / digest
    path = folder / name
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.partial"
        partial.write_bytes(raw)
        partial.replace(path)
    return Upload(f"upload:{digest}/{name}", name, path)


def is_upload_id(value) -> bool:
    """Whether ``value`` has the form of an upload id (``find_upload`` checks the file)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def find_upload(upload_id) -> Upload:
    """The upload an id names; refused unless it is well formed and its file is a regular
    file in the upload folder whose content still matches the id's hash."""
    match = _ID.fullmatch(upload_id) if is_upload_id(upload_id) else None
    missing = LLMBError(f"no uploaded corpus {shown(upload_id)} on this viewer; upload the file again")
    if not match:
        raise missing
    folder = upload_dir() / match["digest"]
    path = folder / match["name"]
    try:
        if folder.is_symlink() or path.is_symlink() or not path.is_file() \
                or path.stat().st_size > MAX_CORPUS_BYTES or _digest(path.read_bytes()) != match["digest"]:
            raise missing
    except OSError:
        raise missing from None
    return Upload(upload_id, match["name"], path)


def safe_name(filename) -> str:
    """The uploaded file's own name, without folders, with only letters, digits, ``. - _``
    and spaces, and not hidden."""
    base = Path(filename if isinstance(filename, str) else "").name
    return re.sub(r"[^\w.\- ]", "_", base).strip().lstrip(".-_ ") or "corpus.txt"


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:DIGEST_CHARS]
