"""A tracking server still down when a training ends: what could not be sent is kept on disk
(beside what the writer spilled during the outage), nothing of it is lost, and ``llmb runs
sync`` sends it once the server is back. The spool folder's format: a half-written spill is
never read, a folder being written is left to its writer."""

import json

import pytest

from llmb_mlflow.errors import LLMBError
from llmb_mlflow.library.reader import RunReader

from conftest import start_mlflow_server, stop_process, tiny_config, until


@pytest.fixture
def spool_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMB_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the writer retries by itself
    return tmp_path / "spool"


def test_a_training_that_ends_while_the_store_is_down_keeps_its_data_for_sync(
        template_db, tmp_path, spool_dir, shakespeare, llmb):
    from llmb_mlflow.training.corpus import prepare_dataset
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
    from llmb_mlflow.library.registry import ModelLibrary
    from llmb_mlflow.training.tracker import RunDescription
    from llmb_mlflow.training.trainer import Trainer

    uri, server = start_mlflow_server(template_db, tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    try:
        config = tiny_config(max_iters=20, eval_interval=10, checkpoint_interval=10)
        trainer = Trainer(config, prepare_dataset(shakespeare, config.model.block_size), device="cpu")
        tracker = MlflowTracker(uri, finish_timeout=3, spill_bytes=64 * 1024)  # a checkpoint spills
        tracker.start(RunDescription(params=trainer.describe(), run_name="cut-off"))
        trainer.run(tracker, stop_at=10)
        tracker.flush()
        stop_process(server)
        trainer.run(tracker)  # steps 11 to 20, their snapshot and checkpoint: nowhere to go
        folder = spool_dir / tracker.run_id
        until(lambda: list(folder.glob("segment_*.jsonl")), what="a spill during the outage")
        with pytest.raises(LLMBError) as ended:  # the rest joins the spilled
            tracker.finish("FINISHED")
        assert str(ended.value).endswith(
            f"of run {tracker.run_id} are kept in {folder}: send them with `llmb runs sync` once the store is back")
        assert "\n" not in str(ended.value)
        manifest = json.loads((folder / "run.json").read_text())
        assert manifest["status"] == "FINISHED" and manifest["tracking_uri"] == uri
        artifacts = [json.loads(line) for segment in sorted(folder.glob("segment_*.jsonl"))
                     for line in segment.read_text().splitlines() if line.startswith("{")]
        assert [(a["kind"], a["step"]) for a in artifacts] == [("snapshot", 20), ("checkpoint", 20)]
        assert "1 snapshot(s) and 1 checkpoint(s) of run" in str(ended.value)

        still_down = llmb("runs", "sync")
        assert still_down.code == 1 and still_down.err.startswith(f"Error: tracking server {uri} is unreachable")
        assert (folder / "run.json").is_file()  # kept for the next try

        uri, server = start_mlflow_server(template_db, tmp_path, port=port)
        synced = llmb("runs", "sync")
        assert synced.code == 0, synced.err
        assert f"of run {tracker.run_id} to {uri}; it is FINISHED." in synced.out
        assert not folder.exists()

        reader = RunReader(uri)
        run = reader.run(tracker.run_id)
        assert run.status == "FINISHED" and run.last_step == 20
        assert reader.metric(run.run_id, "train_loss").steps.tolist() == list(range(1, 21))  # once each
        assert reader.metric(run.run_id, "val_loss").steps.tolist() == [0, 10, 20]
        assert reader.snapshot_steps(run.run_id) == [0, 10, 20]
        assert reader.snapshot(run.run_id, 20).step == 20
        library = ModelLibrary(uri)
        assert library.checkpoint_steps(run.run_id) == [10, 20]
        version = library.save(run.run_id, "cut-off")
        assert library.checkpoint(version.ref)[1]["step"] == 20

        assert llmb("runs", "sync").out.startswith("Nothing to send: no unsent training data in")
    finally:
        stop_process(server)


def test_a_damaged_spool_is_one_line_and_left_alone(spool_dir, llmb):
    folder = spool_dir / "0123456789abcdef0123456789abcdef"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text('{"run_id": "0123456789abcdef0123456789abcdef", "artifacts": [')
    result = llmb("runs", "sync")
    assert result.code == 1
    assert result.err.startswith(f"Error: the unsent data in {folder} is unreadable (") and result.err.count("\n") == 1
    assert (folder / "run.json").is_file()


def test_a_spool_in_an_earlier_layout_is_refused_and_kept(spool_dir, llmb):
    folder = spool_dir / "0123456789abcdef0123456789abcdef"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text('{"run_id": "0123456789abcdef0123456789abcdef", "tracking_uri": "sqlite:///x.db", '
                                     '"status": "FINISHED", "artifacts": []}')
    (folder / "metrics.jsonl").write_text('["loss", 1.0, 0, 1]\n')
    result = llmb("runs", "sync")
    assert result.code == 1 and result.err.count("\n") == 1
    assert result.err.startswith(f"Error: the unsent data in {folder} is in the layout of an LLMBreaker from before")
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.jsonl", "run.json"]


def test_a_half_written_spill_is_never_read_and_what_was_spilled_before_it_is(spool_dir):
    from llmb_mlflow.tracking import spool

    folder = spool_dir / "0123456789abcdef0123456789abcdef"
    folder.mkdir(parents=True)
    spool.write_manifest(folder, folder.name, "http://127.0.0.1:1", None)
    spool.write_segment(folder, 1, [("train_loss", 2.5, 1000, 1), ("train_loss", 2.4, 1001, 2)])
    # a writer killed in the middle of segment 2: its snapshot file written, the segment not
    (folder / "s000002_snapshot_00000010.npz").write_bytes(b"PK")
    (folder / "segment_000002.jsonl.partial").write_text('["train_loss", 2.3, 1002, 3]\n["train_lo')
    spooled = spool.load(folder)
    assert (spooled.points, spooled.snapshots, spooled.status) == (2, 0, "FAILED")  # no final status: sent as FAILED
    assert sorted(path.name for path in folder.iterdir()) == ["run.json", "segment_000001.jsonl"]
    assert spool.read_entries(folder, 1, 0, 1000) == (
        [("train_loss", 2.5, 1000, 1), ("train_loss", 2.4, 1001, 2)], spool.segment_path(folder, 1).stat().st_size, True)


def test_a_spool_folder_whose_writer_is_alive_is_left_to_it(spool_dir):
    from llmb_mlflow.tracking import spool

    folder = spool_dir / "0123456789abcdef0123456789abcdef"
    folder.mkdir(parents=True)
    spool.write_manifest(folder, folder.name, "http://127.0.0.1:1", None)  # this process writes it
    assert spool.pending() == []
    spool.write_manifest(folder, folder.name, "http://127.0.0.1:1", "KILLED")  # it ended
    assert spool.pending() == [folder]
