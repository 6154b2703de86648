"""Each reliance on something MLflow does not document as public (``mlflow_compat``), checked
against the installed MLflow: on a sqlite store, over REST against a real ``mlflow server``,
and inside ``mlflow server --app-name llmbreaker``. An MLflow upgrade that breaks one fails here."""

import ast
import json
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from llmb_mlflow.store import compat as mlflow_compat

from conftest import start_mlflow_server, stop_process, train_tiny

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = {"mlflow", "mlflow.entities", "mlflow.exceptions", "mlflow.models", "mlflow.pyfunc"}


@pytest.fixture(params=["sqlite", "rest"])
def any_store(request, store_uri):
    return store_uri if request.param == "sqlite" else request.getfixturevalue("mlflow_server")


def logged_run(uri, steps=100):
    client = MlflowClient(uri)
    experiment = client.create_experiment(f"compat-{time.monotonic_ns()}")
    run_id = client.create_run(experiment).info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric("loss", 10.0 - s / 10, now, s) for s in range(steps)]
                     + [Metric("rare", 1.0, now, 7)])
    return client, run_id


def test_latest_metrics_carry_their_steps(any_store):
    client, run_id = logged_run(any_store)
    assert mlflow_compat.latest_metrics(client.get_run(run_id)) == {"loss": (99, 10.0 - 99 / 10), "rare": (7, 1.0)}


def test_the_bulk_interval_query_samples_and_windows(any_store):
    client, run_id = logged_run(any_store)
    sampled = mlflow_compat.metric_interval(client, run_id, "loss", 10)
    steps = [step for step, _ in sampled]
    assert len(steps) <= 11 and steps[0] == 0 and steps[-1] == 99
    window = mlflow_compat.metric_interval(client, run_id, "loss", 2500, 20, 29)
    assert window == [(s, 10.0 - s / 10) for s in range(20, 30)]


def test_context_tags_are_added_to_ours():
    tags = mlflow_compat.context_tags({"llmb.kind": "training"})
    assert tags["llmb.kind"] == "training" and "mlflow.user" in tags and "mlflow.source.name" in tags


def test_artifacts_are_read_in_place_locally_and_downloaded_otherwise(any_store, tmp_path):
    client, run_id = logged_run(any_store)
    (tmp_path / "note.txt").write_text("hello")
    client.log_artifact(run_id, str(tmp_path / "note.txt"), "notes")
    repository = mlflow_compat.artifact_repository(client.get_run(run_id).info.artifact_uri, any_store)
    folder = mlflow_compat.local_folder(repository)
    if any_store.startswith("sqlite"):
        assert (Path(folder) / "notes" / "note.txt").read_text() == "hello"
    else:
        assert folder is None
        (tmp_path / "down").mkdir()
        assert Path(repository.download_artifacts("notes/note.txt", str(tmp_path / "down"))).read_text() == "hello"


def test_mlflow_server_tells_the_viewer_its_store_artifacts_and_prefix(template_db, tmp_path_factory, shakespeare):
    """Backend store, served-artifacts destination, static prefix and the uvicorn wrapping,
    as ``mlflow server`` passes them to its app: the viewer under the prefix shows a sample
    it can only have read from the served artifacts."""
    from dash_requests import CallbackPoster
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker

    uri, proc = start_mlflow_server(template_db, tmp_path_factory.mktemp("compat-server"),
                                    "--app-name", "llmbreaker", "--static-prefix", "/pre")
    try:
        tracker = MlflowTracker(uri)
        train_tiny(shakespeare, tracker)
        assert uri.endswith("/pre")
        viewer = CallbackPoster(uri + "/llmb/")
        answer = viewer.post("view.data", {
            "view.data": {"live": False, "playing": False, "step": 10}, "temperature.value": 1,
            "tabs.value": "watch", "run-state.data": {"run_id": tracker.run_id, "status": "FINISHED"},
            "steps.data": [0, 10, 20, 25]}, output="samples")
        assert answer.status == 200 and answer.outputs["shown-step.children"] == "step 10", answer.text[:300]
        assert "step 10" in str(answer.outputs["samples.children"])
    finally:
        stop_process(proc)


def a_logged_model(client):
    from mlflow.entities import LoggedModelStatus

    experiment = client.create_experiment(f"compat-{time.monotonic_ns()}")
    run_id = client.create_run(experiment).info.run_id
    model = client.create_logged_model(experiment, name="step-00000001", source_run_id=run_id)
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return run_id, model.model_id


def test_a_logged_model_is_registered_from_its_own_store_whatever_the_global_uri(
        any_store, template_db, tmp_path, use_store):
    import mlflow

    from conftest import new_store

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    use_store(new_store(template_db, elsewhere))  # the process's global URI: another store
    global_uri = mlflow.get_tracking_uri()
    client = MlflowClient(any_store, registry_uri=any_store)
    run_id, model_id = a_logged_model(client)
    name = f"compat-{time.monotonic_ns()}"
    client.create_registered_model(name)
    if not mlflow_compat.over_rest(client):  # the reliance: a SQL registry resolves through the global URI
        with pytest.raises(mlflow.exceptions.MlflowException, match="Unable to fetch model"):
            client.create_model_version(name, f"models:/{model_id}", run_id=run_id)
    version = mlflow_compat.register_logged_model(client, name, model_id, run_id=run_id, await_creation_for=0)
    assert client.get_model_version(name, version.version).source == f"models:/{model_id}"
    assert mlflow.get_tracking_uri() == global_uri  # left as it was
    links = json.loads(client.get_logged_model(model_id).tags["mlflow.modelVersions"])
    assert [(link["name"], str(link["version"])) for link in links] == [(name, str(version.version))]  # once


def test_system_metrics_are_logged_for_a_run_made_through_the_client(any_store):
    client = MlflowClient(any_store)
    run_id = client.create_run(client.create_experiment(f"compat-{time.monotonic_ns()}")).info.run_id
    monitor = mlflow_compat.start_system_metrics(run_id, any_store, interval=0.1)
    deadline = time.monotonic() + 60
    while "system/process_memory_rss_megabytes" not in client.get_run(run_id).data.metrics:
        assert time.monotonic() < deadline, "no system metrics within a minute"
        time.sleep(0.1)  # polling the store for the monitor's first batch
    monitor.finish()
    logged = client.get_run(run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/process_cpu_utilization_percentage"} <= set(logged)
    assert logged["system/process_memory_rss_megabytes"] > 50


def test_no_module_but_store_compat_touches_mlflows_internals():
    """Only documented modules of MLflow are imported elsewhere, and no private attribute used."""
    for path in [*ROOT.glob("llmb_mlflow/**/*.py"), *ROOT.glob("dash_app/**/*.py")]:
        if path == ROOT / "llmb_mlflow" / "store" / "compat.py":
            continue
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("mlflow"):
                assert node.module in PUBLIC, f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("mlflow") or alias.name in PUBLIC, f"{path.name}: {alias.name}"
        for private in ("_metric_objs", "_tracking_client", "_MLFLOW_", "ajax-api", "requirements_utils"):
            assert private not in source, f"{path.name} uses MLflow's {private}"


def test_the_store_code_is_loaded_ahead_for_either_kind_of_store():
    import sys

    mlflow_compat.load_store_code("http://127.0.0.1:5000")
    mlflow_compat.load_store_code("sqlite:///mlflow.db")
    assert {"mlflow.store.tracking.rest_store", "mlflow.store.tracking.sqlalchemy_store"} <= set(sys.modules)


def test_a_sqlite_store_is_made_at_the_schema_revision_and_let_go(template_db, tmp_path, monkeypatch):
    import sqlite3

    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    monkeypatch.chdir(tmp_path)
    with sqlite3.connect(template_db) as db:
        assert mlflow_compat.schema_revision() == db.execute("select version_num from alembic_version").fetchone()[0]
    uri = f"sqlite:///{tmp_path / 'made.db'}"
    mlflow_compat.create_sqlite_store(uri)
    assert uri not in TrackingStore._engine_map and uri not in RegistryStore._engine_map
    with sqlite3.connect(tmp_path / "made.db") as db:
        assert db.execute("select version_num from alembic_version").fetchone()[0] == mlflow_compat.schema_revision()
        assert db.execute("select name from experiments where experiment_id = 0").fetchone() == ("Default",)


def test_model_saving_is_told_our_requirements_modules_then_maps_everything_again(tmp_path, monkeypatch):
    from mlflow.utils import requirements_utils as mapped

    from llmb_mlflow import serving

    scans = []
    real_scan = mapped.importlib_metadata.packages_distributions
    monkeypatch.setattr(mapped.importlib_metadata, "packages_distributions",
                        lambda: scans.append(1) or real_scan())
    monkeypatch.setattr(mapped, "_MODULES_TO_PACKAGES", None)  # a process that saved no model yet
    monkeypatch.setattr(mapped, "_PACKAGES_TO_MODULES", None)
    (tmp_path / "model.pt").write_bytes(b"")
    with mlflow_compat.requirement_modules(serving.REQUIREMENT_MODULES):
        assert mapped._MODULES_TO_PACKAGES == {"llmb_mlflow": ["llmb-mlflow"], "torch": ["torch"], "numpy": ["numpy"]}
        assert mapped._check_requirement_satisfied("torch>=2.2,<3") is None
        mismatch = mapped._check_requirement_satisfied("numpy<1")
        assert mismatch is not None and mismatch.package_name == "numpy"  # still checked
    serving.save(str(tmp_path / "model"), str(tmp_path / "model.pt"))
    assert scans == []  # the save looked up no installed package's files
    assert mapped._MODULES_TO_PACKAGES is None and mapped._PACKAGES_TO_MODULES is None
    requirements = (tmp_path / "model" / "requirements.txt").read_text().split()
    assert requirements[0].startswith("mlflow==")
    assert {"torch<3,>=2.2", "numpy"} <= set(requirements) and any(r.startswith("llmb-mlflow==") for r in requirements)

    made_by_mlflow = {"somewhere": ["some-package"]}  # a map MLflow made stays as it is
    monkeypatch.setattr(mapped, "_MODULES_TO_PACKAGES", made_by_mlflow)
    with mlflow_compat.requirement_modules(serving.REQUIREMENT_MODULES):
        assert mapped._MODULES_TO_PACKAGES is made_by_mlflow
    assert mapped._MODULES_TO_PACKAGES is made_by_mlflow
