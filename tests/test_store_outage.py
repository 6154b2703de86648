"""A tracking server that goes away and comes back: the trainer keeps its data and sends it
later, the viewer says the store is unreachable and recovers without a restart, the CLI fails
in one line."""

import re

import pytest

from browser import graph_data, needs_browser, serve, text, wait
from conftest import LIVE_ARGS, start_mlflow_server, stop_process
from llmb_mlflow import control
from llmb_mlflow.launcher import launch
from llmb_mlflow.reader import RunReader

pytestmark = [needs_browser, pytest.mark.usefixtures("blank_page")]
POINTS = "return document.querySelector('#loss-chart .js-plotly-plot').data[0].x.length;"


def test_the_store_goes_away_and_comes_back(browser, template_db, tmp_path, llmb, monkeypatch):
    # Without MLflow's own HTTP retries the trainer's writer sees the outage and retries itself.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri, server_process = start_mlflow_server(template_db, tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    training = launch(["train", *LIVE_ARGS], uri)
    viewer_url, viewer = serve(uri)
    try:
        browser.get(f"{viewer_url}?run={training.run_id}")
        wait(browser, lambda d: "running" in text(d, "status") and graph_data(d, "loss-chart"))
        wait(browser, lambda d: d.execute_script(POINTS) > 10)

        stop_process(server_process)
        unreachable = f"Store unreachable, retrying: tracking store {uri}"
        wait(browser, lambda d: text(d, "run-error").startswith(unreachable), timeout=60)
        down = llmb("runs", "list", "--tracking-uri", uri)
        assert down.code == 1 and down.err.startswith(f"Error: tracking server {uri} is unreachable")
        assert down.err.count("\n") == 1
        before = browser.execute_script(POINTS)

        uri, server_process = start_mlflow_server(template_db, tmp_path, port=port)
        wait(browser, lambda d: text(d, "run-error") == "", timeout=60)
        wait(browser, lambda d: d.execute_script(POINTS) > before + 10, timeout=60)
        assert llmb("runs", "list", "--tracking-uri", uri).code == 0

        control.send(RunReader(uri).client, training.run_id, "stop")
        assert training.process.wait(timeout=120) == 130
        run = RunReader(uri).run(training.run_id)
        steps = RunReader(uri).metric(training.run_id, "train_loss").steps.tolist()
        assert run.status == "KILLED" and steps == list(range(1, run.last_step + 1))  # nothing lost
        log = open(training.log_path).read()
        assert re.search(r"Note: [1-9]\d* write\(s\) to the tracking store failed and were retried", log), log
    finally:
        training.process.kill()
        viewer.close()
        stop_process(server_process)
