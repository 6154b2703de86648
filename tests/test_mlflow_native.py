"""What MLflow itself sees of a training, through MLflow's own client, on a sqlite store, a real
``mlflow server`` and one on PostgreSQL: the experiment in model-training mode, every checkpoint
a READY logged model with its losses linked, registered versions sourced from them, the corpus
as the run's dataset input, a run state that says how the run ended, system metrics."""

import json

import mlflow
import pytest
from mlflow import MlflowClient

from llmb_mlflow.tracking.checkpoint_models import dataset_input
from llmb_mlflow.launch.launcher import launch
from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.library.registry import ModelLibrary
from llmb_mlflow.run_layout import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND

from conftest import SERVERS, TINY_ARGS, new_store, train_tiny, until

EXPERIMENT = "native"


@pytest.fixture(scope="module", params=["sqlite", *SERVERS])
def native_run(request, template_db, tmp_path_factory, shakespeare):
    """A finished tiny run with checkpoints at 10, 15, 20 and 25 and evaluations at 0, 10, 20, 25,
    trained once per store kind (a sqlite store, ``mlflow server`` on sqlite, on PostgreSQL) for
    the tests that read it."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "sqlite":
            folder = tmp_path_factory.mktemp("native")
            patch.chdir(folder)  # its ./mlruns
            uri = new_store(template_db, folder)
        else:
            uri = request.getfixturevalue(SERVERS[request.param])
        tracker = MlflowTracker(uri, EXPERIMENT)
        train_tiny(shakespeare, tracker, max_iters=25, checkpoint_interval=5)
    return uri, tracker.run_id


def checkpoints_of(client, run):
    return client.search_logged_models([run.info.experiment_id],
                                       filter_string=f"source_run_id = '{run.info.run_id}'")


def test_checkpoints_are_logged_models_with_their_losses(native_run):
    uri, run_id = native_run
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND

    models = sorted(checkpoints_of(client, run), key=lambda m: m.name)
    assert [m.name for m in models] == [f"step-{s:08d}" for s in (5, 10, 15, 20, 25)]
    history = {key: {m.step: m.value for m in client.get_metric_history(run_id, key)}
               for key in ("train_loss", "val_loss")}
    for model, step in zip(models, (5, 10, 15, 20, 25)):
        assert model.status.to_int() == mlflow.entities.LoggedModelStatus.READY.to_int()
        assert model.tags["llmb.step"] == str(step) and model.tags["llmb.dataset"] == "shakespeare"
        assert model.model_type == "MicroGPT" and model.params["n_layer"] == "2"
        linked = {m.key: m for m in model.metrics}
        assert linked["train_loss"].value == history["train_loss"][step] and linked["train_loss"].step == step
        evaluated = max(s for s in history["val_loss"] if s <= step)  # at its step, or the latest before
        assert linked["val_loss"].value == history["val_loss"][evaluated]
        assert model.tags.get("llmb.val_loss_step", str(step)) == str(evaluated)
        assert linked["val_loss"].dataset_name == "shakespeare" and linked["val_loss"].dataset_digest
        assert [f.path for f in client.list_logged_model_artifacts(model.model_id)].count("MLmodel") == 1
    # linking sent no second point: the run's history has each step once
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_loss")) == list(range(1, 26))
    assert sorted((o.step, o.model_id) for o in run.outputs.model_outputs) == \
        [(int(m.tags["llmb.step"]), m.model_id) for m in models]

    best_first = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'",
        order_by=[{"field_name": "metrics.val_loss", "ascending": True}])
    losses = [{m.key: m.value for m in model.metrics}["val_loss"] for model in best_first]
    assert losses == sorted(losses) and len(losses) == 5


def test_the_run_has_its_corpus_as_dataset_and_ends_with_a_true_state(native_run):
    uri, run_id = native_run
    run = MlflowClient(uri).get_run(run_id)
    [given] = run.inputs.dataset_inputs
    assert given.dataset.name == "shakespeare" and len(given.dataset.digest) == 8
    assert {t.key: t.value for t in given.tags} == {"mlflow.data.context": "training"}
    profile = json.loads(given.dataset.profile)
    assert profile["vocabulary"] == 65 and profile["characters"] == profile["train_characters"] + profile["val_characters"]
    assert json.loads(given.dataset.source)["uri"] == "llmb_mlflow/corpora/shakespeare.txt.gz"
    assert run.data.tags["llmb.state"] == "finished" and "llmb.heartbeat" not in run.data.tags


def test_a_saved_version_is_sourced_from_its_logged_model(native_run, use_store):
    uri, run_id = native_run
    client = MlflowClient(uri)
    version = ModelLibrary(uri).save(run_id, "native-bard", step=15)
    [model] = [m for m in checkpoints_of(client, client.get_run(run_id)) if m.tags["llmb.step"] == "15"]
    assert version.model_id == model.model_id
    assert client.get_model_version("native-bard", version.version).source == f"models:/{model.model_id}"
    links = json.loads(client.get_logged_model(model.model_id).tags["mlflow.modelVersions"])
    assert {"name": "native-bard", "version": version.version} in [
        {k: str(v) for k, v in link.items()} for link in links]
    assert ModelLibrary(uri).checkpoint("native-bard")[1]["step"] == 15
    use_store(uri)
    [text] = mlflow.pyfunc.load_model("models:/native-bard/1").predict(["ROMEO:"], params={"max_new_tokens": 5})
    assert len(text) == 5
    ModelLibrary(uri).delete("native-bard")


def test_an_experiment_someone_else_made_gets_the_kind_once_and_a_set_kind_is_kept(store_uri, shakespeare):
    client = MlflowClient(store_uri)
    plain = client.create_experiment("made-elsewhere")
    genai = client.create_experiment("genai-work", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    train_tiny(shakespeare, MlflowTracker(store_uri, "made-elsewhere"), max_iters=3)
    train_tiny(shakespeare, MlflowTracker(store_uri, "genai-work"), max_iters=3)
    assert client.get_experiment(plain).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    assert client.get_experiment(genai).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_a_file_corpus_is_a_local_dataset(tmp_path):
    from llmb_mlflow.training.corpus import load_corpus, prepare_dataset

    path = tmp_path / "poem.txt"
    path.write_text("the quick brown fox jumps over the lazy dog\n" * 20)
    given = dataset_input(prepare_dataset(load_corpus(str(path)), 16))
    assert (given.dataset.name, given.dataset.source_type) == ("poem.txt", "local")
    assert json.loads(given.dataset.source)["uri"] == str(path.resolve())


def test_the_command_is_the_runs_source_and_system_metrics_are_logged(store_uri, llmb, monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")  # MLflow's own setting; 10 s by default
    training = launch(["train", *TINY_ARGS, "--max-iters", "100000", "--eval-interval", "1000"], store_uri)
    client = MlflowClient(store_uri)

    def sampled():
        return client.get_metric_history(training.run_id, "system/process_memory_rss_megabytes")

    try:  # sampled while it trains (a training of seconds may end before its helper samples)
        memory = until(sampled, what="system metrics")
    finally:
        llmb("runs", "stop", training.run_id)
        training.process.wait(timeout=60)
    assert client.get_run(training.run_id).data.tags["mlflow.source.name"] == "llmb train"
    assert all(point.value > 50 for point in memory)  # torch alone takes more
    assert client.get_metric_history(training.run_id, "system/cpu_utilization_percentage")
    quiet = llmb("train", *TINY_ARGS, "--max-iters", "5", "--eval-interval", "5", "--no-system-metrics")
    assert quiet.code == 0, quiet.err
    newest = RunReader(store_uri).runs()[0]
    assert not [k for k in newest.latest if k.startswith("system/")]


class EndsAtStep7(MlflowTracker):
    """A real tracker whose training is interrupted (as Ctrl-C does) or fails at step 7."""

    def __init__(self, *args, error, **kwargs):
        super().__init__(*args, **kwargs)
        self.error = error

    def log_metrics(self, step, metrics):
        super().log_metrics(step, metrics)
        if step == 7 and "train_loss" in metrics:  # the trainer's call, not the writer's own
            raise self.error


@pytest.mark.parametrize("error, status, state", [
    (KeyboardInterrupt(), "KILLED", "stopped"), (RuntimeError("simulated failure"), "FAILED", "failed")])
def test_an_ended_run_says_how_it_ended(any_store, shakespeare, error, status, state):
    tracker = EndsAtStep7(any_store, EXPERIMENT, error=error)
    with pytest.raises(type(error)):
        train_tiny(shakespeare, tracker)
    run = MlflowClient(any_store).get_run(tracker.run_id)
    assert run.info.status == status and run.data.tags["llmb.state"] == state
    assert "llmb.heartbeat" not in run.data.tags
    if status == "KILLED":  # a stopped training checkpoints first
        assert RunReader(any_store).checkpoint_steps(tracker.run_id) == [7]


def test_a_checkpoint_stored_again_after_a_lost_answer_makes_no_second_logged_model(store_uri, shakespeare, tmp_path):
    from llmb_mlflow.training import checkpoint
    from llmb_mlflow.tracking.checkpoint_models import CheckpointModels
    from llmb_mlflow.training.tracker import RunDescription

    tracker = MlflowTracker(store_uri, EXPERIMENT)
    trainer = train_tiny(shakespeare, tracker, max_iters=5)
    client = MlflowClient(store_uri)
    run = client.get_run(tracker.run_id)
    [model] = checkpoints_of(client, run)
    models = CheckpointModels(client)
    models.describe(run.info.run_id, run.info.experiment_id,
                    RunDescription(params=trainer.describe(), dataset=trainer.dataset), run.data.tags)
    models._tried.add(5)  # as if the first attempt's answer had been lost
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(checkpoint.dump(trainer))
    models.store(5, str(path), str(tmp_path))
    models._log_output(model.model_id, 5)  # MLflow refuses the same output twice: that is fine
    assert [m.model_id for m in checkpoints_of(client, run)] == [model.model_id]
    assert [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs] == [model.model_id]
