"""The style statistics and the style match, on texts whose numbers are known."""

import pytest

from llmb_mlflow.training import style

SOURCE = "To be, or not to be: that is the question. Whether 'tis nobler in the mind to suffer!"


def test_statistics_of_a_known_text():
    found = style.statistics("Hello there. I am Bob!")
    assert found.word_length == pytest.approx(16 / 5)  # Hello there I am Bob
    assert found.sentence_length == pytest.approx(5 / 2)
    assert found.punctuation == pytest.approx(2 / 22)
    assert found.capitals == pytest.approx(3 / 16)
    empty = style.statistics("")
    assert (empty.word_length, empty.sentence_length, empty.punctuation, empty.capitals) == (0, 0, 0, 0)


def test_the_source_itself_matches_fully_and_noise_matches_little():
    source = style.profile(SOURCE)
    itself = style.match(source, SOURCE)
    assert itself["style_match"] == pytest.approx(100.0)
    assert set(itself) == {"style_match", "word_length", "sentence_length", "punctuation", "capitals",
                           "word_overlap", "bigram_similarity"}
    noise = style.match(source, "xq ZJ#k vv@@ pPq zz !!! wQx")
    assert noise["word_overlap"] == 0 and noise["style_match"] < 40
    close = style.match(source, "To be the question, or not to be in the mind.")
    assert noise["style_match"] < close["style_match"] < 100
    assert all(0 <= v <= 1 for k, v in close.items() if k != "style_match")


def test_closeness_is_symmetric_and_bounded():
    assert style.closeness(2, 4) == style.closeness(4, 2) == 0.5
    assert style.closeness(0, 0) == 1 and style.closeness(0, 3) == 0


def test_a_training_logs_the_style_of_each_sample(finished_run):
    from mlflow import MlflowClient

    from llmb_mlflow.run_layout import STYLE_METRICS

    client = MlflowClient(finished_run.uri)
    for name in STYLE_METRICS:
        history = client.get_metric_history(finished_run.run_id, name)
        assert [m.step for m in history] == [0, 10, 20, 25], name
    matches = [m.value for m in client.get_metric_history(finished_run.run_id, "style_match")]
    assert all(0 < v < 100 for v in matches)
