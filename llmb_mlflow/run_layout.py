"""The run contract: every name an LLMBreaker run uses in MLflow.

Metric keys, artifact paths, tags and their values, statuses, the default experiment and the
viewer's address. The writer (``mlflow_tracker``), the readers (``reader``, ``registry``, the
viewer), the controllers and docs/architecture.md agree through this module alone; a test
keeps the document's tables true against it. Names only: importing it costs nothing.
"""

from __future__ import annotations

import re

DEFAULT_EXPERIMENT = "llmbreaker"
# MLflow's UI opens an experiment in its "Model training" mode when it carries this kind.
EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"
VIEWER_PATH = "/llmb/"  # where ``mlflow server --app-name llmbreaker`` serves the viewer
# MLflow 3.17's UI takes its mode (GenAI or model training) from this address parameter or the
# user's last choice, not from the experiment's kind: our links into it carry it.
MLFLOW_UI_MODE = "workflowType=machine_learning"


def mlflow_ui_path(experiment_id: str, run_id: str | None = None, tab: str = "runs") -> str:
    """An experiment's tab (``runs``, ``models``) or a run's page in MLflow's UI, in its
    model-training mode, relative to the UI's root."""
    page = f"runs/{run_id}" if run_id else tab
    return f"#/experiments/{experiment_id}/{page}?{MLFLOW_UI_MODE}"


# A training command prints this, then the run id: the viewer's launcher waits for that line.
RUN_ANNOUNCEMENT = "Logging to MLflow run"

# -- metrics ---------------------------------------------------------------------------------
TRAIN_LOSS = "train_loss"  # every step 1..N
LR = "lr"
GRAD_NORM = "grad_norm"
TOKENS_PER_SEC = "tokens_per_sec"
VAL_LOSS = "val_loss"  # evaluation steps
EVAL_TRAIN_LOSS = "eval_train_loss"
SNAPSHOT_BYTES = "snapshot_bytes"  # logged only once a snapshot is completely stored
CHECKPOINT_BYTES = "checkpoint_bytes"  # logged only once a checkpoint is completely stored
STYLE_MATCH = "style_match"  # evaluation steps with a snapshot: its sample against the training text
STYLE_PARTS = ("word_length", "sentence_length", "punctuation", "capitals", "word_overlap", "bigram_similarity")
STEP_METRICS = (TRAIN_LOSS, LR, GRAD_NORM, TOKENS_PER_SEC)
EVAL_METRICS = (VAL_LOSS, EVAL_TRAIN_LOSS)
STYLE_METRICS = (STYLE_MATCH, *(f"style_{part}" for part in STYLE_PARTS))  # see llmb_mlflow/training/style.py
# Evaluation steps with a snapshot: each head's mean attention entropy on the probe (nats; see
# llmb_mlflow/training/attention_stats.py), one metric per head, numbered from 1 as the viewer shows them.
ATTN_ENTROPY_PREFIX = "attn_entropy/"
ATTN_ENTROPY = f"{ATTN_ENTROPY_PREFIX}lLhH"  # the family's name in METRICS and the docs


def attn_entropy_metric(layer: int, head: int) -> str:
    """The entropy metric of a head, from its 0-based layer and head: ``attn_entropy/l1h1`` first."""
    return f"{ATTN_ENTROPY_PREFIX}l{layer + 1}h{head + 1}"


def attn_entropy_head(key: str) -> tuple[int, int] | None:
    """The 0-based (layer, head) an entropy metric's key names (at most 64 of each), else None."""
    found = re.fullmatch(rf"{ATTN_ENTROPY_PREFIX}l([1-9][0-9]?)h([1-9][0-9]?)", key)
    if not found or not all(int(n) <= 64 for n in found.groups()):
        return None
    return int(found.group(1)) - 1, int(found.group(2)) - 1


def metric_family(key: str) -> str:
    """The name under which METRICS lists a metric key (``ATTN_ENTROPY`` for every head's)."""
    return ATTN_ENTROPY if key.startswith(ATTN_ENTROPY_PREFIX) else key


PAUSED = "paused"  # 1 at the step a training paused at, 0 at the step it resumed at
METRICS = (*STEP_METRICS, *EVAL_METRICS, *STYLE_METRICS, ATTN_ENTROPY, SNAPSHOT_BYTES, CHECKPOINT_BYTES, PAUSED)

# -- artifacts -------------------------------------------------------------------------------
SNAPSHOT_DIR = "snapshots"
WEIGHTS_DIR = "weights"  # the model's weights at each snapshot's step, for the playground
SAMPLE_DIR = "samples"
IMAGE_DIR = "images"  # MLflow's own folder for log_image
CHECKPOINT_FILE = "checkpoint.pt"  # inside the checkpoint's model folder, under artifacts/
ATTENTION_IMAGE_KEY = "attention"
VOCABULARY_FILE = "vocabulary.json"  # a run's tokens, when they are not one character each (formats/vocabulary.py)
EXPORT_DIR = "exports"  # files `llmb export --log-to-run` logs: the movie, CSV or page of the run


def snapshot_path(step: int) -> str:
    return f"{SNAPSHOT_DIR}/step_{step:08d}.npz"


def weights_path(step: int) -> str:
    return f"{WEIGHTS_DIR}/step_{step:08d}.npz"


def sample_path(step: int) -> str:
    return f"{SAMPLE_DIR}/step_{step:08d}.txt"


ARTIFACTS = (snapshot_path(0).replace("00000000", "XXXXXXXX"),
             weights_path(0).replace("00000000", "XXXXXXXX"),
             sample_path(0).replace("00000000", "XXXXXXXX"),
             f"{IMAGE_DIR}/{ATTENTION_IMAGE_KEY}+step+…",
             VOCABULARY_FILE,
             f"{EXPORT_DIR}/…")

# -- checkpoints: each one an MLflow logged model of the run's experiment ----------------------
CHECKPOINT_KIND = "checkpoint"  # KIND_TAG of our logged models
MODEL_TYPE = "MicroGPT"
CHECKPOINT_MODEL_FILE = f"artifacts/{CHECKPOINT_FILE}"  # inside the logged model's pyfunc folder
STEP_TAG = "llmb.step"  # a logged model's checkpoint step (DATASET_TAG, PRESET_TAG as for runs)
VAL_LOSS_STEP_TAG = "llmb.val_loss_step"  # the step of the val_loss linked to it
CHECKPOINT_LINKS = (TRAIN_LOSS, VAL_LOSS)  # the metrics linked to each checkpoint's logged model


def checkpoint_name(step: int) -> str:
    """A checkpoint's logged model name: shows the step, sorts in step order."""
    return f"step-{step:08d}"


# -- the corpus as the run's dataset input ------------------------------------------------------
DATASET_CONTEXT_TAG, DATASET_CONTEXT = "mlflow.data.context", "training"  # MLflow's input tag

# -- run tags --------------------------------------------------------------------------------
KIND_TAG = "llmb.kind"
TRAINING_RUN = "training"  # KIND_TAG of our runs
VERSION_TAG = "llmb.version"  # the LLMBreaker version that trained
DATASET_TAG = "llmb.dataset"
PRESET_TAG = "llmb.preset"
FAILURE_TAG = "llmb.failure"  # why a FAILED run failed, in one line, when the training said
TOKENS_TAG = "llmb.tokens"  # what one id stands for: CHARACTERS, or TOKENS of any length (vocabulary.json)
CHARACTERS, TOKENS = "characters", "tokens"
HOST_TAG = "llmb.host"  # where the trainer runs ...
PID_TAG = "llmb.pid"  # ... its process ...
PID_STARTED_TAG = "llmb.pid_started"  # ... and when that process started (ms since the epoch)
HEARTBEAT_TAG = "llmb.heartbeat"  # ms since the epoch, every HEARTBEAT_SECONDS
TRAINER_STATE_TAG = "llmb.state"  # what the trainer does: TRAINER_STATES
CONTROL_STATE_TAG = "llmb.control.state"  # what controllers want: CONTROL_STATES
CONTROL_STEPS_TAG = "llmb.control.steps"  # single steps asked for while paused (a counter)
CONTROL_CHECKPOINTS_TAG = "llmb.control.checkpoints"  # "checkpoint now" requests (a counter)
PARENT_RUN_TAG = "llmb.parent_run"  # a resumed run's source run ...
MODEL_VERSION_TAG = "llmb.model_version"  # ... and the version it resumed
WORLD_SIZE_TAG = "llmb.world_size"  # processes of a data-parallel training
PURPOSE_TAG = "llmb.purpose"  # STYLE_TRANSFER for a training started to imitate a text
STYLE_TRANSFER = "style-transfer"
NOTE_TAG = "mlflow.note.content"  # MLflow's run description: links to the viewer
PARENT_RUN_ID_TAG = "mlflow.parentRunId"  # MLflow's nesting of a resumed run under its source
SOURCE_NAME_TAG = "mlflow.source.name"  # the command that trained, as MLflow's UI shows it
RUN_TAGS = (KIND_TAG, VERSION_TAG, DATASET_TAG, PRESET_TAG, TOKENS_TAG, FAILURE_TAG, HOST_TAG, PID_TAG, PID_STARTED_TAG, HEARTBEAT_TAG,
            TRAINER_STATE_TAG, CONTROL_STATE_TAG, CONTROL_STEPS_TAG, CONTROL_CHECKPOINTS_TAG,
            PARENT_RUN_TAG, MODEL_VERSION_TAG, WORLD_SIZE_TAG, PURPOSE_TAG, NOTE_TAG, PARENT_RUN_ID_TAG,
            SOURCE_NAME_TAG)

TRAINER_RUNNING, TRAINER_PAUSED, TRAINER_STOPPING = "running", "paused", "stopping"
TRAINER_STATES = (TRAINER_RUNNING, TRAINER_PAUSED, TRAINER_STOPPING)
# How an ended run ended, by its MLflow status: no ended run says it is running.
TRAINER_ENDED = {"FINISHED": "finished", "KILLED": "stopped", "FAILED": "failed"}
CONTROL_RUN, CONTROL_PAUSE, CONTROL_STOP = "run", "pause", "stop"
CONTROL_STATES = (CONTROL_RUN, CONTROL_PAUSE, CONTROL_STOP)
HEARTBEAT_SECONDS = 5.0

# -- params readers rely on (the settings' own names: ``RunConfig.as_params``) ----------------
PARAM_DATASET, PARAM_PRESET, PARAM_MAX_ITERS = "dataset", "preset", "max_iters"
PARAM_N_LAYER, PARAM_N_HEAD, PARAM_WARMUP = "n_layer", "n_head", "warmup"
PARAM_MODEL = "model"  # the model's class, for a run recorded with llmb.record
SOURCE_STYLE_PARAMS = tuple(f"source_{name}" for name in ("word_length", "sentence_length", "punctuation", "capitals"))

# -- the model registry ----------------------------------------------------------------------
MODEL_KIND = "model"  # KIND_TAG of our registered models
STEP_VERSION_TAG = "step"  # a version's tags: its checkpoint's step, ...
DATASET_VERSION_TAG, PRESET_VERSION_TAG = "dataset", "preset"  # ... its run's corpus and preset, ...
SOURCE_RUN_VERSION_TAG = "source_run"  # ... the run it comes from, its losses at that step, ...
SAVE_TOKEN_TAG = "save_token"  # ... and what made a save that was asked again harmless (the viewer's)
VERSION_TAGS = (STEP_VERSION_TAG, TRAIN_LOSS, VAL_LOSS, DATASET_VERSION_TAG, PRESET_VERSION_TAG,
                SOURCE_RUN_VERSION_TAG, SAVE_TOKEN_TAG)

# -- run statuses (MLflow's) -----------------------------------------------------------------
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
ENDED = (FINISHED, FAILED, KILLED)
