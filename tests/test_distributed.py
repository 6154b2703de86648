"""Data-parallel training with ``torchrun --nproc_per_node 2`` (gloo on CPU), on loopback:
one run, logged and checkpointed by rank 0 only, looking like a single-process one."""

import os
import subprocess
import sys
import time

import pytest

from llmb_mlflow.library import control
from llmb_mlflow import run_layout
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.library.registry import ModelLibrary

from conftest import TINY_ARGS, free_port

TINY = [*TINY_ARGS, "--eval-interval", "10"]


def torchrun(uri, *args, **popen):
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(free_port()), "-m", "llmb_mlflow", "train", *TINY, *args, "--tracking-uri", uri],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}, **popen)


def until(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)  # polling the store
    return result


def first_losses(shakespeare):
    """The untrained model's loss on rank 0's first batch and on rank 1's (its own seed)."""
    import torch

    from llmb_mlflow.training.config import build_config
    from llmb_mlflow.training.corpus import prepare_dataset
    from llmb_mlflow.training.trainer import Trainer

    config = build_config("small", n_layer=1, n_embd=16, n_head=2, block_size=16, batch_size=8,
                          eval_iters=2, eval_interval=10, max_iters=30)
    trainer = Trainer(config, prepare_dataset(shakespeare, 16), device="cpu")
    losses = []
    for rank in (0, 1):
        x, y = trainer.batch("train", 8, torch.Generator().manual_seed(config.train.seed + 7919 * rank))
        with trainer.computing():  # the precision the trainings below use
            losses.append(trainer.model(x, y)[1].item())
    return losses


def test_two_processes_train_one_run_that_looks_like_a_single_process_one(store_uri, llmb, tmp_path, shakespeare):
    single = llmb("train", *TINY, "--max-iters", "30", "--checkpoint-interval", "10", "--run-name", "single")
    assert single.code == 0, single.err
    proc = torchrun(store_uri, "--max-iters", "30", "--checkpoint-interval", "10", "--run-name", "pair",
                    cwd=tmp_path)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert out.count("Logging to MLflow run") == 1 and "on 2 processes" in out

    reader, library = RunReader(store_uri), ModelLibrary(store_uri)
    runs = {r.run_name: r for r in reader.runs()}
    assert set(runs) == {"single", "pair"}  # rank 1 created no run
    pair, alone = runs["pair"], runs["single"]
    assert pair.status == "FINISHED" and pair.tags["llmb.world_size"] == "2"
    assert set(pair.params) == set(alone.params) and set(pair.latest) == set(alone.latest)
    for key in ("train_loss", "lr", "grad_norm", "tokens_per_sec"):
        assert reader.metric(pair.run_id, key).steps.tolist() == list(range(1, 31))
    assert reader.metric(pair.run_id, "val_loss").steps.tolist() == [0, 10, 20, 30]
    assert reader.snapshot_steps(pair.run_id) == [0, 10, 20, 30]
    assert library.checkpoint_steps(pair.run_id) == [10, 20, 30]
    # a step's loss is the mean over both ranks' batches; one process sees rank 0's alone
    rank0, rank1 = first_losses(shakespeare)
    assert reader.value_at(alone.run_id, "train_loss", 1) == pytest.approx(rank0, rel=1e-5)
    assert reader.value_at(pair.run_id, "train_loss", 1) == pytest.approx((rank0 + rank1) / 2, rel=1e-5)
    version = library.save(pair.run_id, "pair")
    assert library.checkpoint(version.ref)[1]["step"] == 30


def test_pause_step_and_stop_reach_every_rank(store_uri, tmp_path):
    proc = torchrun(store_uri, "--max-iters", "100000", "--checkpoint-interval", "0", cwd=tmp_path)
    try:
        reader = RunReader(store_uri)
        run_id = until(lambda: reader.runs() and reader.runs()[0].run_id)
        client = reader.client
        until(lambda: reader.run(run_id).last_step > 5)
        control.send(client, run_id, "pause")
        until(lambda: reader.run(run_id).tags.get(run_layout.TRAINER_STATE_TAG) == "paused")
        paused_at = until(lambda: reader.metric(run_id, "train_loss").steps.tolist()[-1:])[0]
        control.send(client, run_id, "step")
        until(lambda: reader.metric(run_id, "train_loss").steps.tolist()[-1] == paused_at + 1)
        control.send(client, run_id, "stop")
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out  # a requested stop is a clean end for torchrun
        run = reader.run(run_id)
        assert run.status == "KILLED" and run.last_step == paused_at + 1
        assert reader.metric(run_id, "train_loss").steps.tolist() == list(range(1, paused_at + 2))
        assert ModelLibrary(store_uri).checkpoint_steps(run_id) == [paused_at + 1]
    finally:
        proc.kill()
