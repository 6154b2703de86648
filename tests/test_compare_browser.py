"""Comparing in a real browser (headless Chromium): two runs side by side at the scrubbed step,
what changed between two samples, and the events on the loss chart."""

import pytest

from browser import choose_option, click, graph_data, needs_browser, open_menu, serve, text, wait

pytestmark = [needs_browser, pytest.mark.usefixtures("blank_page")]

LABEL = "return Array.from(document.querySelectorAll('#{panel}-panel .side-{side} .pair-label')).map(e => e.textContent)[0];"


@pytest.fixture(scope="module")
def two_runs(template_db, tmp_path_factory, shakespeare):
    """Two finished tiny runs in one store: the second with another shape and snapshot rhythm."""
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
    from llmb_mlflow.library.registry import ModelLibrary

    from conftest import new_store, train_tiny

    uri = new_store(template_db, tmp_path_factory.mktemp("two_runs"))
    from mlflow import MlflowClient

    first, second = MlflowTracker(uri), MlflowTracker(uri)
    train_tiny(shakespeare, first, checkpoint_interval=10, lr=0.02)  # snapshots 0, 10, 20, 25; learns fast
    train_tiny(shakespeare, second, n_layer=1, eval_interval=8, seed=7)  # snapshots 0, 8, 16, 24, 25
    ModelLibrary(uri).save(first.run_id, "firstling", step=10)
    client = MlflowClient(uri)
    for tracker, name in ((first, "first-run"), (second, "second-run")):
        client.update_run(tracker.run_id, name=name)
    url, server = serve(uri)
    yield url, first.run_id, second.run_id, uri
    server.close()


def label(driver, panel, side):
    return driver.execute_script(LABEL.format(panel=panel, side=side))


def test_two_runs_side_by_side_follow_the_scrubber_and_leave(browser, two_runs):
    url, first, second, _ = two_runs
    browser.get(f"{url}?run={first}&tab=watch&step=20&compare={second}")
    wait(browser, lambda d: text(d, "shown-step") == "step 20")
    wait(browser, lambda d: label(d, "tower", "b") == "second-run · step 16 (nearest to 20)")
    assert label(browser, "tower", "a") == "first-run · step 20"
    assert "comparing" in browser.find_element("id", "page").get_attribute("class")
    assert text(browser, "compare-summary") == "vs second-run"
    wait(browser, lambda d: graph_data(d, "tower-b") and graph_data(d, "stars-b"))
    assert browser.execute_script("return document.querySelector('#samples-b .sample-step').textContent;") == "step 16"
    names = browser.execute_script("return document.querySelector('#loss-chart .js-plotly-plot').data.map(t => t.name);")
    assert "second-run: train loss" in names and "second-run: validation loss" in names

    before = graph_data(browser, "tower-b")
    click(browser, "step-back")
    wait(browser, lambda d: text(d, "shown-step") == "step 10")
    wait(browser, lambda d: label(d, "tower", "b") == "second-run · step 8 (nearest to 10)")
    wait(browser, lambda d: graph_data(d, "tower-b") != before)
    assert "compare=" + second in browser.current_url and "step=10" in browser.current_url

    browser.find_element("xpath", "//*[contains(text(), 'Attention Cinema')]").click()
    wait(browser, lambda d: graph_data(d, "attention-grid-b") and graph_data(d, "attention-detail-b"))
    wait(browser, lambda d: label(d, "detail", "b") == "second-run · step 8 (nearest to 10)")
    assert text(browser, "compare-note") == "second-run has 1 layer(s) × 2 head(s), the shown run 2 × 2."
    title = "return document.querySelector('#attention-detail-b .js-plotly-plot').layout.title.text;"
    assert browser.execute_script(title) == "layer 1, head 1 at step 8"

    open_menu(browser, "compare-summary")
    click(browser, "compare-stop")
    wait(browser, lambda d: "comparing" not in d.find_element("id", "page").get_attribute("class"))
    wait(browser, lambda d: "compare=" not in d.current_url)
    assert not browser.find_element("id", "attention-grid-b").is_displayed()
    browser.find_element("xpath", "//*[contains(text(), 'Watch It Learn')]").click()
    wait(browser, lambda d: not any("second-run" in (n or "") for n in d.execute_script(
        "return document.querySelector('#loss-chart .js-plotly-plot').data.filter(t => t.showlegend !== false).map(t => t.name);")))


def test_picking_a_run_to_compare_from_the_menu(browser, two_runs):
    url, first, second, _ = two_runs
    browser.get(f"{url}?run={first}")
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    open_menu(browser, "compare-summary")
    choose_option(browser, "compare-pick", second)
    wait(browser, lambda d: label(d, "samples", "b") == "second-run · step 25")
    assert f"compare={second}" in browser.current_url
    wait(browser, lambda d: not d.execute_script("return document.getElementById('compare-menu').open"))
    assert text(browser, "compare-summary") == "vs second-run"  # the menu closed on the pick, and says it
    open_menu(browser, "compare-summary")
    assert "comparing with second-run" in text(browser, "compare-pick")


def test_marking_what_changed_since_the_snapshot_before_or_a_chosen_one(browser, two_runs):
    from dash_app.figures.sample_diff import counts, word_diff
    from llmb_mlflow.library.reader import RunReader

    url, first, _, _ = two_runs
    reader = RunReader(two_runs[3])
    sample = {step: reader.snapshot(first, step).sample for step in (0, 10, 20)}
    browser.get(f"{url}?run={first}&step=20")
    wait(browser, lambda d: text(d, "shown-step") == "step 20")
    browser.find_element("css selector", "#samples-diff input").click()
    heading = ("const h = document.querySelector('#samples .sample.diff .sample-step');"
               "return h ? h.textContent : '';")
    for against in (10, 0):
        if against == 0:
            choose_option(browser, "diff-against", 0)
        added, removed = counts(word_diff(sample[against], sample[20]))
        wait(browser, lambda d: d.execute_script(heading) ==
             f"step 20 against step {against}: {added} word(s) added, {removed} removed")
    marked = browser.execute_script("return document.querySelectorAll('#samples .diff-added, #samples .diff-removed').length;")
    assert marked == len([k for k, _ in word_diff(sample[0], sample[20]) if k != "same"]) > 0


def test_the_loss_chart_marks_checkpoints_and_saves(browser, two_runs):
    url, first, _, _ = two_runs
    browser.get(f"{url}?run={first}")
    events = ("const gd = document.querySelector('#loss-chart .js-plotly-plot');"
              "return gd && gd.data ? gd.data.find(t => t.name === 'events') : null;")
    wait(browser, lambda d: d.execute_script(events) and d.execute_script(events)["text"])
    shown = browser.execute_script(events)
    assert "checkpoint at step 10" in shown["text"]
    assert "saved to the model library as firstling/1 (step 10)" in shown["text"]


def test_a_run_the_address_names_that_cannot_be_compared_says_why(browser, two_runs):
    url, first, _, _ = two_runs
    browser.get(f"{url}?run={first}&compare=../../etc/passwd")
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    wait(browser, lambda d: text(d, "run-error") == "Cannot compare: run '../../etc/passwd' is not an MLflow run id")
    assert "comparing" not in browser.find_element("id", "page").get_attribute("class")
    assert graph_data(browser, "tower")  # the shown run is shown as ever
