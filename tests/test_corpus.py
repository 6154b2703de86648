import numpy as np
import pytest

from llmb_mlflow.training.corpus import BUNDLED, MAX_CORPUS_BYTES, CharTokenizer, Corpus, load_corpus, prepare_dataset
from llmb_mlflow.errors import LLMBError


def test_shakespeare_splits_like_nanogpt(shakespeare):
    data = prepare_dataset(shakespeare, 64)
    assert len(shakespeare.text) == 1_115_394
    assert data.tokenizer.vocab_size == 65
    assert (len(data.train_ids), len(data.val_ids)) == (1_003_854, 111_540)
    assert data.tokenizer.decode(data.val_ids[:50]) == shakespeare.text[1_003_854:1_003_904]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_corpora_load_with_unix_newlines(name):
    corpus = load_corpus(name)
    assert corpus.name == name
    assert len(corpus.text) > 100_000
    assert "\r" not in corpus.text


def test_turmoil_crlf_is_normalised_and_alice_keeps_unicode():
    assert "\r" not in load_corpus("turmoil").text
    assert any(ord(c) > 127 for c in load_corpus("alice").text)


def test_tokenizer_round_trips_and_reports_unknown_characters():
    tok = CharTokenizer.from_text("hello world")
    assert tok.chars == " dehlorw"
    ids = tok.encode("low")
    assert ids.dtype == np.uint16 and tok.decode(ids) == "low"
    with pytest.raises(LLMBError, match=r"not in the model's vocabulary: 'Z', 'x'"):
        tok.encode("xZ")


def test_text_file_by_path(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_bytes(("Roses are red,\r\nviolets are blue.\r\n" * 200).encode())
    corpus = load_corpus(str(path))
    assert corpus.name == "poem.txt" and "\r" not in corpus.text
    data = prepare_dataset(corpus, 32)
    assert len(data.train_ids) + len(data.val_ids) == len(corpus.text)


def one_line_error(spec, block_size=16) -> str:
    with pytest.raises(LLMBError) as error:
        prepare_dataset(load_corpus(str(spec)), block_size)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert "corpus file not found" in one_line_error(tmp_path / "nope.txt")


def test_unknown_bundled_name_lists_the_known_ones():
    message = one_line_error("hamlet")
    assert "unknown dataset 'hamlet'" in message and "shakespeare, alice, turmoil" in message


def test_directory(tmp_path):
    assert "is a directory" in one_line_error(tmp_path)


def test_empty_and_whitespace_only(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b" \n\n  \n")
    assert "corpus is empty" in one_line_error(tmp_path / "empty.txt")
    assert "corpus is empty" in one_line_error(tmp_path / "blank.txt")


def test_not_utf8(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 500)
    assert "not valid UTF-8" in one_line_error(tmp_path / "latin1.txt")


def test_binary(tmp_path):
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 50)
    assert "binary" in one_line_error(tmp_path / "data.bin")


def test_too_short_for_the_context(tmp_path):
    (tmp_path / "short.txt").write_text("just a few words, not enough\n" * 10)
    message = one_line_error(tmp_path / "short.txt", block_size=128)
    assert "too short" in message and "context of 128" in message


def test_too_large(tmp_path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:
        f.truncate(MAX_CORPUS_BYTES + 1)
    assert "the limit is 20 MB" in one_line_error(path)


def test_short_corpus_fits_a_small_context():
    corpus = Corpus("tiny", "abcdefghij" * 40)
    data = prepare_dataset(corpus, 16)
    assert len(data.val_ids) == 40
