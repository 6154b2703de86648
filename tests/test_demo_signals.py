"""``llmb demo`` and ``llmb dash`` as real processes on SIGINT (Ctrl-C), SIGTERM and SIGHUP (sent,
or from a terminal that closes), also when started from a script that ignored SIGINT: the demo
stops its training (a last checkpoint, the run KILLED, no process of it left), prints where it
stopped and exits with 128 + the signal's number; the viewer alone just exits."""

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading

import psutil
import pytest

from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.run_layout import PID_TAG

from conftest import free_port, until

IGNORING_SIGINT = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]


class Command:
    """``python -m llmb_mlflow ARGS`` on a store of its own, its output collected as it comes."""

    def __init__(self, args, store_uri, log_dir, prefix=()):
        env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "PYTHONUNBUFFERED": "1",
               "BROWSER": "true", "LLMB_LOG_DIR": str(log_dir), "MLFLOW_DISABLE_TELEMETRY": "true"}
        self.uri = store_uri
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "llmb_mlflow", *args,
                                      "--port", str(free_port()), "--tracking-uri", store_uri],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.out, self.err = [], []
        self._readers = [threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream, lines):
        for line in stream:
            lines.append(line)

    def serving(self) -> bool:
        assert self.proc.poll() is None, "".join(self.err)
        return any("viewer on http://" in line for line in self.out)

    def stop(self, sig) -> tuple[int, str]:
        """Send ``sig``; the exit code and everything written to stderr once it has exited."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=120)
        for reader in self._readers:
            reader.join(10)
        return code, "".join(self.err)

    def clean_up(self):
        """Whatever a failed test left running: the command, its training and their helpers."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for process in processes_of(self.uri):
            with contextlib.suppress(psutil.Error):
                process.kill()


def processes_of(uri: str) -> list:
    """This machine's processes working on the store ``uri``, other than this test's."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and process.environ().get("MLFLOW_TRACKING_URI") == uri:
                found.append(process)
        except psutil.Error:  # gone meanwhile, or someone else's
            pass
    return found


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def demo_run(store_uri, tmp_path):
    """Start a demo (with ``prefix`` before its command line) and return it once its run has
    taken 20 steps, with the run's id; whatever it leaves running is killed afterwards."""
    started = []

    def start(prefix=()):
        demo = Command(["demo", "--max-iters", "100000"], store_uri, tmp_path / "logs", prefix)
        started.append(demo)
        reader = RunReader(store_uri)
        until(demo.serving, what="the demo's viewer")
        [run] = until(lambda: [r for r in reader.runs() if r.last_step >= 20], what="20 steps of the demo's training")
        return demo, run.run_id

    yield start
    for demo in started:
        demo.clean_up()


def check_stopped(store_uri, run_id, code, err, sig):
    assert code == 128 + sig, err
    assert "Traceback" not in err, err
    check_killed_with_a_last_checkpoint(store_uri, run_id, err)


def check_killed_with_a_last_checkpoint(store_uri, run_id, said):
    """The run ended KILLED at the step the training ``said`` it stopped at, with a checkpoint
    there, and nothing of the training is left running."""
    stopped = re.search(rf"^Stopped at step (\d+)\. Run {run_id} is marked KILLED; everything logged "
                        r"so far is kept\.$", said, re.M)
    assert stopped, said
    reader = RunReader(store_uri)
    run = reader.run(run_id)
    assert run.status == "KILLED" and run.last_step == int(stopped.group(1))
    assert reader.checkpoints(run_id, run=run)[-1].step == run.last_step
    assert gone(int(run.tags[PID_TAG]))
    until(lambda: not processes_of(store_uri), timeout=30, what="the training's helper to exit")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_demo_stops_its_training_and_prints_where_it_stopped(store_uri, demo_run, sig):
    demo, run_id = demo_run()
    code, err = demo.stop(sig)
    check_stopped(store_uri, run_id, code, err, sig)
    params = RunReader(store_uri).run(run_id).params  # the preset it names is what it trained
    assert (params["preset"], params["n_layer"], params["n_embd"], params["batch_size"]) == ("demo", "3", "96", "8")


def test_a_demo_started_with_sigint_ignored_still_stops_on_ctrl_c(store_uri, demo_run):
    demo, run_id = demo_run(prefix=IGNORING_SIGINT)
    code, err = demo.stop(signal.SIGINT)
    check_stopped(store_uri, run_id, code, err, signal.SIGINT)


class Terminal:
    """The controlling terminal of a process started with ``pty.fork``, read without blocking."""

    def __init__(self, fd: int):
        self.fd, self.text = fd, ""

    def shows(self, words: str) -> bool:
        while select.select([self.fd], [], [], 0)[0]:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # the other side has closed
                break
            if not chunk:
                break
            self.text += chunk.decode(errors="replace")
        return words in self.text


def test_a_demo_whose_terminal_closes_stops_its_training(store_uri, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BROWSER": "true", "LLMB_LOG_DIR": str(tmp_path / "logs"),
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [sys.executable, "-m", "llmb_mlflow", "demo", "--max-iters", "100000",
               "--port", str(free_port()), "--tracking-uri", store_uri]
    pid, fd = pty.fork()
    if pid == 0:  # the demo, in a session whose terminal is ``fd``
        try:
            os.execve(sys.executable, command, env)
        finally:
            os._exit(127)
    terminal, ended = Terminal(fd), []
    try:
        until(lambda: terminal.shows("viewer on http://"), what="the demo's viewer")
        reader = RunReader(store_uri)
        [run] = until(lambda: [r for r in reader.runs() if r.last_step >= 20], what="20 steps of the demo's training")
        os.close(fd)  # the terminal window closes: the kernel sends the demo SIGHUP

        def exited():
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                ended.append(os.waitstatus_to_exitcode(status))
            return ended

        assert until(exited, what="the demo to exit") == [128 + signal.SIGHUP]
    finally:
        if not ended:
            with contextlib.suppress(OSError):
                os.close(fd)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            for process in processes_of(store_uri):
                with contextlib.suppress(psutil.Error):
                    process.kill()
    [log] = (tmp_path / "logs").glob("train-*.log")
    check_killed_with_a_last_checkpoint(store_uri, run.run_id, log.read_text())


@pytest.mark.parametrize("sig, prefix", [(signal.SIGINT, IGNORING_SIGINT), (signal.SIGTERM, ()),
                                         (signal.SIGHUP, ())], ids=["SIGINT-ignored", "SIGTERM", "SIGHUP"])
def test_the_viewer_exits_on_each_stop_signal(store_uri, tmp_path, sig, prefix):
    dash = Command(["dash"], store_uri, tmp_path / "logs", prefix)
    try:
        until(dash.serving, what="the viewer")
        code, err = dash.stop(sig)
    finally:
        dash.clean_up()
    assert code == 128 + sig and "Traceback" not in err, err
