"""Starting ``llmb train`` / ``llmb resume`` as processes of their own.

Used by the viewer's Start and Load buttons and by ``llmb demo``. Each training runs in a new
session, so it outlives a browser refresh and a Ctrl-C meant for the viewer; it is stopped through
its run (the viewer's Stop button, ``llmb runs stop``) and always checkpoints first. Its output
goes to a log file whose last line explains a failed start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from .errors import LLMBError

RUN_LINE = re.compile(r"Logging to MLflow run ([0-9a-f]{32})")
START_TIMEOUT = 120.0  # importing torch and reading a 20 MB corpus on a busy machine


@dataclass(frozen=True)
class Launched:
    run_id: str
    process: subprocess.Popen
    log_path: str


def log_dir() -> str:
    path = os.environ.get("LLMB_LOG_DIR") or os.path.join(tempfile.gettempdir(), "llmbreaker-logs")
    os.makedirs(path, exist_ok=True)
    return path


def launch(args: list[str], tracking_uri: str, timeout: float = START_TIMEOUT) -> Launched:
    """Start ``llmb COMMAND --tracking-uri=URI ARGS...`` (``args`` = COMMAND, ARGS...) and return
    once it has created its MLflow run. ARGS may end with ``--`` and positional arguments."""
    log_path = os.path.join(log_dir(), f"{args[0]}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-"
                                       f"{threading.get_ident() % 10000}.log")
    command = [sys.executable, "-m", "llmb_mlflow", args[0], f"--tracking-uri={tracking_uri}", *args[1:]]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": tracking_uri}
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    threading.Thread(target=process.wait, daemon=True, name="llmb-reaper").start()
    return Launched(_wait_for_run(process, log_path, timeout), process, log_path)


def _wait_for_run(process: subprocess.Popen, log_path: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        exited = process.poll() is not None
        with open(log_path, errors="replace") as f:
            text = f.read()
        match = RUN_LINE.search(text)
        if match:
            return match.group(1)
        if exited:
            raise LLMBError(f"the training did not start: {_last_line(text)}")
        if time.monotonic() > deadline:
            process.terminate()
            raise LLMBError(f"the training did not start within {timeout:.0f} s (log: {log_path})")
        time.sleep(0.1)  # polling the child's log; it writes the line within seconds


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "it exited without a word").removeprefix("Error: ")
