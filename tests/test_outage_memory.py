"""A tracking server that stays down while a training goes on: the writer keeps at most its bound
of unsent data in memory and spills the rest to the run's spool folder during the outage; once
the server is back every point arrives exactly once, in the trainer's own record's order, and
every snapshot and checkpoint is listed. A writer killed mid-spill loses nothing it had spilled,
and ``llmb runs sync`` sends that. Against a real ``mlflow server`` stopped and restarted."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import psutil
import pytest

from llmb_mlflow.library.reader import RunReader

from conftest import start_mlflow_server, stop_process, tiny_config, until

BOUND = 128 * 1024  # small, so that a tiny training spills several times


@pytest.fixture
def spool_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMB_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the writer retries by itself
    return tmp_path / "spool"


def spilled_lines(folder):
    """Entries in the folder's complete segments."""
    return sum(len(segment.read_bytes().splitlines()) for segment in folder.glob("segment_*.jsonl"))


def recording_tracker(uri, **options):
    """An MlflowTracker that keeps the trainer's own record of what it reported."""
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker

    class Recording(MlflowTracker):
        def log_metrics(self, step, metrics, at_ms=None):
            if threading.current_thread().name != "llmb-mlflow-writer":  # not its own markers
                self.reported.append((step, dict(metrics)))
            super().log_metrics(step, metrics, at_ms)

    tracker = Recording(uri, **options)
    tracker.reported = []
    return tracker


def assert_stored_once(uri, tracker, keys=("train_loss", "val_loss")):
    reader = RunReader(uri)
    for key in keys:
        reported = [(step, metrics[key]) for step, metrics in tracker.reported if key in metrics]
        stored = reader.client.get_metric_history(tracker.run_id, key)
        assert sorted((m.step, m.value) for m in stored) == reported, key


@pytest.mark.soak
def test_a_long_outage_spills_to_disk_and_everything_arrives_once(template_db, tmp_path, spool_dir, shakespeare):
    from llmb_mlflow.training.corpus import prepare_dataset
    from llmb_mlflow.library.registry import ModelLibrary
    from llmb_mlflow.tracking.spill import POINT_BYTES
    from llmb_mlflow.training.tracker import RunDescription
    from llmb_mlflow.training.trainer import Trainer

    uri, server = start_mlflow_server(template_db, tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    try:
        config = tiny_config(max_iters=1000, eval_interval=100, checkpoint_interval=300)
        trainer = Trainer(config, prepare_dataset(shakespeare, config.model.block_size), device="cpu")
        tracker = recording_tracker(uri, spill_bytes=BOUND)
        tracker.start(RunDescription(params=trainer.describe(), run_name="long-outage"))
        trainer.run(tracker, stop_at=50)
        tracker.flush()
        stop_process(server)

        in_memory = []  # the writer's unsent data in memory after each step of the outage
        trainer.run(tracker, stop_at=900, on_progress=lambda *_: in_memory.append(tracker.backlog.memory_bytes))
        folder = spool_dir / tracker.run_id
        assert tracker.backlog.spills >= 3 and spilled_lines(folder) > 1000  # on disk during the outage
        reported = sum(len(metrics) for step, metrics in tracker.reported if step > 50) * POINT_BYTES
        assert reported > 5 * BOUND  # what an unbounded writer would hold, its points alone
        # at most the bound plus what a step adds before the spill thread runs (a checkpoint: 115 KB)
        assert max(in_memory) < BOUND + 160 * 1024, max(in_memory)
        until(lambda: tracker.backlog.memory_bytes <= BOUND, what="the last spill")

        uri, server = start_mlflow_server(template_db, tmp_path, port=port)
        trainer.run(tracker)  # steps 901 to 1000 while the spilled data goes out
        tracker.finish("FINISHED")
        assert not folder.exists()  # all sent, nothing left for llmb runs sync

        assert_stored_once(uri, tracker)
        reader = RunReader(uri)
        assert reader.metric(tracker.run_id, "train_loss").steps.tolist() == list(range(1, 1001))
        assert reader.snapshot_steps(tracker.run_id) == list(range(0, 1001, 100))
        assert ModelLibrary(uri).checkpoint_steps(tracker.run_id) == [300, 600, 900, 1000]  # and the last step
        assert reader.snapshot(tracker.run_id, 500).step == 500
    finally:
        stop_process(server)


@pytest.mark.soak
def test_the_tracking_helper_holds_its_bound_through_an_outage(template_db, tmp_path, spool_dir):
    from llmb_mlflow.tracking import spool
    from llmb_mlflow.errors import LLMBError
    from llmb_mlflow.tracking.spill import POINT_BYTES, SPILL_BYTES
    from llmb_mlflow.training.tracker import RunDescription
    from llmb_mlflow.tracking.process import TrackingProcess

    steps, keys = 40_000, [f"outage/m{i}" for i in range(10)]  # 400,000 points: 80 MB unbounded
    uri, server = start_mlflow_server(template_db, tmp_path)
    try:
        tracker = TrackingProcess(uri)
        tracker.start(RunDescription(params={"purpose": "outage"}, run_name="helper-outage"))
        until(lambda: tracker.run_id, what="the run")
        helper = next(p for p in psutil.Process().children()
                      if "llmb_mlflow.tracking.process" in " ".join(p.cmdline()))
        before = helper.memory_info().rss
        stop_process(server)

        for step in range(steps):
            tracker.log_metrics(step, {key: step + i / 10 for i, key in enumerate(keys)})
        folder = spool_dir / tracker.run_id
        until(lambda: spilled_lines(folder) >= steps * len(keys) - SPILL_BYTES // POINT_BYTES,
              timeout=300, what="all but the last bound's worth spilled")
        growth = helper.memory_info().rss - before
        print(f"helper RSS growth over {steps * len(keys)} unsent points: {growth / 2**20:.1f} MB "
              f"(unbounded: about {steps * len(keys) * POINT_BYTES / 2**20:.0f} MB)")
        assert growth < 30 * 2**20

        def relayed_what_memory_holds():  # all it has not spilled, which may be nothing: a spill takes all
            held = (steps * len(keys) - spilled_lines(folder)) * POINT_BYTES
            return tracker.failed_writes > 0 and tracker.unsent_bytes == held

        until(relayed_what_memory_holds, what="the helper's relayed memory")
        assert tracker.unsent_bytes <= SPILL_BYTES

        with pytest.raises(LLMBError) as ended:  # still down a minute later: the rest joins the spool
            tracker.finish("FINISHED")
        assert f"{steps * len(keys)} metric point(s), 0 snapshot(s) and 0 checkpoint(s) of run" in str(ended.value)
        kept = spool.load(folder)
        assert (kept.status, kept.points) == ("FINISHED", steps * len(keys))
        entries = [json.loads(line) for seq in spool.segments(folder)
                   for line in spool.segment_path(folder, seq).read_text().splitlines()]
        assert [(key, value, step) for key, value, _, step in entries] == [
            (key, step + i / 10, step) for step in range(steps) for i, key in enumerate(keys)]
    finally:
        stop_process(server)


WRITER = textwrap.dedent("""
    import sys
    import time
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
    from llmb_mlflow.training.tracker import RunDescription

    tracker = MlflowTracker(sys.argv[1], spill_bytes=16 * 1024)
    tracker.start(RunDescription(params={}, run_name="killed-mid-spill"))
    tracker.flush()
    print(tracker.run_id, flush=True)
    sys.stdin.readline()  # the server is down now
    for step in range(20_000):  # about 250 small spills, one after the other: killed amid them
        tracker.log_metrics(step, {"x": float(step)})
        while tracker.backlog.memory_bytes > tracker.spill_bytes:
            time.sleep(0.001)  # this one's spill first
    sys.stdin.readline()
""")


@pytest.mark.soak
def test_a_writer_killed_mid_spill_loses_nothing_it_spilled(template_db, tmp_path, spool_dir, llmb):
    from llmb_mlflow.tracking import spool

    uri, server = start_mlflow_server(template_db, tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    writer = subprocess.Popen([sys.executable, "-c", WRITER, uri], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        run_id = writer.stdout.readline().strip()
        stop_process(server)
        writer.stdin.write("go\n")
        writer.stdin.flush()
        folder = spool_dir / run_id
        until(lambda: len(list(folder.glob("segment_*.jsonl"))) >= 20, what="spills")
        assert spool.pending() == []  # its writer is alive: not for llmb runs sync
        os.kill(writer.pid, signal.SIGKILL)  # most likely mid-spill
        writer.wait()

        spilled = [json.loads(line) for seq in spool.segments(folder)
                   for line in spool.segment_path(folder, seq).read_text().splitlines()]
        assert spilled == [["x", float(step), spilled[step][2], step] for step in range(len(spilled))]
        assert spool.pending() == [folder]  # its writer is gone
        assert spool.load(folder).points == len(spilled)
        assert not list(folder.glob("*.partial"))  # load removed what the kill left half-written

        uri, server = start_mlflow_server(template_db, tmp_path, port=port)
        synced = llmb("runs", "sync")
        assert synced.code == 0, synced.err
        assert f"Sent {len(spilled)} metric point(s), 0 snapshot(s) and 0 checkpoint(s) of run {run_id}" in synced.out
        assert synced.out.rstrip().endswith("it is FAILED.")
        history = RunReader(uri).client.get_metric_history(run_id, "x")
        assert sorted(m.step for m in history) == list(range(len(spilled)))  # each exactly once
        assert RunReader(uri).run(run_id).status == "FAILED"
    finally:
        writer.kill()
        stop_process(server)


@pytest.mark.soak
@pytest.mark.timeout(1500)
def test_ten_minutes_of_training_through_a_seven_minute_outage(template_db, tmp_path, spool_dir):
    """The issue's own test: a training of 10 minutes whose server is stopped after 1 minute and
    restarted after 8. Its processes (the training and its tracking helper) stay within 50 MB of
    their memory before the outage; afterwards every step's train_loss is stored once, and every
    snapshot and checkpoint is listed."""
    import time

    from llmb_mlflow.library import control
    from llmb_mlflow.launch.launcher import launch
    from llmb_mlflow.library.registry import ModelLibrary

    from conftest import TINY_ARGS

    def memory(process) -> int:  # the training's and its helper's resident memory
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])

    uri, server = start_mlflow_server(template_db, tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    training = launch(["train", *TINY_ARGS, "--max-iters", "10000000", "--eval-interval", "2000",
                       "--checkpoint-interval", "20000", "--threads", "1"], uri)
    process, started = psutil.Process(training.process.pid), time.monotonic()
    try:
        def at(minute):  # the test's own timeline: a clock, not a stand-in for a condition
            time.sleep(max(0.0, started + minute * 60 - time.monotonic()))

        at(1)
        before = memory(process)
        stop_process(server)
        peak = before
        while time.monotonic() < started + 8 * 60:
            peak = max(peak, memory(process))
            time.sleep(5)
        uri, server = start_mlflow_server(template_db, tmp_path, port=port)
        at(10)
        control.send(RunReader(uri).client, training.run_id, "stop")
        assert training.process.wait(timeout=600) == 130
        print(f"memory before the outage {before / 2**20:.0f} MB, peak during it {peak / 2**20:.0f} MB")
        assert peak - before < 50 * 2**20

        reader = RunReader(uri)
        run = reader.run(training.run_id)
        history = reader.client.get_metric_history(training.run_id, "train_loss")
        assert run.status == "KILLED" and sorted(m.step for m in history) == list(range(1, run.last_step + 1))
        assert run.last_step > 20_000  # it trained all along
        assert reader.snapshot_steps(training.run_id) == list(range(0, run.last_step + 1, 2000))
        checkpoints = ModelLibrary(uri).checkpoint_steps(training.run_id)
        assert checkpoints[:-1] == list(range(20_000, run.last_step + 1, 20_000))
        assert checkpoints[-1] == run.last_step  # and its last, written as it stopped
        assert not (spool_dir / training.run_id).exists()  # nothing left for llmb runs sync
    finally:
        training.process.kill()
        stop_process(server)
