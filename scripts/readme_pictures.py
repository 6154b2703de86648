"""The README's pictures, taken from two real short trainings in headless Chromium.

    python scripts/readme_pictures.py                 # trains, then writes docs/pictures/
    python scripts/readme_pictures.py --store sqlite:////tmp/s/mlflow.db --sizes 1366x768,1600x1000,1920x1080 --out /tmp/shots

Without ``--store`` it trains nanoGPT's baby model for ``--max-iters`` steps in a
temporary store, on Alice first and then on Shakespeare. It then serves the viewer, and saves
each tab of the newest run at each window size (``watch-1600x1000.png``, ``attention-…``,
``playground-…`` after the model has written on from its prompt, ``style-…``), the watch tab
comparing it with the run before it (``compare-…``; skipped for a store with one run), and
an animated GIF of the samples turning into words, evaluation after evaluation
(``samples.gif``). Needs Debian's chromium and chromium-driver. Regenerate them whenever the
page changes.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABS = ("watch", "attention", "playground", "style")
GIF_FRAMES = 12
PLAYGROUND_CHARS = 160


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(uri: str, max_iters: int, dataset: str) -> None:
    subprocess.run([sys.executable, "-m", "llmb_mlflow", "train", "--preset", "baby", "--batch-size", "12",
                    "--max-iters", str(max_iters), "--dataset", dataset, "--run-name", dataset],
                   env={**os.environ, "MLFLOW_TRACKING_URI": uri}, check=True, stdout=subprocess.DEVNULL)


def serve(uri: str, port: int) -> subprocess.Popen:
    viewer = subprocess.Popen([sys.executable, "-m", "llmb_mlflow", "dash", "--port", str(port),
                               "--tracking-uri", uri], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "BROWSER": "true"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return viewer
        except OSError:
            if viewer.poll() is not None:
                sys.exit(f"the viewer did not start: {viewer.stderr.read().decode()[-500:]}")
            time.sleep(0.2)
    sys.exit("the viewer did not start within 120 s")


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",  # the first visit's tour: seen
                           {"source": "localStorage.setItem('llmb.tour.done', '1');"})
    return driver


def window(driver, width: int, height: int) -> None:
    """A viewport of exactly this size (a window's own frame would take some of it)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


LOOK_JS = """return document.body.innerText.length + ':' + [...document.querySelectorAll('.js-plotly-plot')]
    .map(g => (g.data || []).length).join() + ':' + !!document.querySelector('[data-dash-is-loading=true]');"""


def wait_until(driver, script: str, timeout: float = 60) -> None:
    """Wait until the page's ``script`` returns true, then for the page to stop changing."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(script))
    looks = []

    def settled(d) -> bool:
        looks.append(d.execute_script(LOOK_JS))
        return len(looks) > 1 and looks[-1] == looks[-2] and not looks[-1].endswith("true")

    WebDriverWait(driver, 30, poll_frequency=0.5).until(settled)


def save_small(png: bytes, path: Path, colors: int = 128) -> None:
    """A screenshot as a palette PNG: a third of the bytes, no visible change for this page."""
    from io import BytesIO

    from PIL import Image

    Image.open(BytesIO(png)).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(
        path, optimize=True)


SHOWS_A_STEP = "return /step/.test((document.getElementById('shown-step')||{}).textContent||'')"
SHOWS_THE_COMPARED_RUN = "return !!document.querySelector('#samples-b .sample-step')"


def shoot(driver, base: str, out: Path, sizes: list[tuple[int, int]], step: int | None,
          compare: list[str] | None = None) -> None:
    """Each tab of the newest run at each size; with ``compare`` (the shown and the other run's
    ids), the watch tab comparing them too."""
    pinned = f"&step={step}" if step is not None else ""
    pictures = [(tab, f"?tab={tab}{pinned}", SHOWS_A_STEP) for tab in TABS]
    if compare:
        shown, other = compare
        pictures.append(("compare", f"?run={shown}&compare={other}&tab=watch{pinned}", SHOWS_THE_COMPARED_RUN))
    for name, query, ready in pictures:
        for width, height in sizes:
            window(driver, width, height)
            driver.get(base + query)
            wait_until(driver, ready)
            if name == "playground":
                write_on(driver, PLAYGROUND_CHARS)
            path = out / f"{name}-{width}x{height}.png"
            save_small(driver.get_screenshot_as_png(), path)
            print(path)


def newest_runs(uri: str) -> list[str]:
    """The ids of the two newest training runs of the store's default experiment, the one the
    viewer opens, newest first (fewer if it has fewer)."""
    from llmb_mlflow.library.reader import RunReader
    from llmb_mlflow.run_layout import DEFAULT_EXPERIMENT

    reader = RunReader(uri)
    experiment = reader.client.get_experiment_by_name(DEFAULT_EXPERIMENT)
    return [run.run_id for run in reader.runs_of([experiment.experiment_id], max_results=2)] if experiment else []


def write_on(driver, chars: int) -> None:
    """Let the playground's model write ``chars`` characters after its prompt, a Step at a time."""
    from selenium.webdriver.support.ui import WebDriverWait

    length = "return document.getElementById('pg-text').textContent.length;"
    for _ in range(chars):
        before = driver.execute_script(length)
        driver.find_element("id", "pg-step").click()
        WebDriverWait(driver, 30, poll_frequency=0.05).until(lambda d: d.execute_script(length) > before)
    wait_until(driver, "return true")


def samples_gif(driver, base: str, out: Path) -> None:
    """What the model writes, at evenly spaced evaluations from the first to the last."""
    from io import BytesIO

    from PIL import Image

    window(driver, 1366, 768)
    driver.get(f"{base}?tab=watch")
    wait_until(driver, "return (document.querySelector('#loss-chart .js-plotly-plot')?.data || [])[2]?.x?.length > 1")
    steps = driver.execute_script("return Array.from(document.querySelector('#loss-chart .js-plotly-plot').data[2].x);")
    chosen = sorted({steps[round(i * (len(steps) - 1) / (GIF_FRAMES - 1))] for i in range(GIF_FRAMES)})
    frames = []
    for step in chosen:
        driver.get(f"{base}?tab=watch&step={step}")
        wait_until(driver, f"return document.querySelector('.sample.current .sample-step')?.textContent === 'step {step}'")
        png = driver.find_element("id", "samples-panel").screenshot_as_png
        frames.append(Image.open(BytesIO(png)).convert("P", palette=Image.ADAPTIVE, colors=16))
    frames[0].save(out / "samples.gif", save_all=True, append_images=frames[1:], duration=900, loop=0,
                   optimize=True)
    print(out / "samples.gif")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="an MLflow store with finished runs (default: train two)")
    parser.add_argument("--max-iters", type=int, default=1500, help="steps of each training made without --store")
    parser.add_argument("--sizes", default="1600x1000", help="window sizes, comma-separated WxH")
    parser.add_argument("--step", type=int, help="pin the scrubber at this step (default: the last)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "pictures"))
    parser.add_argument("--no-gif", action="store_true")
    args = parser.parse_args()
    sizes = [tuple(int(n) for n in size.split("x")) for size in args.sizes.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = args.store
    if uri is None:
        uri = f"sqlite:///{tempfile.mkdtemp(prefix='llmb-pictures-')}/mlflow.db"
        for dataset in ("alice", "shakespeare"):
            train(uri, args.max_iters, dataset)
    port = free_port()
    viewer = serve(uri, port)
    driver = browser()
    try:
        base = f"http://127.0.0.1:{port}/"
        runs = newest_runs(uri)
        shoot(driver, base, out, sizes, args.step, runs if len(runs) == 2 else None)
        if not args.no_gif:
            samples_gif(driver, base, out)
    finally:
        driver.quit()
        viewer.terminate()
        viewer.wait(timeout=30)


if __name__ == "__main__":
    main()
