"""Attention entropy in the Attention Cinema tab, in a real browser (headless Chromium): a click
on a point shows that step and that head; a run trained before the metrics existed says so."""

import pytest

from browser import graph_data, needs_browser, serve, start_training, text, wait

pytestmark = [needs_browser, pytest.mark.usefixtures("blank_page")]

POINTS = "const g = document.querySelector('#attn-entropy .js-plotly-plot');" \
         "return g && g.data && g.data.length ? g.data[0].x.length : 0;"
DETAIL_TITLE = "const g = document.querySelector('#attention-detail .js-plotly-plot');" \
               "return g && g.layout && g.layout.title ? g.layout.title.text : null;"


@pytest.fixture(scope="module")
def viewer(finished_run):
    url, server = serve(finished_run.uri)
    yield url
    server.close()


def test_clicking_an_entropy_point_shows_that_step_and_that_head(browser, viewer, finished_run):
    browser.get(f"{viewer}?run={finished_run.run_id}&tab=attention")
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    wait(browser, lambda d: graph_data(d, "attn-entropy"))
    lines = browser.execute_script(
        "return document.querySelector('#attn-entropy .js-plotly-plot').data.map(t => [t.name, t.yaxis, t.x]);")
    assert [(name, axis) for name, axis, _ in lines] == [
        ("head 1", "y"), ("head 2", "y"), ("head 1", "y2"), ("head 2", "y2")]
    assert all(steps == [0, 10, 20, 25] for _, _, steps in lines)
    marker = "return document.querySelector('#attn-entropy .js-plotly-plot').layout.shapes[1].x0;"
    assert browser.execute_script(marker) == 25
    wait(browser, lambda d: d.execute_script(DETAIL_TITLE) == "layer 1, head 1 at step 25")

    browser.execute_script(  # as Plotly reports a click on layer 2, head 2's point at step 10
        "const gd = document.querySelector('#attn-entropy .js-plotly-plot');"
        "gd.emit('plotly_click', {points: [{x: 10, y: gd.data[3].y[1], curveNumber: 3, pointNumber: 1,"
        " pointIndex: 1, customdata: gd.data[3].customdata[1], data: gd.data[3], fullData: gd._fullData[3]}]});")
    wait(browser, lambda d: text(d, "shown-step") == "step 10")
    wait(browser, lambda d: d.execute_script(DETAIL_TITLE) == "layer 2, head 2 at step 10")
    assert text(browser, "view-mode") == "pinned" and "step=10" in browser.current_url
    wait(browser, lambda d: d.execute_script(marker) == 10)  # the shown step moved in every row


def test_a_run_trained_before_entropy_was_logged_says_so_in_one_line(browser, store_uri, shakespeare):
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
    from llmb_mlflow.run_layout import ATTN_ENTROPY_PREFIX

    from conftest import train_tiny

    class BeforeEntropy(MlflowTracker):  # logs a run as LLMBreaker did before these metrics
        def log_metrics(self, step, metrics):
            super().log_metrics(step, {k: v for k, v in metrics.items() if not k.startswith(ATTN_ENTROPY_PREFIX)})

    tracker = BeforeEntropy(store_uri)
    train_tiny(shakespeare, tracker, max_iters=10, eval_interval=5)
    url, server = serve(store_uri)
    try:
        browser.get(f"{url}?run={tracker.run_id}&tab=attention")
        wait(browser, lambda d: text(d, "shown-step") == "step 10")
        wait(browser, lambda d: "No attention entropy recorded for this run" in text(d, "attn-entropy-note"))
        assert not browser.find_element("id", "attn-entropy").is_displayed()
        assert text(browser, "run-error") == ""
        wait(browser, lambda d: graph_data(d, "attention-detail"))  # the rest of the tab as always
    finally:
        server.close()


def test_a_running_trainings_entropy_grows_as_its_snapshots_arrive(browser, store_uri, tmp_path):
    url, server = serve(store_uri)
    proc, run_id = start_training(store_uri, tmp_path)
    try:
        browser.get(f"{url}?run={run_id}&tab=attention")
        wait(browser, lambda d: "running" in text(d, "status"))
        wait(browser, lambda d: d.execute_script(POINTS) >= 1, timeout=60)
        first = browser.execute_script(POINTS)
        wait(browser, lambda d: d.execute_script(POINTS) > first, timeout=90)
        assert text(browser, "attn-entropy-note") == ""
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        server.close()
