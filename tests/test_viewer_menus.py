"""The pure parts of the viewer's Models and New training menus."""

import base64

import pytest

from dash_app.panels import models, training
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.library.registry import Version


def version(name, number, step, **extra):
    return Version(name=name, version=str(number), step=step, train_loss=extra.get("train"),
                   val_loss=extra.get("val"), dataset="shakespeare", preset="small", run_id="r",
                   source="runs:/r/x", aliases=tuple(extra.get("aliases", ())), created=number)


def rendered(components) -> str:
    return str(components)


def rows(components):
    return [row for row in components[0].children if "model-row" == getattr(row, "className", None)]


LISTING = [("bard", [version("bard", 2, 12, train=1.5, val=1.61, aliases=["best"]), version("bard", 1, 6)]),
           ("owl", [version("owl", 1, 100)])]


def test_the_table_lists_every_version_with_its_numbers_and_actions():
    table = models.models_table(LISTING)
    found = rows(table)
    assert [(getattr(r, "data-model"), getattr(r, "data-version")) for r in found] == [
        ("bard", "2"), ("bard", "1"), ("owl", "1")]
    text = rendered(table)
    assert "1.500" in text and "1.610" in text and "best" in text
    assert text.count("'action': 'load'") == 3 and text.count("'action': 'delete'") == 3
    assert text.count("'action': 'rename'") == 2  # once per model, on its newest row
    assert "href='?run=r&tab=playground&step=12'" in text and text.count("Try") == 3  # the playground, at its step


def test_the_table_edits_one_name_and_asks_before_deleting():
    text = rendered(models.models_table(LISTING, renaming="owl"))
    assert "'type': 'rename-input', 'model': 'owl'" in text and "'type': 'rename-input', 'model': 'bard'" not in text
    assert "'action': 'rename', 'model': 'owl'" not in text
    text = rendered(models.models_table(LISTING, deleting={"model": "bard", "version": "1"}))
    assert "Delete version 1 of bard? " in text and "'action': 'delete-yes', 'model': 'bard', 'version': '1'" in text
    text = rendered(models.models_table(LISTING, deleting={"model": "owl", "version": "1"}))
    assert "Delete owl (its only version)? " in text


def test_an_empty_library_says_so():
    assert "No saved models yet." in rendered(models.models_table([]))


def test_the_shown_runs_checkpoints_in_one_line():
    from llmb_mlflow.library.reader import Checkpoint

    few = [Checkpoint(s, f"m-{s}", f"step-{s:08d}") for s in (1000, 2000)]
    assert models.checkpoints_line(few) == ("The shown run has 2 checkpoints (step 1,000, 2,000), "
                                            "each an MLflow logged model.")
    many = [Checkpoint(s, f"m-{s}", "") for s in range(100, 1100, 100)]
    assert "10 checkpoints (step 100, 200, 300, …, 900, 1,000)" in models.checkpoints_line(many)
    assert models.checkpoints_line([]) == "The shown run has no checkpoint yet."


def test_training_args_pass_only_the_settings_given_each_bound_to_its_option():
    args = training.training_args("alice", "baby", {"max_iters": 300, "lr": None, "dropout": 0.1},
                                  "exp", "my run")
    assert args == ["train", "--dataset=alice", "--preset=baby", "--experiment=exp", "--max-iters=300",
                    "--dropout=0.1", "--checkpoint-interval=1000", "--run-name=my run"]
    assert training.training_args("shakespeare", "small", {"lr": ""}, "llmbreaker", None) == [
        "train", "--dataset=shakespeare", "--preset=small", "--experiment=llmbreaker", "--checkpoint-interval=1000"]


def test_a_long_training_from_the_page_checkpoints_less_often_to_stay_within_the_cap():
    args = training.training_args("shakespeare", "small", {"max_iters": 2_000_000, "eval_interval": 1000},
                                  "llmbreaker", None)
    assert "--checkpoint-interval=2003" in args  # 999 checkpoints on the way, and the last


@pytest.mark.parametrize("corpus, preset, values, run_name, message", [
    ("shakespeare", "small", {"lr": 0}, None, "learning rate must be in (0, 1], got 0"),
    ("shakespeare", "small", {"max_iters": 2.5}, None, "steps must be a whole number (got 2.5)"),
    ("shakespeare", "small", {"max_iters": "300"}, None, "steps must be a number (got '300')"),
    ("shakespeare", "small", {"batch_size": True}, None, "batch must be a number (got True)"),
    ("shakespeare", "small", {"batch_size": 0}, None, "batch must be between 1 and 65536, got 0"),
    ("shakespeare", "small", {"lr": float("inf")}, None, "learning rate must be a finite number (got inf)"),
    ("shakespeare", "small", {"dropout": 1}, None, "dropout must be in [0, 1), got 1"),
    ("shakespeare", "small", {"temperature": -1}, None, "temperature must be in (0, 10], got -1"),
    ("shakespeare", "small", {"block_size": 1}, None, "context must be between 2 and 4096, got 1"),
    ("shakespeare", "small", {"max_iters": 10**400}, None, "steps is far out of range (got 1" + "0" * 56 + "...)"),
    ("shakespeare", "small", {"batch_size": 512, "block_size": 128}, None,
     "batch × context is 512 × 128 = 65536 characters per step; a training started here may use at most 32768"),
    ("shakespeare", "small", {"max_iters": 100_000, "eval_interval": 5}, None,
     "steps / snapshot every makes 20001 snapshots; a training started here may make at most 10000"),
    ("/etc/passwd", "small", {}, None,
     "corpus must be one of shakespeare, alice, turmoil or a file uploaded here (got '/etc/passwd')"),
    ("--tracking-uri=http://example.com", "small", {}, None,
     "corpus must be one of shakespeare, alice, turmoil or a file uploaded here (got '--tracking-uri=http://example.com')"),
    ("shakespeare", "huge", {}, None, "model must be one of small, medium, large, baby, demo (got 'huge')"),
    ("shakespeare", "small", {}, "--tracking-uri=x", "run name may not start with '-' (got '--tracking-uri=x')"),
    ("shakespeare", "small", {}, "a\nb", "run name may not contain control characters (got 'a\\nb')"),
    ("shakespeare", "small", {}, ["x"], "run name must be text (got ['x'])"),
])
def test_training_args_refuse_what_a_stranger_might_send_in_one_line(corpus, preset, values, run_name, message):
    with pytest.raises(LLMBError) as err:
        training.training_args(corpus, preset, values, "llmbreaker", run_name)
    assert str(err.value) == message


def test_uploads_decode_or_say_they_are_malformed():
    raw = "hello\n".encode()
    payload = {"contents": "data:text/plain;base64," + base64.b64encode(raw).decode(), "filename": "a.txt"}
    assert training.decode_upload(payload) == ("a.txt", raw)
    with pytest.raises(LLMBError) as err:
        training.decode_upload({"contents": "data:text/plain;base64,@@@", "filename": "a.txt"})
    assert str(err.value) == "the upload is malformed (the contents of 'a.txt' are not base64)"
