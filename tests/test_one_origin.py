"""``mlflow server --app-name llmbreaker``: MLflow's UI and the viewer on one loopback port."""

import pytest
import requests

from browser import (
    click, current_sample_step, kill_trainers, needs_browser, open_menu, retype, shown_run,
    stop_from_browser, text, wait,
)
from conftest import start_mlflow_server, stop_process, train_tiny



@pytest.fixture
def one_origin(llmbreaker_server):
    return llmbreaker_server[0]


@needs_browser
@pytest.mark.usefixtures("blank_page")
def test_one_port_serves_mlflow_and_the_viewer_and_runs_link_across(
        browser, one_origin, shakespeare):
    from selenium.webdriver.common.by import By

    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker

    tracker = MlflowTracker(one_origin, experiment="one-origin")
    train_tiny(shakespeare, tracker)
    assert "<title>MLflow" in requests.get(one_origin + "/", timeout=30).text
    assert "<title>LLMBreaker" in requests.get(one_origin + "/llmb/", timeout=30).text
    experiment = requests.get(one_origin + "/api/2.0/mlflow/experiments/get-by-name",
                              params={"experiment_name": "one-origin"}, timeout=30).json()

    browser.get(f"{one_origin}/llmb/?run={tracker.run_id}&step=20")
    wait(browser, lambda d: text(d, "shown-step") == "step 20", timeout=60)
    wait(browser, lambda d: current_sample_step(d) == "step 20", timeout=60)  # served artifacts read

    browser.get(f"{one_origin}/#/experiments/{experiment['experiment']['experiment_id']}"
                f"/runs/{tracker.run_id}")
    link = wait(browser, lambda d: d.find_element(By.PARTIAL_LINK_TEXT, "Watch it learn"), timeout=90)
    assert link.get_attribute("href") == f"{one_origin}/llmb/?run={tracker.run_id}"
    link.click()
    if len(browser.window_handles) > 1:  # MLflow may open links in a new tab
        browser.close()
        browser.switch_to.window(browser.window_handles[-1])
    wait(browser, lambda d: "/llmb/" in d.current_url and text(d, "shown-step") == "step 25", timeout=60)


@needs_browser
@pytest.mark.usefixtures("blank_page")
def test_a_training_started_in_the_served_viewer_logs_through_the_server(browser, one_origin, llmb):
    from mlflow import MlflowClient

    browser.get(f"{one_origin}/llmb/")
    open_menu(browser, "train-summary")
    for key, value in {"max-iters": 100000, "batch-size": 8, "eval-interval": 50, "block-size": 16}.items():
        retype(browser.find_element("id", f"train-{key}"), str(value))
    try:
        click(browser, "train-start")
        wait(browser, lambda d: "Started run" in text(d, "toast"), timeout=120)
        run_id = wait(browser, lambda d: shown_run(d))
        run = MlflowClient(one_origin).get_run(run_id)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # it logged over REST
        wait(browser, lambda d: d.find_element("id", "ctl-pause").is_enabled(), timeout=60)
        click(browser, "ctl-pause")
        wait(browser, lambda d: "paused" in text(d, "status"))
        assert "RUNNING (paused)" in llmb("runs", "list", "--tracking-uri", one_origin).out
        stop_from_browser(browser)
    finally:
        kill_trainers(one_origin)


@pytest.mark.parametrize("value, read_only", [("", False), ("false", False), ("0", False), ("off", False),
                                              ("true", True), ("1", True), ("Yes", True), ("treu", True)])
def test_llmb_read_only_errs_on_the_safe_side(monkeypatch, value, read_only):
    from dash_app.mlflow_app import read_only_from_env

    monkeypatch.setenv("LLMB_READ_ONLY", value)
    assert read_only_from_env() is read_only


def test_the_served_viewer_is_read_only_when_the_server_is_told(template_db, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMB_READ_ONLY", "true")
    uri, proc = start_mlflow_server(template_db, tmp_path, "--app-name", "llmbreaker")
    try:
        layout = requests.get(f"{uri}/llmb/_dash-layout", timeout=30).json()
        assert layout["props"]["className"] == "page read-only"
        assert requests.get(f"{uri}/", timeout=30).status_code == 200  # MLflow's UI as before
    finally:
        stop_process(proc)
