"""What a crafted request can no longer do to the machine a viewer runs on: name a process to
signal, read a store's password from a command line, start a run in somebody else's experiment,
delete without the confirm step, or read the store's URI and the server's paths in an answer."""

import json
import subprocess

import psutil
import pytest

from browser import kill_trainers, serve
from conftest import LIVE_ARGS, TINY_ARGS, bard_library
from dash_requests import CallbackPoster, pattern_trigger
from llmb_mlflow.launch import launcher
from llmb_mlflow.errors import LLMBError
from test_viewer_requests import GOOD_FORM, footprint, refused


@pytest.fixture
def sleeper():
    """A process of the viewer's user that nothing may stop."""
    process = subprocess.Popen(["sleep", "900"])
    yield process
    process.kill()
    process.wait()


def follow(poster, waiting):
    return poster.post("launch-poll.n_intervals", {"launch-poll.n_intervals": 1, "pending-launch.data": waiting})


def alive(process) -> bool:
    return process.poll() is None


def test_a_page_following_a_launch_never_names_the_process_and_stops_nothing_it_did_not_start(
        viewer, store_uri, tmp_path, sleeper):
    before = footprint(store_uri, tmp_path)
    started = int(psutil.Process(sleeper.pid).create_time() * 1000)
    forged = {"id": f"train-{started}-{sleeper.pid}-0123456789ab", "done": "ok {run}", "failed": "failed"}
    refused(follow(viewer, forged), "Could not follow the training: the page's started training is malformed (id:")
    unknown = {**forged, "id": "train-" + "0" * 32}
    refused(follow(viewer, unknown), "failed: no training was started as 'train-00000000")
    assert alive(sleeper) and footprint(store_uri, tmp_path) == before

    # a launch of one's own that fails: the page hears why, and its id names no other process
    own = launcher.start(["train", "--dataset", "nope"], store_uri)
    own.process.wait(timeout=120)
    refused(follow(viewer, {**forged, "id": own.id}), "failed: the training did not start: unknown dataset 'nope'")
    assert alive(sleeper)


def test_what_a_launch_record_names_is_checked_against_the_process_before_any_signal(store_uri, tmp_path,
                                                                                     monkeypatch, sleeper):
    monkeypatch.setenv("LLMB_LOG_DIR", str(tmp_path / "logs"))
    own = launcher.start(["train", *LIVE_ARGS], store_uri)
    other = launcher.start(["train", *LIVE_ARGS], store_uri)
    try:
        assert store_uri not in " ".join(psutil.Process(own.process.pid).cmdline())  # in its environment only
        assert psutil.Process(own.process.pid).environ()["MLFLOW_TRACKING_URI"] == store_uri
        with pytest.raises(LLMBError, match="no training was started as"):
            launcher.state(own.id, owner="somebody else")
        assert launcher.running() == 2
        # a record whose pid has since gone to another process, made to look like the launch's in
        # every way a record can say: the sleeper (another command), then another training of this
        # user (the same command, but writing to another log)
        forged = "train-" + "ab" * 16
        launcher._log_path(forged).write_text("")  # a launch that has not said its run yet
        for impostor in (sleeper.pid, other.process.pid):
            launcher._record_path(forged).write_text(json.dumps({
                "pid": impostor, "created": psutil.Process(impostor).create_time(), "command": "train",
                "owner": None}))
            with pytest.raises(LLMBError, match="the training did not start"):
                launcher.state(forged, timeout=0)
            assert alive(sleeper) and alive(own.process) and alive(other.process)
        assert launcher.running() == 2  # the forged record counts for nothing
    finally:
        for started in (own, other):
            started.process.kill()
            started.process.wait()


def test_a_read_only_viewer_follows_no_launch(store_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMB_LOG_DIR", str(tmp_path / "logs"))
    training = launcher.start(["train", *LIVE_ARGS], store_uri)
    url, server = serve(store_uri, read_only=True)
    try:
        answer = follow(CallbackPoster(url), {"id": training.id, "done": "ok {run}", "failed": "failed"})
        refused(answer, "failed: this viewer is read-only")
        assert alive(training.process)
    finally:
        server.close()
        training.process.kill()
        training.process.wait()


def test_trainings_start_only_in_llmbreaker_experiments(viewer, store_uri, tmp_path, shakespeare):
    from mlflow import MlflowClient

    bard_library(store_uri, shakespeare)
    client = MlflowClient(store_uri)
    theirs = client.create_experiment("their-bert")
    client.set_terminated(client.create_run(theirs).info.run_id)  # somebody's own training, not ours
    client.create_experiment("empty")
    before = footprint(store_uri, tmp_path)
    why = "the experiment 'their-bert' holds runs that are not LLMBreaker trainings; train in one of LLMBreaker's"
    started = viewer.post("train-start.n_clicks", {**GOOD_FORM, "train-start.n_clicks": 1,
                                                   "experiment.value": "their-bert"})
    refused(started, "Could not start", why)
    button = {"type": "model-action", "action": "load", "model": "bard", "version": "1"}
    loaded = viewer.post(pattern_trigger(button, "n_clicks"), {"model-action.n_clicks": [(button, 1)],
                                                               "load-steps.value": 10,
                                                               "experiment.value": "their-bert"})
    refused(loaded, "Could not load bard/1: " + why)
    assert footprint(store_uri, tmp_path) == before
    title = viewer.post("experiment.value", {"experiment.value": "their-bert"},
                        output="train-start.disabled").outputs["train-start.title"]
    assert title == why
    allowed = viewer.post("experiment.value", {"experiment.value": "empty"}, output="train-start.disabled").outputs
    assert allowed["train-start.disabled"] is False


def test_answers_name_neither_the_store_nor_a_path_of_the_server(viewer, store_uri, tmp_path):
    answer = viewer.post("run.value", {"run.value": "0" * 32, "smoothing.value": 0.9}, output="run-state.data")
    assert answer.status == 200
    message = answer.outputs["run-error.children"]
    assert "no run with id '00000000000000000000000000000000' in the store" in message, message
    shown = json.dumps(answer.outputs)  # as the page reads it, "/" unescaped
    for secret in (store_uri, str(tmp_path), "mlflow.db"):
        assert secret not in shown


def test_hiding_server_paths_leaves_what_merely_resembles_them():
    from dash_app.server_paths import SERVER_PATH, ServerPaths

    paths = ServerPaths("sqlite:////srv/team/mlflow.db", ["/srv/team/mlruns", "/root/work", "/"])
    assert paths.roots[-1] != "/" and "/root/work" in paths.roots  # a folder as short as "/" is no secret

    def escaped(text):  # as Dash's JSON writes "/"
        return text.replace("/", "\\u002f")

    for text in ("file /srv/team/mlruns/1/a.npz is missing", "reading /root/work"):
        assert paths.hide(text).count(SERVER_PATH) == 1 and "/srv" not in paths.hide(text)
        assert paths.hide(escaped(text)) == paths.hide(text)
    for kept in ("xx/root/work/abcd+ef/gh==", "https://example.org/root/work/a", "/root/workshop", "1 / 2",
                 "a sample about /rooted things"):
        assert paths.hide(kept) == kept and paths.hide(escaped(kept)) == escaped(kept)
    assert paths.hide("no run in sqlite:////srv/team/mlflow.db.") == "no run in the store."
    for said in ("tracking store sqlite:////srv/team/mlflow.db failed: x", "tracking server sqlite:////srv/team/mlflow.db x"):
        assert paths.hide(escaped(said)) == paths.hide(said) and paths.hide(said).startswith("the tracking s")


def test_the_cap_counts_only_what_this_user_launched_and_still_runs(store_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMB_LOG_DIR", str(tmp_path / "logs"))
    by_hand = subprocess.Popen(["python", "-m", "llmb_mlflow", "train", *TINY_ARGS, "--max-iters", "100000",
                                "--tracking-uri", store_uri], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert launcher.running() == 0  # a training from a terminal is the user's own business
        short = launcher.start(["train", *TINY_ARGS, "--max-iters", "2", "--eval-interval", "1"], store_uri)
        assert launcher.running() == 1
        assert short.process.wait(timeout=120) == 0
        assert launcher.running() == 0
    finally:
        by_hand.kill()
        by_hand.wait()
        kill_trainers(store_uri)
