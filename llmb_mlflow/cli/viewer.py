"""``llmb dash`` and ``llmb demo``: the browser viewer."""

from __future__ import annotations

import contextlib
import socket

import click

from .options import SettingsCommand, experiment_option, tracking_uri_option
from ..errors import LLMBError, redact
from ..run_layout import DEFAULT_EXPERIMENT

host_option = click.option(
    "--host", default="127.0.0.1", show_default=True,
    help="Interface to listen on. Only this machine can connect unless you give another, "
         "e.g. 0.0.0.0 for every interface.")
port_option = click.option("--port", type=click.IntRange(1, 65535), default=8050, show_default=True)
allowed_hosts_option = click.option(
    "--allowed-hosts", metavar="NAMES", envvar="LLMB_ALLOWED_HOSTS", show_envvar=True, default="",
    help="Comma-separated host names the viewer answers to besides IP addresses, localhost and, "
         "when --host is not a loopback address, this machine's own names (* for any). Other "
         "names are refused, so that no web page can reach the viewer through a name of its own.")
# Tuned for the first minute with the viewer open (docs/benchmarks.md): nanoGPT's CPU model cut to 3
# blocks of width 96 takes 1.8x the steps in the same time and reaches a loss under 2.0 in 45 s
# against 69 s; batch 8 at lr 3e-3 beat nanoGPT's batch 12 at 1e-3.
DEMO_SETTINGS = {"preset": "demo", "batch_size": 8, "lr": 3e-3, "warmup": 50}


def _check_port(host: str, port: int) -> None:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise LLMBError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None


def _serve(host, port, tracking_uri, experiment, run_id, open_browser=False, read_only=False,
           allowed_hosts="", max_trainings=None) -> None:
    from dash_app.server import make_server

    from ..store.client import check_reachable, resolve_uri

    uri = resolve_uri(tracking_uri)
    check_reachable(uri)
    _check_port(host, port)
    server = make_server(host, port, uri, run_id, experiment, read_only=read_only,
                         allowed_hosts=[n for n in allowed_hosts.split(",") if n.strip()], max_trainings=max_trainings)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    mode = ", read-only" if read_only else ""
    click.echo(f"LLMBreaker viewer on {url} (reading {redact(uri)}{mode}); press Ctrl-C to stop.")
    if open_browser:
        _open(url)
    try:
        server.run()
    finally:
        server.close()


def _open(url: str) -> None:
    import webbrowser

    try:
        webbrowser.get().open(url)
    except webbrowser.Error:
        pass  # no browser here: the URL was printed


@click.command()
@host_option
@port_option
@tracking_uri_option
@experiment_option
@click.option("--run", "run_id", metavar="RUN_ID", help="Run to show first.  [default: the newest]")
@click.option("--read-only", is_flag=True, envvar="LLMB_READ_ONLY", show_envvar=True,
              help="Only show: no training controls, no new trainings or uploads, no model changes. "
                   "Use it when others can reach the viewer.")
@allowed_hosts_option
@click.option("--max-trainings", type=click.IntRange(min=1), envvar="LLMB_MAX_TRAININGS", show_envvar=True,
              help="Trainings started from the viewer that may run at once.  [default: one per core]")
def dash(host, port, tracking_uri, experiment, run_id, read_only, allowed_hosts, max_trainings):
    """Serve the viewer: watch runs learn, live or step by step.

    From its header you can also start trainings (each in a process of its own on this machine),
    pause, step or stop them, and save, rename, delete or load models, unless --read-only. For
    MLflow's UI and the viewer on one port, run `mlflow server --app-name llmbreaker` instead
    (the viewer is then under /llmb/; LLMB_READ_ONLY=true makes it read-only)."""
    with _until_stopped():
        _serve(host, port, tracking_uri, experiment, run_id, read_only=read_only, allowed_hosts=allowed_hosts,
               max_trainings=max_trainings)


@click.command(cls=SettingsCommand)
@host_option
@port_option
@tracking_uri_option
@click.option("--max-iters", type=int, default=3000, show_default=True, help="Steps to train.")
@allowed_hosts_option
def demo(host, port, tracking_uri, max_iters, allowed_hosts):
    """Train on Shakespeare in the background and watch it learn in the browser.

    The training is a separate process (a smaller cousin of nanoGPT's CPU model, 3 blocks of
    width 96, batch 8: about 20 ms per step alone, some 3,000 steps a minute).
    Stopping the demo (Ctrl-C, SIGTERM, or closing its terminal) stops the training too: it
    writes a last checkpoint, its run ends KILLED with everything logged kept, and the demo
    prints the step it stopped at."""
    from ..training.config import build_config
    from ..launch.launcher import start, stop, wait_for_run
    from ..store.client import check_reachable, resolve_uri

    settings = {**DEMO_SETTINGS, "max_iters": max_iters}
    build_config(**settings)  # a bad --max-iters starts nothing
    with _until_stopped() as signals:
        uri = resolve_uri(tracking_uri)
        check_reachable(uri)
        _check_port(host, port)
        training = start(["train", *(f"--{key.replace('_', '-')}={value}" for key, value in settings.items()),
                          "--run-name=demo"], uri)
        try:
            signals.on_repeat = training.process.terminate  # a second signal aborts its step
            run_id = wait_for_run(training).run_id
            click.echo(f"Training run {run_id} in the background (log: {training.log_path}).")
            _serve(host, port, uri, DEFAULT_EXPERIMENT, run_id, open_browser=True, allowed_hosts=allowed_hosts)
        finally:
            stop(training, relay=_relay)


@contextlib.contextmanager
def _until_stopped():
    """Serve until SIGINT, SIGTERM or SIGHUP, then exit with 128 + its number once the block
    has cleaned up (see ``interrupts``)."""
    from .interrupts import StopSignals

    with StopSignals() as signals:
        yield signals
    if signals.received:
        raise click.exceptions.Exit(128 + signals.received)


def _relay(line: str) -> None:
    try:
        click.echo(line, err=True)
    except OSError:  # the terminal is gone (SIGHUP): the training stops all the same
        pass
