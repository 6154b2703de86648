"""Shared fixtures: a real sqlite MLflow store per test (copied from one migrated template),
tiny real training configurations, and one finished tiny run for read-only tests."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.pop("MLFLOW_TRACKING_URI", None)
# Tests start trainings side by side, from viewers too; the cap on them has tests of its own.
os.environ.setdefault("LLMB_MAX_TRAININGS", "16")
# The user's own folders (unsent data, uploads, launch logs) are never touched, and each test
# process (pytest-xdist's workers) has its own: a `runs sync` in one never sends another's runs.
# A process a test starts that imports this module too keeps its test process's folders.
if os.environ.get("LLMB_TESTS_DATA_OF") != os.environ.get("PYTEST_XDIST_WORKER", "main"):
    os.environ["LLMB_TESTS_DATA_OF"] = os.environ.get("PYTEST_XDIST_WORKER", "main")
    os.environ["LLMB_TESTS_DATA"] = os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="llmb-tests-data-")
    os.environ["LLMB_LOG_DIR"] = os.path.join(os.environ["LLMB_TESTS_DATA"], "launch-logs")
    for _name in ("LLMB_SPOOL_DIR", "LLMB_UPLOAD_DIR", "LLMB_VIEWER_DIR"):
        os.environ.pop(_name, None)
    atexit.register(shutil.rmtree, os.environ["LLMB_TESTS_DATA"], ignore_errors=True)

TINY = dict(n_layer=2, n_head=2, n_embd=16, block_size=16, batch_size=8, max_iters=25,
            eval_interval=10, eval_iters=2, sample_chars=30)
# The same kind of model for ``llmb train`` in another process; LIVE_ARGS runs until stopped.
TINY_ARGS = ["--preset", "small", "--n-layer", "1", "--n-embd", "16", "--n-head", "2",
             "--block-size", "16", "--batch-size", "8", "--eval-iters", "2"]
LIVE_ARGS = [*TINY_ARGS, "--eval-interval", "50", "--max-iters", "100000"]


_SOAKS_LEFT = []


def pytest_deselected(items):
    _SOAKS_LEFT.extend(item for item in items if item.get_closest_marker("soak"))


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):  # a pytest-xdist worker: its controller says it
        session.config.workeroutput["soaks_left"] = len(_SOAKS_LEFT)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    left = getattr(node, "workeroutput", {}).get("soaks_left", 0)
    if left > len(_SOAKS_LEFT):  # every worker collects the same tests
        _SOAKS_LEFT[:] = [None] * left


def pytest_terminal_summary(terminalreporter):
    if _SOAKS_LEFT:
        terminalreporter.write_line(f"{len(_SOAKS_LEFT)} soak test(s) left out; run them with: "
                                    "python -m pytest -q -m soak -n 0")


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    """A migrated MLflow sqlite database; migrations take seconds, so they run once."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = tmp_path_factory.mktemp("template")
    SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", str(folder / "mlruns"))
    return folder / "mlflow.db"


def new_store(template_db, folder) -> str:
    shutil.copy(template_db, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture
def store_uri(template_db, tmp_path, monkeypatch):
    """A fresh store in this test's folder (the working directory, so ./mlruns lands there),
    made the default through MLFLOW_TRACKING_URI."""
    monkeypatch.chdir(tmp_path)
    uri = new_store(template_db, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="session")
def shakespeare():
    from llmb_mlflow.training.corpus import load_corpus

    return load_corpus("shakespeare")


def tiny_config(**overrides):
    from llmb_mlflow.training.config import build_config

    return build_config("small", **{**TINY, **overrides})


def train_tiny(corpus, tracker, **overrides):
    """Train a tiny model on ``corpus`` under ``tracker``; returns the trainer."""
    from llmb_mlflow.training.corpus import prepare_dataset
    from llmb_mlflow.training.trainer import Trainer, run_training

    config = tiny_config(**overrides)
    trainer = Trainer(config, prepare_dataset(corpus, config.model.block_size), device="cpu")
    run_training(trainer, tracker)
    return trainer


def bard_library(store_uri, shakespeare):
    """'bard' (versions 1 and 2, from a finished tiny run) in the store; its ModelLibrary.
    Trained once per session, copied into each test's store."""
    from llmb_mlflow.library.registry import ModelLibrary
    from stores import built_once

    def build():
        from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker

        tracker = MlflowTracker(store_uri)
        train_tiny(shakespeare, tracker, max_iters=12, checkpoint_interval=6)
        library = ModelLibrary(store_uri)
        library.save(tracker.run_id, "bard", step=6)
        library.save(tracker.run_id, "bard")

    built_once(store_uri, "bard", build)
    return ModelLibrary(store_uri)


@dataclass
class FinishedRun:
    uri: str
    run_id: str
    trainer: object


@pytest.fixture(scope="session")
def finished_run(template_db, tmp_path_factory, shakespeare):
    """One finished tiny run (25 steps, evaluations at 0, 10, 20, 25) in its own store."""
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker

    folder = tmp_path_factory.mktemp("finished_run")
    uri = new_store(template_db, folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        tracker = MlflowTracker(uri)
        trainer = train_tiny(shakespeare, tracker)
    return FinishedRun(uri, tracker.run_id, trainer)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def llmb(capsys):
    """Run the real ``llmb`` entry point in-process; returns exit code, stdout, stderr."""
    from llmb_mlflow.cli.main import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(exit_info.value.code, captured.out, captured.err)

    return run


def until(condition, timeout=120.0, what="condition"):
    """Poll ``condition`` (a store read, or a process list) until it holds; its last value."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)  # the other side is another process: polling what it writes
    return result


def run_of(proc, timeout: float = 120.0) -> str:
    """The run id a starting ``llmb train`` process prints; a process that does not print it in
    time is killed and the test fails (instead of waiting on its output for ever)."""
    import re
    import threading

    found = {}

    def read():
        for line in proc.stdout:
            match = re.search(r"Logging to MLflow run ([0-9a-f]{32})", line)
            if match:
                found["run"] = match.group(1)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if "run" not in found:
        proc.kill()
        raise AssertionError(f"the training printed no run line within {timeout:.0f} s")
    return found["run"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(template_db, folder, *extra_args: str, port: int | None = None,
                        backend: str | None = None, artifacts: tuple[str, ...] | None = None,
                        env: dict[str, str] | None = None):
    """A real ``mlflow server`` on loopback (``backend``, else a sqlite store copied from the
    template unless ``folder`` has one; ``artifacts`` its artifact options, else served from
    ``folder``; ``env`` added to its environment) in ``folder``; returns its URI (with its
    ``--static-prefix``, if given) and process once it answers. MLflow's GenAI job runner (eight
    processes of its own, slow to start and busy all along) is left out unless ``env`` asks for it."""
    import subprocess
    import sys
    import time

    import requests

    if backend:
        db = backend
    elif (folder / "mlflow.db").exists():
        db = f"sqlite:///{folder / 'mlflow.db'}"
    else:
        db = new_store(template_db, folder)
    port = port or free_port()
    log_path = folder / "server.log"
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", db,
             *(artifacts or ("--artifacts-destination", str(folder / "artifacts"), "--serve-artifacts")),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *extra_args],
            stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {}),
                 "MLFLOW_DISABLE_TELEMETRY": "true"})
    prefix = extra_args[extra_args.index("--static-prefix") + 1] if "--static-prefix" in extra_args else ""
    uri = f"http://127.0.0.1:{port}{prefix}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(uri + "/health", timeout=2).ok:
                return uri, proc
        except requests.RequestException:  # not listening yet, or still starting up
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise AssertionError("mlflow server did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.2)  # polling its health endpoint


def stop_process(proc) -> None:
    """Stop a server started in a session of its own, with every process it started."""
    import signal
    import subprocess

    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def mlflow_server(template_db, tmp_path_factory):
    """A real ``mlflow server`` on loopback (sqlite backend, served artifacts); its URI."""
    uri, proc = start_mlflow_server(template_db, tmp_path_factory.mktemp("server"))
    yield uri
    stop_process(proc)


@pytest.fixture(scope="session")
def llmbreaker_server(template_db, tmp_path_factory):
    """``mlflow server --app-name llmbreaker`` (MLflow's UI and the viewer on one port) on
    loopback, for the tests that each add runs of their own to it; its URI and folder."""
    folder = tmp_path_factory.mktemp("llmbreaker-server")
    uri, proc = start_mlflow_server(template_db, folder, "--app-name", "llmbreaker")
    yield uri, folder
    stop_process(proc)


@pytest.fixture(scope="session")
def postgres_mlflow_server(template_db, tmp_path_factory):
    """A real ``mlflow server`` whose backend store is a PostgreSQL server of its own, with
    served artifacts, all on loopback; its URI."""
    from postgres import Postgres, postgres_bin

    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    database = Postgres(free_port()).start()
    try:
        uri, proc = start_mlflow_server(template_db, tmp_path_factory.mktemp("pg-server"),
                                        backend=database.uri)
        yield uri
        stop_process(proc)
    finally:
        database.stop()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (Debian's chromium-driver), without WebGL: drawn in
    software on a machine without a GPU, the star map's 3-D scene costs each page load about
    1.5 s. test_viewer_layout_browser draws it, with a browser of its own."""
    driver = chromium(webgl=False)
    yield driver
    driver.quit()


def chromium(webgl: bool):
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1400",
                 *(() if webgl else ("--disable-3d-apis",))):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    skip_tour(driver)
    return driver


SEEN_TOUR = "localStorage.setItem('llmb.tour.done', '1');"


def skip_tour(driver) -> None:
    """Every page of this window opens as if its first-visit tour had been seen (tests of the
    tour undo this)."""
    driver.tour_script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                                {"source": SEEN_TOUR})["identifier"]
    driver.tour_window = driver.current_window_handle


@pytest.fixture
def blank_page(browser):
    """Each test starts from a blank page, so no page of an earlier test keeps polling."""
    if browser.tour_window != browser.current_window_handle:  # an earlier test changed tabs
        skip_tour(browser)
    browser.get("about:blank")
    yield
    browser.get("about:blank")


SERVERS = {"server": "mlflow_server", "postgres-server": "postgres_mlflow_server"}


@pytest.fixture(params=["sqlite", *SERVERS])
def any_store(request, store_uri):
    """A fresh sqlite store, then the real ``mlflow server`` on sqlite, then one on PostgreSQL."""
    return store_uri if request.param == "sqlite" else request.getfixturevalue(SERVERS[request.param])


@pytest.fixture
def use_store():
    """Point MLflow's fluent API (pyfunc loading) at a store for one test, and leave it unset
    afterwards: MLflow also writes the URIs to environment variables, which later clients and
    every process started later would otherwise inherit."""
    import mlflow

    variables = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in variables}

    def use(uri):
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)

    yield use
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def viewer(store_uri, tmp_path, monkeypatch):
    """A viewer in this process on a fresh store, with its upload and log folders in the test's,
    and a poster of crafted callback requests to it."""
    from browser import serve
    from dash_requests import CallbackPoster

    monkeypatch.setenv("LLMB_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("LLMB_LOG_DIR", str(tmp_path / "logs"))
    url, server = serve(store_uri)
    try:
        yield CallbackPoster(url)
    finally:
        server.close()


NANOGPT = Path(__file__).resolve().parents[2] / "shared" / "clients" / "nanogpt"


def nanogpt_module():
    """nanoGPT's own model.py (../shared/clients, unmodified), loaded as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nanogpt_model", NANOGPT / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
