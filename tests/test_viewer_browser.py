"""The viewer in a real browser (headless Chromium) against a real store."""

import re

import pytest

from browser import (
    click, current_sample_step, graph_data, needs_browser, retype, serve, start_training, text, wait,
)

pytestmark = [needs_browser, pytest.mark.usefixtures("blank_page")]


@pytest.fixture(scope="module")
def viewer(finished_run):
    url, server = serve(finished_run.uri)
    yield url
    server.close()


class LiveStore:
    """A store of its own with a viewer on it, and a training running in it: started when first
    asked for, and again once a test has ended it."""

    def __init__(self, uri, folder):
        self.uri, self.folder = uri, folder
        self.url, self.server = serve(uri)
        self.proc = self.run_id = None

    def training(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc, self.run_id = start_training(self.uri, self.folder)
        return self.proc, self.run_id


@pytest.fixture(scope="module")
def live(template_db, tmp_path_factory):
    """For the tests that save from a running training and that stop it (each with runs and
    models of its own names)."""
    from conftest import new_store

    folder = tmp_path_factory.mktemp("live")
    store = LiveStore(new_store(template_db, folder), folder)
    yield store
    if store.proc is not None:
        store.proc.kill()
        store.proc.wait(timeout=60)
    store.server.close()


def test_scrubbing_moves_every_panel_and_live_returns(browser, viewer, finished_run):
    browser.get(viewer)
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    assert current_sample_step(browser) == "step 25"
    wait(browser, lambda d: graph_data(d, "tower") and graph_data(d, "stars"))
    before = {g: graph_data(browser, g) for g in ("tower", "stars")}

    click(browser, "step-back")
    wait(browser, lambda d: text(d, "shown-step") == "step 20")
    wait(browser, lambda d: current_sample_step(d) == "step 20")
    wait(browser, lambda d: all(graph_data(d, g) != before[g] for g in before))
    assert "live-btn on" not in browser.find_element("id", "live").get_attribute("class")
    assert "step=20" in browser.current_url

    from selenium.webdriver.common.keys import Keys
    browser.find_element("tag name", "body").send_keys(Keys.ARROW_LEFT)
    wait(browser, lambda d: text(d, "shown-step") == "step 10")

    click(browser, "live")
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    assert "live-btn on" in browser.find_element("id", "live").get_attribute("class")


SCRUB_CASES = [
    ("steps", {"live": True, "step": 10}, None, {"live": True, "step": 30}),
    ("steps", {"live": False, "step": 10}, None, {"live": False, "step": 10}),
    ("slider", {"live": True, "step": 30}, 1, {"live": False, "step": 10}),
    ("back", {"live": False, "step": 20}, None, {"live": False, "step": 10}),
    ("back", {"live": False, "step": 0}, None, {"live": False, "step": 0}),
    ("forward", {"live": False, "step": 30}, None, {"live": False, "step": 30}),
    ("live", {"live": False, "step": 0}, None, {"live": True, "step": 30}),
    ("click", {"live": True, "step": 30}, 14, {"live": False, "step": 10}),
    ("click", {"live": True, "step": 30}, 16, {"live": False, "step": 20}),
]


def test_the_scrubbers_state_machine_in_the_page(browser, viewer):
    """The state machine the page runs (assets/scrubber.js), called as the page calls it."""
    browser.get(viewer)
    wait(browser, lambda d: text(d, "shown-step") == "step 25")

    def next_view(event, view, steps, value=None, speed=1):
        return browser.execute_script("return window.dash_clientside.scrubber.nextView(...arguments);",
                                      event, {"playing": False, **view}, steps, value, speed)

    for event, view, value, expected in SCRUB_CASES:
        new = next_view(event, view, [0, 10, 20, 30], value)
        assert {k: new[k] for k in expected} == expected, (event, view, value)
    # new snapshots never yank a pinned view; play runs to the end and stops there
    steps = [0, 10, 20, 30, 40]
    view = next_view("slider", {"live": True}, [0, 10, 20], 1)
    view = next_view("steps", view, steps)
    assert view["step"] == 10 and not view["live"]
    view = next_view("tick", next_view("play", view, steps), steps, speed=2)
    assert view["step"] == 30 and view["playing"]
    view = next_view("tick", view, steps, speed=2)
    assert view["step"] == 40 and not view["playing"]
    assert next_view("play", view, steps)["step"] == 0  # at the end, play starts over
    marks = browser.execute_script("return window.dash_clientside.scrubber.marks(arguments[0]);",
                                   list(range(0, 1000, 10)))
    assert marks["99"] == "990" and marks["0"] == "0" and len(marks) <= 10


def test_quick_clicks_are_each_applied_in_order(browser, viewer):
    """Back, back, forward as fast as a script can click: every click counts (a running
    training's new snapshots meanwhile: test_a_running_training_adds_points_live)."""
    browser.get(viewer)
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    for _ in range(2):
        click(browser, "step-back")
    click(browser, "step-forward")
    wait(browser, lambda d: text(d, "shown-step") == "step 20")
    assert "step=20" in browser.current_url and text(browser, "view-mode") == "pinned"


def test_tabs_keep_the_step_and_heatmaps_follow_it(browser, viewer):
    from selenium.webdriver.common.by import By

    browser.get(viewer)
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    click(browser, "step-back")
    wait(browser, lambda d: text(d, "shown-step") == "step 20")
    browser.find_element(By.XPATH, "//*[contains(text(), 'Attention Cinema')]").click()
    wait(browser, lambda d: graph_data(d, "attention-grid") and graph_data(d, "attention-detail"))
    assert text(browser, "shown-step") == "step 20"
    grid = graph_data(browser, "attention-grid")
    click(browser, "step-back")
    wait(browser, lambda d: text(d, "shown-step") == "step 10")
    wait(browser, lambda d: graph_data(d, "attention-grid") != grid)
    assert "tab=attention" in browser.current_url


def test_a_shared_url_lands_on_its_step_and_tab(browser, viewer, finished_run):
    browser.get(f"{viewer}?run={finished_run.run_id}&tab=attention&step=10")
    wait(browser, lambda d: text(d, "shown-step") == "step 10")
    title = "return document.querySelector('#attention-detail .js-plotly-plot').layout.title.text;"
    wait(browser, lambda d: graph_data(d, "attention-detail") and d.execute_script(title))
    assert browser.execute_script(title) == "layer 1, head 1 at step 10"
    assert "tab=attention" in browser.current_url


def test_a_running_training_adds_points_live(browser, store_uri, tmp_path):
    url, server = serve(store_uri)
    proc, run_id = start_training(store_uri, tmp_path)
    try:
        browser.get(f"{url}?run={run_id}")
        wait(browser, lambda d: "running" in text(d, "status"))
        count = "return document.querySelector('#loss-chart .js-plotly-plot').data[0].x.length;"
        wait(browser, lambda d: graph_data(d, "loss-chart") is not None)
        first = browser.execute_script(count)
        wait(browser, lambda d: d.execute_script(count) > first + 20)
        wait(browser, lambda d: text(d, "shown-step") not in ("", "step 0"))
        wait(browser, lambda d: text(d, "live") == "Following the training" and text(d, "view-mode") == "")
        click(browser, "step-back")  # pinned: the view stops, the training goes on
        wait(browser, lambda d: text(d, "live") == "Follow the training")
        assert text(browser, "view-mode") == "pinned" and "running" in text(browser, "status")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        server.close()


def test_clicking_the_loss_chart_jumps_to_the_nearest_snapshot(browser, viewer):
    browser.get(viewer)
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    browser.execute_script(
        "const gd = document.querySelector('#loss-chart .js-plotly-plot');"
        "gd.emit('plotly_click', {points: [{x: 11, y: 3, curveNumber: 1, pointNumber: 10, pointIndex: 10,"
        " data: gd.data[1], fullData: gd._fullData[1]}]});")
    wait(browser, lambda d: text(d, "shown-step") == "step 10")


@pytest.mark.parametrize("backend", ["mlflow_server", "postgres_mlflow_server"])
def test_the_viewer_reads_a_remote_tracking_server(browser, backend, request, shakespeare):
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker

    from conftest import train_tiny

    remote = request.getfixturevalue(backend)
    tracker = MlflowTracker(remote, experiment="viewer-remote")
    train_tiny(shakespeare, tracker)
    url, server = serve(remote)
    try:
        browser.get(f"{url}?run={tracker.run_id}&step=20")
        wait(browser, lambda d: text(d, "shown-step") == "step 20", timeout=90)  # REST under load
        wait(browser, lambda d: current_sample_step(d) == "step 20" and graph_data(d, "tower"), timeout=90)
        assert "finished" in text(browser, "status")
    finally:
        server.close()


def test_save_the_shown_model_from_a_finished_and_a_live_run(browser, live, shakespeare, llmb, monkeypatch):
    from selenium.webdriver.common.by import By

    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker

    from conftest import train_tiny

    monkeypatch.chdir(live.folder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live.uri)
    tracker = MlflowTracker(live.uri)
    train_tiny(shakespeare, tracker, max_iters=12)
    url = live.url
    _, live_id = live.training()

    def save_from_menu(run_id, status, name):
        browser.get(f"{url}?run={run_id}")
        wait(browser, lambda d: status in text(d, "status"))
        browser.find_element(By.CSS_SELECTOR, "#models-menu summary").click()
        field = browser.find_element(By.ID, "save-name")
        wait(browser, lambda d: field.get_attribute("placeholder") == "small-shakespeare")
        assert field.get_attribute("value") == ""  # a suggestion, not text to type into
        if name:
            retype(field, name)
        click(browser, "save-model")

    save_from_menu(tracker.run_id, "finished", None)  # an empty field saves under the suggestion
    wait(browser, lambda d: "Saved step 12 as small-shakespeare/1" in text(d, "toast"))
    save_from_menu(tracker.run_id, "finished", "finished-bard")
    wait(browser, lambda d: "Saved step 12 as finished-bard/1" in text(d, "toast"))
    wait(browser, lambda d: "finished-bard" in text(d, "models-list"))
    save_from_menu(live_id, "running", "live-bard")
    wait(browser, lambda d: re.search(r"Saved step \d+ as live-bard/1", text(d, "toast")))
    listing = llmb("models", "list")
    assert "finished-bard" in listing.out and "live-bard" in listing.out
    bad = browser.find_element(By.ID, "save-name")
    retype(bad, "bad/name")
    click(browser, "save-model")
    wait(browser, lambda d: "Could not save: model name 'bad/name' may not contain" in text(d, "toast"))


def test_a_cli_started_training_is_paused_resumed_and_stopped_from_the_browser(browser, live):
    from mlflow import MlflowClient

    from llmb_mlflow.run_layout import TRAINER_STATE_TAG
    from llmb_mlflow.library.reader import RunReader

    url, store_uri = live.url, live.uri
    proc, run_id = live.training()
    trainer_state = lambda: MlflowClient(store_uri).get_run(run_id).data.tags.get(TRAINER_STATE_TAG)  # noqa: E731
    try:
        browser.get(f"{url}?run={run_id}")
        wait(browser, lambda d: d.find_element("id", "ctl-pause").is_enabled())
        click(browser, "ctl-pause")
        wait(browser, lambda d: "paused" in text(d, "status"))
        assert trainer_state() == "paused" and RunReader(store_uri).run(run_id).status == "RUNNING"
        wait(browser, lambda d: d.find_element("id", "ctl-resume").is_enabled())
        click(browser, "ctl-resume")
        wait(browser, lambda d: "paused" not in text(d, "status") and trainer_state() == "running")
        wait(browser, lambda d: d.find_element("id", "ctl-stop").is_enabled())
        click(browser, "ctl-stop")
        assert proc.wait(timeout=60) == 130
        wait(browser, lambda d: "killed" in text(d, "status"))
    finally:
        proc.kill()


def test_a_crashed_training_shows_as_stale_and_can_be_marked_failed(browser, store_uri):
    import time

    from mlflow import MlflowClient

    from llmb_mlflow.run_layout import HEARTBEAT_TAG, HOST_TAG, KIND_TAG, TRAINING_RUN
    from llmb_mlflow.store.client import experiment_id

    client = MlflowClient(store_uri)
    silent = client.create_run(experiment_id(client, "llmbreaker"), run_name="silent", tags={
        KIND_TAG: TRAINING_RUN, HOST_TAG: "another-machine",
        HEARTBEAT_TAG: str(int(time.time() * 1000) - 600_000)})
    url, server = serve(store_uri)
    try:
        browser.get(f"{url}?run={silent.info.run_id}")
        wait(browser, lambda d: re.fullmatch(r"running · stale: silent for 1[01] min", text(d, "status")))
        assert not browser.find_element("id", "ctl-pause").is_enabled()
        click(browser, "ctl-fail")
        wait(browser, lambda d: text(d, "toast") == "Marked the run FAILED; everything it logged is kept.")
        wait(browser, lambda d: text(d, "status") == "failed")
        assert client.get_run(silent.info.run_id).info.status == "FAILED"
    finally:
        server.close()


def test_an_unknown_run_in_the_address_says_so(browser, viewer):
    browser.get(f"{viewer}?run=0123456789abcdef0123456789abcdef&step=5")
    wait(browser, lambda d: "Cannot show run 0123456789abcdef0123456789abcdef: no run with id"
         in text(d, "run-error"))
    assert text(browser, "error") == ""


def test_a_malformed_address_falls_back_to_the_live_view(browser, viewer, finished_run):
    browser.get(f"{viewer}?run={finished_run.run_id}&tab=bogus&step=abc")
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    wait(browser, lambda d: "tab=watch" in d.current_url and "step=25" in d.current_url)
    assert "live-btn on" in browser.find_element("id", "live").get_attribute("class")
    assert text(browser, "run-error") == "" and text(browser, "error") == ""
