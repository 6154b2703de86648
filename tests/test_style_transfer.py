"""The Style Transfer tab: its checks of a pasted text, its table and chart, and (in headless
Chromium) a text pasted, trained on and measured."""

import pytest

from dash_app.panels import style_transfer
from llmb_mlflow.errors import LLMBError

from browser import needs_browser, serve, text, wait

POEM = ("Shall I compare thee to a summer's day? Thou art more lovely and more temperate: Rough winds "
        "do shake the darling buds of May, And summer's lease hath all too short a date; Sometime too "
        "hot the eye of heaven shines, And often is his gold complexion dimm'd; And every fair from fair "
        "sometime declines, By chance or nature's changing course untrimm'd. ") * 3


def test_a_pasted_text_needs_fifty_words_and_to_be_text():
    assert style_transfer.pasted(POEM) == POEM.encode()
    for bad, message in [("", "paste a text to imitate first"), (None, "paste a text to imitate first"),
                         ("one two three four five six seven eight nine ten", "the text has 10 words; paste at least 50"),
                         ("word " * 49, "the text has 49 words; paste at least 50"),
                         ("word " * 60 + "\ud800", "not text (at position 300)")]:
        with pytest.raises(LLMBError, match=message.replace("(", r"\(").replace(")", r"\)")):
            style_transfer.pasted(bad)


def test_a_short_text_gets_a_context_that_its_validation_tenth_can_hold():
    assert style_transfer.context_for(POEM.encode()) == 96  # the small preset's
    short = ("word " * 50).encode()  # 250 characters: 25 kept for validation
    assert style_transfer.context_for(short) == 23


def test_the_table_sets_the_sample_beside_the_text():
    rendered = str(style_transfer.style_table({"word_length": 4.0, "capitals": 0.05}, "Hi there. Bob!", 300))
    assert "sample at step 300" in rendered and "4.00" in rendered and "5.0%" in rendered
    assert "3.33" in rendered  # Hi there Bob: 10 letters, 3 words
    figure = style_transfer.match_figure([0, 50], [20.0, 61.5], 50)
    assert figure["data"][0]["y"] == [20.0, 61.5] and figure["layout"]["shapes"][0]["x0"] == 50


@needs_browser
@pytest.mark.usefixtures("blank_page")
def test_a_pasted_text_trains_a_run_whose_style_is_measured(browser, store_uri, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from browser import kill_trainers, retype
    from llmb_mlflow.run_layout import PURPOSE_TAG, STYLE_TRANSFER

    monkeypatch.setenv("LLMB_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("LLMB_LOG_DIR", str(tmp_path / "logs"))
    client = MlflowClient(store_uri)

    def runs():
        return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]

    url, server = serve(store_uri)
    try:
        browser.get(f"{url}?tab=style")
        field = wait(browser, lambda d: d.find_element("id", "st-text"))
        field.send_keys("one two three four five six seven eight nine ten")
        browser.find_element("id", "st-start").click()
        wait(browser, lambda d: text(d, "st-feedback") == "Could not start: the text has 10 words; paste at least 50")
        assert not runs()
        retype(field, POEM)
        retype(browser.find_element("id", "st-steps"), "30")
        retype(browser.find_element("id", "st-every"), "10")
        browser.find_element("id", "st-start").click()
        wait(browser, lambda d: "finished" in text(d, "status"), timeout=180)
        wait(browser, lambda d: text(d, "st-match").startswith("Style match at step 30: "))
        assert "training text" in text(browser, "st-table") and "sample at step 30" in text(browser, "st-table")
        points = "return document.querySelector('#st-chart .js-plotly-plot').data[0].x;"
        wait(browser, lambda d: d.execute_script(points) == [0, 10, 20, 30])
        run = runs()[0]
        assert run.data.tags[PURPOSE_TAG] == STYLE_TRANSFER and run.data.params["source_word_length"]
    finally:
        kill_trainers(store_uri)
        server.close()


@needs_browser
@pytest.mark.usefixtures("blank_page")
def test_a_chosen_file_fills_the_box(browser, finished_run, tmp_path):
    poem = tmp_path / "sonnet.txt"
    poem.write_text("Shall I compare thee to a summer’s day?\n", encoding="utf-8")
    url, server = serve(finished_run.uri)
    try:
        browser.get(f"{url}?tab=style")
        wait(browser, lambda d: d.find_element("css selector", "#st-upload input[type=file]")).send_keys(str(poem))
        wait(browser, lambda d: d.find_element("id", "st-text").get_attribute("value") == poem.read_text(encoding="utf-8"))
    finally:
        server.close()
