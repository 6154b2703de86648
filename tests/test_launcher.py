"""Starting trainings as processes of their own (what the viewer's Start and Load buttons do)."""

import psutil
import pytest

from llmb_mlflow.library import control
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.launch.launcher import launch
from llmb_mlflow.library.reader import RunReader

from conftest import LIVE_ARGS, TINY_ARGS



def test_a_launched_training_creates_its_run_outlives_the_call_and_stops_on_request(
        store_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMB_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    training = launch(["train", *LIVE_ARGS, "--run-name", "launched"], store_uri)
    try:
        run = RunReader(store_uri).run(training.run_id)
        assert run.run_name == "launched" and run.status == "RUNNING"
        assert run.tags["llmb.pid"] == str(training.process.pid)
        assert training.log_path.startswith(str(tmp_path / "logs"))
        assert psutil.Process(training.process.pid).environ()["OMP_WAIT_POLICY"] == "PASSIVE"
        control.send(RunReader(store_uri).client, training.run_id, "stop")
        assert training.process.wait(timeout=120) == 130
        assert RunReader(store_uri).run(training.run_id).status == "KILLED"
        assert "Stopped at step" in open(training.log_path).read()
    finally:
        training.process.kill()


@pytest.mark.parametrize("args, message", [
    (["train", "--dataset", "nope"], "the training did not start: unknown dataset 'nope'; bundled ones"),
    (["resume", "ghost"], "the training did not start: no model named 'ghost'"),
    (["train", "--lr", "7"], "the training did not start: --lr must be in (0, 1], got 7.0"),
])
def test_a_training_that_cannot_start_says_why_in_one_line(store_uri, args, message):
    with pytest.raises(LLMBError) as err:
        launch(args, store_uri)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert RunReader(store_uri).runs() == []


def test_at_most_so_many_trainings_started_for_a_store_run_at_once(store_uri, tmp_path, monkeypatch):
    from llmb_mlflow.launch.launcher import running, start, wait_for_run

    monkeypatch.setenv("LLMB_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice
    first = wait_for_run(start(["train", *LIVE_ARGS], store_uri, at_most=1))
    try:
        assert psutil.Process(first.process.pid).environ()["OMP_WAIT_POLICY"] == "ACTIVE"
        assert running() == 1
        with pytest.raises(LLMBError) as err:
            start(["train", *LIVE_ARGS], store_uri, at_most=1)
        assert str(err.value) == ("1 training started here is running, and at most 1 may run at once: stop one "
                                  "or wait for one to end")
        assert len(RunReader(store_uri).runs()) == 1  # nothing else started
        control.send(RunReader(store_uri).client, first.run_id, "stop")
        first.process.wait(timeout=120)
        second = start(["train", *TINY_ARGS, "--max-iters", "2", "--eval-interval", "1"], store_uri, at_most=1)
        assert second.process.wait(timeout=120) == 0  # room again once the first had ended
    finally:
        first.process.kill()
