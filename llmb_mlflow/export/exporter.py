"""Exporting a run to a file: its training movie (GIF or MP4), every metric as CSV, or an
offline HTML page; optionally logged back to the run as an artifact.

Everything is read through ``RunReader`` (stored snapshots and metrics: no torch). A file is
written under a temporary name beside its target and renamed into place when complete, so
an interrupted export leaves no half file. Bad input is a ``SettingError`` naming the setting
(``out``, ``fps``, ``steps``, ...) so the CLI can name its own options.
"""

from __future__ import annotations

import csv
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from typing import Callable

from . import movie
from ..training.config import SettingError
from ..errors import LLMBError
from .movie import DEFAULT_FPS, MAX_FPS, MIN_FPS, MOVIES, PANELS
from ..library.reader import RunReader, RunSummary
from ..run_layout import EXPORT_DIR, TRAIN_LOSS, VAL_LOSS
from ..store.client import store_errors

FORMATS = (*MOVIES, "csv", "html")
GRID_STEPS = 4  # an HTML page shows the attention at this many evenly spaced snapshots by default
CHART_POINTS = 5000  # the most train-loss points a chart or a movie draws (first and last kept)

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class Exported:
    path: str
    format: str
    size: int  # bytes
    frames: int | None = None  # a movie's
    artifact: str | None = None  # its path in the run, when logged there


def evenly(steps: list[int], count: int) -> list[int]:
    """``count`` of ``steps`` spread evenly, the first and the last among them (all if fewer)."""
    if len(steps) <= count:
        return list(steps)
    if count == 1:
        return [steps[-1]]
    return sorted({steps[round(i * (len(steps) - 1) / (count - 1))] for i in range(count)})


def file_name(run: RunSummary, fmt: str) -> str:
    """``<run name>.<format>``, with what a file name should not hold replaced by ``-``."""
    stem = re.sub(r"[^\w.-]+", "-", run.run_name or "").strip(".-") or run.run_id
    return f"{stem}.{fmt}"


def check_fps(fps: float) -> float:
    if not MIN_FPS <= fps <= MAX_FPS:
        raise SettingError("fps", f"({fps:g}) must be between {MIN_FPS:g} and {MAX_FPS:g} frames per second")
    return fps


def check_out(path: str, overwrite: bool) -> str:
    """The absolute path to write, once it is known to be writable and not to replace a file
    unless ``overwrite``."""
    full = os.path.abspath(os.path.expanduser(path))
    folder = os.path.dirname(full)
    if os.path.isdir(full):
        raise SettingError("out", f"({path}) is a folder; give a file name")
    if not os.path.isdir(folder):
        raise SettingError("out", f"({path}): there is no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SettingError("out", f"({path}): the folder {folder} is not writable")
    if os.path.exists(full) and not overwrite:
        raise SettingError("out", f"({path}) exists already; {{overwrite}} replaces it", others=("overwrite",))
    return full


def check_steps(wanted: list[int] | None, snapshots: list[int], default: list[int]) -> list[int]:
    """The snapshot steps asked for (each must have a snapshot), or ``default``."""
    if wanted is None:
        return default
    missing = [s for s in wanted if s not in set(snapshots)]
    if missing or not wanted:
        raise SettingError("steps", f"names step {missing[0] if missing else '(none)'}, which has no snapshot "
                                    f"({snapshot_steps_in_words(snapshots)})")
    return sorted(set(wanted))


def snapshot_steps_in_words(steps: list[int]) -> str:
    """A run's snapshot steps as a person reads them: all of a few, else how many and how often."""
    if len(steps) <= 8:
        return f"this run's: {', '.join(f'{s:,}' for s in steps) or 'none'}"
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    every = max(set(gaps), key=gaps.count)
    if all(gap == every for gap in gaps[:-1]):  # the last may be the training's end, off the interval
        end = f" to {steps[-1]:,}" if gaps[-1] == every else f" to {steps[-2]:,}, and {steps[-1]:,}"
        return f"this run's {len(steps):,} snapshots: every {every:,} steps from {steps[0]:,}{end}"
    return f"this run's {len(steps):,} snapshots, from step {steps[0]:,} to {steps[-1]:,}: " \
           f"{', '.join(f'{s:,}' for s in evenly(steps, 8))}"


class Exporter:
    """Exports of the runs of one store."""

    def __init__(self, reader: RunReader):
        self.reader = reader

    def export(self, run_id: str, fmt: str, out: str | None = None, *, fps: float = DEFAULT_FPS,
               panel: str = "all", steps: list[int] | None = None, overwrite: bool = False,
               log_to_run: bool = False, progress: Progress | None = None) -> Exported:
        """Write the run as ``fmt`` to ``out`` (default ``<run name>.<fmt>`` here)."""
        if fmt not in FORMATS:
            raise SettingError("format", f"must be one of {', '.join(FORMATS)}, not {fmt!r}")
        if panel not in PANELS:
            raise SettingError("panel", f"must be one of {', '.join(PANELS)}, not {panel!r}")
        check_fps(fps)
        run = self.reader.run(run_id)
        target = check_out(out or file_name(run, fmt), overwrite)
        # Beside the target (a rename within a folder is atomic), with the target's extension
        # (ffmpeg picks the container by it); created by the writer, so with the usual permissions.
        partial = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{secrets.token_hex(4)}.{fmt}")
        try:
            frames = self.write(run, fmt, partial, fps=fps, panel=panel, steps=steps, progress=progress)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        artifact = self.log_to_run(run_id, target) if log_to_run else None
        return Exported(target, fmt, os.path.getsize(target), frames, artifact)

    def write(self, run: RunSummary, fmt: str, path: str, *, fps: float = DEFAULT_FPS, panel: str = "all",
              steps: list[int] | None = None, progress: Progress | None = None) -> int | None:
        """Write ``run`` as ``fmt`` to ``path`` (replaced); a movie's frame count."""
        if fmt == "csv":
            self.write_csv(run, path)
            return None
        snapshots = self.reader.snapshot_steps(run.run_id, run=run)
        if fmt == "html":
            self.write_html(run, path, check_steps(steps, snapshots, evenly(snapshots, GRID_STEPS)), snapshots)
            return None
        if not snapshots:
            raise LLMBError(f"run {run.run_id} has no snapshots yet: a movie needs at least one")
        return self.write_movie(run, fmt, path, check_steps(steps, snapshots, snapshots), fps, panel, progress)

    # -- the formats -----------------------------------------------------------------------

    def write_movie(self, run: RunSummary, fmt: str, path: str, steps: list[int], fps: float, panel: str,
                    progress: Progress | None = None) -> int:
        from .frames import FrameBuilder, MovieRun  # matplotlib loads only for a movie

        train = self.reader.metric(run.run_id, TRAIN_LOSS, max_points=CHART_POINTS, run=run)
        val = self.reader.metric(run.run_id, VAL_LOSS, run=run)
        last = max([run.last_step, steps[-1], *(int(s[-1]) for s in (train.steps, val.steps) if len(s))])
        builder = FrameBuilder(MovieRun(run.run_name or run.run_id, (train.steps, train.values),
                                        (val.steps, val.values), last), panel)

        def frames():
            for done, step in enumerate(steps, 1):
                yield builder.frame(self.reader.snapshot(run.run_id, step))
                if progress:
                    progress(done, len(steps))

        if fmt == "mp4":
            return movie.write_mp4(frames(), path, fps)
        samples = [builder.frame(self.reader.snapshot(run.run_id, s)) for s in evenly(steps, 3)]
        return movie.write_gif(frames(), path, fps, movie.palette(samples))

    def write_csv(self, run: RunSummary, path: str) -> None:
        """Every metric of the run, one row per step (``step`` first, then the metric keys in
        order; blank where a metric has no value at a step). A step logged twice keeps its
        later value, as MLflow's latest value does."""
        columns: dict[str, dict[int, float]] = {}
        with store_errors(self.reader.uri):
            for key in sorted(run.latest):
                points = sorted(self.reader.client.get_metric_history(run.run_id, key),
                                key=lambda m: (m.step, m.timestamp))
                columns[key] = {m.step: m.value for m in points}
        steps = sorted({step for values in columns.values() for step in values})
        with open(path, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["step", *columns])
            for step in steps:
                out.writerow([step, *(repr(values[step]) if step in values else "" for values in columns.values())])

    def write_html(self, run: RunSummary, path: str, grid_steps: list[int], snapshots: list[int]) -> None:
        from . import html as export_html  # plotly loads only for a page

        train = self.reader.metric(run.run_id, TRAIN_LOSS, max_points=CHART_POINTS, run=run)
        val = self.reader.metric(run.run_id, VAL_LOSS, run=run)
        samples = []
        for step in snapshots:
            snap = self.reader.snapshot(run.run_id, step)
            samples.append((step, snap.prompt + snap.sample))
        grids = [self.reader.snapshot(run.run_id, step) for step in grid_steps]
        text = export_html.page(run, (train.steps.tolist(), train.values.tolist()),
                                (val.steps.tolist(), val.values.tolist()), samples, grids)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    # -- into the run ----------------------------------------------------------------------

    def log_to_run(self, run_id: str, path: str) -> str:
        """Log the file to the run under ``exports/`` (any run, ended or not: its status stays)."""
        with store_errors(self.reader.uri):
            self.reader.client.log_artifact(run_id, path, EXPORT_DIR)
        return f"{EXPORT_DIR}/{os.path.basename(path)}"

    def to_bytes(self, run_id: str, fmt: str, **options) -> tuple[str, bytes]:
        """(file name, content) of an export, for a download."""
        run = self.reader.run(run_id)
        with tempfile.TemporaryDirectory(prefix="llmb-export-") as folder:
            path = os.path.join(folder, file_name(run, fmt))
            self.write(run, fmt, path, **options)
            with open(path, "rb") as f:
                return os.path.basename(path), f.read()
