"""A tracking helper that breaks down does not take the training with it: its reader thread
never imports (the race that once killed it is replayed deterministically), and a reader
killed mid-run ends the training in one line with everything kept for ``llmb runs sync``.

The faults are injected into the helper only, from outside the product: a ``sitecustomize``
module put first on the helper's PYTHONPATH (``HOOK`` below) acts in the process whose command
line is the helper's and does nothing elsewhere."""

import os
import subprocess
import sys
import textwrap

import pytest

from llmb_mlflow.library.reader import RunReader

from conftest import TINY_ARGS, run_of, until

HOOK = textwrap.dedent('''
    import os, sys, threading, time

    def _helper():
        with open("/proc/self/cmdline", "rb") as f:
            return b"llmb_mlflow.tracking.process" in f.read()

    MODE, REPORT = os.environ.get("LLMB_TEST_HOOK"), os.environ.get("LLMB_TEST_HOOK_REPORT")

    def _report(text):
        with open(REPORT, "a") as f:
            f.write(text + "\\n")

    if MODE == "import-race" and _helper():
        # A user's Python imports ``typing`` only when MLflow does, in the helper's main thread,
        # while its reader thread takes the training's first messages. Here that import is
        # held half-done until the reader has taken a real message (more than a ping) and gone
        # back to reading, or died: a reader that unpickles (and so imports) meets it then.
        import importlib.abc, importlib.util
        from multiprocessing import connection

        del sys.modules["typing"]
        seen = {"reader": None, "message": False}
        back = threading.Event()
        receive = connection.Connection._recv_bytes

        def _recv_bytes(self, maxsize=None):
            mine = threading.current_thread() is not threading.main_thread()
            if mine:
                seen["reader"] = threading.current_thread()
                if seen["message"]:
                    back.set()
            buffer = receive(self, maxsize)
            if mine and len(buffer.getvalue()) > 200:
                seen["message"] = True
            return buffer

        connection.Connection._recv_bytes = _recv_bytes

        class HoldTyping(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name != "typing" or threading.current_thread() is not threading.main_thread():
                    return None
                sys.meta_path.remove(self)
                spec = importlib.util.find_spec("typing")
                run = spec.loader.exec_module

                def exec_module(module):
                    deadline = time.monotonic() + 60
                    while not back.wait(0.05) and time.monotonic() < deadline:
                        reader = seen["reader"]
                        if seen["message"] and reader is not None and not reader.is_alive():
                            break
                    _report("held" if seen["message"] else "not held")
                    run(module)

                spec.loader.exec_module = exec_module
                return spec

        sys.meta_path.insert(0, HoldTyping())

    if MODE == "kill-reader" and _helper():
        import ctypes

        def _kill_when_asked():
            while not os.path.exists(REPORT + ".go"):
                time.sleep(0.05)  # polling the test's trigger file
            reader = next(t for t in threading.enumerate() if t.name == "llmb-tracking-read")
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(reader.ident),
                                                       ctypes.py_object(SystemExit))
            _report("killed")

        threading.Thread(target=_kill_when_asked, daemon=True).start()
''')


@pytest.fixture
def hooked(tmp_path, store_uri):
    """The environment of an ``llmb train`` whose helper runs ``HOOK``; its report file."""
    folder = tmp_path / "hook"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(HOOK)
    report = tmp_path / "hook-report"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "PYTHONUNBUFFERED": "1",
           "LLMB_SPOOL_DIR": str(tmp_path / "spool"), "LLMB_TEST_HOOK_REPORT": str(report),
           "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
    return env, report


def train(env, mode, *args):
    return subprocess.Popen([sys.executable, "-m", "llmb_mlflow", "train", *TINY_ARGS, *args],
                            env={**env, "LLMB_TEST_HOOK": mode}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_the_helper_reads_while_its_main_thread_imports_typing_and_the_training_ends(hooked, store_uri):
    env, report = hooked
    proc = train(env, "import-race", "--max-iters", "30", "--eval-interval", "10")
    try:
        run_id = run_of(proc)
        _, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert report.read_text() == "held\n", "the race's window was not opened"
    assert proc.returncode == 0 and "Traceback" not in err and "Error" not in err, err
    reader = RunReader(store_uri)
    assert reader.run(run_id).status == "FINISHED"
    assert reader.metric(run_id, "train_loss").steps.tolist() == list(range(1, 31))


def test_a_helper_whose_reader_dies_ends_the_training_and_sync_completes_the_run(hooked, store_uri, llmb,
                                                                                  monkeypatch):
    env, report = hooked
    proc = train(env, "kill-reader", "--max-iters", "100000", "--eval-interval", "10",
                 "--checkpoint-interval", "20")
    reader = RunReader(store_uri)
    try:
        run_id = run_of(proc)
        until(lambda: reader.run(run_id).last_step >= 25, what="25 steps")
        (report.parent / (report.name + ".go")).touch()
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert report.read_text() == "killed\n"
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert last.startswith("Error: the tracking process stopped reading the training's reports; ")
    assert f"of run {run_id} are kept in " in last and last.endswith("send them with `llmb runs sync`")
    assert reader.run(run_id).status == "FAILED"  # the helper ended it with all it took

    monkeypatch.setenv("LLMB_SPOOL_DIR", env["LLMB_SPOOL_DIR"])
    synced = llmb("runs", "sync")
    assert synced.code == 0 and f"of run {run_id} to {store_uri}; it is FAILED." in synced.out, synced
    steps = reader.metric(run_id, "train_loss").steps.tolist()
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > 25  # nothing lost
    for step in reader.snapshot_steps(run_id):
        assert reader.snapshot(run_id, step).step == step


@pytest.mark.soak
def test_a_short_server_outage_is_noted_as_retried_writes(template_db, tmp_path, monkeypatch):
    from conftest import LIVE_ARGS, start_mlflow_server, stop_process
    from llmb_mlflow.library import control
    from llmb_mlflow.launch.launcher import launch

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)  # MLflow's own default
    monkeypatch.setenv("LLMB_SPOOL_DIR", str(tmp_path / "spool"))
    uri, server = start_mlflow_server(template_db, tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    training = launch(["train", *LIVE_ARGS], uri)
    try:
        reader = RunReader(uri)
        until(lambda: reader.run(training.run_id).last_step >= 10, what="10 steps")
        stop_process(server)
        # the server takes seconds to start again; the writer sends every second meanwhile
        uri, server = start_mlflow_server(template_db, tmp_path, port=port)
        before = RunReader(uri).run(training.run_id).last_step
        until(lambda: RunReader(uri).run(training.run_id).last_step > before + 10, what="steps after")
        control.send(RunReader(uri).client, training.run_id, "stop")
        assert training.process.wait(timeout=120) == 130
        run = RunReader(uri).run(training.run_id)
        steps = RunReader(uri).metric(training.run_id, "train_loss").steps.tolist()
        assert run.status == "KILLED" and steps == list(range(1, run.last_step + 1))
        log = open(training.log_path).read()
        notes = [line for line in log.splitlines() if line.startswith("Note: ")]
        assert len(notes) == 1 and " write(s) to the tracking store failed and were retried" in notes[0], log
        assert "Traceback" not in log and "Retrying (Retry(" not in log, log
    finally:
        training.process.kill()
        stop_process(server)


def test_a_training_opens_a_new_sqlite_store_that_another_program_is_creating(tmp_path):
    """A training and a plain MLflow client (as ``mlflow ui`` would) open one new store at once:
    whichever makes it, both succeed and the store is whole. (Two plain MLflow programs racing
    each other on a new store is MLflow's own race, which nothing of ours can stop.)"""
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "LLMB_SPOOL_DIR": str(tmp_path / "spool")}
    script = f"import mlflow; mlflow.MlflowClient({uri!r}).search_experiments()"
    other = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    training = subprocess.run([sys.executable, "-m", "llmb_mlflow", "train", *TINY_ARGS, "--max-iters", "5"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    _, other_err = other.communicate(timeout=120)
    assert training.returncode == 0 and "Error" not in training.stderr, training.stderr
    assert other.returncode == 0, other_err
    run_id = training.stdout.split("Logging to MLflow run ", 1)[1].split()[0]
    assert RunReader(uri).run(run_id).status == "FINISHED"
