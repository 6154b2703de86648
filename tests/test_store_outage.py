"""A tracking server that goes away and comes back: the trainer keeps its data and sends it
later, the viewer says the store is unreachable and recovers without a restart, the CLI fails
in one line. The viewer is driven through its own endpoint, as the page's polls drive it."""

import re
import time

import pytest

from browser import serve
from conftest import LIVE_ARGS, start_mlflow_server, stop_process
from dash_requests import CallbackPoster
from llmb_mlflow.library import control
from llmb_mlflow.launch.launcher import launch
from llmb_mlflow.library.reader import RunReader


class Page:
    """What the page keeps of the shown run, and its polls."""

    def __init__(self, viewer, run_id):
        self.viewer = viewer
        loaded = viewer.post("run.value", {"run.value": run_id, "smoothing.value": 0.6}, output="loss-chart")
        self.state, self.steps = loaded.outputs["run-state.data"], loaded.outputs["steps.data"]

    def poll(self):
        answer = self.viewer.post("poll.n_intervals", {"poll.n_intervals": 1, "run-state.data": self.state,
                                                       "steps.data": self.steps, "run-error.children": "x"})
        self.state = answer.outputs.get("run-state.data", self.state)
        self.steps = answer.outputs.get("steps.data", self.steps)
        assert answer.outputs.get("poll.disabled") is not True, "the page stopped polling"
        return answer.outputs.get("run-error.children")

    def until(self, condition, what, timeout=90):
        """The page's error line once ``condition`` holds for it."""
        deadline = time.monotonic() + timeout
        while not condition(error := self.poll()):
            assert time.monotonic() < deadline, f"timed out waiting for {what} (the page says {error!r})"
            time.sleep(0.5)  # the page's poll interval
        return error


@pytest.mark.soak
def test_the_store_goes_away_and_comes_back(template_db, tmp_path, llmb, monkeypatch):
    # Without MLflow's own HTTP retries the trainer's writer sees the outage and retries itself.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri, server_process = start_mlflow_server(template_db, tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    training = launch(["train", *LIVE_ARGS], uri)
    viewer_url, viewer = serve(uri)
    try:
        page = Page(CallbackPoster(viewer_url), training.run_id)
        page.until(lambda _: (page.state["last_train"] or 0) > 10, "ten steps shown")

        stop_process(server_process)
        unreachable = "Store unreachable, retrying: the tracking store"  # the page is not told where it is
        shown = page.until(lambda error: (error or "").startswith(unreachable), "the outage to show")
        assert uri not in shown and str(tmp_path) not in shown
        down = llmb("runs", "list", "--tracking-uri", uri)
        assert down.code == 1 and down.err.startswith(f"Error: tracking server {uri} is unreachable")
        assert down.err.count("\n") == 1
        before = page.state["last_train"]

        uri, server_process = start_mlflow_server(template_db, tmp_path, port=port)
        page.until(lambda error: error == "", "the outage to clear")
        page.until(lambda _: page.state["last_train"] > before + 10, "new steps after the outage")
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
