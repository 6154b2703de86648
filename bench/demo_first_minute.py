"""``llmb demo``'s first minute, as a newcomer sees it: the validation loss after 30 s and 60 s.

    python bench/demo_first_minute.py [--seconds 75]

Starts ``llmb demo`` (a sqlite store in a temporary folder, no browser of its own), opens its
viewer in headless Chromium and leaves the page open, polling live, while the demo trains;
then stops the demo as Ctrl-C would. From the run's stored ``val_loss`` points (each with the
time it was measured) it prints the last validation loss measured within 30 s and 60 s of the
training's first evaluation, and of starting the command. Target: below 2.0 within 60 s.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(url: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1366,768"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.get(url)
    return driver


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.5)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=75.0, help="how long the demo runs")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="llmb-bench-")
    uri = f"sqlite:///{folder}/mlflow.db"
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": uri,
           "BROWSER": "true", "PYTHONUNBUFFERED": "1"}  # webbrowser runs `true URL`: no browser
    started = time.time()
    demo = subprocess.Popen([sys.executable, "-m", "llmb_mlflow", "demo", "--port", str(port)], cwd=folder,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    from llmb_mlflow.library.reader import RunReader

    reader = RunReader(uri)
    driver = None
    try:
        wait_for(lambda: "LLMBreaker viewer on" in (demo.stdout.readline() or "x"), 180, "the viewer")
        driver = browser(f"http://127.0.0.1:{port}/")
        run_id = wait_for(lambda: (reader.runs() or [None])[0], 120, "the demo's run").run_id
        time.sleep(max(0.0, args.seconds - (time.time() - started)))  # the demo trains meanwhile
    finally:
        if driver is not None:
            driver.quit()
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=120)
    from mlflow import MlflowClient

    history = sorted((m.timestamp / 1000, m.step, m.value)
                     for m in MlflowClient(uri).get_metric_history(run_id, "val_loss"))
    first_eval = history[0][0]
    for origin, name in ((first_eval, "the first evaluation (step 0)"), (started, "starting `llmb demo`")):
        for seconds in (30, 60):
            seen = [(step, value) for t, step, value in history if t - origin <= seconds]
            if seen:
                print(f"within {seconds} s of {name}: val loss {seen[-1][1]:.3f} at step {seen[-1][0]}")
        below = next(((t, step, value) for t, step, value in history if value < 2.0), None)
        if below:
            print(f"below 2.0 after {below[0] - origin:.0f} s of {name}: {below[2]:.3f} at step {below[1]}")
    print(f"(the run reached step {reader.run(run_id).last_step}; target: below 2.0 within 60 s)")


if __name__ == "__main__":
    main()
