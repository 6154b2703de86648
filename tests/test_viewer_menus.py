"""The pure parts of the viewer's Models and New training menus."""

import base64

import pytest

from dash_app.panels import models, training
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.registry import Version


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


def test_training_args_pass_only_the_settings_given():
    args = training.training_args("alice", "baby", {"max_iters": 300, "lr": None, "dropout": 0.1},
                                  "exp", "my run")
    assert args == ["train", "--dataset", "alice", "--preset", "baby", "--experiment", "exp",
                    "--max-iters", "300", "--dropout", "0.1", "--run-name", "my run"]
    assert training.training_args("shakespeare", "small", {}, "llmbreaker", None)[-2:] == ["--experiment", "llmbreaker"]


@pytest.mark.parametrize("values, message", [
    ({"lr": 0}, "lr must be in (0, 1], got 0"),
    ({"max_iters": 2.5}, "max_iters must be an integer, got 2.5"),
    ({"batch_size": 0}, "batch_size must be between 1 and 65536, got 0"),
    ({"dropout": 1}, "dropout must be in [0, 1), got 1"),
    ({"temperature": -1}, "temperature must be in (0, 10], got -1"),
])
def test_training_args_refuse_bad_settings_in_one_line(values, message):
    with pytest.raises(LLMBError) as err:
        training.training_args("shakespeare", "small", values, "llmbreaker", None)
    assert str(err.value) == message


def test_uploads_decode_or_say_they_arrived_broken():
    raw = "hello\n".encode()
    payload = {"contents": "data:text/plain;base64," + base64.b64encode(raw).decode(), "filename": "a.txt"}
    assert training.decode_upload(payload) == ("a.txt", raw)
    with pytest.raises(LLMBError, match="a.txt did not arrive intact; try again"):
        training.decode_upload({"contents": "data:text/plain;base64,@@@", "filename": "a.txt"})


def test_load_wants_a_positive_whole_number_of_steps(store_uri):
    from llmb_mlflow.registry import ModelLibrary

    for bad in (0, -5, None, 2.5):
        with pytest.raises(LLMBError, match="whole number of at least 1"):
            models.load_version(ModelLibrary(store_uri), store_uri, "bard/1", bad, "llmbreaker")
