"""The run contract: docs/architecture.md's tables of metrics, tags and artifacts name exactly
what ``run_layout`` defines, and a real run uses those names."""

import re
from pathlib import Path

from mlflow import MlflowClient

from llmb_mlflow import run_layout

DOC = (Path(__file__).resolve().parent.parent / "docs" / "architecture.md").read_text()


def table_after(heading: str) -> list[str]:
    """The first column (in backticks) of the table that follows ``heading``."""
    rest = DOC[DOC.index(heading):]
    rows = re.search(r"\n(\|.*\|\n)+", rest).group(0).strip().splitlines()[2:]
    return [re.match(r"\| `([^`]+)`", row).group(1).split(" ")[0] for row in rows]


def test_the_documents_tables_name_what_the_contract_defines():
    assert table_after("**Metrics**") == list(run_layout.METRICS)
    assert table_after("**Tags**") == list(run_layout.RUN_TAGS)
    assert table_after("**Artifacts**") == list(run_layout.ARTIFACTS)
    version_tags = re.search(r"has the version tags (.*?)\. Saving", DOC, re.S).group(1)
    assert re.findall(r"`([^`]+)`", version_tags) == list(run_layout.VERSION_TAGS)
    model_tags = re.search(r"\| tags \| (.*?) \|\n", DOC).group(1)
    for tag in (run_layout.KIND_TAG, run_layout.STEP_TAG, run_layout.DATASET_TAG, run_layout.PRESET_TAG,
                run_layout.VAL_LOSS_STEP_TAG):
        assert f"`{tag}" in model_tags, tag
    assert f"`{run_layout.checkpoint_name(0).replace('00000000', 'XXXXXXXX')}`" in DOC


def test_artifact_names_sort_in_step_order():
    steps = [5, 20, 100, 2000, 12_345_678]
    for path in (run_layout.snapshot_path, run_layout.sample_path, run_layout.checkpoint_name):
        assert sorted(path(s) for s in reversed(steps)) == [path(s) for s in steps]


def test_a_finished_run_carries_exactly_the_contracts_names(finished_run):
    run = MlflowClient(finished_run.uri).get_run(finished_run.run_id)
    # every name but the paused marks, which only a run that was paused has
    assert {run_layout.metric_family(key) for key in run.data.metrics} == set(run_layout.METRICS) - {run_layout.PAUSED}
    ours = {key for key in run.data.tags if key.startswith("llmb.")}
    every_run = {run_layout.KIND_TAG, run_layout.VERSION_TAG, run_layout.DATASET_TAG, run_layout.PRESET_TAG,
                 run_layout.HOST_TAG, run_layout.PID_TAG, run_layout.PID_STARTED_TAG, run_layout.TRAINER_STATE_TAG}
    assert every_run <= ours <= set(run_layout.RUN_TAGS)  # control tags appear once asked, resume tags on resumes
    assert run.data.tags[run_layout.KIND_TAG] == run_layout.TRAINING_RUN
    params = (run_layout.PARAM_DATASET, run_layout.PARAM_PRESET, run_layout.PARAM_MAX_ITERS,
              run_layout.PARAM_N_LAYER, run_layout.PARAM_N_HEAD)
    assert set(params) <= set(run.data.params)
    artifacts = {a.path for a in MlflowClient(finished_run.uri).list_artifacts(finished_run.run_id)}
    assert artifacts == {run_layout.SNAPSHOT_DIR, run_layout.WEIGHTS_DIR, run_layout.SAMPLE_DIR, run_layout.IMAGE_DIR}
    assert run.data.tags[run_layout.TRAINER_STATE_TAG] == run_layout.TRAINER_ENDED["FINISHED"]
    assert run_layout.HEARTBEAT_TAG not in run.data.tags  # an ended run has no heartbeat
