"""The viewer trusts nothing a request sends: callback requests crafted without a browser (any
value for any input, as a script posts them) get a one-line refusal, start no process and
write nothing, in ``llmb dash`` and in ``mlflow server --app-name llmbreaker`` alike."""

import socket
import time

import pytest

from browser import kill_trainers, serve
from conftest import bard_library, train_tiny
from dash_requests import CallbackPoster, pattern_trigger

SECRET = "db_password = hunter2\n" * 200
POEM = "Shall I compare thee to a summer's day?\n" * 40
OPTION_LIKE = "--tracking-uri=http://127.0.0.1:9"
GOOD_FORM = {"train-corpus.value": "shakespeare", "train-preset.value": "small",
             "experiment.value": "llmbreaker", "train-max-iters.value": 100000,
             "train-batch-size.value": 4, "train-block-size.value": 16, "train-eval-interval.value": 50}


def footprint(uri, folder):
    """Everything a request could have changed: experiments, runs and their tags, registered
    models and versions, the viewer's upload and log folders, trainings this process started."""
    import psutil
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(uri, registry_uri=uri)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    runs = client.search_runs([e.experiment_id for e in experiments], run_view_type=ViewType.ALL)
    return {
        "experiments": sorted(e.name for e in experiments),
        "runs": sorted((r.info.run_id, r.info.status, sorted(r.data.tags.items())) for r in runs),
        "models": sorted((m.name, sorted(m.tags.items())) for m in client.search_registered_models()),
        "versions": sorted((v.name, v.version, v.current_stage) for v in client.search_model_versions()),
        "files": sorted(str(p.relative_to(folder)) for sub in ("uploads", "logs")
                        for p in (folder / sub).rglob("*") if (folder / sub).exists()),
        "trainings": sorted(p.pid for p in psutil.Process().children(recursive=True) if _training(p, uri)),
    }


def _training(process, uri) -> bool:
    """A training of this store's (other descendants, such as a session server's workers, come
    and go; an earlier test's training may still be finishing its last checkpoint)."""
    import psutil

    from llmb_mlflow.processes import is_training

    try:
        return is_training(process.cmdline()) and process.environ().get("MLFLOW_TRACKING_URI") == uri
    except psutil.Error:
        return False


def refused(answer, prefix, excerpt=""):
    """The toast says ``prefix`` ... ``excerpt`` in one short line, and nothing was switched to."""
    assert answer.status == 200, answer.text[:300]
    toast = answer.outputs.get("toast.children", "")
    assert toast.startswith(prefix) and excerpt in toast, toast
    assert "\n" not in toast and len(toast) < 400, toast
    assert answer.outputs.get("toast.className") == "toast error"
    assert "switch-run.data" not in answer.outputs and not answer.outputs.get("pending-launch.data")
    return toast


def followed(viewer, answer, timeout=150):
    """The answer that ends a training the page started: the page polls until it has its run."""
    waiting = answer.outputs["pending-launch.data"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = viewer.post("launch-poll.n_intervals", {"launch-poll.n_intervals": 1,
                                                         "pending-launch.data": waiting})
        if answer.status == 200 and "toast.children" in answer.outputs:
            return answer
        time.sleep(0.5)  # the page's own poll interval
    raise AssertionError("the started training neither got its run nor failed")


def test_new_training_trains_only_on_a_bundled_corpus_or_an_upload_the_viewer_stored(
        viewer, store_uri, tmp_path):
    from llmb_mlflow.launch.uploads import store_upload

    secret = tmp_path / "secret.cfg"
    secret.write_text(SECRET)
    stored = store_upload("poem.txt", POEM.encode())
    digest = stored.path.parent.name
    (stored.path.parent / "planted.txt").write_text(SECRET)  # in the upload folder, not stored by it
    before = footprint(store_uri, tmp_path)
    crafted = [str(secret), str(stored.path), str(stored.path.parent / "planted.txt"), "../secret.cfg",
               "../../../../../../etc/passwd", "~/secret.cfg", "/etc/passwd", f"{digest}/poem.txt",
               OPTION_LIKE, "--dataset=/etc/passwd", "x" * 1_000_000, {"path": str(secret)},
               ["shakespeare"], 7, None, f"upload:{digest}/../../../secret.cfg"]
    refusal = "corpus must be one of shakespeare, alice, turmoil or a file uploaded here (got "
    for corpus in crafted:
        form = {**GOOD_FORM, "train-corpus.value": corpus, "train-start.n_clicks": 1}
        answer = viewer.post("train-start.n_clicks", form)
        toast = refused(answer, "Could not start: " + refusal)
        assert "hunter2" not in toast
        assert answer.set == {"toast.children": toast, "toast.className": "toast error"}  # set besides the outputs
    for upload_id in (f"upload:{digest}/planted.txt",
                      f"upload:{digest}/missing.txt", "upload:0123456789abcdef/poem.txt"):
        refused(viewer.post("train-start.n_clicks", {**GOOD_FORM, "train-corpus.value": upload_id,
                                                     "train-start.n_clicks": 1}),
                "Could not start: no uploaded corpus ", "upload the file again")
    assert footprint(store_uri, tmp_path) == before


@pytest.mark.parametrize("field, value, message", [
    ("train-preset.value", "huge", "model must be one of small, medium, large, baby, demo (got 'huge')"),
    ("train-preset.value", "--dataset=/etc/passwd", "model must be one of"),
    ("experiment.value", OPTION_LIKE, f"experiment may not start with '-' (got '{OPTION_LIKE}')"),
    ("experiment.value", "someone-elses", "no experiment named 'someone-elses' in the store"),
    ("experiment.value", "x" * 100_000, "experiment is 100000 characters long; the limit is 250"),
    ("experiment.value", {"name": "llmbreaker"}, "experiment must be text (got {'name': 'llmbreaker'})"),
    ("train-run-name.value", OPTION_LIKE, "run name may not start with '-'"),
    ("train-run-name.value", "x" * 100_000, "run name is 100000 characters long"),
    ("train-run-name.value", "run\x00name", "run name may not contain control characters"),
    ("train-max-iters.value", "1; rm -rf ~", "steps must be a number (got '1; rm -rf ~')"),
    ("train-max-iters.value", -5, "steps must be between 1 and 1000000000, got -5"),
    ("train-batch-size.value", [64], "batch must be a number (got [64])"),
    ("train-batch-size.value", 4096, "batch × context is 4096 × 16 = 65536 characters per step"),
    ("train-lr.value", float("nan"), "learning rate must be a finite number (got nan)"),
    ("train-eval-interval.value", 1, "steps / snapshot every makes 100001 snapshots"),
    ("train-block-size.value", 100_000, "context must be between 2 and 4096, got 100000"),
    ("train-dropout.value", True, "dropout must be a number (got True)"),
    ("train-temperature.value", "hot", "temperature must be a number (got 'hot')"),
])
def test_new_training_checks_every_setting_and_name_as_a_stranger_typed_it(
        viewer, store_uri, tmp_path, field, value, message):
    before = footprint(store_uri, tmp_path)
    refused(viewer.post("train-start.n_clicks", {**GOOD_FORM, field: value, "train-start.n_clicks": 1}),
            "Could not start: " + message)
    assert footprint(store_uri, tmp_path) == before


def test_uploads_are_checked_on_the_server_kept_inside_the_upload_folder_and_named_by_id(
        viewer, store_uri, tmp_path):
    import base64

    from dash_app.panels.training import MAX_UPLOAD_CHARS

    def payload(filename, raw=POEM.encode()):
        return {"filename": filename, "contents": "data:text/plain;base64," + base64.b64encode(raw).decode()}

    before = footprint(store_uri, tmp_path)
    for bad, message in [("poem.txt", "the upload is malformed (got 'poem.txt')"),
                         ({"filename": ["a.txt"], "contents": "x"}, "the upload is malformed"),
                         ({"filename": "big.txt", "contents": "data:text/plain;base64," + "A" * MAX_UPLOAD_CHARS},
                          "'big.txt' is larger than the 20 MB limit"),
                         (payload("secret.cfg"), "upload a .txt file (got 'secret.cfg')")]:
        refused(viewer.post("upload-payload.data", {"upload-payload.data": bad}), "Could not upload: " + message)
    assert footprint(store_uri, tmp_path) == before

    crafted_list = [{"label": "passwords", "value": "/etc/passwd"}, "junk", {"label": "x" * 10, "value": 5}]
    answer = viewer.post("upload-payload.data", {"upload-payload.data": payload("../../../../outside.txt"),
                                                 "uploaded.data": crafted_list})
    assert answer.outputs["toast.children"].startswith("Uploaded outside.txt")
    assert answer.set["toast.children"] == answer.outputs["toast.children"]  # set besides the outputs
    stored_id = answer.outputs["train-corpus.value"]
    assert stored_id.startswith("upload:") and stored_id.endswith("/outside.txt") and str(tmp_path) not in answer.text
    assert [o["value"] for o in answer.outputs["uploaded.data"]] == [stored_id]
    assert [p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("outside.txt")] == ["uploads"]


def test_the_models_menu_resolves_every_reference_through_the_registry(viewer, store_uri, tmp_path, shakespeare):
    from mlflow import MlflowClient

    bard_library(store_uri, shakespeare)
    MlflowClient(store_uri, registry_uri=store_uri).create_registered_model("foreign")  # someone else's model, not ours
    before = footprint(store_uri, tmp_path)

    def act(action, model, version="1", **values):
        button = {"type": "model-action", "action": action, "model": model, "version": version}
        return viewer.post(pattern_trigger(button, "n_clicks"),
                           {"model-action.n_clicks": [(button, 1)], "load-steps.value": 10,
                            "experiment.value": "llmbreaker", **values})

    unknown = act("launch", "bard")
    refused(unknown, "Could not do that: model action must be one of rename, delete")
    assert unknown.set.keys() == {"toast.children", "toast.className"}  # set besides the outputs (set_props)
    refused(act("delete", "foreign"), "Could not delete foreign/1: registered model 'foreign' is not an LLMBreaker model")
    refused(act("load", "foreign"), "Could not load foreign/1: registered model 'foreign' is not an LLMBreaker model")
    refused(act("load", "../../etc"), "Could not do that: model name '../../etc' may not contain '/'")
    refused(act("load", "--seed=1"), "Could not load --seed=1/1: model may not start with '-' (got '--seed=1/1')")
    refused(act("delete-yes", 123), "Could not do that: model name must be text (got 123)")
    refused(act("load", "bard", version="1 --seed=1"), "Could not do that: model version '1 --seed=1' is not a version number")
    refused(act("load", "bard", version="9"), "Could not load bard/9: model 'bard' has no version 9")
    for steps in (-1, 10**12, None):
        refused(act("load", "bard", **{"load-steps.value": steps}),
                "Could not load bard/1: the number of more steps to train must be a whole number from 1 to")
    for steps in ("5", True, 2.5, 10**400):
        refused(act("load", "bard", **{"load-steps.value": steps}), "Could not load bard/1: the number of more steps")
    refused(act("load", "bard", **{"load-steps.value": 200_000}),
            "Could not load bard/1: steps / snapshot every makes 20001 snapshots")
    refused(act("delete", "bard", version="9"), "Could not delete bard/9: model 'bard' has no version 9")
    asked = act("delete", "bard", version="2").outputs["deleting.data"]  # the confirm step's token, for version 2
    for deleting in (None, {"model": "bard", "version": "1"}, {**asked, "version": "1"},
                     {"model": "bard", "version": "1", "token": "1700000000." + "0" * 64},
                     {"model": "bard", "version": "1", "token": 5}):
        refused(act("delete-yes", "bard", **{"deleting.data": deleting}), "Could not delete bard/1: this was not confirmed")
    refused(act("load", "bard", version="\u0661"), "Could not do that: model version")
    refused(act("load", "bard", **{"experiment.value": OPTION_LIKE}), "Could not load bard/1: experiment may not start with '-'")
    refused(act("load", "bard", **{"experiment.value": "nope"}), "Could not load bard/1: no experiment named 'nope'")

    def rename(model, new):
        field = {"type": "rename-input", "model": model}
        return viewer.post(pattern_trigger(field, "n_submit"),
                           {"rename-input.n_submit": [(field, 1)], "rename-input.value": [(field, new)]})

    refused(rename("foreign", "mine"), "Could not rename foreign: registered model 'foreign' is not an LLMBreaker model")
    refused(rename("bard", "a/b"), "Could not rename bard: model name 'a/b' may not contain")
    refused(rename("bard", ["x"]), "Could not rename bard: new model name must be text")
    refused(rename("x" * 100_000, "y"), "Could not rename 'xxxxxxx", "at most 200 characters")
    assert footprint(store_uri, tmp_path) == before


def test_load_trains_on_an_uploaded_corpus_but_never_on_another_file_the_store_names(
        viewer, store_uri, tmp_path):
    """A run records only its corpus's name; the checkpoint records the path it was trained on,
    and the training started by Load checks that path (``--viewer-limits``), whatever the store
    says: an upload of this viewer, or refused."""
    from mlflow import MlflowClient

    from llmb_mlflow.library import control
    from llmb_mlflow.training.corpus import load_corpus
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
    from llmb_mlflow.library.reader import RunReader
    from llmb_mlflow.library.registry import ModelLibrary
    from llmb_mlflow.launch.uploads import store_upload

    library = ModelLibrary(store_uri)
    secret = tmp_path / "secret.txt"  # trained on from the command line: a file of this machine
    secret.write_text(SECRET)
    poem = store_upload("poem.txt", POEM.encode()).path  # trained on from the viewer
    for name, path in (("leaky", secret), ("poem", poem)):
        tracker = MlflowTracker(store_uri)
        train_tiny(load_corpus(str(path)), tracker, dataset=str(path), max_iters=6, checkpoint_interval=6)
        library.save(tracker.run_id, name)

    def load(model):
        button = {"type": "model-action", "action": "load", "model": model, "version": "1"}
        return viewer.post(pattern_trigger(button, "n_clicks"), {"model-action.n_clicks": [(button, 1)],
                                                                 "load-steps.value": 50000, "experiment.value": "llmbreaker"})

    runs_before = len(RunReader(store_uri).runs())
    refused(followed(viewer, load("leaky")), "Could not load leaky/1: the training did not start: leaky/1 was trained on 'secret.txt', which is neither a bundled corpus nor a file uploaded here")
    assert len(RunReader(store_uri).runs()) == runs_before
    answer = followed(viewer, load("poem"))
    run_id = answer.outputs.get("switch-run.data")
    try:
        assert answer.outputs["toast.children"].startswith("Loaded poem/1 (step 6)"), answer.text[:400]
        run = RunReader(store_uri).run(run_id)
        assert run.params["dataset"] == "poem.txt" and run.tags["llmb.model_version"] == "poem/1"
        control.send(MlflowClient(store_uri), run_id, "stop")
        deadline = time.monotonic() + 120
        while RunReader(store_uri).run(run_id).status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.5)  # polling the store until the trainer has checkpointed and ended
        assert RunReader(store_uri).run(run_id).status == "KILLED"
    finally:
        kill_trainers(store_uri)


def test_controls_and_saving_check_the_run_against_the_store(viewer, store_uri, tmp_path, shakespeare):
    from mlflow import MlflowClient

    client = MlflowClient(store_uri, registry_uri=store_uri)
    foreign = client.create_run(client.create_experiment("someone-elses")).info.run_id
    client.create_registered_model("foreign")
    running = client.create_run(client.create_experiment("ours"), tags={"llmb.kind": "training"}).info.run_id
    before = footprint(store_uri, tmp_path)

    def state(run_id):
        return {"run_id": run_id, "status": "RUNNING"}

    for button in ("ctl-pause", "ctl-stop", "ctl-step", "ctl-fail"):
        verb = {"ctl-fail": "mark it failed"}.get(button, button.removeprefix("ctl-"))
        press = {f"{button}.n_clicks": 1}
        refused(viewer.post(f"{button}.n_clicks", {**press, "run-state.data": state(foreign)}),
                f"Could not {verb}: run {foreign} is not an LLMBreaker training run")
        refused(viewer.post(f"{button}.n_clicks", {**press, "run-state.data": state("0" * 32)}),
                f"Could not {verb}: no run with id '{'0' * 32}'")
        refused(viewer.post(f"{button}.n_clicks", {**press, "run-state.data": state("../../mlflow.db")}),
                f"Could not {verb}: the page's run state is malformed (run_id: String should match pattern")
        refused(viewer.post(f"{button}.n_clicks", {**press, "run-state.data": "x" * 100_000}),
                f"Could not {verb}: the page's run state is malformed")
    save = {"save-model.n_clicks": 1, "save-name.value": "stolen"}
    refused(viewer.post("save-model.n_clicks", {**save, "run-state.data": state(foreign)}),
            f"Could not save: run {foreign} is not an LLMBreaker training run")
    refused(viewer.post("save-model.n_clicks", {**save, "run-state.data": {"run_id": foreign}}),
            "Could not save: the page's run state is malformed (status: Field required)")
    refused(viewer.post("save-model.n_clicks", {**save, "save-name.value": 12345,
                                                "run-state.data": state(foreign)}),
            "Could not save: model name must be text (got 12345)")
    waiting = {"run_id": foreign, "name": "stolen", "step": 1, "since": 0, "token": "0" * 32}
    refused(viewer.post("save-poll.n_intervals", {"save-poll.n_intervals": 1, "pending-save.data": waiting}),
            f"Could not save: run {foreign} is not an LLMBreaker training run")
    refused(viewer.post("save-poll.n_intervals", {"save-poll.n_intervals": 1,
                                                  "pending-save.data": {**waiting, "token": "../x"}}),
            "Could not save: the page's waiting save is malformed (token:")
    # refused before the running training is asked for a checkpoint (no control tag written)
    for name, message in (("a/b", "Could not save: model name 'a/b' may not contain"),
                          ("foreign", "Could not save: registered model 'foreign' is not an LLMBreaker model")):
        refused(viewer.post("save-model.n_clicks", {**save, "save-name.value": name,
                                                    "run-state.data": state(running)}), message)
    assert footprint(store_uri, tmp_path) == before


def test_showing_runs_checks_every_value_and_never_fails_a_request(viewer, store_uri, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(store_uri, registry_uri=store_uri)
    foreign = client.create_run(client.create_experiment("someone-elses")).info.run_id
    before = footprint(store_uri, tmp_path)
    shown = viewer.post("run.value", {"run.value": foreign, "smoothing.value": 0.6}, output="loss-chart")
    assert shown.outputs["run-error.children"] == f"Cannot show run {foreign}: run {foreign} is not an LLMBreaker training run"
    for smoothing in ("lots", 5, None):
        answer = viewer.post("run.value", {"run.value": foreign, "smoothing.value": smoothing}, output="loss-chart")
        assert answer.outputs["run-error.children"].startswith(f"Cannot show run {foreign}: smoothing must be a number")
    answer = viewer.post("run.value", {"run.value": "x" * 100_000, "smoothing.value": 0.6}, output="loss-chart")
    error = answer.outputs["run-error.children"]
    assert error.startswith("Cannot show run 'xxxx") and "is not an MLflow run id" in error and len(error) < 200
    answer = viewer.post("poll.n_intervals", {"poll.n_intervals": 1, "run-state.data": {"run_id": 5}})
    assert answer.outputs["run-error.children"].startswith("Cannot follow the run: the page's run state is malformed")
    answer = viewer.post("view.data", {"view.data": {"live": False, "step": "../x"}, "temperature.value": 1,
                                       "tabs.value": "watch", "run-state.data": {"run_id": foreign, "status": "RUNNING"},
                                       "steps.data": [0, 10]}, output="samples")
    assert answer.outputs["run-error.children"].startswith("Cannot show this view: the scrubber's state is malformed (step:")
    answer = viewer.post("view.data", {"view.data": {"step": 10}, "temperature.value": 1, "tabs.value": "watch",
                                       "run-state.data": {"run_id": foreign, "status": "RUNNING"},
                                       "steps.data": [0, 10]}, output="samples")
    assert answer.outputs["run-error.children"] == f"Cannot show this view: run {foreign} is not an LLMBreaker training run"
    answer = viewer.post("layer.value", {"layer.value": "0; drop", "tabs.value": "attention", "view.data": {"step": 0},
                                         "run-state.data": {"run_id": foreign, "status": "RUNNING"}, "steps.data": [0]})
    assert answer.outputs["run-error.children"] == "Cannot show this view: layer must be a number (got '0; drop')"
    answer = viewer.post("layer.value", {"layer.value": 10**400, "tabs.value": "attention", "view.data": {"step": 0},
                                         "run-state.data": {"run_id": foreign, "status": "RUNNING"}, "steps.data": [0]})
    assert answer.outputs["run-error.children"].startswith("Cannot show this view: layer is far out of range")
    assert footprint(store_uri, tmp_path) == before
    # a training run whose params and tags were written by someone else
    odd = client.create_run(client.get_experiment_by_name("someone-elses").experiment_id, tags={
        "llmb.kind": "training", "llmb.host": socket.gethostname(), "llmb.pid": "9" * 30,
        "llmb.heartbeat": "9" * 40}).info.run_id
    client.log_param(odd, "n_layer", "300000")
    client.log_param(odd, "n_head", "abc")
    answer = viewer.post("run.value", {"run.value": odd, "smoothing.value": 0.6}, output="loss-chart")
    assert answer.status == 200 and answer.outputs["layer.options"] == [{"label": "1", "value": 0}]
    assert answer.outputs["head.options"] == [{"label": "1", "value": 0}]
    before = footprint(store_uri, tmp_path)
    # the page's own bookkeeping, malformed: nothing to show, but no failure either
    for trigger, values, output in [
            ("run-state.data", {"run-state.data": {"status": 7}}, "status"),
            ("steps.data", {"steps.data": "abc", "view.data": 5, "speed.value": "fast"}, None),
            ("url.search", {"url.search": ["?tab=watch"]}, None),
            ("experiment.value", {"experiment.value": ["x"]}, None)]:
        answer = viewer.post(trigger, {**values}, output=output)
        assert answer.status in (200, 204), (trigger, answer.text[:300])
    assert footprint(store_uri, tmp_path) == before


def test_the_run_list_does_what_the_page_asked_even_when_a_refresh_superseded_the_request(viewer, store_uri):
    """Dash drops an answer on its way when the same callback is asked again: the run list's
    refresh tick, coming while a switch to a started run or a picked experiment is answered,
    must still switch."""
    from mlflow import MlflowClient

    client = MlflowClient(store_uri)
    experiment, other = client.create_experiment("llmbreaker"), client.create_experiment("other")
    shown, started = (client.create_run(experiment, tags={"llmb.kind": "training"}).info.run_id for _ in range(2))
    elsewhere = client.create_run(other, tags={"llmb.kind": "training"}).info.run_id
    values = {"runs-refresh.n_intervals": 3, "experiment.value": "llmbreaker", "run.value": shown,
              "listed-for.data": "llmbreaker"}

    answer = viewer.post("runs-refresh.n_intervals", {**values, "switch-run.data": started}, output="run.options")
    assert answer.outputs["run.value"] == started and answer.outputs["switch-run.data"] is None
    assert {o["value"] for o in answer.outputs["run.options"]} == {shown, started}
    # once shown (and emptied), later refreshes leave the run the person picks alone
    answer = viewer.post("runs-refresh.n_intervals", values, output="run.options")
    assert "run.value" not in answer.outputs and "switch-run.data" not in answer.outputs
    answer = viewer.post("url.search", {**values, "url.search": "?tab=watch"}, output="run.options")
    assert answer.status == 204 or "run.value" not in answer.outputs
    # another experiment picked: its newest run, and the picker stays on it
    for trigger in ("runs-refresh.n_intervals", "url.search"):
        answer = viewer.post(trigger, {**values, "experiment.value": "other"}, output="run.options")
        assert answer.outputs["run.value"] == elsewhere and "experiment.value" not in answer.outputs
        assert answer.outputs["listed-for.data"] == "other"
    # a link to a run of another experiment brings that experiment along, and it stays
    answer = viewer.post("url.search", {**values, "run.value": None, "url.search": f"?run={elsewhere}"},
                         output="run.options")
    assert answer.outputs["run.value"] == elsewhere and answer.outputs["experiment.value"] == "other"
    assert answer.outputs["listed-for.data"] == "other"
    answer = viewer.post("runs-refresh.n_intervals", {**values, "run.value": elsewhere, "experiment.value": "other",
                                                      "listed-for.data": "other"}, output="run.options")
    assert "run.value" not in answer.outputs and "experiment.value" not in answer.outputs


def test_the_chart_is_drawn_again_when_a_refresh_superseded_the_change_asked_for(viewer, store_uri):
    from mlflow import MlflowClient

    client = MlflowClient(store_uri)
    experiment = client.create_experiment("llmbreaker")
    shown, other = (client.create_run(experiment, tags={"llmb.kind": "training"}).info.run_id for _ in range(2))
    ask = {"run.value": shown, "smoothing.value": 0.6, "log-scale.value": [], "runs-refresh.n_intervals": 2}
    drawn = viewer.post("run.value", {**ask, "compare.data": {"run": other}}, output="loss-chart")
    state = drawn.outputs["run-state.data"]
    other_curve = f"{client.get_run(other).info.run_name}: train loss"
    assert other_curve in [trace.get("name") for trace in drawn.outputs["loss-chart.figure"]["data"]]

    def refresh(**changed):
        return viewer.post("runs-refresh.n_intervals", {**ask, "compare.data": {"run": other},
                                                        "run-state.data": state, **changed}, output="loss-chart")

    assert "loss-chart.figure" not in refresh().outputs  # nothing changed: nothing redone
    for changed in ({"compare.data": {"run": None}}, {"log-scale.value": ["log"]}, {"smoothing.value": 0.9}):
        answer = refresh(**changed)
        assert "loss-chart.figure" in answer.outputs and "steps.data" in answer.outputs, changed


def test_a_compare_pick_or_stop_holds_when_an_address_change_superseded_its_request(viewer):
    """While a run is followed its address changes every second: the call that carries it may
    be the one left of a pick or a stop."""
    first, second = "a" * 32, "b" * 32
    ask = {"url.search": f"?run={first}", "compare.data": {"run": second, "stops": 1}}

    def choose(**changed):
        return viewer.post("url.search", {**ask, **changed}, output="compare-pick.value")

    stop = choose(**{"compare-stop.n_clicks": 2})
    assert stop.outputs["compare.data"] == {"run": None, "stops": 2} and stop.outputs["compare-pick.value"] is None
    pick = choose(**{"compare-stop.n_clicks": 1, "compare-pick.value": first})
    assert pick.outputs["compare.data"] == {"run": first, "stops": 1}
    nothing = choose(**{"compare-stop.n_clicks": 1})
    assert nothing.status == 204 or "compare.data" not in nothing.outputs
    # the address of a first visit names the run to compare with
    first_visit = viewer.post("url.search", {"url.search": f"?run={first}&compare={second}"},
                              output="compare-pick.value")
    assert first_visit.outputs["compare.data"] == {"run": second, "stops": 0}


def test_the_address_names_the_compared_run_whichever_change_asked_for_the_panels(viewer, store_uri):
    """A pick's own call can be dropped for one from a layer, head or tab change: the address
    is made to name the compared run from the page's state."""
    from mlflow import MlflowClient

    from dash_app.panels.compare import PANELS

    client = MlflowClient(store_uri)
    experiment = client.create_experiment("llmbreaker")
    shown, other = (client.create_run(experiment, tags={"llmb.kind": "training"}).info.run_id for _ in range(2))
    ask = {"compare.data": {"run": other, "stops": 0}, "view.data": {"live": False, "step": 10},
           "tabs.value": "attention", "layer.value": 1, "steps.data": [0, 10],
           "run-state.data": {"run_id": shown, "status": "FINISHED"},
           "pair-label.children": [({"type": "pair-label", "side": side, "panel": panel}, "")
                                   for side in "ab" for panel in PANELS]}
    lacking = viewer.post("layer.value", {**ask, "url.search": f"?run={shown}&tab=attention&step=10"},
                          output="compare-note")
    assert lacking.outputs["url.search"] == f"?run={shown}&tab=attention&step=10&compare={other}"
    assert lacking.outputs["compare-note.children"].endswith("has no snapshot yet.")
    named = viewer.post("layer.value", {**ask, "url.search": lacking.outputs["url.search"]}, output="compare-note")
    assert "url.search" not in named.outputs


def test_the_compare_menu_lists_training_runs_of_every_experiment_but_the_shown_one(viewer, store_uri):
    from mlflow import MlflowClient

    client = MlflowClient(store_uri)
    runs = {name: client.create_run(client.create_experiment(name), run_name=f"{name}-run",
                                    tags={"llmb.kind": "training"}).info.run_id for name in ("llmbreaker", "other")}
    client.create_run(client.get_experiment_by_name("other").experiment_id, run_name="not-ours")
    answer = viewer.post("compare-summary.n_clicks", {"compare-summary.n_clicks": 1, "run.value": runs["llmbreaker"]},
                         output="compare-pick.options")
    assert answer.outputs["compare-pick.options"] == [
        {"label": "other-run · running · other", "value": runs["other"]}]
    with pytest.raises(AssertionError, match="no callback"):  # listed on opening, not every 5 s
        viewer.post("runs-refresh.n_intervals", output="compare-pick.options")


def test_the_entropy_chart_moves_its_markers_only_on_the_figure_it_drew(viewer, store_uri):
    """A new run's or a new snapshot's call can be dropped for a newer one from the view: the
    chart then draws anew rather than moving markers on a figure of another run."""
    from mlflow import MlflowClient

    from dash_app.panels.entropy import NONE_RECORDED

    client = MlflowClient(store_uri)
    experiment = client.create_experiment("llmbreaker")
    shown, before = (client.create_run(experiment, tags={"llmb.kind": "training"}).info.run_id for _ in range(2))
    ask = {"view.data": {"live": True, "step": None}, "tabs.value": "attention", "steps.data": [],
           "run-state.data": {"run_id": shown, "status": "RUNNING"}}
    own = viewer.post("view.data", {**ask, "attn-entropy-drawn.data": {"run": shown, "upto": None, "rows": 2}},
                      output="attn-entropy-note")
    assert "attn-entropy-note.children" not in own.outputs  # markers moved on its own figure
    for drawn in ({"run": before, "upto": None, "rows": 2}, {"run": shown, "upto": 40, "rows": 2}, None):
        answer = viewer.post("view.data", {**ask, "attn-entropy-drawn.data": drawn}, output="attn-entropy-note")
        assert answer.outputs["attn-entropy-note.children"] == NONE_RECORDED, drawn


def test_requests_dash_cannot_handle_get_a_one_line_refusal(viewer):
    answer = viewer.post_body({"output": "nope.children", "outputs": {"id": "nope", "property": "children"},
                               "inputs": [], "changedPropIds": []})
    assert answer.status == 400 and answer.text.startswith("Bad request: ") and answer.text.count("\n") == 1
    assert viewer.post_body("{not json").status == 400
    too_big = '{"output": "' + "x" * (30 * 2**20) + '"}'
    assert viewer.post_body(too_big).status == 413


def test_a_stand_alone_viewer_answers_only_to_host_names_it_knows(viewer, store_uri):
    """A web page cannot re-point a name of its own at this machine (DNS rebinding) and then
    drive the viewer from the visitor's browser."""
    import requests

    port = viewer.base_url.rsplit(":", 1)[1].strip("/")
    for host in ("attacker.example", f"attacker.example:{port}", f"rebound.attacker.example:{port}"):
        answer = viewer.post("runs-refresh.n_intervals", {"runs-refresh.n_intervals": 1}, headers={"Host": host})
        assert answer.status == 403 and answer.text.startswith(
            "Bad request: this viewer does not answer to the host name") and answer.text.count("\n") == 1
        assert requests.get(viewer.base_url, headers={"Host": host}, timeout=30).status_code == 403
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"10.1.2.3:{port}"):
        assert viewer.post("runs-refresh.n_intervals", {"runs-refresh.n_intervals": 1},
                           headers={"Host": host}).status in (200, 204), host
    url, server = serve(store_uri, allowed_hosts=["viewer.example.org"])
    try:
        answer = CallbackPoster(url).post("runs-refresh.n_intervals", {"runs-refresh.n_intervals": 1},
                                          headers={"Host": "viewer.example.org"})
        assert answer.status in (200, 204)
    finally:
        server.close()


def test_the_viewer_inside_mlflow_server_refuses_the_same(llmbreaker_server):
    from mlflow import MlflowClient

    uri, folder = llmbreaker_server
    secret = folder / "secret.cfg"
    secret.write_text(SECRET)
    viewer = CallbackPoster(uri + "/llmb/")
    client = MlflowClient(uri, registry_uri=uri)
    runs_before = {r.info.run_id for r in client.search_runs([e.experiment_id for e in client.search_experiments()])}
    for corpus in (str(secret), "../secret.cfg", OPTION_LIKE):
        refused(viewer.post("train-start.n_clicks", {**GOOD_FORM, "train-corpus.value": corpus,
                                                     "train-start.n_clicks": 1}),
                "Could not start: corpus must be one of")
    refused(viewer.post("train-start.n_clicks", {**GOOD_FORM, "train-preset.value": "--dataset=" + str(secret),
                                                 "train-start.n_clicks": 1}), "Could not start: model must be one of")
    assert {r.info.run_id for r in client.search_runs([e.experiment_id for e in client.search_experiments()])} \
        == runs_before


def test_the_viewer_inside_mlflow_server_refuses_unknown_files_and_unreadable_bodies_in_one_line(
        llmbreaker_server):
    import requests

    from test_refusals import probe, quiet_log

    uri, folder = llmbreaker_server
    start = (folder / "server.log").stat().st_size
    asked = list(probe(uri + "/llmb/"))
    quiet_log((folder / "server.log").read_bytes()[start:].decode(errors="replace"), asked)
    assert requests.get(uri + "/health", timeout=30).ok  # MLflow's own routes as they were


def test_a_training_started_inside_mlflow_server_logs_to_it_whatever_host_the_request_names(
        llmbreaker_server):
    """Trainings log to the address of the server's own socket: a crafted Host header must not
    send a training's data (or the server's requests) anywhere else."""
    from llmb_mlflow.library import control
    from llmb_mlflow.library.reader import RunReader

    uri, _ = llmbreaker_server
    viewer = CallbackPoster(uri + "/llmb/")
    answer = viewer.post("train-start.n_clicks", {**GOOD_FORM, "train-start.n_clicks": 1},
                         headers={"Host": "127.0.0.1:9"})  # a port where nothing listens
    try:
        answer = followed(viewer, answer)
        assert answer.outputs.get("toast.className") == "toast ok", answer.text[:500]
        run_id = answer.outputs["switch-run.data"]
        reader = RunReader(uri)
        assert reader.run(run_id).status == "RUNNING"  # the training reached this very server
        control.send(reader.client, run_id, "stop")
        deadline = time.monotonic() + 120
        while reader.run(run_id).status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.5)  # polling the store until the trainer has checkpointed and ended
        assert reader.run(run_id).status == "KILLED"
    finally:
        kill_trainers(uri)


def test_the_viewer_reads_fail_fast_but_the_trainings_it_starts_keep_mlflows_own_settings(
        store_uri, tmp_path, monkeypatch):
    """A viewer gives up on a tracking server (or S3) that is down within seconds; a training it
    starts keeps MLflow's patient retries and long uploads, and whatever the user set."""
    import os

    import psutil

    from llmb_mlflow.library.reader import RunReader
    from llmb_mlflow.run_layout import PID_TAG

    monkeypatch.setenv("LLMB_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")  # the user's own
    url, server = serve(store_uri)
    try:
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1" and os.environ["AWS_MAX_ATTEMPTS"] == "2"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
        viewer = CallbackPoster(url)
        answer = followed(viewer, viewer.post("train-start.n_clicks", {**GOOD_FORM, "train-start.n_clicks": 1}))
        assert answer.outputs.get("toast.className") == "toast ok", answer.text[:500]
        run = RunReader(store_uri).run(answer.outputs["switch-run.data"])
        environment = psutil.Process(int(run.tags[PID_TAG])).environ()
        assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in environment and "AWS_MAX_ATTEMPTS" not in environment
        assert environment["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
    finally:
        server.close()
        kill_trainers(store_uri)
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # and the test's own environment is back
