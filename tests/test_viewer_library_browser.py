"""The model library and training controls of the viewer, in a real browser against a real store;
trainings started from the browser run in processes of their own."""

import pytest

from browser import (
    choose_option, click, click_row, kill_trainers, needs_browser, open_menu, retype, serve, shown_run,
    stop_from_browser, text, wait,
)
from conftest import bard_library

pytestmark = [needs_browser, pytest.mark.usefixtures("blank_page")]
TINY_FORM = {"max_iters": 100000, "batch_size": 8, "eval_interval": 50, "block_size": 16}


@pytest.fixture
def library_with_models(store_uri, shakespeare):
    """A store holding 'bard', and a viewer on it."""
    library = bard_library(store_uri, shakespeare)
    url, server = serve(store_uri)
    yield url, library
    server.close()


def test_a_read_only_viewer_shows_models_but_changes_nothing(browser, store_uri, shakespeare):
    from mlflow import MlflowClient

    library = bard_library(store_uri, shakespeare)
    before = names(library)
    url, server = serve(store_uri, read_only=True)
    displayed = lambda d, css: d.find_element("css selector", css).is_displayed()  # noqa: E731
    try:
        browser.get(url)
        wait(browser, lambda d: "finished" in text(d, "status") and displayed(d, ".view-only"))
        for hidden in ("#ctl-pause", "#train-summary", "#save-model", "#load-steps"):
            assert not displayed(browser, hidden), hidden
        open_menu(browser, "models-summary")
        wait(browser, lambda d: d.find_elements("css selector", ".model-row"))
        assert menu_fits(browser, "models-summary")
        assert not browser.execute_script(  # in one script: the list may be redrawn meanwhile
            "return [...document.querySelectorAll('.model-row button')].some(b => b.getClientRects().length);")
        # a script can still click what is hidden: the server refuses
        refusal = "this viewer is read-only: change trainings and models with `llmb` or a viewer that is not"
        browser.execute_script("document.getElementById('save-model').click()")
        wait(browser, lambda d: text(d, "toast") == f"Could not save: {refusal}")
        browser.execute_script("document.getElementById('train-start').click()")
        wait(browser, lambda d: text(d, "toast") == f"Could not start: {refusal}")
        assert names(library) == before
        assert len(MlflowClient(store_uri).search_runs(
            [e.experiment_id for e in MlflowClient(store_uri).search_experiments()])) == 1
    finally:
        server.close()


def names(library):
    return {name: [v.version for v in versions] for name, versions in library.models()}


def test_rename_inline_enter_confirms_escape_cancels(browser, library_with_models, llmb):
    from selenium.webdriver.common.keys import Keys

    url, library = library_with_models
    browser.get(url)
    open_menu(browser, "models-summary")
    wait(browser, lambda d: "bard" in text(d, "models-list"))
    click_row(browser, "bard", "2", "button.rename")
    field = wait(browser, lambda d: d.find_element("css selector", ".rename-input input"))
    retype(field, "sonnets")
    field.send_keys(Keys.ENTER)
    wait(browser, lambda d: "Renamed bard to sonnets." in text(d, "toast"))
    wait(browser, lambda d: "sonnets" in text(d, "models-list") and "bard" not in text(d, "models-list"))
    assert names(library) == {"sonnets": ["2", "1"]}
    assert "sonnets" in llmb("models", "list").out

    click_row(browser, "sonnets", "2", "button.rename")
    field = wait(browser, lambda d: d.find_element("css selector", ".rename-input input"))
    retype(field, "never-saved")
    field.send_keys(Keys.ESCAPE)
    wait(browser, lambda d: not d.find_elements("css selector", ".rename-input input"))
    assert names(library) == {"sonnets": ["2", "1"]}

    click_row(browser, "sonnets", "2", "button.rename")
    field = wait(browser, lambda d: d.find_element("css selector", ".rename-input input"))
    retype(field, "bad/name")
    field.send_keys(Keys.ENTER)
    wait(browser, lambda d: "Could not rename sonnets: model name 'bad/name' may not contain" in text(d, "toast"))
    assert names(library) == {"sonnets": ["2", "1"]}


def test_delete_asks_first_and_the_last_version_takes_the_model(browser, library_with_models):
    url, library = library_with_models
    browser.get(url)
    open_menu(browser, "models-summary")
    wait(browser, lambda d: "bard" in text(d, "models-list"))
    click_row(browser, "bard", "1", "button.delete")
    wait(browser, lambda d: "Delete version 1 of bard?" in text(d, "models-list"))
    click_row(browser, "bard", "1", "button.delete-no")
    wait(browser, lambda d: "Delete version" not in text(d, "models-list"))
    assert names(library) == {"bard": ["2", "1"]}

    click_row(browser, "bard", "1", "button.delete")
    click_row(browser, "bard", "1", "button.delete-yes")
    wait(browser, lambda d: "Deleted version 1 of bard." in text(d, "toast"))
    wait(browser, lambda d: "Deleted version 1 of bard." in text(d, "models-feedback"))  # the open menu repeats it
    assert names(library) == {"bard": ["2"]}

    click_row(browser, "bard", "2", "button.delete")
    wait(browser, lambda d: "Delete bard (its only version)?" in text(d, "models-list"))
    click_row(browser, "bard", "2", "button.delete-yes")
    wait(browser, lambda d: "Deleted model bard." in text(d, "toast"))
    wait(browser, lambda d: "No saved models yet." in text(d, "models-list"))
    assert names(library) == {}


def test_load_resumes_in_a_new_live_run_the_viewer_switches_to(browser, library_with_models):
    from llmb_mlflow.library.reader import RunReader

    url, library = library_with_models
    source = library.resolve("bard/2")
    browser.get(f"{url}?run={source.run_id}")
    wait(browser, lambda d: "finished" in text(d, "status"))
    open_menu(browser, "models-summary")
    steps = browser.find_element("id", "load-steps")
    retype(steps, "90000")  # runs until stopped; 9,001 snapshots at most (a viewer allows 10,000)
    try:
        click_row(browser, "bard", "2", "button.load")
        wait(browser, lambda d: "Loaded bard/2 (step 12); training on to step 90012" in text(d, "toast"),
             timeout=120)
        new_run = wait(browser, lambda d: shown_run(d) not in (None, source.run_id) and shown_run(d))
        wait(browser, lambda d: "running" in text(d, "status") and not menu_is_open(d, "models-summary"))
        run = RunReader(library.uri).run(new_run)
        assert run.tags["llmb.parent_run"] == source.run_id and run.tags["llmb.model_version"] == "bard/2"
        wait(browser, lambda d: RunReader(library.uri).run(new_run).last_step > 12)
    finally:  # (Stop from the browser: test_start_from_the_browser_then_pause_resume_stop_across_a_refresh)
        kill_trainers(library.uri)


def test_a_finished_models_load_needs_a_positive_number_of_steps(browser, library_with_models):
    url, _ = library_with_models
    browser.get(url)
    open_menu(browser, "models-summary")
    retype(browser.find_element("id", "load-steps"), "0")
    click_row(browser, "bard", "2", "button.load")
    wait(browser, lambda d: "Could not load bard/2: the number of more steps" in text(d, "toast"))


def fill_training_form(driver, settings):
    open_menu(driver, "train-summary")
    for key, value in settings.items():
        retype(driver.find_element("id", f"train-{key.replace('_', '-')}"), str(value))


def menu_is_open(driver, summary_id):
    return driver.find_element("id", summary_id).find_element("xpath", "..").get_attribute("open") is not None


def menu_fits(driver, summary_id):
    return driver.execute_script(
        "const r = arguments[0].parentElement.querySelector('.menu-body').getBoundingClientRect();"
        "return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth;", driver.find_element("id", summary_id))


def test_menus_close_on_escape_and_outside_clicks_but_not_while_filled_in(browser, store_uri):
    from selenium.webdriver.common.keys import Keys

    url, server = serve(store_uri)
    try:
        browser.get(url)
        open_menu(browser, "models-summary")
        browser.find_element("css selector", "body").send_keys(Keys.ESCAPE)
        wait(browser, lambda d: not menu_is_open(d, "models-summary"))
        open_menu(browser, "models-summary")
        open_menu(browser, "train-summary")  # opening one menu closes the other
        assert not menu_is_open(browser, "models-summary")
        choose_preset(browser, "medium")  # the chosen option leaves the page: still a click inside
        retype(browser.find_element("id", "train-max-iters"), "50")
        assert menu_is_open(browser, "train-summary")
        browser.find_element("css selector", "header h1").click()
        wait(browser, lambda d: not menu_is_open(d, "train-summary"))
        for summary in ("models-summary", "train-summary"):  # each fits in the window, wherever it sits
            open_menu(browser, summary)
            wait(browser, lambda d: menu_fits(d, summary))
    finally:
        server.close()


def choose_preset(driver, preset):
    choose_option(driver, "train-preset", preset)


def test_start_from_the_browser_then_pause_resume_stop_across_a_refresh(browser, store_uri):
    from mlflow import MlflowClient

    from llmb_mlflow.run_layout import TRAINER_STATE_TAG
    from llmb_mlflow.library.reader import RunReader

    url, server = serve(store_uri)
    try:
        browser.get(url)
        fill_training_form(browser, {**TINY_FORM, "lr": 0.002, "temperature": 0.5, "dropout": 0.1})
        choose_preset(browser, "small")
        retype(browser.find_element("id", "train-run-name"), "from-the-browser")
        click(browser, "train-start")
        wait(browser, lambda d: "Started run" in text(d, "toast"), timeout=120)
        run_id = wait(browser, lambda d: shown_run(d))
        wait(browser, lambda d: not menu_is_open(d, "train-summary"))  # done with: out of the way
        run = MlflowClient(store_uri).get_run(run_id)
        assert run.info.run_name == "from-the-browser"
        assert {k: run.data.params[k] for k in ("preset", "lr", "temperature", "dropout", "block_size")} == {
            "preset": "small", "lr": "0.002", "temperature": "0.5", "dropout": "0.1", "block_size": "16"}

        browser.refresh()  # the training is not the page's: it carries on
        wait(browser, lambda d: "running" in text(d, "status"))
        wait(browser, lambda d: d.find_element("id", "ctl-pause").is_enabled())
        click(browser, "ctl-pause")
        wait(browser, lambda d: "paused" in text(d, "status"))
        assert MlflowClient(store_uri).get_run(run_id).info.status == "RUNNING"
        reader = RunReader(store_uri)
        state = lambda: MlflowClient(store_uri).get_run(run_id).data.tags.get(TRAINER_STATE_TAG)  # noqa: E731
        wait(browser, lambda d: state() == "paused")
        paused_at = reader.metric(run_id, "train_loss").steps.tolist()[-1]
        wait(browser, lambda d: d.find_element("id", "ctl-step").is_enabled())
        click(browser, "ctl-step")
        wait(browser, lambda d: reader.metric(run_id, "train_loss").steps.tolist()[-1] == paused_at + 1)
        wait(browser, lambda d: d.find_element("id", "ctl-resume").is_enabled())
        click(browser, "ctl-resume")
        wait(browser, lambda d: "paused" not in text(d, "status") and state() == "running")
        stop_from_browser(browser)
    finally:
        kill_trainers(store_uri)
        server.close()


def test_bad_settings_are_refused_in_one_line_before_anything_starts(browser, store_uri):
    from mlflow import MlflowClient

    url, server = serve(store_uri)
    try:
        browser.get(url)
        fill_training_form(browser, {"lr": 5})
        click(browser, "train-start")
        wait(browser, lambda d: text(d, "toast") == "Could not start: learning rate must be in (0, 1], got 5")
        # the open menu may cover the header's message line, so it repeats the message
        wait(browser, lambda d: text(d, "train-feedback") == "Could not start: learning rate must be in (0, 1], got 5")
        retype(browser.find_element("id", "train-lr"), "0.001")
        retype(browser.find_element("id", "train-block-size"), "100000")
        click(browser, "train-start")
        wait(browser, lambda d: "Could not start: context must be between 2 and 4096" in text(d, "toast"))
        assert MlflowClient(store_uri).search_runs(
            [e.experiment_id for e in MlflowClient(store_uri).search_experiments()]) == []
    finally:
        server.close()


def upload(driver, path):
    open_menu(driver, "train-summary")
    driver.find_element("css selector", "#train-upload input[type=file]").send_keys(str(path))


def test_an_uploaded_corpus_trains_and_bad_uploads_are_refused(browser, store_uri, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("LLMB_UPLOAD_DIR", str(tmp_path / "uploads"))
    url, server = serve(store_uri)
    poem = tmp_path / "poem.txt"
    poem.write_text("The owl and the pussy-cat went to sea in a beautiful pea-green boat.\n" * 40)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café au lait\n".encode("latin-1") * 50)
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"a" * (20 * 2**20 + 1))
    notes = tmp_path / "notes.md"  # (the browser once dropped it without a word)
    notes.write_text("# Notes\n" * 40)
    try:
        browser.get(url)
        upload(browser, binary)
        wait(browser, lambda d: text(d, "toast") ==
             "Could not upload: corpus looks like a binary file (it contains NUL bytes): binary.txt")
        upload(browser, latin1)
        wait(browser, lambda d: "Could not upload: corpus is not valid UTF-8 text" in text(d, "toast"))
        upload(browser, notes)
        wait(browser, lambda d: text(d, "toast") == "Could not upload: upload a .txt file (got 'notes.md')")
        upload(browser, huge)
        wait(browser, lambda d: text(d, "toast") ==
             "Could not upload huge.txt: it is 20.0 MB; the limit is 20 MB", timeout=60)
        assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").rglob("*.txt"))

        upload(browser, poem)
        wait(browser, lambda d: text(d, "toast").startswith("Uploaded poem.txt"))
        assert "poem.txt (uploaded)" in text(browser, "train-corpus")
        fill_training_form(browser, TINY_FORM)
        click(browser, "train-start")
        wait(browser, lambda d: "Started run" in text(d, "toast") and "poem.txt" in text(d, "toast"), timeout=120)
        run_id = wait(browser, lambda d: shown_run(d))
        assert MlflowClient(store_uri).get_run(run_id).data.params["dataset"] == "poem.txt"
        wait(browser, lambda d: "running" in text(d, "status"))
        stop_from_browser(browser)
    finally:
        kill_trainers(store_uri)
        server.close()
