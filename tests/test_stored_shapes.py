"""A stored model's settings are checked before a model is built from them: a step's weights or a
checkpoint saying 64 layers 1024 wide (3 GB to build) around a tiny model's arrays, settings of
the wrong type, and a corrupt checkpoint are refused in one line naming what was read and the
size, by the playground, ``llmb generate``, ``llmb resume`` and ``mlflow.pyfunc.load_model``,
without the memory such a model takes; nothing stored changes."""

import os
import resource
import subprocess
import sys

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from llmb_mlflow.errors import LLMBError

from conftest import bard_library
from dash_requests import pattern_trigger
from test_viewer_requests import footprint, refused

HUGE = {"n_layer": 64, "n_embd": 1024}  # with the tiny run's context and vocabulary
HUGE_SIZE = "a model of 805,521,408 parameters"
SMALL_PEAK_MB = 1024  # the crafted model alone would take 3,073 MB


@pytest.fixture
def bard(store_uri, shakespeare):
    """'bard' (versions 1 at step 6 and 2 at step 12) of a finished tiny run; its library."""
    return bard_library(store_uri, shakespeare)


def checkpoint_file(library, ref="bard/1"):
    folder = MlflowClient(library.uri).get_logged_model(library.resolve(ref).model_id).artifact_location
    return os.path.join(folder.removeprefix("file://"), "artifacts", "checkpoint.pt")


def rewrite_checkpoint(path, **model_config):
    """The checkpoint at ``path`` with its stored model settings changed and its arrays kept."""
    state = torch.load(path, weights_only=True)
    state["model_config"] = {**state["model_config"], **model_config}
    torch.save(state, path)


def peak_of(args, env=None):
    """(exit code, stderr, peak resident MB) of a command run in a process of its own."""
    measure = ("import resource, subprocess, sys; "
               "code = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE, text=True); "
               "sys.stderr.write(code.stderr); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024); "
               "sys.exit(code.returncode)")
    done = subprocess.run([sys.executable, "-c", measure, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    return done.returncode, done.stderr, int(done.stdout.strip().splitlines()[-1])


def llmb_args(*args):
    return [sys.executable, "-m", "llmb_mlflow", *args]


def one_line(err):
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_generate_and_resume_refuse_a_huge_stored_model_before_building_it(bard, store_uri, tmp_path):
    rewrite_checkpoint(checkpoint_file(bard), **HUGE)
    before = footprint(store_uri, tmp_path)
    for command in (["generate", "bard/1", "--prompt", "ROMEO:"], ["resume", "bard/1", "--max-iters", "20"]):
        code, err, peak = peak_of(llmb_args(*command))
        assert code == 1 and one_line(err).startswith("Error: checkpoint of model bard/1: " + HUGE_SIZE), err
        assert "(64 layers 1024 wide, 3.0 GB to load), more than the 100,000,000 that may be loaded here " \
               "(--max-params allows more)" in err
        assert peak < SMALL_PEAK_MB, (command, peak)
    assert footprint(store_uri, tmp_path) == before


def test_max_params_lowers_the_bound_for_a_real_model(llmb, bard):
    result = llmb("generate", "bard/2", "--prompt", "ROMEO:", "--max-params", "1000")
    assert result.code == 1 and "checkpoint of model bard/2: a model of 7,520 parameters" in one_line(result.err)
    assert "more than the 1,000 that may be loaded here (--max-params allows more)" in result.err
    assert llmb("generate", "bard/2", "--prompt", "ROMEO:", "--max-params", "10000").code == 0


@pytest.mark.parametrize("config, message", [
    ({"n_layer": "2"}, "checkpoint of model bard/1 is malformed: its stored n_layer is '2', not a number"),
    ({"dropout": "none"}, "checkpoint of model bard/1 is malformed: its stored dropout is 'none', not a number"),
    ({"n_embd": 15}, "checkpoint of model bard/1 is malformed: its stored n_embd (15) must be divisible by n_head (2)"),
    ({"n_embd": 32}, "checkpoint of model bard/1 does not fit its own model settings: it holds tok_emb.weight "
                     "of shape [65, 16], where its settings make [65, 32]"),
])
def test_stored_settings_of_the_wrong_type_or_shape_name_the_checkpoint_not_a_flag(
        llmb, bard, use_store, config, message):
    import mlflow

    rewrite_checkpoint(checkpoint_file(bard), **config)
    for args in (["generate", "bard/1", "--prompt", "ROMEO:"], ["resume", "bard/1", "--max-iters", "20"]):
        result = llmb(*args)
        assert result.code == 1 and message in one_line(result.err), result.err
        assert "--n-layer" not in result.err and "internal error" not in result.err
    use_store(bard.uri)
    with pytest.raises(LLMBError) as refusal:
        mlflow.pyfunc.load_model("models:/bard/1")
    assert message.replace("checkpoint of model bard/1", "") in str(refusal.value)
    assert str(refusal.value).startswith("the checkpoint of logged model m-")


def test_crafted_recorded_fields_are_one_line_for_generate_and_resume(llmb, bard):
    path = checkpoint_file(bard)
    state = torch.load(path, weights_only=True)
    torch.save({**state, "vocab": list(state["vocab"])}, path)  # a list of tokens, in a checkpoint of ours
    for args in (["generate", "bard/1", "--prompt", "ROMEO:"], ["resume", "bard/1", "--max-iters", "20"]):
        result = llmb(*args)
        assert result.code == 1 and "its vocabulary is not 65 characters or tokens" in one_line(result.err)
    torch.save({**state, "recorded": torch.ones(3)}, path)  # neither True nor False
    assert llmb("generate", "bard/1", "--prompt", "ROMEO:", "--max-new-tokens", "5").code == 0
    result = llmb("resume", "bard/1", "--max-iters", "20")
    assert result.code == 1 and "recorded with llmb.record" in one_line(result.err)


def deflated(raw: bytes) -> bytes:
    """The same checkpoint with its parts compressed: a small file whose tensors inflate to any size."""
    import io
    import zipfile

    given, out = zipfile.ZipFile(io.BytesIO(raw)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for entry in given.infolist():
            z.writestr(entry.filename, given.read(entry))
    return out.getvalue()


@pytest.mark.parametrize("damage, why", [
    (lambda raw: b"not a checkpoint", "it is not the archive PyTorch writes"),
    (lambda raw: deflated(raw), "its parts are compressed, which PyTorch never does"),
    (lambda raw: raw[: len(raw) // 2], "it is cut short or damaged"),
    (lambda raw: raw[:100], "it is cut short or damaged"),
    (lambda raw: b"", "it ends too early"),
])
def test_a_corrupt_checkpoint_says_so_in_our_words(llmb, bard, damage, why):
    path = checkpoint_file(bard)
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(damage(raw))
    result = llmb("generate", "bard/1", "--prompt", "ROMEO:")
    assert result.code == 1
    assert one_line(result.err) == f"Error: checkpoint of model bard/1 is corrupt or not an LLMBreaker checkpoint ({why})\n"
    assert "weights_only" not in result.err


def test_pyfunc_refuses_a_huge_stored_model_before_building_it(bard):
    rewrite_checkpoint(checkpoint_file(bard), **HUGE)
    load = f"import mlflow; mlflow.set_registry_uri({bard.uri!r}); mlflow.pyfunc.load_model('models:/bard/1')"
    code, err, peak = peak_of([sys.executable, "-c", load])
    assert code == 1 and peak < SMALL_PEAK_MB, (peak, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("llmb_mlflow.errors.LLMBError: the checkpoint of logged model m-") and HUGE_SIZE in last
    assert last.endswith("more than the 100,000,000 that may be loaded here (LLMB_MAX_PARAMS=N allows more)")
    code, err, _ = peak_of([sys.executable, "-c", load], env={"LLMB_MAX_PARAMS": "lots"})
    assert "LLMB_MAX_PARAMS must be a whole number of parameters, at least 1; got 'lots'" in err


def test_the_playground_refuses_huge_or_malformed_step_weights_before_building_a_model(store_uri, shakespeare):
    import numpy as np

    from dash_app.data import ViewerData
    from dash_app.panels.playground import Models
    from llmb_mlflow.training import weights
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
    from llmb_mlflow.run_layout import weights_path

    from conftest import train_tiny

    tracker = MlflowTracker(store_uri)
    train_tiny(shakespeare, tracker, max_iters=10)
    run_id = tracker.run_id
    folder = MlflowClient(store_uri).get_run(run_id).info.artifact_uri.removeprefix("file://")
    data = ViewerData(store_uri)
    config, state = data.weights(run_id, 10)
    label = f"the model's weights at step 10 in run {run_id}"

    def plant(step, **settings):
        with open(os.path.join(folder, weights_path(step)), "wb") as f:
            f.write(weights.encode(state, {**vars(config), **settings}))

    plant(10, **HUGE)
    plant(0, n_head="2")
    start = peak_rss_mb()
    for read in (lambda step: data.weights(run_id, step), lambda step: Models(data).at(run_id, step)):
        with pytest.raises(LLMBError) as huge:
            read(10)
        assert str(huge.value).startswith(f"{label}: {HUGE_SIZE}")
        assert str(huge.value).endswith("more than the 32,000,000 that may be loaded here")
        with pytest.raises(LLMBError, match="at step 0 in run .* is malformed: its stored n_head is '2', not a number"):
            read(0)
    assert peak_rss_mb() - start < 500  # the model would have taken 3 GB
    wrong = {name: np.zeros((1, 1), np.float16) if name == "ln_f.weight" else array for name, array in state.items()}
    with pytest.raises(LLMBError, match=r"w does not fit its own model settings: it holds ln_f.weight of shape \[1, 1\], "
                                        r"where its settings make \[16\]"):
        weights.decode(weights.encode(wrong, vars(config)), "w")


def test_load_for_more_steps_than_a_training_may_reach_names_the_field(viewer, store_uri, shakespeare):
    bard_library(store_uri, shakespeare)
    button = {"type": "model-action", "action": "load", "model": "bard", "version": "2"}
    toast = refused(viewer.post(pattern_trigger(button, "n_clicks"), {
        "model-action.n_clicks": [(button, 1)], "load-steps.value": 10**9, "experiment.value": "llmbreaker"}),
        "Could not load bard/2: the number of more steps to train (1,000,000,000) would take bard/2 from its step 12 "
        "past step 1,000,000,000, the last a training may reach; give at most 999,999,988")
    assert "max_iters" not in toast


def test_a_weights_file_whose_header_claims_more_than_it_stores_is_refused_before_numpy_allocates():
    import io
    import zipfile

    from llmb_mlflow.training import weights

    real = weights.encode({"w": np.zeros((4, 4), np.float32)}, {"n_layer": 1})
    given, out = zipfile.ZipFile(io.BytesIO(real)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for entry in given.infolist():
            raw = given.read(entry)
            if entry.filename == "weights.npy":  # 16 numbers stored, 4,000,000,000 claimed
                raw = raw.replace(b"(16,)", b"(4000000000,)")
            z.writestr(entry.filename, raw)
    with pytest.raises(LLMBError) as refusal:
        weights.decode(out.getvalue(), "weights of step 10 in run r")
    assert str(refusal.value) == ("weights of step 10 in run r is corrupt or unreadable (its array 'weights.npy' "
                                  "claims more than the file holds)")
