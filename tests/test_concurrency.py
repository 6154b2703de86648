"""Several trainers on one local sqlite store (the long version is bench/concurrent_sqlite.py)."""

import subprocess
import sys

import pytest

from llmb_mlflow.library.reader import RunReader

from conftest import TINY_ARGS

TINY = [*TINY_ARGS, "--eval-interval", "10", "--max-iters", "30"]


@pytest.mark.soak
def test_trainers_opening_a_brand_new_store_together_all_succeed_and_lose_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    trainers = [subprocess.Popen([sys.executable, "-m", "llmb_mlflow", "train", *TINY, "--tracking-uri", uri,
                                  "--run-name", f"t{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True, cwd=tmp_path) for i in range(4)]
    results = [(t.wait(timeout=600), t.stderr.read()) for t in trainers]
    assert [code for code, _ in results] == [0] * 4, [err for _, err in results]
    reader = RunReader(uri)
    runs = reader.runs()
    assert sorted(r.run_name for r in runs) == ["t0", "t1", "t2", "t3"]
    for run in runs:
        assert run.status == "FINISHED"
        assert reader.metric(run.run_id, "train_loss").steps.tolist() == list(range(1, 31))
        assert reader.snapshot_steps(run.run_id) == [0, 10, 20, 30]
