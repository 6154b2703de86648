"""The Token Playground in headless Chromium: the model at the scrubber's step, stepping the
text, and a click on a bar writing that character."""

import pytest

from browser import click, needs_browser, serve, text, wait

pytestmark = [needs_browser, pytest.mark.usefixtures("blank_page")]

BARS = "return JSON.stringify((document.querySelector('#pg-bars .js-plotly-plot') || {}).data || null);"
WRITTEN = "return document.getElementById('pg-text').textContent;"
BURST = """const [clicks, done] = arguments, button = document.getElementById('pg-step');
(async () => {  // as fast as a script can, letting the page take in each click
    for (let i = 0; i < clicks; i++) { button.click(); await new Promise(resolve => setTimeout(resolve, 0)); }
    done();
})();"""


@pytest.fixture(scope="module")
def viewer(finished_run):
    url, server = serve(finished_run.uri)
    yield url
    server.close()


def test_the_playground_uses_the_model_at_the_shown_step_and_writes_what_is_picked(browser, viewer):
    import json

    from selenium.webdriver.common.action_chains import ActionChains

    from llmb_mlflow.formats.vocabulary import label as visible

    browser.get(f"{viewer}?tab=playground&step=0")
    wait(browser, lambda d: text(d, "shown-step") == "step 0" and d.execute_script(BARS) not in (None, "null"))
    assert "step 0" in text(browser, "pg-model-step")
    early = browser.execute_script(BARS)
    click(browser, "step-forward")
    click(browser, "step-forward")
    wait(browser, lambda d: text(d, "shown-step") == "step 20" and "step 20" in text(d, "pg-model-step"))
    wait(browser, lambda d: d.execute_script(BARS) != early)

    before = browser.execute_script(WRITTEN)
    click(browser, "pg-step")
    wait(browser, lambda d: len(d.execute_script(WRITTEN)) == len(before) + 1)
    stepped = browser.execute_script(WRITTEN)
    assert stepped.startswith(before)

    third = json.loads(browser.execute_script(BARS))[0]["y"][2].strip()
    wait(browser, lambda d: ActionChains(d).move_to_element(
        d.find_elements("css selector", "#pg-bars .point path")[2]).click().perform() or True)
    wait(browser, lambda d: len(d.execute_script(WRITTEN)) == len(stepped) + 1)
    assert visible(browser.execute_script(WRITTEN)[-1]) == third

    click(browser, "pg-regenerate")  # back to the prompt, other draws from there
    wait(browser, lambda d: d.execute_script(WRITTEN) == "ROMEO:")


def test_a_prompt_with_characters_the_model_never_saw_is_refused_in_one_line(browser, viewer):
    from selenium.webdriver.common.keys import Keys

    from browser import retype

    browser.get(f"{viewer}?tab=playground")
    wait(browser, lambda d: d.execute_script(BARS) not in (None, "null"))
    field = browser.find_element("id", "pg-prompt")
    retype(field, "ROMEO§")
    field.send_keys(Keys.ENTER)
    wait(browser, lambda d: text(d, "pg-error") == "The prompt has characters this model never saw: '§'")


def test_try_in_the_models_menu_opens_the_playground_at_the_versions_step(browser, store_uri, shakespeare):
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
    from llmb_mlflow.library.registry import ModelLibrary

    from browser import open_menu
    from conftest import train_tiny

    tracker = MlflowTracker(store_uri)
    train_tiny(shakespeare, tracker, max_iters=20)
    ModelLibrary(store_uri).save(tracker.run_id, "try-me")
    url, server = serve(store_uri)
    try:
        browser.get(url)
        open_menu(browser, "models-summary")
        wait(browser, lambda d: d.find_element("css selector", "tr.model-row[data-model='try-me'] a.try").click() or True)
        wait(browser, lambda d: "tab=playground" in d.current_url and "step 20" in text(d, "pg-model-step"))
        wait(browser, lambda d: d.execute_script(BARS) not in (None, "null"))
    finally:
        server.close()


def test_steps_clicked_faster_than_the_server_answers_each_write_one_character(browser, viewer, finished_run):
    from dash_app.data import ViewerData
    from dash_app.panels.playground import DRAW, Models, advance, draw, encoder, next_probabilities

    clicks = 6
    model, vocab, _ = Models(ViewerData(finished_run.uri)).at(finished_run.run_id, 20)
    expected, _ = advance({"text": "ROMEO:", "turn": 0, "done": 0},  # seed 0, temperature 1
                          {"prompt": "ROMEO:", "seed": 0, "turn": 0, "moves": [DRAW] * clicks}, vocab,
                          lambda ids: draw(next_probabilities(model, ids, 1.0), 0, len(ids)), encoder(vocab))
    browser.get(f"{viewer}?tab=playground&step=20")
    wait(browser, lambda d: "step 20" in text(d, "pg-model-step") and d.execute_script(WRITTEN) == "ROMEO:")
    browser.execute_async_script(BURST, clicks)  # every click before the first answer arrives
    wait(browser, lambda d: d.execute_script(WRITTEN) == expected["text"])
    assert len(expected["text"]) == len("ROMEO:") + clicks
