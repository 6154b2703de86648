"""Comparing runs and steps: the pure parts (which snapshot a compared run shows, what changed
between two samples, what happened during a run) on real runs in a real store."""

import pytest

from dash_app.panels import compare
from dash_app.figures import loss, sample_diff


@pytest.mark.parametrize("step, expected", [(0, 0), (7, 0), (8, 15), (100, 105), (97, 90), (10**6, 150)])
def test_a_compared_run_shows_its_nearest_snapshot(step, expected):
    assert compare.nearest(list(range(0, 151, 15)), step) == expected


def test_differing_model_shapes_are_said_and_the_nearest_head_shown():
    assert compare.shapes_note("b", 2, 4, 2, 4, 1, 3) == ""
    note = compare.shapes_note("bold-fox", 1, 2, 3, 4, 2, 3)
    assert note == ("bold-fox has 1 layer(s) × 2 head(s), the shown run 3 × 4; layer 3, head 4 is not "
                    "in it, so its nearest head is shown.")
    assert compare.shapes_note("b", 1, 2, 3, 4, 0, 1) == "b has 1 layer(s) × 2 head(s), the shown run 3 × 4."
    assert compare.shapes_note("bigram", 0, 0, 3, 4, 2, 3) == "bigram records no attention: there is nothing to compare."
    assert compare.shapes_note("b", 3, 4, 0, 0, 0, 0) == "The shown run records no attention: there is nothing to compare."


@pytest.mark.parametrize("old, new, added, removed", [
    ("the cat sat on the mat", "the cat sat on the mat", 0, 0),
    ("the cat sat on mat", "the dog sat on the mat", 2, 1),
    ("", "first words", 2, 0),
    ("all gone", "", 0, 2),
    ("xq zz\nab", "xq zz\nabc de", 2, 1),
])
def test_the_sample_diff_spells_both_samples_and_counts_words(old, new, added, removed):
    pieces = sample_diff.word_diff(old, new)
    assert "".join(t for k, t in pieces if k != sample_diff.REMOVED) == new
    assert "".join(t for k, t in pieces if k != sample_diff.ADDED) == old
    assert sample_diff.counts(pieces) == (added, removed)


def test_the_diff_is_against_the_chosen_earlier_step_or_the_one_before():
    steps = [0, 10, 20, 30]
    assert sample_diff.against(steps, 30, None) == 20
    assert sample_diff.against(steps, 30, 10) == 10
    assert sample_diff.against(steps, 20, 30) == 10  # a later step is not "since"
    assert sample_diff.against(steps, 20, "10") == 10  # what the page sent, checked
    assert sample_diff.against(steps, 0, None) is None


def test_events_in_words_within_the_run():
    facts = {"checkpoints": [500, 1000], "saves": [(1000, "bard/2")], "pauses": [(300, True), (340, False)],
             "resumed_from": "bard/1", "warmup": 100}
    events = loss.event_list(facts, first_step=200, last_step=1000)
    assert events == [
        (200, "continues bard/1 from its step 200"),
        (300, "paused at step 300"),
        (340, "resumed at step 340"),
        (500, "checkpoint at step 500"),
        (1000, "checkpoint at step 1000"),
        (1000, "saved to the model library as bard/2 (step 1000)"),
    ]  # the warm-up ended in the run it continues
    assert (100, "warm-up ends at step 100: the learning rate is at its peak") in loss.event_list(
        {"warmup": 100}, first_step=0, last_step=1000)


def test_the_loss_chart_overlays_a_compared_run_and_marks_events(store_uri, shakespeare):
    from dash_app.data import ViewerData

    from conftest import bard_library

    library = bard_library(store_uri, shakespeare)  # a 12-step run, checkpoints at 6 and 12, both saved
    run_id = library.resolve("bard/1").run_id
    data = ViewerData(store_uri)
    chart, facts = data.chart(run_id), data.events(run_id)
    assert facts["checkpoints"] == [6, 12] and facts["saves"] == [(6, "bard/1"), (12, "bard/2")]
    assert facts["pauses"] == [] and facts["resumed_from"] is None
    events = loss.event_list(facts, 0, data.run(run_id).last_step)
    other = {"name": "other-run", **chart}
    fig = loss.loss_figure(*chart["train"], *chart["val"], 10, other=other, events=events)
    assert fig.data[loss.OTHER_TRAIN].name == "other-run: train loss"
    assert list(fig.data[loss.OTHER_VAL].x) == chart["val"][0]
    assert fig.data[loss.OTHER_TRAIN].line.dash == "dash"
    assert list(fig.data[loss.EVENTS].text) == [what for _, what in events]
    assert fig.layout.shapes[0].x0 == 10 and len(fig.layout.shapes) == 1 + len({s for s, _ in events})
