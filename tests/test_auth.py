"""The viewer inside MLflow's basic-auth app (``mlflow server --app-name llmbreaker-auth``): one
sign-in for MLflow's UI, its REST API and the viewer, which acts as the signed-in user and follows
their MLflow permissions. Against a real server on loopback, with real users and grants made
through MLflow's auth REST API, and real trainings."""

import base64
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from dash_app.panels.models import action_id
from llmb_mlflow.launch import launcher
from llmb_mlflow.processes import is_alive
from llmb_mlflow.run_layout import CONTROL_STATE_TAG, PID_TAG, TRAINER_PAUSED, TRAINER_STATE_TAG

from conftest import LIVE_ARGS, start_mlflow_server, stop_process, until
from dash_requests import CallbackPoster, pattern_trigger

ADMIN = ("admin", "admin-password-2604")
READER = ("reader", "reader-password-2604")  # the server's default: READ on everything
EDITOR = ("editor", "editor-password-2604")  # EDIT on the team's experiment
STRANGER = ("stranger", "stranger-password-2604")  # DENY on it
API = "/api/2.0/mlflow/"
AUTH_API = "/api/3.0/mlflow/"  # MLflow's grants of permissions to users
# MLflow's basic auth hashes the password on every request (~0.4 s of this machine's CPU), so a
# tiny training evaluating every 50 steps (a snapshot every ~0.1 s, a handful of requests each)
# outruns the server for good: its backlog, which a pause or a stop waits for, grows all along.
TEAM_ARGS = [*LIVE_ARGS, "--eval-interval", "5000"]


@dataclass
class Team:
    uri: str
    experiment_id: str
    run_id: str  # a training running in the team's experiment, started by the editor
    folder: Path

    def rest(self, method: str, path: str, user=ADMIN, api=API, **body):
        response = requests.request(method, self.uri + api + path, auth=user, timeout=60,
                                    **({"params": body} if method == "GET" else {"json": body}))
        assert response.ok, response.text
        return response.json()

    def viewer(self, user) -> CallbackPoster:
        return CallbackPoster(self.uri + "/llmb/", headers=basic(user))

    def tags(self, run_id: str | None = None) -> dict:
        run = self.rest("GET", "runs/get", run_id=run_id or self.run_id)["run"]
        return {tag["key"]: tag["value"] for tag in run["data"]["tags"]}


def basic(user) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()}


def signed_in(user) -> dict:
    return {"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}


@pytest.fixture(scope="module")
def team(template_db, tmp_path_factory):
    folder = tmp_path_factory.mktemp("team")
    (folder / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'auth.db'}\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 60\n")  # as docs/deployment.md sets it
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_AUTH_CONFIG_PATH", str(folder / "auth.ini"))
        env.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "a-test-secret")
        env.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN[1])
        env.setenv("LLMB_LOG_DIR", str(folder / "logs"))
        env.setenv("LLMB_UPLOAD_DIR", str(folder / "uploads"))
        env.setenv("LLMB_MAX_TRAININGS", "8")  # the cap: not this test's subject
        env.setenv("LLMB_TRAINERS", f"{EDITOR[0]}, someone")  # who may start trainings on the server's cores
        uri, proc = start_mlflow_server(template_db, folder, "--app-name", "llmbreaker-auth")
    training = None
    try:
        team = Team(uri, "", "", folder)
        for name, password in (READER, EDITOR, STRANGER):
            team.rest("POST", "users/create", username=name, password=password)
        team.experiment_id = team.rest("POST", "experiments/create", name="team")["experiment_id"]
        for (name, _), permission in ((EDITOR, "EDIT"), (STRANGER, "DENY")):
            team.rest("POST", "users/permissions/grant", api=AUTH_API, username=name, resource_type="experiment",
                      resource_id=team.experiment_id, permission=permission)
        training = launcher.start(["train", *TEAM_ARGS, "--experiment=team", "--run-name=shared"], uri,
                                  env=signed_in(EDITOR))
        team.run_id = launcher.wait_for_run(training).run_id
        yield team
    finally:
        for process in psutil.process_iter():  # every training that logs to this server
            with contextlib.suppress(psutil.Error):
                if process.environ().get("MLFLOW_TRACKING_URI") == uri:
                    process.kill()
        stop_process(proc)


def load(viewer: CallbackPoster, run_id: str):
    return viewer.post("run.value", {"run.value": run_id, "smoothing.value": 0.9}, output="run-state.data")


def test_nothing_of_the_viewer_or_of_mlflow_answers_without_a_sign_in(team):
    for path in ("/llmb/", "/llmb/_dash-layout", "/llmb/_dash-dependencies", "/llmb/assets/style.css",
                 API[:-1] + "/experiments/search?max_results=5", "/"):
        for auth in (None, ("reader", "a wrong password"), ("nobody", READER[1])):
            response = requests.get(team.uri + path, auth=auth, timeout=30)
            assert response.status_code == 401, (path, auth)
            assert response.headers["WWW-Authenticate"].startswith("Basic")
    callback = requests.post(team.uri + "/llmb/_dash-update-component", json={"output": "toast.children"},
                             timeout=30)
    assert callback.status_code == 401
    for path in ("/llmb/", API[:-1] + "/experiments/search?max_results=5", "/"):  # one sign-in for all
        assert requests.get(team.uri + path, auth=READER, timeout=30).status_code == 200


def test_a_reader_sees_the_run_but_may_not_control_it_save_it_or_train(team):
    viewer = team.viewer(READER)
    assert "team" in viewer.post("runs-refresh.n_intervals", output="experiment.options").outputs[
        "experiment.options"]
    linked = viewer.post("url.search", {"url.search": f"?run={team.run_id}"}, output="run.options").outputs
    assert linked["experiment.value"] == "team" and linked["run.value"] == team.run_id  # its experiment with it
    assert [o["label"] for o in linked["run.options"]] == ["shared · running"]
    loaded = load(viewer, team.run_id)
    state = loaded.outputs["run-state.data"]
    assert state and state["run_id"] == team.run_id and state["status"] == "RUNNING", loaded.outputs
    why = "reader may not control this run: that needs EDIT on the experiment 'team', and reader has READ"
    header = viewer.post("run-state.data", {"run-state.data": state}, output="ctl-pause.disabled").outputs
    assert header["ctl-pause.disabled"] is True and header["ctl-stop.disabled"] is True
    assert header["ctl-pause.title"] == header["ctl-stop.title"] == why
    paused = viewer.post("ctl-pause.n_clicks", {"ctl-pause.n_clicks": 1, "run-state.data": state})
    assert paused.outputs["toast.children"] == ("Could not pause: reader may not pause this run: that needs "
                                                "EDIT on the experiment 'team', and reader has READ")
    assert CONTROL_STATE_TAG not in team.tags()  # nothing was asked of the training
    save = viewer.post("run.value", {"run.value": team.run_id}, output="save-model.disabled").outputs
    assert save["save-model.disabled"] is True and "reader may not save a model from this run" in save[
        "save-model.title"]
    refused = viewer.post("save-model.n_clicks", {"save-model.n_clicks": 1, "save-name.value": "mine",
                                                  "run-state.data": state})
    assert refused.outputs["toast.children"].startswith("Could not save: reader may not save a model")
    start = viewer.post("experiment.value", {"experiment.value": "team"}, output="train-start.disabled").outputs
    assert start["train-start.disabled"] is start["st-start.disabled"] is start["train-upload.disabled"] is True
    assert "reader may not start trainings in it: that needs EDIT" in start["train-start.title"]
    text = base64.b64encode(b"To be, or not to be, that is the question.\n" * 40).decode()
    upload = viewer.post("upload-payload.data", {"experiment.value": "team", "upload-payload.data": {
        "filename": "mine.txt", "contents": "data:text/plain;base64," + text}})
    assert upload.outputs["toast.children"].startswith("Could not upload: reader may not start trainings in it")
    assert not list((team.folder / "uploads").rglob("*.txt"))  # nothing kept on the server's disk


def test_a_user_without_read_does_not_see_the_experiment_nor_its_runs(team):
    viewer = team.viewer(STRANGER)
    assert "team" not in viewer.post("runs-refresh.n_intervals", output="experiment.options").outputs[
        "experiment.options"]
    loaded = load(viewer, team.run_id).outputs
    assert loaded["run-state.data"] is None
    assert "stranger may not see this run: that needs READ, which stranger does not have" in loaded[
        "run-error.children"]  # and not a word more about it, as MLflow's API
    runs = viewer.post("experiment.value", {"experiment.value": "team"}, output="run.options").outputs
    assert "run.options" not in runs and runs["error.children"] == (
        "Cannot list runs: stranger may not see its runs: that needs READ, which stranger does not have")
    linked = viewer.post("url.search", {"url.search": f"?run={team.run_id}"}, output="run.options").outputs
    assert "experiment.value" not in linked and [o["label"] for o in linked["run.options"]] == [team.run_id]
    comparable = [o["value"] for o in viewer.post("compare-summary.n_clicks", {"compare-summary.n_clicks": 1},
                                                  output="compare-pick.options").outputs["compare-pick.options"]]
    assert team.run_id not in comparable
    assert team.run_id in [o["value"] for o in team.viewer(READER).post(
        "compare-summary.n_clicks", {"compare-summary.n_clicks": 1}, output="compare-pick.options").outputs[
        "compare-pick.options"]]


def test_an_editor_controls_the_run_and_saves_a_model_that_follows_model_permissions(team):
    viewer = team.viewer(EDITOR)
    state = load(viewer, team.run_id).outputs["run-state.data"]
    header = viewer.post("run-state.data", {"run-state.data": state}, output="ctl-pause.disabled").outputs
    assert header["ctl-pause.disabled"] is False and header["ctl-pause.title"].startswith("pause the training"), (header, state)
    paused = viewer.post("ctl-pause.n_clicks", {"ctl-pause.n_clicks": 1, "run-state.data": state})
    assert paused.outputs["toast.children"] == "Asked the training to pause."
    until(lambda: team.tags().get(TRAINER_STATE_TAG) == TRAINER_PAUSED, timeout=300,  # a busy machine slows the hashing server
          what="the training to pause")

    team.rest("POST", "users/permissions/grant", api=AUTH_API, username=EDITOR[0], resource_type="registered_model",
              resource_id="forbidden", permission="DENY")
    denied = viewer.post("save-model.n_clicks", {"save-model.n_clicks": 1, "save-name.value": "forbidden",
                                                 "run-state.data": state})
    assert denied.outputs["toast.children"] == (
        "Could not save: editor may not create it: the model 'forbidden' is denied to editor")
    asked = viewer.post("save-model.n_clicks", {"save-model.n_clicks": 1, "save-name.value": "team-model",
                                                "run-state.data": state})
    assert asked.outputs["toast.children"].startswith("Asked the training for a checkpoint"), asked.text
    pending = asked.outputs["pending-save.data"]
    until(lambda: viewer.post("save-poll.n_intervals", {"save-poll.n_intervals": 1, "pending-save.data": pending},
                              output="save-poll.disabled").outputs.get("toast.children", "").startswith("Saved"),
          what="the save once its checkpoint is written")

    def permission(name, user):
        return team.rest("GET", "users/permissions/get", api=AUTH_API, username=user[0],
                         resource_type="registered_model", resource_id=name)["permission"]

    assert permission("team-model", EDITOR) == "MANAGE"  # as if created through MLflow's REST API
    reader_table = str(team.viewer(READER).post("models-summary.n_clicks", {"models-summary.n_clicks": 1},
                                                output="models-list.children").outputs)
    assert "reader may not rename it: that needs EDIT on the model 'team-model'" in reader_table
    assert "reader may not delete its versions: that needs MANAGE on the model 'team-model'" in reader_table
    def rename(user, new_name):
        field = {"type": "rename-input", "model": "team-model"}
        return team.viewer(user).post(pattern_trigger(field, "n_submit"), {
            "rename-input.n_submit": [(field, 1)], "rename-input.value": [(field, new_name)]})

    renamed = rename(READER, "stolen")
    assert "Could not rename team-model: reader may not rename it" in renamed.outputs["toast.children"]
    renamed = rename(EDITOR, "team-model-2")
    assert renamed.outputs["toast.children"] == "Renamed team-model to team-model-2."
    assert permission("team-model-2", EDITOR) == "MANAGE"  # the grant moved with the name

    def delete(user, deleting=None):  # Delete, then the confirm step's Delete
        viewer = team.viewer(user)
        for action in ("delete", "delete-yes"):
            button = action_id(action, "team-model-2", "1")
            answer = viewer.post(pattern_trigger(button, "n_clicks"), {"model-action.n_clicks": [(button, 1)],
                                                                       "deleting.data": deleting})
            if "toast.children" in answer.outputs:
                return answer
            deleting = answer.outputs["deleting.data"]
        raise AssertionError(answer.text)

    assert "reader may not delete its versions: that needs MANAGE" in delete(READER).outputs["toast.children"]
    assert delete(EDITOR).outputs["toast.children"] == "Deleted model team-model-2."
    assert permission("team-model-2", EDITOR) == "READ"  # its grants went with it: the default is left

    stopped = viewer.post("ctl-stop.n_clicks", {"ctl-stop.n_clicks": 1, "run-state.data": state})
    assert stopped.outputs["toast.children"] == "Asked the training to stop."


def test_a_training_started_in_the_viewer_logs_as_the_signed_in_user_and_no_password_shows(team):
    viewer = team.viewer(EDITOR)
    form = {"train-start.n_clicks": 1, "train-corpus.value": "shakespeare", "train-preset.value": "baby",
            "experiment.value": "team", "train-max-iters.value": 100000, "train-batch-size.value": 4,
            "train-block-size.value": 16, "train-eval-interval.value": 5000}
    started = viewer.post("train-start.n_clicks", form)
    assert started.outputs.get("toast.children", "").startswith("Starting"), started.text
    launch = started.outputs["pending-launch.data"]
    followed = team.viewer(READER).post("launch-poll.n_intervals", {"launch-poll.n_intervals": 1,
                                                                    "pending-launch.data": launch})
    assert followed.outputs["toast.children"].startswith("Could not start: no training was started as")
    run_id = until(lambda: viewer.post("launch-poll.n_intervals", {"launch-poll.n_intervals": 1,
                                                                  "pending-launch.data": launch}
                                       ).outputs.get("switch-run.data"), what="the started training's run")
    tags = team.tags(run_id)
    assert tags["mlflow.user"] == "editor"
    assert team.rest("GET", "runs/get", run_id=run_id)["run"]["info"]["experiment_id"] == team.experiment_id
    pid = int(tags[PID_TAG])
    training = psutil.Process(pid)
    assert EDITOR[1] not in " ".join(training.cmdline())
    assert training.environ()["MLFLOW_TRACKING_USERNAME"] == "editor"  # given in its environment only
    for process in psutil.process_iter(["cmdline"]):
        assert EDITOR[1] not in " ".join(process.info["cmdline"] or [])
    for log in [*(team.folder / "logs").glob("*.log"), team.folder / "server.log"]:
        assert EDITOR[1] not in log.read_text(errors="replace"), log
    state = load(viewer, run_id).outputs["run-state.data"]
    viewer.post("ctl-stop.n_clicks", {"ctl-stop.n_clicks": 1, "run-state.data": state})
    until(lambda: not is_alive(pid), what="the training's end")
    assert os.environ.get("MLFLOW_TRACKING_PASSWORD") != EDITOR[1]  # nothing leaked into the tests' own


def test_who_may_start_trainings_on_the_servers_cores_is_the_admins_choice(team):
    """MLflow lets any signed-in user create an experiment, and so hold EDIT on one: that alone
    starts nothing on the server's machine."""
    mine = team.rest("POST", "experiments/create", user=READER, name="readers-own")["experiment_id"]
    assert team.rest("GET", "users/permissions/get", api=AUTH_API, username=READER[0], resource_type="experiment",
                     resource_id=mine)["permission"] == "MANAGE"
    viewer = team.viewer(READER)
    why = "reader may not start trainings on this server: its admin names who may in LLMB_TRAINERS"
    form = {"train-start.n_clicks": 1, "train-corpus.value": "shakespeare", "train-preset.value": "baby",
            "experiment.value": "readers-own", "train-max-iters.value": 100, "train-batch-size.value": 4,
            "train-block-size.value": 16, "train-eval-interval.value": 50}
    started = viewer.post("train-start.n_clicks", form)
    assert started.outputs["toast.children"] == f"Could not start: {why}", started.text
    assert not started.outputs.get("pending-launch.data")
    assert team.rest("POST", "runs/search", experiment_ids=[mine]).get("runs", []) == []
    start = viewer.post("experiment.value", {"experiment.value": "readers-own"}, output="train-start.disabled").outputs
    assert start["train-start.disabled"] is True and start["train-start.title"] == why
    admin = team.viewer(ADMIN).post("experiment.value", {"experiment.value": "readers-own"},
                                    output="train-start.disabled").outputs
    assert admin["train-start.disabled"] is False  # admins may, as may everyone LLMB_TRAINERS names
