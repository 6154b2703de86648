"""Corpora uploaded in the viewer: kept once under a safe name, and found again only by an id
that names a file the viewer stored itself."""

import os

import pytest

from llmb_mlflow.training.corpus import MAX_CORPUS_BYTES, load_corpus
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.launch.uploads import find_upload, store_upload

TEXT = "To be, or not to be, that is the question.\n" * 30


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMB_UPLOAD_DIR", str(tmp_path / "uploads"))
    return tmp_path / "uploads"


def test_an_upload_is_checked_and_kept_once_under_its_own_name(uploads):
    upload = store_upload("../../hamlet.txt", TEXT.encode())
    assert upload.name == "hamlet.txt" and upload.path.parent.parent == uploads
    assert upload.id == f"upload:{upload.path.parent.name}/hamlet.txt"
    assert load_corpus(str(upload.path)).text == TEXT
    assert store_upload("hamlet.txt", TEXT.encode()) == upload
    assert store_upload("hamlet.txt", (TEXT + "!").encode()).path != upload.path
    assert [p.name for p in uploads.rglob("*") if p.is_file()] == ["hamlet.txt"] * 2


def test_a_long_name_is_shortened_to_fit_any_file_system(uploads):
    upload = store_upload("é" * 200 + ".txt", TEXT.encode())
    assert upload.name.endswith(".txt") and len(upload.name.encode()) <= 120 and upload.path.is_file()
    assert find_upload(upload.id) == upload


def test_an_id_finds_the_file_it_names(uploads):
    upload = store_upload("Sonnets.TXT", TEXT.encode())
    assert find_upload(upload.id) == upload


@pytest.mark.parametrize("filename, raw, message", [
    ("notes.md", b"hello", "upload a .txt file (got 'notes.md')"),
    ("blank.txt", b"  \n ", "corpus is empty: blank.txt"),
    ("nul.txt", b"a\x00b", "corpus looks like a binary file (it contains NUL bytes): nul.txt"),
    ("latin.txt", "café".encode("latin-1"), "corpus is not valid UTF-8 text (bad byte at offset 3): latin.txt"),
    ("big.txt", b"a" * (MAX_CORPUS_BYTES + 1), "big.txt is 20.0 MB; the limit is 20 MB"),
])
def test_bad_uploads_are_refused_and_nothing_is_kept(uploads, filename, raw, message):
    with pytest.raises(LLMBError) as err:
        store_upload(filename, raw)
    assert str(err.value) == message
    assert not uploads.exists()


def test_only_ids_of_files_the_viewer_stored_are_found(uploads, tmp_path):
    upload = store_upload("hamlet.txt", TEXT.encode())
    digest = upload.path.parent.name
    secret = tmp_path / "secret.txt"
    secret.write_text("db_password = hunter2\n" * 50)
    planted = uploads / digest / "planted.txt"  # a file the viewer did not store
    planted.write_text("db_password = hunter2\n" * 50)
    linked = uploads / digest / "linked.txt"
    os.symlink(secret, linked)
    bad_ids = [str(upload.path), str(secret), "hamlet.txt", f"upload:{digest}/../../secret.txt",
               f"upload:{digest}/planted.txt", f"upload:{digest}/linked.txt",
               f"upload:{digest}/missing.txt", f"upload:{digest.upper()}/hamlet.txt",
               "upload:0123456789abcdef/hamlet.txt", "--tracking-uri=http://example.com",
               "upload:" + "a" * 100_000, None, 42, ["upload:x"], {"id": upload.id}]
    for bad in bad_ids:
        with pytest.raises(LLMBError) as err:
            find_upload(bad)
        message = str(err.value)
        assert message.startswith("no uploaded corpus ") and message.endswith("upload the file again")
        assert "\n" not in message and len(message) < 160
    upload.path.write_text("changed behind the viewer's back\n" * 20)
    with pytest.raises(LLMBError, match="no uploaded corpus"):
        find_upload(upload.id)


def _text(seed: int, size: int) -> bytes:
    line = f"Line {seed}: the quick brown fox jumps over the lazy dog.\n"
    return (line * (size // len(line) + 1)).encode()[:size]


def test_the_upload_folder_keeps_to_its_space_least_recently_used_first(uploads, monkeypatch):
    monkeypatch.setenv("LLMB_UPLOAD_SPACE_MB", "1")
    first = store_upload("first.txt", _text(1, 400_000))
    second = store_upload("second.txt", _text(2, 400_000))
    os.utime(first.path, (1, 1)), os.utime(second.path, (2, 2))  # first is the older ...
    find_upload(first.id)  # ... but used since
    third = store_upload("third.txt", _text(3, 400_000))
    assert first.path.exists() and third.path.exists() and not second.path.exists()
    assert not second.path.parent.exists()  # its folder went with it
    with pytest.raises(LLMBError, match="no uploaded corpus"):
        find_upload(second.id)
    assert sum(p.stat().st_size for p in uploads.rglob("*.txt")) <= 2**20


def test_corpora_that_running_trainings_read_are_kept_and_a_full_folder_refuses(uploads, monkeypatch, store_uri):
    from llmb_mlflow.library import control
    from llmb_mlflow.launch.launcher import launch
    from llmb_mlflow.library.reader import RunReader

    from conftest import LIVE_ARGS

    monkeypatch.setenv("LLMB_UPLOAD_SPACE_MB", "1")
    monkeypatch.setenv("LLMB_LOG_DIR", str(uploads.parent / "logs"))
    read = store_upload("read.txt", _text(1, 600_000))
    training = launch(["train", *LIVE_ARGS, f"--dataset={read.path}"], store_uri)
    try:
        with pytest.raises(LLMBError) as err:
            store_upload("more.txt", _text(2, 600_000))
        assert str(err.value) == ("the upload folder is full: 0.6 MB of 1 MB hold corpora that running trainings "
                                  "read; try again when one has ended")
        assert read.path.exists()
        control.send(RunReader(store_uri).client, training.run_id, "stop")
        training.process.wait(timeout=120)
        assert store_upload("more.txt", _text(2, 600_000)).path.exists() and not read.path.exists()
    finally:
        training.process.kill()


def test_a_bad_upload_space_is_named(uploads, monkeypatch):
    monkeypatch.setenv("LLMB_UPLOAD_SPACE_MB", "lots")
    with pytest.raises(LLMBError, match="LLMB_UPLOAD_SPACE_MB must be a whole number of megabytes, at least 1; "
                                        "got 'lots'"):
        store_upload("a.txt", TEXT.encode())
