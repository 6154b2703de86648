"""Trainings sharing a machine divide its cores: real processes counted by their command lines,
the share applied to PyTorch, an explicit count kept."""

import subprocess
import sys
import uuid

import torch

from llmb_mlflow import processes
from llmb_mlflow.training import threads

from conftest import LIVE_ARGS, stop_process, until


def test_trainings_running_here_are_counted_and_share_the_cores():
    """Other tests (another worker's) may start and stop trainings meanwhile: these two are
    told apart by their run name, and the share is checked against the count of the moment."""
    name = f"threads-{uuid.uuid4().hex}"
    procs = [subprocess.Popen([sys.executable, "-m", "llmb_mlflow", "train", *LIVE_ARGS, "--no-tracking",
                               "--run-name", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for _ in range(2)]

    def ours():
        return [command for command in processes.training_commands() if name in command]

    try:
        assert len(ours()) == 2
        share = threads.ThreadShare()
        until(lambda: share.share() == max(1, processes.usable_cores() // processes.trainings_here()),
              timeout=30, what="the share to fit the trainings running")
    finally:
        for proc in procs:
            stop_process(proc)
    assert ours() == []


def test_an_explicit_thread_count_is_applied_and_kept(monkeypatch):
    previous = torch.get_num_threads()
    try:
        share = threads.ThreadShare(threads=1)
        share.update()
        assert torch.get_num_threads() == 1 and share.fixed == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert threads.ThreadShare().fixed == 3
    finally:
        torch.set_num_threads(previous)


def test_a_bad_thread_count_is_one_line_naming_the_flag(llmb):
    result = llmb("train", "--threads", "0", "--no-tracking")
    assert result.code == 2 and "Invalid value for '--threads'" in result.err and len(result.err.splitlines()) == 1
