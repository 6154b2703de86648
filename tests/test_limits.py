"""What a training started from a viewer may cost and read, checked before it starts and again
by ``llmb resume --viewer-limits`` against what the checkpoint really holds."""

import pytest

from llmb_mlflow.launch import limits
from llmb_mlflow.training.config import build_config
from llmb_mlflow.errors import LLMBError

from conftest import bard_library


@pytest.mark.parametrize("settings, steps, message", [
    ({"batch_size": 512, "block_size": 128}, None, "batch × context is 512 × 128 = 65536 characters per step"),
    ({"max_iters": 100_000, "eval_interval": 5}, None, "steps / snapshot every makes 20001 snapshots"),
    ({"max_iters": 100_000, "eval_interval": 5}, 1000, None),  # only the steps it will take count
    ({"max_iters": 2_000_000, "eval_interval": 1000}, None,
     "2000000 steps with a checkpoint every 1000 make 2001 checkpoints; a training started here may make at most 1000"),
    ({"eval_iters": 100_000}, None, "100000 batches per evaluation and 200 characters per sample"),
    ({"n_layer": 64, "n_embd": 1024, "n_head": 4}, None, "a model of 64 layers 1024 wide has about 805,306,368 parameters"),
    ({}, None, None),
])
def test_the_cost_of_a_training_started_from_a_viewer_is_capped(settings, steps, message):
    config = build_config("medium", **settings)
    if message is None:
        limits.check_cost(config, steps)
        return
    with pytest.raises(LLMBError) as err:
        limits.check_cost(config, steps)
    assert str(err.value).startswith(message)


def test_a_long_training_checkpoints_less_often_rather_than_more_than_the_cap():
    assert limits.checkpoint_interval(5000, 1000) == 1000
    assert limits.checkpoint_interval(10**9, 1000) == 1_001_002
    assert 10**9 // limits.checkpoint_interval(10**9, 1000) + 1 <= limits.MAX_RUN_CHECKPOINTS
    assert limits.checkpoint_interval(10**9, 0) == 0  # only at the end


def test_a_viewer_trains_only_on_bundled_corpora_and_its_own_uploads(tmp_path, monkeypatch):
    from llmb_mlflow.launch.uploads import store_upload

    monkeypatch.setenv("LLMB_UPLOAD_DIR", str(tmp_path / "uploads"))
    upload = store_upload("poem.txt", b"Shall I compare thee to a summer's day?\n" * 20)
    assert limits.corpus("alice") == "alice"
    assert limits.corpus(str(upload.path)) == str(upload.path)
    (tmp_path / "secret.txt").write_text("db_password = hunter2\n" * 50)
    for spec in (str(tmp_path / "secret.txt"), "/etc/passwd", "poem.txt", None):
        with pytest.raises(LLMBError, match="which is neither a bundled corpus nor a file uploaded here"):
            limits.corpus(spec, "leaky/1")


def test_resume_with_viewer_limits_checks_what_the_checkpoint_holds(store_uri, shakespeare, llmb):
    bard_library(store_uri, shakespeare)  # evaluates every 10 steps
    result = llmb("resume", "bard", "--viewer-limits", "--max-iters", "1000000")
    assert result.code == 1 and "steps / snapshot every makes 99999 snapshots" in result.err
    result = llmb("resume", "bard", "--viewer-limits", "--max-iters", "20", "--dataset", "/etc/passwd")
    assert result.code == 1 and "the corpus is 'passwd', which is neither a bundled corpus nor a file" in result.err
    from llmb_mlflow.library.reader import RunReader

    assert len(RunReader(store_uri).runs()) == 1  # bard's own run; nothing started
