"""``llmb export``: the training movie (GIF, MP4), every metric as CSV, the offline HTML page,
logging the file to its run, and bad input; all from a real tiny training in a real store."""

import csv
import html
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from conftest import train_tiny
from llmb_mlflow.export.exporter import Exporter, evenly, file_name
from llmb_mlflow.export.movie import PANELS
from llmb_mlflow.export.frames import SIZE, FrameBuilder, MovieRun, wrapped
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.run_layout import EXPORT_DIR, TRAIN_LOSS, VAL_LOSS

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = [0, 10, 20, 25]  # the finished tiny run's


@pytest.fixture(scope="module")
def reader(finished_run):
    return RunReader(finished_run.uri)


def movie_run(reader, run_id) -> MovieRun:
    train, val = reader.metric(run_id, TRAIN_LOSS), reader.metric(run_id, VAL_LOSS)
    return MovieRun("tiny", (train.steps, train.values), (val.steps, val.values), 25)


def test_every_panel_draws_a_full_frame_that_follows_the_step(finished_run, reader):
    snaps = [reader.snapshot(finished_run.run_id, step) for step in (0, 25)]
    for panel in PANELS:
        builder = FrameBuilder(movie_run(reader, finished_run.run_id), panel)
        first, last = (builder.frame(snap) for snap in snaps)
        assert first.shape == last.shape == (SIZE[1], SIZE[0], 3) and first.dtype == np.uint8
        drawn = (first < 250).any(axis=2).mean()  # the share of pixels that are not white
        assert 0.003 < drawn < 0.9, (panel, drawn)
        assert (first != last).any(axis=2).mean() > 0.001, panel  # the step moved something


def test_the_all_panel_shows_the_attention_grid_and_the_red_step_marker(finished_run, reader):
    snap = reader.snapshot(finished_run.run_id, 20)
    image = FrameBuilder(movie_run(reader, finished_run.run_id), "all").frame(snap)
    right = image[:, SIZE[0] * 6 // 10:]
    viridis_dark = (right[..., 2] > 60) & (right[..., 0] < 90) & (right[..., 1] < 120)  # viridis' purples
    assert viridis_dark.mean() > 0.05
    loss = image[:SIZE[1] // 3, :SIZE[0] * 6 // 10]
    red = (loss[..., 0] > 180) & (loss[..., 1] < 80) & (loss[..., 2] < 80)
    columns = np.flatnonzero(red.sum(axis=0) > 20)  # the marker: a vertical red line
    assert len(columns) and columns.max() - columns.min() < 6


def test_sample_text_is_cut_to_the_lines_it_has():
    assert wrapped("abcdef\nxy", 4, 5) == "abcd\nef\nxy"
    assert wrapped("a\nb\nc\nd", 10, 2) == "a\nb\n…"


def test_evenly_keeps_first_and_last():
    assert evenly(list(range(0, 100, 10)), 4) == [0, 30, 60, 90]
    assert evenly([5, 6], 4) == [5, 6] and evenly([1, 2, 3], 1) == [3]


def test_csv_holds_every_metric_exactly_as_mlflow_does(finished_run, tmp_path, llmb):
    out = tmp_path / "metrics.csv"
    result = llmb("export", finished_run.run_id, "--format", "csv", "--out", out, "--tracking-uri", finished_run.uri)
    assert result.code == 0, result.err
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    client = MlflowClient(finished_run.uri)
    keys = sorted(client.get_run(finished_run.run_id).data.metrics)
    assert header == ["step", *keys]
    steps = [int(row[0]) for row in body]
    assert steps == sorted(set(steps))  # one row per step
    for i, key in enumerate(keys, 1):
        written = {int(row[0]): float(row[i]) for row in body if row[i] != ""}
        assert written == {m.step: m.value for m in client.get_metric_history(finished_run.run_id, key)}, key
    assert set(steps) == {m.step for key in keys for m in client.get_metric_history(finished_run.run_id, key)}


def test_gif_and_mp4_decode_with_a_frame_per_snapshot(finished_run, tmp_path, llmb):
    import imageio.v3 as iio

    for fmt in ("gif", "mp4"):
        out = tmp_path / f"movie.{fmt}"
        result = llmb("export", finished_run.run_id, "--format", fmt, "--out", out, "--fps", "4",
                      "--tracking-uri", finished_run.uri)
        assert result.code == 0, result.err
        assert f"Wrote {out} ({len(SNAPSHOTS)} frames," in result.out
    with Image.open(tmp_path / "movie.gif") as gif:
        assert gif.n_frames == len(SNAPSHOTS) and gif.size == SIZE and gif.info["loop"] == 0
        gif.seek(1)
        assert gif.info["duration"] == 250  # 4 frames per second
    frames = list(iio.imiter(tmp_path / "movie.mp4", plugin="FFMPEG"))
    assert len(frames) == len(SNAPSHOTS) and frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert iio.immeta(tmp_path / "movie.mp4", plugin="FFMPEG")["fps"] == 4
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no partial file left


def test_frames_follow_the_chosen_steps_and_panel(finished_run, tmp_path, llmb):
    out = tmp_path / "two.gif"
    result = llmb("export", finished_run.run_id, "--format", "gif", "--out", out, "--steps", "10,25",
                  "--panel", "attention", "--tracking-uri", finished_run.uri)
    assert result.code == 0, result.err
    with Image.open(out) as gif:
        assert gif.n_frames == 2


class Fetches(HTMLParser):
    """What a page would fetch when opened: every src/href/srcset/data/poster of its tags, CSS
    url() and @import in its styles, and tags that load other documents."""

    LOADING = ("src", "href", "srcset", "data", "poster", "action", "background")

    def __init__(self):
        super().__init__()
        self.found, self._style = [], False

    def handle_starttag(self, tag, attrs):
        self.found += [f"{tag} {name}={value}" for name, value in attrs if name in self.LOADING and value
                       and not value.startswith(("#", "data:", "javascript:"))]
        if tag in ("link", "iframe", "object", "embed", "base"):
            self.found.append(tag)
        self._style = tag == "style"

    def handle_data(self, data):
        if self._style:
            self.found += re.findall(r"url\([^)]*\)|@import", data)

    def handle_endtag(self, tag):
        self._style = False


def test_html_page_holds_the_run_and_fetches_nothing(finished_run, reader, tmp_path, llmb):
    out = tmp_path / "page.html"
    result = llmb("export", finished_run.run_id, "--format", "html", "--out", out, "--steps", "10,25",
                  "--tracking-uri", finished_run.uri)
    assert result.code == 0, result.err
    page = out.read_text()
    for step in SNAPSHOTS:  # every snapshot's sample
        snap = reader.snapshot(finished_run.run_id, step)
        assert html.escape(snap.prompt + snap.sample) in page
    val = MlflowClient(finished_run.uri).get_metric_history(finished_run.run_id, VAL_LOSS)
    assert all(repr(m.value) in page for m in val)  # the chart's data
    assert page.count("<h3>step ") == 2 and "<h3>step 25</h3>" in page  # the attention at the chosen steps
    assert "<th>n_embd</th><td>16</td>" in page
    parser = Fetches()
    parser.feed(page)
    assert parser.found == []
    assert "Plotly.newPlot" in page and "cdn.plot.ly/plotly" not in page.split("</script>")[-1]


def test_log_to_run_adds_the_file_and_keeps_the_runs_status(store_uri, shakespeare, tmp_path, llmb):
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker

    tracker = MlflowTracker(store_uri)
    train_tiny(shakespeare, tracker, max_iters=10, eval_interval=5)
    client = MlflowClient(store_uri)
    before = client.get_run(tracker.run_id).info
    result = llmb("export", tracker.run_id, "--format", "csv", "--out", tmp_path / "m.csv", "--log-to-run")
    assert result.code == 0, result.err
    assert f"Logged it to run {tracker.run_id} as {EXPORT_DIR}/m.csv." in result.out
    after = client.get_run(tracker.run_id).info
    assert (after.status, after.end_time) == (before.status, before.end_time) == ("FINISHED", before.end_time)
    assert [a.path for a in client.list_artifacts(tracker.run_id, EXPORT_DIR)] == [f"{EXPORT_DIR}/m.csv"]
    local = client.download_artifacts(tracker.run_id, f"{EXPORT_DIR}/m.csv", str(tmp_path / "back"))
    assert Path(local).read_bytes() == (tmp_path / "m.csv").read_bytes()


def test_default_name_is_the_run_name_here_and_is_not_replaced(finished_run, tmp_path, monkeypatch, llmb):
    monkeypatch.chdir(tmp_path)
    run = RunReader(finished_run.uri).run(finished_run.run_id)
    name = file_name(run, "csv")
    assert name == re.sub(r"[^\w.-]+", "-", run.run_name) + ".csv"
    args = ("export", finished_run.run_id, "--format", "csv", "--tracking-uri", finished_run.uri)
    assert llmb(*args).code == 0 and (tmp_path / name).exists()
    (tmp_path / name).write_text("mine")
    refused = llmb(*args)
    assert refused.code == 1 and refused.err == f"Error: --out ({name}) exists already; --overwrite replaces it\n"
    assert (tmp_path / name).read_text() == "mine"
    assert llmb(*args, "--overwrite").code == 0 and (tmp_path / name).read_text().startswith("step,")


def test_a_name_that_is_no_file_name_becomes_one():
    from llmb_mlflow.library.reader import RunSummary

    run = RunSummary("abc123", "my run/../x", "0", "FINISHED", 0, 0, {}, {})
    assert file_name(run, "gif") == "my-run-..-x.gif"
    assert file_name(RunSummary("abc123", "", "0", "FINISHED", 0, 0, {}, {}), "mp4") == "abc123.mp4"


@pytest.mark.parametrize("args, message", [
    (["--format", "gif", "--fps", "0"], "--fps (0) must be between 0.1 and 50 frames per second"),
    (["--format", "mp4", "--fps", "500"], "--fps (500) must be between 0.1 and 50 frames per second"),
    (["--format", "gif", "--fps", "fast"], "Invalid value for '--fps': 'fast' is not a valid float"),
    (["--format", "webm"], "Invalid value for '--format': 'webm' is not one of 'gif', 'mp4', 'csv', 'html'"),
    (["--format", "gif", "--panel", "stars"], "Invalid value for '--panel': 'stars' is not one of"),
    (["--format", "gif", "--steps", "10,x"], "Invalid value for '--steps': '10,x' is not a comma-separated list"),
    (["--format", "html", "--steps", "7"], "--steps names step 7, which has no snapshot (this run's: 0, 10, 20, 25)"),
    (["--format", "csv", "--fps", "3"], "--fps applies only to --format gif or mp4, not csv"),
    (["--format", "csv", "--steps", "10"], "--steps applies only to --format gif, mp4 or html, not csv"),
    (["--format", "gif", "--out", "/no/such/folder/x.gif"], "--out (/no/such/folder/x.gif): there is no folder "
                                                            "/no/such/folder"),
    (["--format", "gif", "--out", "/dev/null/x.gif"], "--out (/dev/null/x.gif): there is no folder /dev/null"),
    (["--format", "csv", "--out", "/"], "--out (/) is a folder; give a file name"),
    ([], "Missing option '--format' (gif, mp4, csv, html) (see 'llmb export --help')"),
])
def test_bad_export_input_is_one_line_naming_the_option(finished_run, llmb, args, message):
    result = llmb("export", finished_run.run_id, *args, "--tracking-uri", finished_run.uri)
    assert result.code != 0 and result.out == ""
    assert result.err.startswith("Error: ") and result.err.count("\n") == 1, result.err
    assert message in result.err and "Traceback" not in result.err


def test_runs_that_cannot_be_exported_say_why(finished_run, store_uri, llmb):
    unknown = llmb("export", "0123456789abcdef0123456789abcdef", "--format", "gif")
    assert unknown.code == 1 and unknown.err.startswith("Error: no run with id '0123456789abcdef0123456789abcdef'")
    client = MlflowClient(store_uri)
    empty = client.create_run(client.create_experiment("bare")).info.run_id
    result = llmb("export", empty, "--format", "gif")
    assert result.code == 1 and result.err == f"Error: run {empty} has no snapshots yet: a movie needs at least one\n"
    assert llmb("export", empty, "--format", "csv", "--out", "bare.csv").code == 0  # any run has metrics to list


def test_export_never_imports_torch(finished_run, tmp_path):
    code = ("import sys; from llmb_mlflow.export.exporter import Exporter; from llmb_mlflow.library.reader import RunReader; "
            f"e = Exporter(RunReader({finished_run.uri!r})); "
            f"[e.export({finished_run.run_id!r}, f, {str(tmp_path)!r} + '/x.' + f) for f in ('gif', 'mp4', 'html')]; "
            "import dash_app.panels.export; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["x.gif", "x.html", "x.mp4"]


def test_the_viewer_export_caps_a_movies_frames(finished_run, tmp_path):
    from dash_app.data import ViewerData

    name, content = ViewerData(finished_run.uri).export(finished_run.run_id, "gif", max_frames=2)
    (tmp_path / name).write_bytes(content)
    with Image.open(tmp_path / name) as gif:
        assert gif.n_frames == 2  # the first and the last snapshot
    assert Exporter(RunReader(finished_run.uri)).to_bytes(finished_run.run_id, "csv")[0] == name[:-3] + "csv"


def test_crafted_export_requests_get_one_line_and_no_file(finished_run):
    import base64

    from browser import serve
    from dash_requests import CallbackPoster

    url, server = serve(finished_run.uri)
    try:
        viewer = CallbackPoster(url)

        def export(fmt, run_id):
            answer = viewer.post("export-go.n_clicks", {"export-go.n_clicks": 1, "export-format.value": fmt,
                                                        "run.value": run_id})
            assert answer.status == 200, answer.text[:300]
            return answer.outputs

        for fmt, run_id, message in [
            ("exe", finished_run.run_id,
             "Could not export: export format must be one of gif, mp4, csv, html (got 'exe')"),
            (["gif"], finished_run.run_id, "Could not export: export format must be one of"),
            ("gif", "../../mlflow.db", "Could not export: run '../../mlflow.db' is not an MLflow run id"),
            ("csv", "0" * 32, f"Could not export: no run with id '{'0' * 32}'"),
        ]:
            refused = export(fmt, run_id)
            assert refused["export-feedback.children"].startswith(message), refused
            assert "\n" not in refused["export-feedback.children"] and "export-download.data" not in refused
        sent = export("csv", finished_run.run_id)["export-download.data"]
        assert sent["filename"].endswith(".csv") and base64.b64decode(sent["content"]).startswith(b"step,")
    finally:
        server.close()


def test_a_runs_snapshot_steps_are_said_by_their_count_and_interval():
    from llmb_mlflow.export.exporter import snapshot_steps_in_words

    assert snapshot_steps_in_words([0, 10, 20, 25]) == "this run's: 0, 10, 20, 25"
    assert snapshot_steps_in_words(list(range(0, 3001, 100))) == \
        "this run's 31 snapshots: every 100 steps from 0 to 3,000"
    assert snapshot_steps_in_words([*range(0, 3001, 100), 3025]) == \
        "this run's 32 snapshots: every 100 steps from 0 to 3,000, and 3,025"
    uneven = [0, 100, 200, 300, 400, 500, 600, 700, 750, 1750]  # a run resumed with another interval
    said = snapshot_steps_in_words(uneven)
    assert said.startswith("this run's 10 snapshots, from step 0 to 1,750: 0, ") and said.endswith("1,750")
