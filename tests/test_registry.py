"""The model library against a real sqlite store, a real ``mlflow server`` (REST) on sqlite, and
one on PostgreSQL."""

import os
import pickle

import mlflow
import pytest

from llmb_mlflow.errors import LLMBError
from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.library.registry import ModelLibrary, parse_ref

from conftest import TINY_ARGS, train_tiny


@pytest.fixture
def trained(any_store, shakespeare):
    tracker = MlflowTracker(any_store)
    train_tiny(shakespeare, tracker, max_iters=30, checkpoint_interval=10)
    return any_store, tracker.run_id


def test_life_cycle(trained, llmb, use_store):
    uri, run_id = trained
    library = ModelLibrary(uri)
    assert library.checkpoint_steps(run_id) == [10, 20, 30]

    first = library.save(run_id, "life-bard")
    assert (first.version, first.step) == ("1", 30)
    assert first.val_loss == pytest.approx(RunReader(uri).value_at(run_id, "val_loss", 30), rel=1e-5)
    early = library.save(run_id, "life-bard", step=10)
    assert (early.version, early.step) == ("2", 10)
    [(name, versions)] = [m for m in library.models() if m[0] == "life-bard"]
    assert [v.version for v in versions] == ["2", "1"]
    assert versions[1].dataset == "shakespeare" and versions[1].run_id == run_id

    library.rename("life-bard", "life-poet")
    library.alias("life-poet", "1", "best")
    assert library.resolve("life-poet@best").step == 30
    assert library.resolve("models:/life-poet/2").step == 10
    assert library.resolve("life-poet").version == "2"

    use_store(uri)
    model = mlflow.pyfunc.load_model("models:/life-poet@best")
    [text] = model.predict(["ROMEO:"], params={"max_new_tokens": 25, "seed": 1})
    assert len(text) == 25
    assert model.predict(["ROMEO:"], params={"max_new_tokens": 25, "seed": 1}) == [text]

    result = llmb("resume", "life-poet@best", "--max-iters", "45", "--tracking-uri", uri)
    assert result.code == 0, result.err
    reader = RunReader(uri)
    new_run = reader.runs()[0]
    assert new_run.run_id != run_id and new_run.status == "FINISHED"
    assert new_run.tags["llmb.parent_run"] == run_id
    assert new_run.tags["llmb.model_version"] == "life-poet/1" and new_run.run_name == "life-poet-v1 (resumed)"
    assert reader.metric(new_run.run_id, "train_loss").steps.tolist() == list(range(31, 46))
    assert reader.metric(new_run.run_id, "val_loss").steps.tolist() == [40, 45]
    old_val = reader.value_at(run_id, "val_loss", 30)
    assert abs(reader.value_at(new_run.run_id, "val_loss", 40) - old_val) < 0.3

    assert library.delete("life-poet", "2") is False
    assert [v.version for v in dict(library.models())["life-poet"]] == ["1"]
    assert library.delete("life-poet") is True
    assert "life-poet" not in dict(library.models())


def test_generate_and_register_from_the_cli(store_uri, llmb):
    result = llmb("train", *TINY_ARGS, "--max-iters", "6", "--register", "cli-model")
    assert result.code == 0, result.err
    assert "Registered step 6 as model cli-model/1" in result.out
    generated = llmb("generate", "cli-model", "--prompt", "KING:", "--max-new-tokens", "30", "--seed", "4")
    assert generated.code == 0 and generated.out.startswith("KING:")
    assert len(generated.out) == len("KING:") + 30 + 1  # the continuation and echo's newline
    listing = llmb("models", "list")
    assert "cli-model" in listing.out and "shakespeare" in listing.out
    unknown = llmb("generate", "cli-model", "--prompt", "héllo ☃")
    assert unknown.code == 1 and "outside the model's vocabulary: 'é', '☃'" in unknown.err


def test_references_are_parsed_the_mlflow_way():
    assert parse_ref("bard") == ("bard", None, None)
    assert parse_ref("bard/3") == ("bard", "3", None)
    assert parse_ref("bard@best") == ("bard", None, "best")
    assert parse_ref("models:/bard/3") == ("bard", "3", None)
    assert parse_ref("models:/bard@champion") == ("bard", None, "champion")
    with pytest.raises(LLMBError, match="bad model reference"):
        parse_ref("bard/x/y")


class Exploit:
    """Unpickling this would create a marker file: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_malicious_pickle_planted_as_a_checkpoint_is_refused_and_never_run(
        store_uri, shakespeare, tmp_path, use_store):
    tracker = MlflowTracker(store_uri)
    train_tiny(shakespeare, tracker, max_iters=5)
    library = ModelLibrary(store_uri)
    library.save(tracker.run_id, "trojan")
    model_id = library.resolve("trojan").model_id
    folder = mlflow.MlflowClient(store_uri).get_logged_model(model_id).artifact_location.removeprefix("file://")
    planted = os.path.join(folder, "artifacts", "checkpoint.pt")
    marker = tmp_path / "pwned"
    with open(planted, "wb") as f:
        pickle.dump({"format": 1, "payload": Exploit(str(marker))}, f)
    with pytest.raises(LLMBError, match="corrupt or not an LLMBreaker checkpoint"):
        library.checkpoint("trojan")
    use_store(store_uri)
    with pytest.raises(Exception, match="corrupt or not an LLMBreaker checkpoint"):
        mlflow.pyfunc.load_model("models:/trojan/1")
    assert not marker.exists()
