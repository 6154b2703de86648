"""Bad input to the model library: one line on stderr, a non-zero exit, the registry unchanged."""

import os
import re

import pytest
from mlflow import MlflowClient

from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
from llmb_mlflow.library.registry import ModelLibrary
from llmb_mlflow.training.tracker import RunDescription

from bad_settings import OUT_OF_RANGE
from conftest import train_tiny
from stores import built_once


@pytest.fixture
def library(store_uri, shakespeare):
    """A store with one trained run (checkpoints at 5 and 10) saved as poet/1 and bard/1 (trained
    once, copied into each test's store)."""
    def build():
        tracker = MlflowTracker(store_uri)
        train_tiny(shakespeare, tracker, max_iters=10, checkpoint_interval=5)
        library = ModelLibrary(store_uri)
        library.save(tracker.run_id, "poet")
        library.save(tracker.run_id, "bard", step=5)
        return tracker.run_id

    library = ModelLibrary(store_uri)
    library.run_id = built_once(store_uri, "poet-and-bard", build)
    return library


def state(library):
    return [(name, [(v.version, v.step, v.aliases) for v in versions])
            for name, versions in library.models()]


def checkpoint_file(library, step):
    """Where the checkpoint of ``step`` lies: in its logged model's folder."""
    [found] = [c for c in library.reader.checkpoints(library.run_id) if c.step == step]
    folder = MlflowClient(library.uri).get_logged_model(found.model_id).artifact_location
    return os.path.join(folder.removeprefix("file://"), "artifacts", "checkpoint.pt")


def check_refused(llmb, library, args, message):
    before = state(library)
    result = llmb(*args)
    assert result.code != 0
    assert message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert state(library) == before
    return result


@pytest.mark.parametrize("name, message", [
    ("a/b", "may not contain '/', ':' or '@'"),
    ("a:b", "may not contain '/', ':' or '@'"),
    ("a@b", "may not contain '/', ':' or '@'"),
    ("", "model name is empty"),
    ("   ", "model name is empty"),
])
def test_bad_names(llmb, library, name, message):
    check_refused(llmb, library, ["models", "save", library.run_id, "--name", name], message)
    check_refused(llmb, library, ["models", "rename", "poet", name], message)


def test_rename_onto_an_existing_name(llmb, library):
    check_refused(llmb, library, ["models", "rename", "poet", "bard"], "a model named 'bard' already exists")


@pytest.mark.parametrize("args, message", [
    (["models", "rename", "ghost", "spirit"], "no model named 'ghost'"),
    (["models", "delete", "ghost", "--yes"], "no model named 'ghost'"),
    (["models", "delete", "poet", "--version", "7", "--yes"], "model 'poet' has no version 7"),
    (["generate", "ghost", "--prompt", "a"], "no model named 'ghost'"),
    (["generate", "poet/9", "--prompt", "a"], "model 'poet' has no version 9"),
    (["generate", "poet@nope", "--prompt", "a"], "model 'poet' has no alias 'nope'"),
    (["resume", "ghost/1"], "no model named 'ghost'"),
    (["models", "alias", "poet", "5", "best"], "model 'poet' has no version 5"),
    (["models", "alias", "poet", "1", "bad alias"], "bad alias 'bad alias'"),
    (["models", "save", "0123456789abcdef0123456789abcdef", "--name", "x"], "no run with id"),
])
def test_missing_models_versions_and_runs(llmb, library, args, message):
    check_refused(llmb, library, args, message)


def test_step_without_a_checkpoint(llmb, library):
    check_refused(llmb, library, ["models", "save", library.run_id, "--name", "x", "--step", "7"],
                  "has no checkpoint at step 7; it has: 5, 10")


def test_a_run_without_checkpoints(llmb, library):
    tracker = MlflowTracker(library.uri)
    tracker.start(RunDescription(params={"dataset": "shakespeare"}))
    tracker.finish("KILLED")
    check_refused(llmb, library, ["models", "save", tracker.run_id, "--name", "x"],
                  f"run {tracker.run_id} has no checkpoints yet")


def test_a_run_that_is_not_ours(llmb, library):
    client = MlflowClient(library.uri)
    run = client.create_run(client.get_experiment_by_name("llmbreaker").experiment_id)
    check_refused(llmb, library, ["models", "save", run.info.run_id, "--name", "x"],
                  "is not an LLMBreaker training run")


def test_missing_and_corrupt_checkpoint_artifacts(llmb, library):
    os.remove(checkpoint_file(library, 5))
    with open(checkpoint_file(library, 10), "r+b") as f:
        f.truncate(1000)
    check_refused(llmb, library, ["generate", "bard", "--prompt", "a"],
                  "checkpoint of model bard/1 is missing from the artifact store")
    check_refused(llmb, library, ["resume", "poet", "--max-iters", "20"],
                  "checkpoint of model poet/1 is corrupt or not an LLMBreaker checkpoint")


@pytest.mark.parametrize("args, message", [
    (["--max-iters", "20", "--n-embd", "32"], "--n-embd 32 does not fit the checkpoint, whose model has 16; leave it out"),
    (["--max-iters", "20", "--n-layer", "3"], "--n-layer 3 does not fit the checkpoint"),
    (["--max-iters", "20", "--block-size", "64"], "--block-size 64 does not fit the checkpoint"),
    (["--max-iters", "10"], "--max-iters must be greater than the checkpoint's step 10"),
    ([], "poet/1 is at step 10, its training's last; give --max-iters greater than 10"),
    (["--max-iters", "20", "--lr", "0"], "--lr must be in (0, 1], got 0.0"),
    (["--max-iters", "20", "--dataset", "alice"], "has characters the model does not know"),
])
def test_resume_with_settings_that_do_not_fit(llmb, library, args, message):
    runs_before = len(MlflowClient(library.uri).search_runs(
        [MlflowClient(library.uri).get_experiment_by_name("llmbreaker").experiment_id]))
    check_refused(llmb, library, ["resume", "poet", *args], message)
    runs_after = len(MlflowClient(library.uri).search_runs(
        [MlflowClient(library.uri).get_experiment_by_name("llmbreaker").experiment_id]))
    assert runs_after == runs_before


def test_every_setting_error_of_resume_and_generate_names_its_option(llmb, library):
    for flag, (value, _) in OUT_OF_RANGE.items():
        result = check_refused(llmb, library, ["resume", "poet", "--max-iters", "20", flag, value], "")
        assert result.code == 1 and result.err.startswith(f"Error: {flag} "), result.err
    for args, message in [(["--temperature", "0"], "--temperature must be in (0, 10], got 0.0"),
                          (["--max-new-tokens", "0"], "--max-new-tokens must be between 1 and 100000, got 0")]:
        result = check_refused(llmb, library, ["generate", "poet", "--prompt", "a", *args], message)
        assert result.err == f"Error: {message}\n"


def test_delete_asks_for_confirmation(llmb, library, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    result = llmb("models", "delete", "poet")
    assert result.code != 0 and "poet" in dict(library.models())


def test_deleting_a_models_last_version_says_the_model_went_with_it(llmb, library):
    library.save(library.run_id, "bard", step=10)
    result = llmb("models", "delete", "bard", "--version", "1", "--yes")
    assert result.code == 0 and result.out == "Deleted version 1 of model bard.\n"
    result = llmb("models", "delete", "bard", "--version", "2", "--yes")
    assert result.out == "Deleted version 2 of model bard; it was the last, so model bard is gone too.\n"
    assert [name for name, _ in library.models()] == ["poet"]


@pytest.mark.parametrize("args", [
    ["models", "list"], ["models", "save", "abc", "--name", "x"], ["generate", "poet", "--prompt", "a"],
    ["resume", "poet"], ["models", "rename", "a", "b"], ["models", "delete", "a", "--yes"],
])
def test_a_server_that_is_down(llmb, args):
    result = llmb(*args, "--tracking-uri", "http://127.0.0.1:9")
    assert result.code == 1
    assert re.fullmatch(r"Error: tracking server http://127\.0\.0\.1:9 is unreachable \(.*"
                        r"(Connection refused|Failed to establish a new connection).*\)\n", result.err), result.err


def test_names_with_quotes_or_backslashes_are_found_and_listed(library):
    for name in ("o'neil", "a\\b", "x\\", 'say "hi"'):
        library.save(library.run_id, name)
        assert [v.version for v in library.versions(name)] == ["1"] and library.resolve(name).name == name
    assert {"o'neil", "a\\b", "x\\", 'say "hi"'} <= {name for name, _ in library.models()}


def test_a_version_whose_tags_someone_else_wrote_still_lists(library):
    version = library.resolve("poet")
    for key, value in (("step", "lots"), ("val_loss", "low"), ("train_loss", "9" * 400)):
        MlflowClient(library.uri, registry_uri=library.uri).set_model_version_tag("poet", version.version, key, value)
    shown = library.resolve("poet")
    assert (shown.step, shown.val_loss) == (0, None) and shown.train_loss == float("9" * 400)


def test_a_save_asked_again_with_its_token_happens_once(library):
    """The viewer polls on while a save is under way: asked at the same moment, the others hear
    at once that it is under way; asked again later, they get the version saved the first time."""
    from concurrent.futures import ThreadPoolExecutor

    from llmb_mlflow.library.registry import SaveUnderWay

    token = "0123456789abcdef0123456789abcdef"

    def save(_):
        try:
            return library.save(library.run_id, "once", once=token).version
        except SaveUnderWay as exc:
            return str(exc)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(save, range(4)))
    assert set(answers) <= {"1", "a save as once is under way"} and "1" in answers
    assert library.save(library.run_id, "once", once=token).version == "1"
    assert [v.version for v in library.versions("once")] == ["1"]
    again = library.save(library.run_id, "once", once="f" * 32)  # another token, the same checkpoint
    assert (again.version, again.already) == ("1", True)
    assert library.save(library.run_id, "once", step=5, once="e" * 32).version == "2"  # another checkpoint


def test_saving_a_checkpoint_saved_before_says_so_and_registers_nothing(llmb, library):
    result = llmb("models", "save", library.run_id, "--name", "poet")  # poet/1 is the latest checkpoint
    assert result.code == 0 and "is already saved as poet/1 (models:/poet/1); nothing new was registered" \
        in result.out, result.out
    assert [v.version for v in library.versions("poet")] == ["1"]
    assert llmb("models", "save", library.run_id, "--name", "poet", "--step", "5").out.startswith(
        f"Saved step 5 of run {library.run_id} as poet/2")
