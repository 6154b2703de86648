"""MLflow's own UI, a client no one here wrote, in headless Chromium against a real ``mlflow
server``: a finished training and a registered version look as MLflow shows what it trained
itself. What is checked is the text the page renders, not HTTP statuses."""

import pytest
from mlflow import MlflowClient

from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
from llmb_mlflow.library.registry import ModelLibrary
from llmb_mlflow.run_layout import mlflow_ui_path

from browser import needs_browser, wait
from conftest import start_mlflow_server, stop_process, train_tiny

pytestmark = needs_browser


@pytest.fixture(scope="module")
def served(template_db, tmp_path_factory, shakespeare):
    """``mlflow server`` with one finished tiny run (checkpoints at 10, 20, 25), its step-20
    checkpoint registered as ui-bard/1."""
    uri, proc = start_mlflow_server(template_db, tmp_path_factory.mktemp("mlflow-ui"))
    try:
        tracker = MlflowTracker(uri, "ui-check", source="llmb train")
        train_tiny(shakespeare, tracker, max_iters=25, checkpoint_interval=10)
        ModelLibrary(uri).save(tracker.run_id, "ui-bard", step=20)
        yield uri, MlflowClient(uri).get_run(tracker.run_id)
    finally:
        stop_process(proc)


def page_text(driver) -> str:
    return driver.find_element("tag name", "body").text


def shows(driver, *texts, timeout=90):
    wait(driver, lambda d: all(t in page_text(d) for t in texts), timeout=timeout)
    return page_text(driver)


def test_the_experiment_opens_in_model_training_mode_with_the_run_its_dataset_and_source(served, browser):
    uri, run = served
    browser.get(uri + "/" + mlflow_ui_path(run.info.experiment_id))
    text = shows(browser, run.info.run_name, "shakespeare", "llmb train")
    assert "Model training" in text and "Training runs" not in text  # the model-training side menu
    assert "Training" in text  # the dataset's context, beside its name


def test_the_models_tab_lists_every_checkpoint_with_its_val_loss(served, browser):
    uri, run = served
    browser.set_window_size(2800, 1200)  # the grid renders only the columns that fit
    try:
        browser.get(uri + "/" + mlflow_ui_path(run.info.experiment_id, tab="models"))
        text = shows(browser, "step-00000010", "step-00000020", "step-00000025", "val_loss")
        assert text.count("Ready") >= 3 and "ui-bard" in text
    finally:
        browser.set_window_size(1400, 1400)


def test_the_run_page_lists_its_logged_models_and_its_dataset(served, browser):
    uri, run = served
    browser.get(uri + "/" + mlflow_ui_path(run.info.experiment_id, run.info.run_id))
    text = shows(browser, "Logged models (3)", "Datasets", "step-00000025")
    assert "shakespeare" in text and "ui-bard" in text


def test_the_registered_version_links_to_its_logged_model(served, browser):
    uri, run = served
    browser.get(uri + "/#/models/ui-bard/versions/1")
    text = shows(browser, "Source Model", "step-00000020")
    assert run.info.run_name in text  # and its source run
