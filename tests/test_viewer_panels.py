"""The viewer's pure figure functions, on real snapshots from a real run (the scrubber's state
machine runs in the page: tests/test_viewer_browser.py)."""

import math

import numpy as np
import pytest

from dash_app.data import ViewerData
from dash_app.figures import attention, loss, phase, probability_tower, star_map, text_progression
from dash_app.figures.plotly_json import untyped
from llmb_mlflow.formats.vocabulary import label


@pytest.fixture(scope="module")
def snaps(finished_run):
    data = ViewerData(finished_run.uri)
    steps = data.snapshot_steps(finished_run.run_id)
    return data, finished_run.run_id, steps, [data.snapshot(finished_run.run_id, s) for s in steps]


def test_viewer_never_imports_torch():
    import subprocess
    import sys

    code = "import sys, dash_app.app, dash_app.server, dash_app.mlflow_app; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_loss_figure_traces_and_marker(snaps):
    data, run_id, steps, _ = snaps
    chart = data.chart(run_id)
    fig = loss.loss_figure(*chart["train"], *chart["val"], shown_step=20, smoothing=0.6, log_scale=True)
    raw, smooth, val, other_train, other_val, events = fig.data
    assert list(raw.x) == list(range(1, 26)) and list(val.x) == steps
    assert not (other_train.x or other_val.x or events.x)  # nothing compared, no events given
    assert fig.layout.shapes[0].x0 == 20 and fig.layout.yaxis.type == "log"
    assert np.std(np.diff(smooth.y)) < np.std(np.diff(raw.y))


def test_smoothing_continues_across_appends():
    values = np.linspace(4, 2, 50) + np.sin(np.arange(50))
    whole = loss.smooth(values, 0.9)
    head = loss.smooth(values[:30], 0.9)
    assert np.allclose(loss.smooth(values[30:], 0.9, start=head[-1])[-1], whole[-1], atol=0.05)
    assert loss.smooth(values, 0.0).tolist() == values.tolist()


def test_perplexity_in_words():
    assert loss.perplexity(math.log(8.0)).startswith("perplexity 8.0")
    assert loss.perplexity(None) == "perplexity -"


def test_phase_captions_follow_the_loss_and_fall_back_to_steps():
    assert phase.phase(0, 4.17)[0] == "Babbling"
    assert phase.phase(900, 2.6)[0] == "Learning the alphabet"
    assert phase.phase(900, 2.2)[0] == "Common words"
    assert phase.phase(900, 1.9)[0] == "Grammar and structure"
    assert phase.phase(900, 1.5)[0] == "Mimicking the style"
    assert phase.phase(400, None)[0] == "Learning the alphabet"
    assert phase.phase(4000, None)[0] == "Mimicking the style"


def test_text_progression_newest_first_with_the_shown_one_highlighted(snaps):
    data, run_id, steps, _ = snaps
    items = text_progression.text_progression(data.samples(run_id, steps), shown_step=20)
    assert [item.id["step"] for item in items] == [20, 10, 0]
    assert items[0].className == "sample current" and items[1].className == "sample"


def test_a_long_runs_samples_are_the_newest_and_a_spread_of_the_earlier_ones():
    steps = list(range(0, 100_000, 50))
    listed = text_progression.listed_steps(steps, shown_step=5000)
    assert len(listed) == text_progression.LISTED and listed[0] == 0 and listed[-1] == 5000
    assert listed[-text_progression.NEWEST:] == list(range(4450, 5001, 50))  # the newest, each of them
    assert listed == sorted(set(listed)) and set(listed) <= set(steps)
    assert text_progression.listed_steps(steps[:10], shown_step=300) == steps[:7]  # few: every one

    items = text_progression.text_progression([(s, f"text {s}") for s in listed], 5000, steps=steps)
    gaps = [item.children for item in items if item.className == "sample-gap"]
    samples = [item for item in items if item.className != "sample-gap"]
    assert [s.id["step"] for s in samples] == listed[::-1] and samples[0].className == "sample current"
    assert gaps[0] == "… 7 more samples between step 4000 and step 4400: move the scrubber to read them"
    assert len(gaps) == text_progression.LISTED - text_progression.NEWEST - 1
    assert sum(int(g.split()[1]) for g in gaps) + len(listed) == 101  # every step up to 5000, counted once


def test_a_live_chart_adds_fewer_points_the_longer_the_run():
    assert loss.thinned([1, 2, 3], 2000) == [0, 1, 2]
    steps = list(range(40_001, 40_101))
    kept = [steps[i] for i in loss.thinned(steps, 2000)]
    assert kept == [40_020, 40_040, 40_060, 40_080, 40_100]  # one every 20 steps at step 40,000
    assert loss.thinned([40_001, 40_003], 2000) == [1]  # the newest always


def test_probability_tower_marks_the_sampled_characters(snaps):
    snap = snaps[3][-1]
    fig = probability_tower.tower_figure(snap, temperature=1.0)
    heat, marks = fig["data"]
    z = untyped(heat["z"])
    assert z.shape == (5, len(snap.sample_ids))
    assert np.allclose(z[0], snap.topk_probs[:, 0] / snap.topk_probs.astype(np.float64).sum(1), atol=1e-3)
    in_top5 = sum(s in row[:5] for s, row in zip(snap.sample_ids, snap.topk_ids))
    assert len(marks["x"]) == in_top5
    n = len(snap.sample_ids)
    said = fig["layout"]["xaxis"]["title"]["text"]  # the window on a long sample is said, and can be moved
    assert said == (f"position in the sample: the first 60 of {n}, drag sideways for the rest" if n > 60
                    else "position in the sample") and fig["layout"]["dragmode"] == "pan"


def test_temperature_sharpens_or_flattens():
    probs = np.array([[0.5, 0.3, 0.2]])
    assert probability_tower.reweight(probs, 0.5)[0, 0] > 0.5 > probability_tower.reweight(probs, 2.0)[0, 0]
    assert np.allclose(probability_tower.reweight(probs, 1.0), probs)


def test_star_map_classes_neighbours_and_fixed_axes(snaps):
    data, run_id, steps, shots = snaps
    reach = data.embedding_range(run_id, steps)
    figs = [star_map.star_figure(s, reach) for s in shots]
    names = {t["name"] for t in figs[-1]["data"]}
    assert {"vowel", "consonant", "punctuation", "whitespace"} <= names
    assert sum(len(untyped(t["x"])) for t in figs[-1]["data"]) == 65
    assert all(f["layout"]["scene"]["xaxis"]["range"] == [-reach, reach] for f in figs)
    fitted = star_map.star_figure(shots[-1])["layout"]["scene"]  # the default: fits the shown step
    emb = np.asarray(shots[-1].embedding)
    widest = float((emb.max(axis=0) - emb.min(axis=0)).max())
    for axis, column in zip(("xaxis", "yaxis", "zaxis"), emb.T):
        low, high = fitted[axis]["range"]
        assert low < column.min() and column.max() < high and widest < high - low < 1.2 * widest  # one scale
    assert star_map.char_class("e") == "vowel" and star_map.char_class("\n") == "whitespace"


def test_attention_figures(snaps):
    first, last = snaps[3][0], snaps[3][-1]
    grid = attention.grid_figure(last)
    tiles = untyped(grid["data"][0]["z"])
    t = len(last.probe)
    assert tiles.shape == (last.n_layer * (t + attention.GAP) - attention.GAP,
                           last.n_head * (t + attention.GAP) - attention.GAP)
    assert np.allclose(tiles[:t, :t] ** 2, last.attention[0, 0].astype(np.float32), atol=1e-3)
    assert np.isnan(tiles[t, 0])  # the gap between layers
    detail = attention.detail_figure(last, 1, 0)
    assert np.allclose(untyped(detail["data"][0]["z"]), last.attention[1, 0].astype(np.float32))
    ticks = detail["layout"]["xaxis"]
    assert len(ticks["ticktext"]) <= 32 and ticks["tickfont"]["size"] >= 11  # thinned, readable
    assert ticks["ticktext"] == [label(last.probe[i]) for i in ticks["tickvals"]]
    outline = attention.grid_figure(last, 1, 2)["layout"]["shapes"][0]
    side = attention.grid_side(last)
    assert outline["x0"] < 2 * side < 2 * side + t <= outline["x1"] and outline["y0"] < side < side + t <= outline["y1"]
    evolution = attention.evolution_figure(first, last, 0, 1)
    assert [a["text"] for a in evolution["layout"]["annotations"]] == ["step 0", "step 25"]


def test_eta_from_the_pace_so_far():
    from dash_app.panels.controls import eta

    state = {"last_step": 100, "pace_step": 0, "pace_time": 1000, "updated": 61000, "max_iters": 1000,
             "start_time": 0, "first_step": 0}
    assert eta(state) == ", about 9 min left"
    assert eta({**state, "max_iters": 200, "updated": 11000}) == ", about 10 s left"
    assert eta({**state, "last_step": 1000}) == ""
    assert eta({**state, "pace_step": None}) == ""  # not yet seen to go on: the run's start is no pace
    assert eta({**state, "updated": 4000}) == ""  # watched for 3 s: not yet


def test_the_header_says_what_the_training_does_and_enables_what_it_can_be_asked():
    from dash_app.panels.controls import COMMANDS, header

    base = {"status": "RUNNING", "last_step": 10, "max_iters": 100, "first_step": 0,
            "start_time": 0, "updated": 10_000}

    def enabled(state, refusal=None):
        flags = header(state, refusal)[3:3 + len(COMMANDS)]
        return {command for command, disabled in zip(COMMANDS, flags) if not disabled}

    assert header(base)[:2] == ("running", "badge running") and enabled(base) == {"pause", "stop"}
    assert header(base)[2].startswith("step 10 / 100")
    paused = {**base, "trainer_state": "paused"}
    assert header(paused)[:3] == ("running · paused", "badge paused", "step 10 / 100")
    assert enabled(paused) == {"resume", "step", "stop"}
    stale = {**base, "silence": "stale: silent for 2 min"}
    assert header(stale)[:2] == ("running · stale: silent for 2 min", "badge stale") and enabled(stale) == {"fail"}
    finished = {**base, "status": "FINISHED", "last_step": 100}
    assert header(finished)[:3] == ("finished", "badge finished", "step 100 / 100") and enabled(finished) == set()
    assert header(None)[:3 + len(COMMANDS)] == ("", "badge", "") + (True,) * len(COMMANDS)
    refused = "ann may not control this run: that needs EDIT on the experiment 'x', and ann has READ"
    assert enabled(paused, refused) == enabled(stale, refused) == set()
    assert set(header(paused, refused)[3 + len(COMMANDS):]) == {refused}  # every tooltip says why
    assert "pause the training" in header(base)[3 + len(COMMANDS)]


def test_the_scrubber_says_whether_the_view_follows_the_training():
    from dash_app.panels.scrubber import follow_words

    assert follow_words(live=True, running=True) == ("Following the training", "")
    assert follow_words(live=False, running=True) == ("Follow the training", "pinned")
    assert follow_words(live=True, running=False) == ("Showing the last step", "")
    assert follow_words(live=False, running=False)[1] == "pinned"
    assert follow_words(live=False, running=False, at_end=True) == ("Showing the last step", "")  # nothing to go to
    assert follow_words(live=False, running=True, at_end=True) == ("Follow the training", "pinned")


def test_a_click_on_the_attention_grid_names_its_tile():
    side, layers, heads = 67, 4, 4
    assert attention.clicked_head({"points": [{"x": 0, "y": 0}]}, side, layers, heads) == (0, 0)
    assert attention.clicked_head({"points": [{"x": 2 * side + 5, "y": 3 * side + 66}]}, side, layers, heads) == (3, 2)
    assert attention.clicked_head({"points": [{"x": 4 * side, "y": 0}]}, side, layers, heads) is None
    for bad in (None, {}, {"points": []}, {"points": [{"x": "1", "y": 0}]}, {"points": [{"x": -1, "y": 0}]},
                {"points": [{"x": True, "y": 0}]}):
        assert attention.clicked_head(bad, side, layers, heads) is None


def test_the_star_maps_nearest_tokens_are_the_closest_others_nearest_first():
    points = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    brute = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    np.fill_diagonal(brute, np.inf)
    assert np.array_equal(star_map.nearest(points), np.argsort(brute, axis=1)[:, :3])
    assert star_map.nearest(points[:2]).tolist() == [[1], [0]] and star_map.nearest(points[:1]).shape == (1, 0)


def test_a_finished_run_pinned_at_its_last_step_offers_nothing_to_go_to(finished_run):
    from browser import serve
    from dash_requests import CallbackPoster

    url, server = serve(finished_run.uri)
    try:
        page = CallbackPoster(url)
        state = {"run_id": finished_run.run_id, "status": "FINISHED"}

        def button(step):
            answer = page.post("view.data", {"view.data": {"live": False, "playing": False, "step": step},
                                             "run-state.data": state, "steps.data": [0, 10, 20, 25]},
                               output="view-mode")
            return answer.outputs["view-mode.children"], str(answer.outputs["live.children"])

        assert button(25)[0] == "" and "Showing the last step" in button(25)[1]
        assert button(10)[0] == "pinned" and "Go to the last step" in button(10)[1]
    finally:
        server.close()
