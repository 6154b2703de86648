"""``llmb export``: a run as a movie, a table or a page (the work is in ``export``)."""

from __future__ import annotations

import time

import click

from .options import SettingsCommand, tracking_uri_option
from ..export.exporter import FORMATS, Exporter
from ..export.movie import DEFAULT_FPS, MAX_FPS, MIN_FPS, MOVIES, PANELS
from ..library.reader import RunReader

WITH_STEPS = (*MOVIES, "html")


def _steps(_ctx, param, value):
    if value is None:
        return None
    try:
        steps = [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of steps, e.g. 0,500,1000",
                                 param=param) from None
    if not steps or min(steps) < 0:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of steps, e.g. 0,500,1000", param=param)
    return steps


def _only_for(ctx, option: str, formats: tuple[str, ...], fmt: str) -> None:
    source = ctx.get_parameter_source(option)
    if source is not None and source.name == "COMMANDLINE" and fmt not in formats:
        allowed = f"{', '.join(formats[:-1])} or {formats[-1]}"
        raise click.UsageError(f"--{option} applies only to --format {allowed}, not {fmt}")


@click.command(cls=SettingsCommand)
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="gif or mp4: the training movie, one frame per snapshot. csv: every metric, one row "
                   "per step. html: one page that works offline (loss chart, settings, attention, samples).  "
                   "[required]")
@click.option("--out", metavar="PATH",
              help="The file to write. An existing file is not replaced unless you add --overwrite.  "
                   "[default: <run name>.<format> in this folder]")
@click.option("--overwrite", is_flag=True, help="Replace the --out file if it exists.")
@click.option("--fps", type=float, default=DEFAULT_FPS, show_default=True,
              help=f"Movie frames (snapshots) per second, {MIN_FPS:g} to {MAX_FPS:g}; a GIF holds its "
                   "last frame 2 s before it loops.")
@click.option("--panel", type=click.Choice(PANELS), default="all", show_default=True,
              help="What each movie frame shows: everything (the step, the loss curve up to it, the "
                   "sample, the probability tower and the attention grid) or one of them alone.")
@click.option("--steps", callback=_steps, metavar="S1,S2,...",
              help="Snapshot steps to use. A movie: its frames  [default: every snapshot]. html: the "
                   "steps whose attention grid it shows  [default: 4 evenly spaced snapshots].")
@click.option("--log-to-run", is_flag=True,
              help="Also log the file to the run, as an artifact under exports/ (the run's status "
                   "does not change).")
@tracking_uri_option
@click.pass_context
def export(ctx, run_id, fmt, out, overwrite, fps, panel, steps, log_to_run, tracking_uri):
    """Export a run: its training movie (gif, mp4), its metrics (csv) or an offline page (html).

    Made from what the run stored (its snapshots and metrics), so it works for a finished run
    and for one still training (up to its latest snapshot). Examples:

    \b
      llmb export RUN_ID --format gif
      llmb export RUN_ID --format mp4 --fps 10 --panel attention --out attention.mp4
      llmb export RUN_ID --format html --steps 0,1000,5000 --log-to-run
    """
    if fmt is None:  # click's own message lists the choices on lines of their own
        raise click.UsageError(f"Missing option '--format' ({', '.join(FORMATS)})")
    _only_for(ctx, "fps", MOVIES, fmt)
    _only_for(ctx, "panel", MOVIES, fmt)
    _only_for(ctx, "steps", WITH_STEPS, fmt)
    started = time.monotonic()
    with _progress_bar(fmt) as progress:
        done = Exporter(RunReader(tracking_uri)).export(
            run_id, fmt, out, fps=fps, panel=panel, steps=steps, overwrite=overwrite, log_to_run=log_to_run,
            progress=progress)
    frames = f"{done.frames} frames, " if done.frames else ""
    click.echo(f"Wrote {done.path} ({frames}{done.size / 2**20:.1f} MB) in {time.monotonic() - started:.1f} s.")
    if done.artifact:
        click.echo(f"Logged it to run {run_id} as {done.artifact}.")


class _progress_bar:
    """A bar on stderr while a movie's frames are drawn (nothing when stderr is no terminal)."""

    def __init__(self, fmt: str):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self._bar = Progress(TextColumn(f"drawing the {fmt}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("frames  ETA"), TimeRemainingColumn(), console=console,
                             disable=not console.is_terminal or fmt not in MOVIES, transient=True)
        self._task = None

    def __enter__(self):
        self._bar.__enter__()
        return self.update

    def __exit__(self, *exc):
        self._bar.__exit__(*exc)

    def update(self, done: int, total: int) -> None:
        if self._task is None:
            self._task = self._bar.add_task("export", total=total)
        self._bar.update(self._task, completed=done)
