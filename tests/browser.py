"""Driving the viewer in a real browser (headless Chromium): fixtures and helpers."""

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from conftest import LIVE_ARGS, free_port, run_of

CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(not CHROMEDRIVER and not os.environ.get("CI"),
                                   reason="chromium-driver is not installed (CI installs it)")


class ServedViewer:
    """A waitress server running in a thread of this process, which ``close`` really stops.

    waitress's own ``close`` closes its wake-up pipe while worker threads may still write to it:
    the write then lands on whatever file reuses the descriptor (seen: an 'x' over the first
    byte of another test's sqlite store). So: let the workers finish, then close every channel
    from the server's own loop, and wait for that loop to end."""

    def __init__(self, server, environment):
        self.server = server
        self.environment = environment
        self.thread = threading.Thread(target=server.run, daemon=True)
        self.thread.start()

    def close(self):
        def close_channels():
            for channel in list(self.server._map.values()):
                channel.close()

        try:
            self.server.task_dispatcher.shutdown()
            try:
                self.server.trigger.pull_trigger(close_channels)
            except OSError:  # the wake-up pipe is already gone (seen once in CI: EBADF)
                self._close_without_the_trigger()
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), "the viewer's server did not stop"
        finally:
            restore_environment(self.environment)

    def _close_without_the_trigger(self):
        """Take every channel out of the server's map, so that its loop ends after its next poll
        (within ``asyncore_loop_timeout``), and only then close them, except the trigger: its
        descriptors may belong to another file by now, so they are left open."""
        from waitress import wasyncore

        trigger, channels = self.server.trigger, []
        deadline = time.monotonic() + 30
        while self.thread.is_alive() and time.monotonic() < deadline:
            while self.server._map:  # a connection accepted meanwhile is taken too
                channels.append(self.server._map.popitem()[1])
            self.thread.join(timeout=2)
        trigger._closed, trigger.socket.fd = True, -1  # nor closed when it is collected
        for channel in channels:
            if channel is self.server:  # the server's own close would close the trigger
                wasyncore.dispatcher.close(channel)
            elif channel is not trigger:
                channel.close()


def restore_environment(saved: dict) -> None:
    """This test process's environment as it was, so a viewer's settings do not reach later tests."""
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update(saved)


def serve(uri, **options):
    """The viewer on a free loopback port, in this process; returns its base URL and server."""
    from dash_app.server import make_server

    port = free_port()
    environment = dict(os.environ)  # make_server sets the viewer's MLflow request settings
    served = ServedViewer(make_server("127.0.0.1", port, uri, threads=4, **options), environment)
    return f"http://127.0.0.1:{port}/", served


def wait(driver, condition, timeout=30):
    from selenium.common.exceptions import (
        ElementNotInteractableException, NoSuchElementException, StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    # Dash renders and re-renders elements between finding and using them: such a use is retried.
    rerendered = (StaleElementReferenceException, NoSuchElementException, ElementNotInteractableException)
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=rerendered).until(
            lambda d: condition(d))
    except TimeoutException:
        if os.environ.get("LLMB_SCREENSHOTS"):
            driver.save_screenshot(os.path.join(os.environ["LLMB_SCREENSHOTS"], "timeout.png"))
        shown = driver.execute_script(
            "return ['shown-step', 'live', 'view-mode', 'status', 'error', 'run-error', 'progress', 'toast', 'save-name'].map("
            "id => id + '=' + (document.getElementById(id) || {}).textContent).join(' ');")
        raise AssertionError(f"timed out; page shows: {shown}; url {driver.current_url}") from None


def text(driver, element_id):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def graph_data(driver, element_id):
    return driver.execute_script(
        "const g = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
        "return g && g.data ? JSON.stringify(g.data.map(t => [t.x, t.y, t.z])) : null;", element_id)


def click(driver, element_id):
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()


def retype(field, value):
    """Replace a React-controlled input's text the way a person does."""
    from selenium.webdriver.common.keys import Keys

    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value)


def start_training(store_uri, tmp_path):
    """``llmb train`` of a tiny model in another process, in ``tmp_path`` (its log there too);
    returns it and its run id."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "trainer.log", "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmb_mlflow", "train", *LIVE_ARGS, "--checkpoint-interval", "0"],
        stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=tmp_path)
    return proc, run_of(proc)




def choose_option(driver, dropdown_id, value):
    """Open a dropdown and click its option of ``value``."""
    driver.find_element("css selector", f"#{dropdown_id}").click()
    wait(driver, lambda d: d.find_element(  # the open dropdown's options
        "xpath", f"//label[contains(@class, 'dash-dropdown-option')][.//input[@value='{value}']]")).click()


def open_menu(driver, summary_id):
    """Open a header menu (a <details>) unless it is open already."""
    from selenium.webdriver.common.by import By

    def opened(d):
        summary = d.find_element(By.ID, summary_id)
        if not summary.find_element(By.XPATH, "..").get_attribute("open"):
            summary.click()
        return summary.find_element(By.XPATH, "..").get_attribute("open")

    wait(driver, opened)


def row_button(driver, model, version, css):
    """A button of one version's row in the Models menu."""
    from selenium.webdriver.common.by import By

    return driver.find_element(
        By.CSS_SELECTOR, f"tr.model-row[data-model='{model}'][data-version='{version}'] {css}")


def click_row(driver, model, version, css):
    """Click a button of one version's row, again if the list re-rendered under the click."""
    wait(driver, lambda d: row_button(d, model, version, css).click() or True)


def kill_trainers(uri):
    """Kill the processes of the store's running trainings (as their runs record them), so a
    test that fails leaves none behind."""
    import signal

    from llmb_mlflow.run_layout import PID_TAG
    from llmb_mlflow.library.reader import RunReader

    reader = RunReader(uri)
    for experiment in reader.experiments():
        for run in reader.runs(experiment):
            if run.status == "RUNNING":
                try:
                    os.kill(int(run.tags.get(PID_TAG)), signal.SIGKILL)
                except (TypeError, ValueError, ProcessLookupError):
                    pass


def shown_run(driver):
    return driver.execute_script(
        "return new URLSearchParams(window.location.search).get('run');")


def current_sample_step(driver):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, ".sample.current .sample-step")
    return found[0].text if found else None


def stop_from_browser(driver):
    """Press Stop on the shown training and wait until its run has ended."""
    wait(driver, lambda d: d.find_element("id", "ctl-stop").is_enabled())
    click(driver, "ctl-stop")
    wait(driver, lambda d: "killed" in text(d, "status"), timeout=60)
