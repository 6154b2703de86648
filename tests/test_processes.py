"""Which process a record names, whether it still runs, and which trainings run here: told
apart with real child processes."""

import os
import secrets
import subprocess
import sys

import pytest

from llmb_mlflow import processes

WAIT_FOR_STDIN = "import sys; sys.stdin.read()"  # runs until its input is closed


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", WAIT_FOR_STDIN], stdin=subprocess.PIPE)
    yield proc
    proc.kill()
    proc.wait()


def test_a_process_is_alive_until_it_ends(child):
    pid, started = processes.identity(child.pid)
    assert pid == child.pid and processes.is_alive(pid, started) and processes.is_alive(pid)
    assert processes.find(pid, started).pid == pid
    child.stdin.close()
    child.wait()
    assert not processes.is_alive(pid, started) and processes.find(pid, started) is None


def test_an_ended_process_not_yet_reaped_is_gone(child):
    pid, started = processes.identity(child.pid)
    child.stdin.close()
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # it has exited; its entry stays, a zombie
    assert not processes.is_alive(pid, started) and not processes.is_alive(pid)


def test_a_process_id_given_to_another_process_is_not_taken_for_it(child):
    pid, started = processes.identity(child.pid)
    for other_start in (started - 3600, started + 3600, started - 2 * processes.SAME_START):
        assert not processes.is_alive(pid, other_start)  # the id, with another process's start
    assert processes.is_alive(pid, started + processes.SAME_START / 2)  # the same start, read again


def test_this_process_is_known_by_its_id_and_start():
    pid, started = processes.identity()
    assert pid == os.getpid() and processes.is_alive(pid, started)


@pytest.mark.parametrize("value, pid", [
    (42, 42), ("42", 42), ("0042", 42), ("", None), ("abc", None), ("-3", None), (-3, None), (0, None),
    ("9" * 30, None), ("４２", None), (True, None), (4.0, None), (None, None), ([42], None),
])
def test_only_a_number_that_could_be_a_process_id_is_one(value, pid):
    assert processes.process_id(value) == pid


@pytest.mark.parametrize("value", ["abc", "9" * 30, None, -1, "4294967296"])
def test_what_names_no_process_is_not_alive(value):
    assert not processes.is_alive(value)


@pytest.mark.parametrize("cmdline, training", [
    (["/venv/bin/llmb", "train", "--preset", "small"], True),
    (["/usr/bin/python3", "-m", "llmb_mlflow", "resume", "bard/1"], True),
    (["/venv/bin/llmb", "dash"], False),
    (["/venv/bin/llmb", "demo"], False),  # its training is a process of its own
    (["/venv/bin/torchrun", "--nproc_per_node", "2", "-m", "llmb_mlflow", "train"], False),
    (["python", "train.py", "config/train_shakespeare_char.py"], False),
    (["/usr/bin/python3.11", "-u", "-m", "llmb_mlflow", "train"], True),  # a torchrun rank
    (["/usr/bin/python3", "/venv/bin/llmb", "resume", "bard/1"], True),
    (["timeout", "900", "llmb", "train"], False),  # each only waits on the training it started
    (["/usr/bin/time", "python", "-m", "llmb_mlflow", "train"], False),
    (["python", "bench/harness.py", "python", "-m", "llmb_mlflow", "train"], False),
    ([], False),
])
def test_trainings_are_known_by_their_command_lines(cmdline, training):
    assert processes.is_training(cmdline) == training


def test_a_process_running_as_a_training_is_among_the_trainings_here_until_it_ends(tmp_path):
    (tmp_path / "train").write_text(f"print('ready', flush=True); {WAIT_FOR_STDIN}")  # what ``llmb train`` runs
    token = secrets.token_hex(8)
    proc = subprocess.Popen(["bash", "-c", f'exec -a llmb "{sys.executable}" train {token}'], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        command = ["llmb", "train", token]
        assert processes.is_alive(proc.pid) and proc.pid in (p.pid for p in _with_cmdline(command))
        assert command in processes.training_commands()
        assert processes.trainings_here() >= 1
    finally:
        proc.stdin.close()
        proc.wait()
    assert command not in processes.training_commands()


def _with_cmdline(command):
    import psutil

    return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == command]


def test_the_usable_cores_are_this_process_s_own():
    assert 1 <= processes.usable_cores() == len(os.sched_getaffinity(0)) <= (os.cpu_count() or 1)
