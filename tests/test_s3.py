"""The team set-up's artifact store: S3 (moto's server on loopback) behind a real ``mlflow server
--app-name llmbreaker`` on sqlite, in both of MLflow's ways: proxied (``--artifacts-destination
s3://… --serve-artifacts``: only the server holds S3 credentials) and direct
(``--default-artifact-root s3://… --no-serve-artifacts``: every client writes and reads S3 itself,
through ``MLFLOW_S3_ENDPOINT_URL``). In each, the whole life cycle: ``llmb train`` → snapshots
through the reader and the served viewer → ``llmb models save`` → pyfunc load → ``llmb resume`` →
a training whose store is down at its end spools, and ``llmb runs sync`` sends it. In the direct
way also: a trainer without S3 credentials keeps its artifacts for ``llmb runs sync``, and a
command, reader or viewer that cannot reach S3 says so in one line."""

import os
import re
import subprocess
import sys

import mlflow
import pytest

from browser import serve
from conftest import TINY_ARGS, free_port, start_mlflow_server, stop_process, tiny_config, train_tiny
from dash_requests import CallbackPoster
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.library.registry import ModelLibrary
from s3 import S3

CREDENTIALS = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


@pytest.fixture(scope="module")
def s3():
    store = S3(free_port()).start()
    yield store
    store.stop()


class TeamServer:
    """``mlflow server --app-name llmbreaker`` on sqlite with its artifacts in S3, proxied or
    direct; stopped and started again on the same port."""

    def __init__(self, mode, s3, template_db, folder):
        self.mode, self.s3, self.template_db, self.folder = mode, s3, template_db, folder
        self.prefix = f"{mode}-artifacts"
        root = f"s3://{s3.bucket}/{self.prefix}"
        self.artifacts = (("--artifacts-destination", root, "--serve-artifacts") if mode == "proxied"
                          else ("--default-artifact-root", root, "--no-serve-artifacts"))
        self.port, self.proc = free_port(), None

    def start(self) -> str:
        self.uri, self.proc = start_mlflow_server(self.template_db, self.folder, "--app-name", "llmbreaker",
                                                  port=self.port, artifacts=self.artifacts,
                                                  env=self.s3.env)
        return self.uri

    def stop(self) -> None:
        stop_process(self.proc)

    def stored(self, run_id) -> set[str]:
        """The run's artifact paths that are objects in the bucket."""
        marker = f"/{run_id}/artifacts/"
        return {key.split(marker, 1)[1] for key in self.s3.keys(self.prefix + "/") if marker in key}


@pytest.fixture(scope="module")
def servers(s3, template_db, tmp_path_factory):
    """This module's tracking servers by way of storing artifacts, each started when first asked for."""
    started = {}

    def server(mode: str) -> TeamServer:
        if mode not in started:
            started[mode] = TeamServer(mode, s3, template_db, tmp_path_factory.mktemp(mode))
        if started[mode].proc is None or started[mode].proc.poll() is not None:  # new, or a test failed in an outage
            started[mode].start()
        return started[mode]

    yield server
    for each in started.values():
        each.stop()


@pytest.fixture(params=["proxied", "direct"])
def team(request, servers, s3, tmp_path, monkeypatch):
    """The server of one way, with this process and every process it starts as its trainer or
    reader: holding S3 credentials only in the direct way (and never asking a cloud machine's
    metadata service for some)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    if request.param == "direct":
        for name, value in s3.env.items():
            monkeypatch.setenv(name, value)
    return servers(request.param)


def train_into_an_outage(server, shakespeare, spool_dir) -> str:
    """A tiny training (20 steps, a snapshot and checkpoint every 10) whose store stops after
    step 10 and is still down when it ends: what it could not send is spooled. Its run id."""
    from llmb_mlflow.training.corpus import prepare_dataset
    from llmb_mlflow.training.tracker import RunDescription
    from llmb_mlflow.training.trainer import Trainer

    config = tiny_config(max_iters=20, eval_interval=10, checkpoint_interval=10)
    trainer = Trainer(config, prepare_dataset(shakespeare, config.model.block_size), device="cpu")
    tracker = MlflowTracker(server.uri, finish_timeout=3)
    tracker.start(RunDescription(params=trainer.describe(), run_name="s3-cut-off"))
    trainer.run(tracker, stop_at=10)
    tracker.flush()
    server.stop()
    trainer.run(tracker)
    with pytest.raises(LLMBError, match="send them with `llmb runs sync` once the store is back"):
        tracker.finish("FINISHED")
    assert (spool_dir / tracker.run_id).is_dir()
    return tracker.run_id


def test_the_life_cycle_with_artifacts_in_s3(team, s3, tmp_path, llmb, use_store, shakespeare, monkeypatch):
    mode, uri = team.mode, team.uri
    trained = subprocess.run(
        [sys.executable, "-m", "llmb_mlflow", "train", *TINY_ARGS, "--max-iters", "20", "--eval-interval", "10",
         "--checkpoint-interval", "10", "--run-name", "s3-life", "--tracking-uri", uri, "--no-system-metrics"],
        capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr
    run_id = re.search(r"Logging to MLflow run ([0-9a-f]{32})", trained.stdout)[1]

    # The snapshots are objects in the bucket, and every reader gets them from there.
    reader = RunReader(uri)
    artifact_uri = reader.client.get_run(run_id).info.artifact_uri
    assert artifact_uri.startswith("mlflow-artifacts:/" if mode == "proxied" else f"s3://{s3.bucket}/{team.prefix}/")
    assert {"snapshots/step_00000000.npz", "snapshots/step_00000020.npz"} <= team.stored(run_id)
    assert reader.snapshot_steps(run_id) == [0, 10, 20]
    snapshot = reader.snapshot(run_id, 20)
    assert snapshot.step == 20 and reader.weights(run_id, 20)[0].n_embd == 16
    assert reader.checkpoint_steps(run_id) == [10, 20]

    viewer = CallbackPoster(uri + "/llmb/")  # the viewer inside the server reads S3 with its credentials
    shown = viewer.post("run.value", {"run.value": run_id, "smoothing.value": 0.6}, output="loss-chart")
    state, steps = shown.outputs["run-state.data"], shown.outputs["steps.data"]
    assert steps == [0, 10, 20] and not shown.outputs.get("run-error.children")
    page = viewer.post("view.data", {"view.data": {"step": 20, "live": False}, "temperature.value": 1,
                                     "tabs.value": "watch", "run-state.data": state, "steps.data": steps},
                       output="samples")
    assert page.status == 200 and not page.outputs.get("run-error.children"), page.text[:500]
    shown_samples = {item["props"]["id"]["step"]: item["props"]["children"][1]["props"]["children"]
                     for item in page.outputs["samples.children"]}
    assert shown_samples[20] == snapshot.prompt + snapshot.sample

    # Saved, loaded as a pyfunc model, and continued from the registry.
    name = f"s3-bard-{mode}"
    saved = llmb("models", "save", run_id, "--name", name, "--tracking-uri", uri)
    assert saved.code == 0, saved.err
    use_store(uri)
    model = mlflow.pyfunc.load_model(f"models:/{name}/1")
    [text] = model.predict(["ROMEO:"], params={"max_new_tokens": 20, "seed": 1})
    assert len(text) == 20 and model.predict(["ROMEO:"], params={"max_new_tokens": 20, "seed": 1}) == [text]

    resumed = llmb("resume", name, "--max-iters", "30", "--threads", "1", "--tracking-uri", uri)
    assert resumed.code == 0, resumed.err
    [new_run] = [run for run in reader.runs() if run.tags.get("llmb.parent_run") == run_id]
    assert new_run.status == "FINISHED"
    assert reader.metric(new_run.run_id, "train_loss").steps.tolist() == list(range(21, 31))
    assert reader.snapshot_steps(new_run.run_id) == [30] and reader.snapshot(new_run.run_id, 30).step == 30
    assert "snapshots/step_00000030.npz" in team.stored(new_run.run_id)

    # A training whose store is down at its end keeps its data; `llmb runs sync` sends it on.
    monkeypatch.setenv("LLMB_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the writer retries by itself
    cut_off = train_into_an_outage(team, shakespeare, tmp_path / "spool")
    assert "snapshots/step_00000020.npz" not in team.stored(cut_off)
    team.start()
    synced = llmb("runs", "sync")
    assert synced.code == 0, synced.err
    assert f"of run {cut_off} to {uri}; it is FINISHED." in synced.out
    reader = RunReader(uri)
    assert reader.run(cut_off).status == "FINISHED"
    assert reader.snapshot_steps(cut_off) == [0, 10, 20] and reader.snapshot(cut_off, 20).step == 20
    assert "snapshots/step_00000020.npz" in team.stored(cut_off)
    library = ModelLibrary(uri)
    assert library.checkpoint_steps(cut_off) == [10, 20]
    assert library.checkpoint(library.save(cut_off, f"s3-cut-off-{mode}").ref)[1]["step"] == 20


# A trainer of its own (boto3 keeps the credentials it found for a while in this process).
KEYLESS_TRAINER = """
import sys
sys.path.insert(0, {tests!r})
from conftest import train_tiny
from llmb_mlflow.training.corpus import load_corpus
from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
tracker = MlflowTracker({uri!r}, experiment="s3-keyless", finish_timeout=3)
try:
    train_tiny(load_corpus("shakespeare"), tracker, max_iters=10, eval_interval=10, checkpoint_interval=10)
except Exception as exc:
    print(tracker.run_id, exc)
"""


@pytest.mark.parametrize("team", ["direct"], indirect=True)
def test_a_trainer_without_s3_credentials_keeps_its_artifacts_for_sync(team, tmp_path, llmb, monkeypatch):
    monkeypatch.setenv("LLMB_SPOOL_DIR", str(tmp_path / "spool"))
    keyless = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    code = KEYLESS_TRAINER.format(tests=os.path.dirname(__file__), uri=team.uri)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=keyless)
    assert done.returncode == 0, done.stderr
    run_id, said = done.stdout.strip().splitlines()[-1].split(" ", 1)
    assert "(S3 artifact store failed: Unable to locate credentials (set AWS_ACCESS_KEY_ID" in said
    assert "send them with `llmb runs sync`" in said
    assert not team.stored(run_id) and RunReader(team.uri).snapshot_steps(run_id) == []

    synced = llmb("runs", "sync")  # with the credentials
    assert synced.code == 0, synced.err
    reader = RunReader(team.uri)
    assert reader.run(run_id).status == "FINISHED" and reader.snapshot_steps(run_id) == [0, 10]
    assert {"snapshots/step_00000000.npz", "snapshots/step_00000010.npz"} <= team.stored(run_id)
    assert reader.checkpoint_steps(run_id) == [10]


@pytest.mark.parametrize("team", ["direct"], indirect=True)
def test_trouble_with_s3_is_one_line_for_commands_readers_and_the_viewer(team, s3, shakespeare, monkeypatch):
    tracker = MlflowTracker(team.uri, experiment="s3-trouble")
    train_tiny(shakespeare, tracker, max_iters=10, eval_interval=10, checkpoint_interval=10)
    ModelLibrary(team.uri).save(tracker.run_id, "s3-trouble")

    keyless = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    generated = subprocess.run([sys.executable, "-m", "llmb_mlflow", "generate", "s3-trouble", "--prompt", "KING:",
                                "--tracking-uri", team.uri], capture_output=True, text=True, timeout=300, env=keyless)
    assert (generated.returncode, generated.stderr) == (1, (
        "Error: S3 artifact store failed: Unable to locate credentials (set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or log through a tracking server started with --serve-artifacts)\n"))

    unreachable = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", unreachable)
    said = f'S3 artifact store failed: Could not connect to the endpoint URL: "{unreachable}/{s3.bucket}'
    url, viewer = serve(team.uri)  # which reads S3 with one retry (botocore's default gives up after 12 s)
    try:
        page = CallbackPoster(url)
        shown = page.post("run.value", {"run.value": tracker.run_id, "smoothing.value": 0.6}, output="loss-chart")
        assert shown.outputs["steps.data"] == [0, 10]  # what the tracking store has is shown
        answer = page.post("view.data", {"view.data": {"step": 10, "live": False}, "temperature.value": 1,
                                         "tabs.value": "watch", "run-state.data": shown.outputs["run-state.data"],
                                         "steps.data": [0, 10]}, output="samples")
        error = answer.outputs["run-error.children"]
        assert error.startswith("Cannot show step 10: " + said) and "\n" not in error
    finally:
        viewer.close()
    with pytest.raises(LLMBError) as failed:  # MLflow's S3 client, made by the viewer, is reused
        RunReader(team.uri).snapshot(tracker.run_id, 10)
    assert str(failed.value).startswith(said) and "\n" not in str(failed.value)
