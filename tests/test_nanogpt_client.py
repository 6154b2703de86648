"""nanoGPT's own train.py (../shared/clients/nanogpt, unmodified) with docs/examples/nanogpt.patch
applied, as a nanoGPT user would: its Shakespeare-character recipe on the CPU, shortened, is
recorded step by step with its 4 layers x 4 heads of attention; in headless Chromium the viewer
shows its panels and the Playground writes with the model as it was at a past step."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from browser import CHROMEDRIVER, click, graph_data, serve, text, wait

from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.run_layout import KIND_TAG, TRAINING_RUN

BARS = "return JSON.stringify((document.querySelector('#pg-bars .js-plotly-plot') || {}).data || null);"
WRITTEN = "return document.getElementById('pg-text').textContent;"
DETAIL_TITLE = "return document.querySelector('#attention-detail .gtitle').textContent;"
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RECIPE = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=5", "--log_interval=10",
          "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=60",
          "--lr_decay_iters=60", "--dropout=0.0", "--eval_interval=20"]


def test_nanogpts_train_py_patched_records_its_training(store_uri, tmp_path, request):
    nanogpt = tmp_path / "nanogpt"
    shutil.copytree(SHARED / "clients" / "nanogpt", nanogpt)
    patch = (ROOT / "docs" / "examples" / "nanogpt.patch").read_text()
    assert sum(line.startswith("+") and not line.startswith("+++") for line in patch.splitlines()) <= 15
    assert not any(line.startswith("-") and not line.startswith("---") for line in patch.splitlines())
    subprocess.run(["git", "apply", str(ROOT / "docs" / "examples" / "nanogpt.patch")], cwd=nanogpt, check=True)
    data = nanogpt / "data" / "shakespeare_char"
    shutil.copy(SHARED / "datasets" / "shakespeare.txt", data / "input.txt")  # prepare.py then downloads nothing
    subprocess.run([sys.executable, "prepare.py"], cwd=data, check=True, capture_output=True)

    trained = subprocess.run([sys.executable, "train.py", *RECIPE], cwd=nanogpt, capture_output=True, text=True,
                             timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    reader = RunReader(store_uri)
    [run] = reader.runs("nanogpt")
    assert run.status == "FINISHED" and run.tags[KIND_TAG] == TRAINING_RUN and run.params["n_layer"] == "4"
    assert run.params["model"] == "GPT" and run.params["batch_size"] == "12"
    assert reader.metric(run.run_id, "train_loss").steps.tolist() == list(range(1, 62))
    assert reader.snapshot_steps(run.run_id) == [0, 20, 40, 60]
    snap = reader.snapshot(run.run_id, 60)
    assert snap.attention.shape == (4, 4, 64, 64) and snap.embedding.shape == (65, 3)
    assert np.allclose(snap.attention.astype(np.float32).sum(-1), 1, atol=1e-2)
    val = reader.metric(run.run_id, "val_loss").values
    assert val[-1] < val[0]  # it learned
    assert reader.weights(run.run_id, 20)[0].n_layer == 4  # nanoGPT's GPT, kept as the MicroGPT it is
    checkpoints = reader.checkpoints(run.run_id)  # where train.py saved its ckpt.pt: when val loss improved
    assert checkpoints and {c.step for c in checkpoints} <= {20, 40, 60}
    assert reader.client.get_logged_model(checkpoints[-1].model_id).status == "READY"
    if CHROMEDRIVER or os.environ.get("CI"):  # else the browser tests are skipped
        request.getfixturevalue("blank_page")
        look_in_the_viewer(request.getfixturevalue("browser"), store_uri, run.run_id)


def look_in_the_viewer(browser, store_uri, run_id):
    url, server = serve(store_uri)
    try:
        browser.get(f"{url}?run={run_id}&tab=attention&step=20")
        wait(browser, lambda d: text(d, "shown-step") == "step 20" and graph_data(d, "attention-grid"))
        assert "layer 1, head 1 at step 20" in browser.execute_script(DETAIL_TITLE)
        click(browser, "tab-playground")
        wait(browser, lambda d: "The model as it was at step 20" in text(d, "pg-model-step")
             and d.execute_script(BARS) not in (None, "null"))
        before = browser.execute_script(WRITTEN)
        click(browser, "pg-step")
        wait(browser, lambda d: len(d.execute_script(WRITTEN)) == len(before) + 1)
        assert not text(browser, "pg-error")
    finally:
        server.close()
