"""Every use of something MLflow does not document as public, behind one door.

Each function names what it relies on; ``tests/test_mlflow_compat.py`` checks every reliance
against the installed MLflow (on sqlite and over REST), so an MLflow upgrade that breaks one
fails there, in one tested place. Nothing else in the project touches MLflow's internals.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass

BULK_INTERVAL_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"


def latest_metrics(run) -> dict[str, tuple[int, float]]:
    """Each metric's latest ``(step, value)`` as ``get_run`` returns it. ``run.data.metrics``
    has the values only; relies on ``RunData._metric_objs`` holding the ``Metric`` objects."""
    return {m.key: (m.step, m.value) for m in run.data._metric_objs}


def metric_interval(client, run_id: str, key: str, max_results: int,
                    start_step: int | None = None, end_step: int | None = None) -> list[tuple[int, float]]:
    """MLflow's sampled "bulk interval" metric query (at most ``max_results`` points between the
    steps, first and last kept), the one its own UI uses: cost follows the points returned.
    Relies on the client's store (``MlflowClient._tracking_client.store``), on SQL stores'
    ``get_metric_history_bulk_interval``, and over REST on the UI's ajax endpoint with
    ``mlflow.utils.rest_utils``."""
    store = client._tracking_client.store
    if over_rest(client):  # the server samples, as it does for its UI
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        params = {"run_ids": run_id, "metric_key": key, "max_results": max_results}
        if start_step is not None:
            params.update(start_step=start_step, end_step=end_step)
        response = http_request(store.get_host_creds(), BULK_INTERVAL_ENDPOINT, "GET", params=params)
        verify_rest_response(response, BULK_INTERVAL_ENDPOINT)
        return [(m["step"], m["value"]) for m in response.json().get("metrics", [])]
    found = store.get_metric_history_bulk_interval([run_id], key, max_results, start_step, end_step)
    return [(m.step, m.value) for m in found]


def load_store_code(uri: str) -> None:
    """Import the code MLflow's client needs for the store at ``uri`` (seconds of imports, the
    sqlite store's alone 1.6 s), ahead of opening it. Relies on ``mlflow.store.tracking``'s
    ``rest_store`` and ``sqlalchemy_store`` modules."""
    import mlflow.entities  # noqa: F401

    if uri.startswith(("http://", "https://")):
        import mlflow.store.tracking.rest_store  # noqa: F401
    else:
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


def schema_revision() -> str:
    """The revision MLflow's migrations bring a SQL store to: a store at it needs none. Relies on
    ``_get_latest_schema_revision`` of ``mlflow.store.db.utils``."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def create_sqlite_store(uri: str) -> None:
    """Have MLflow's client make the sqlite store at ``uri`` as it would any new one (migrated
    tables, default experiment), then close this process's connections to it so the file can be
    moved. Relies on the ``_engine_map`` engine caches of the tracking and registry
    ``SqlAlchemyStore`` classes."""
    from mlflow import MlflowClient
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    try:
        made = MlflowClient(tracking_uri=uri, registry_uri=uri)
        made.search_experiments(max_results=1)
        made.search_registered_models(max_results=1)
    finally:
        for store_class in (TrackingStore, RegistryStore):
            engine = store_class._engine_map.pop(uri, None)
            if engine is not None:
                engine.dispose()


def context_tags(tags: dict[str, str]) -> dict[str, str]:
    """``tags`` plus the context tags MLflow's fluent API adds to a run (``mlflow.user``,
    ``mlflow.source.name``, ...); on a server that signs users in, ``mlflow.user`` is the user
    it signs this process in as (``MLFLOW_TRACKING_USERNAME``), not the machine's login. Relies
    on ``mlflow.tracking.context.registry.resolve_tags``."""
    from mlflow.tracking.context.registry import resolve_tags

    resolved = resolve_tags(tags)
    signed_in = os.environ.get("MLFLOW_TRACKING_USERNAME")
    return {**resolved, "mlflow.user": signed_in} if signed_in and "mlflow.user" not in tags else resolved


def artifact_repository(artifact_uri: str, tracking_uri: str):
    """The repository of a run's artifacts. Relies on ``get_artifact_repository`` of
    ``mlflow.store.artifact.artifact_repository_registry``."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(artifact_uri, tracking_uri=tracking_uri, registry_uri=tracking_uri)


def local_folder(repository) -> str | None:
    """The folder of a repository on this machine's file system, else None. Relies on
    ``LocalArtifactRepository.artifact_dir``."""
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    return repository.artifact_dir if isinstance(repository, LocalArtifactRepository) else None


_REQUIREMENT_MAP = threading.RLock()


@contextlib.contextmanager
def requirement_modules(modules_to_packages: dict[str, list[str]]):
    """Within it, MLflow's model saving knows which module provides each of our requirements
    instead of mapping every installed distribution's files to modules (1.8 s here) in the
    process's first save, only to find a fallback for versions ``importlib.metadata`` already
    gives. Afterwards MLflow maps everything as before, for whatever else this process saves.
    Saves of ours wait for each other here; an MLflow save inferring requirements in another
    thread at that moment would see only our map. Relies on ``_MODULES_TO_PACKAGES`` and
    ``_PACKAGES_TO_MODULES`` of ``mlflow.utils.requirements_utils`` (None until filled)."""
    from mlflow.utils import requirements_utils as mapped

    with _REQUIREMENT_MAP:
        if mapped._MODULES_TO_PACKAGES is not None:  # already mapped in this process
            yield
            return
        reverse = mapped._PACKAGES_TO_MODULES
        mapped._MODULES_TO_PACKAGES = {m: list(p) for m, p in modules_to_packages.items()}
        try:
            yield
        finally:
            mapped._MODULES_TO_PACKAGES, mapped._PACKAGES_TO_MODULES = None, reverse


@dataclass(frozen=True)
class ServerSettings:
    """What ``mlflow server`` tells the app it serves, through its workers' environment."""

    backend_store_uri: str | None
    artifacts_destination: str | None  # only while it serves (proxies) artifacts
    static_prefix: str
    asgi: bool  # served by uvicorn: the app must be wrapped in MLflow's FastAPI app


def server_settings() -> ServerSettings:
    """Relies on the environment variable names in ``mlflow.server.constants`` and
    ``mlflow.server.handlers``, and on ``mlflow.environment_variables._MLFLOW_SGI_NAME``."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server.constants import (
        ARTIFACTS_DESTINATION_ENV_VAR, BACKEND_STORE_URI_ENV_VAR, SERVE_ARTIFACTS_ENV_VAR,
    )
    from mlflow.server.handlers import STATIC_PREFIX_ENV_VAR

    serving = os.environ.get(SERVE_ARTIFACTS_ENV_VAR) == "true"
    return ServerSettings(
        backend_store_uri=os.environ.get(BACKEND_STORE_URI_ENV_VAR),
        artifacts_destination=os.environ.get(ARTIFACTS_DESTINATION_ENV_VAR) if serving else None,
        static_prefix=os.environ.get(STATIC_PREFIX_ENV_VAR, "").rstrip("/"),
        asgi=_MLFLOW_SGI_NAME.get() == "uvicorn")


def server_flask_app():
    """MLflow's tracking server as a Flask app (``mlflow.server.app``), as app plugins such as
    MLflow's own basic-auth app extend it."""
    from mlflow.server import app

    return app


def asgi_app(flask_app):
    """MLflow's FastAPI app around its Flask app, as ``mlflow server`` serves it under uvicorn.
    Relies on ``mlflow.server.fastapi_app.create_fastapi_app``."""
    from mlflow.server.fastapi_app import create_fastapi_app

    return create_fastapi_app(flask_app)


_GLOBAL_URI = threading.Lock()


def register_logged_model(client, name: str, model_id: str, **version):
    """A new version of registered model ``name`` whose source is the logged model
    ``models:/<model_id>``, linked both ways as ``mlflow.register_model`` links them. Relies on:
    a SQL registry store resolving that source through the *global* tracking URI (not the
    client's), so it is pointed at the client's store for the call; the logged model's
    ``mlflow.modelVersions`` tag (``mlflow.utils.mlflow_tags.MLFLOW_MODEL_VERSIONS``), which
    ``mlflow server`` sets itself and a client of a SQL store must set."""
    import json

    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    source = f"models:/{model_id}"
    if over_rest(client):
        created = client.create_model_version(name, source, model_id=model_id, **version)
    else:
        with _GLOBAL_URI:
            saved_uri, saved_env = tracking_utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
            mlflow.set_tracking_uri(client.tracking_uri)
            try:
                created = client.create_model_version(name, source, model_id=model_id, **version)
            finally:
                tracking_utils._tracking_uri = saved_uri
                if saved_env is None:
                    os.environ.pop("MLFLOW_TRACKING_URI", None)
                else:
                    os.environ["MLFLOW_TRACKING_URI"] = saved_env
    link = {"name": created.name, "version": str(created.version)}
    listed = json.loads(client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
    if link not in [{k: str(v) for k, v in entry.items()} for entry in listed]:
        client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*listed, link])})
    return created


def over_rest(client) -> bool:
    """Whether the client talks to ``mlflow server``. Relies on
    ``MlflowClient._tracking_client.store`` and REST stores' ``get_host_creds``."""
    return hasattr(client._tracking_client.store, "get_host_creds")


SYSTEM_METRICS_PREFIX = "system/"


def start_system_metrics(run_id: str, tracking_uri: str, interval: float, pid: int | None = None):
    """MLflow's own system-metrics logging (its *System metrics* tab) for a run created through
    the client, plus the CPU and memory of the training's process (``pid``, else this one);
    ``finish()`` stops it. Relies
    on ``mlflow.system_metrics.system_metrics_monitor.SystemMetricsMonitor`` (its ``monitors``
    list) and ``BaseMetricsMonitor``."""
    import logging

    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    # it stops at the first store error; the tracker reports those, not its warnings
    logging.getLogger("mlflow.system_metrics").setLevel(logging.ERROR)
    monitor = SystemMetricsMonitor(run_id, sampling_interval=interval, tracking_uri=tracking_uri)
    monitor.monitors.append(_process_monitor(pid))
    monitor.start()
    return monitor


def _process_monitor(pid: int | None):
    import psutil
    from mlflow.system_metrics.metrics.base_metrics_monitor import BaseMetricsMonitor

    class ProcessMonitor(BaseMetricsMonitor):
        """The training process's CPU (100% = one core) and resident memory."""

        def __init__(self):
            super().__init__()
            self.process = psutil.Process(pid)
            self.process.cpu_percent()  # the first reading only starts the clock

        def collect_metrics(self):
            self._metrics["process_cpu_utilization_percentage"].append(self.process.cpu_percent())
            self._metrics["process_memory_rss_megabytes"].append(self.process.memory_info().rss / 1e6)

        def aggregate_metrics(self):
            return {k: round(sum(v) / len(v), 1) for k, v in self._metrics.items()}

    return ProcessMonitor()


def auth_app(flask_app):
    """MLflow's basic-auth app built on ``flask_app`` (what ``mlflow server --app-name
    basic-auth`` serves): sign-in, users, permissions, the auth database. Relies on
    ``mlflow.server.auth.create_app``, the ``mlflow.app`` entry point of MLflow's own app."""
    from mlflow.server.auth import create_app

    return create_app(flask_app)


def signed_in_user():
    """The name of the user MLflow's auth app signs the current Flask request in as, or the
    401 response asking for a sign-in. Relies on ``mlflow.server.auth.authenticate_request``
    (the server's configured authorization function)."""
    from flask import Response
    from mlflow.server.auth import authenticate_request

    found = authenticate_request()
    return found if isinstance(found, Response) else found.username


@dataclass(frozen=True)
class Permission:
    """What a user may do with one experiment or registered model (MLflow's own levels)."""

    name: str  # READ, USE, EDIT, MANAGE, NO_PERMISSIONS, DENY
    can_read: bool
    can_update: bool
    can_delete: bool


def user_is_admin(username: str) -> bool:
    """Whether MLflow's basic-auth app knows ``username`` as an admin. Relies on
    ``mlflow.server.auth``'s ``store``."""
    from mlflow.server import auth

    return bool(auth.store.get_user(username).is_admin)


def user_permission(username: str, kind: str, key: str) -> Permission:
    """The permission ``username`` has on an experiment (``kind`` "experiment", ``key`` its id)
    or a registered model ("registered_model", its name), resolved as MLflow's basic-auth app
    resolves it for its REST API: admins may do anything, then grants and roles, then the
    configured default permission. Relies on ``mlflow.server.auth``'s ``store``,
    ``_get_experiment_permission``, ``_role_permission_for`` and
    ``_get_role_permission_or_default``, and on ``mlflow.server.handlers``'
    ``_get_model_registry_store``."""
    from mlflow.server import auth
    from mlflow.server.handlers import _get_model_registry_store

    if user_is_admin(username):
        return Permission("MANAGE", True, True, True)
    if kind == "experiment":
        found = auth._get_experiment_permission(key, username)
    else:
        found = auth._get_role_permission_or_default(auth._role_permission_for(
            username=username, resource_type="registered_model", resource_key=key, workspace_lookup_id=key,
            workspace_fetcher=_get_model_registry_store().get_registered_model, workspace_label="registered model"))
    return Permission(found.name, found.can_read, found.can_update, found.can_delete)


def auth_model_changed(change: str, name: str, new_name: str | None = None, username: str | None = None) -> None:
    """Keep MLflow's auth database in step with a registered-model change made without its REST
    API, as its after-request handlers do for one made through it: ``created`` gives ``username``
    MANAGE on the model, ``renamed`` moves its grants to ``new_name``, ``deleted`` drops them.
    Relies on ``mlflow.server.auth.store``'s ``grant_user_permission``,
    ``rename_grants_for_resource`` and ``delete_grants_for_resource``."""
    from mlflow.server.auth import store

    if change == "created":
        store.grant_user_permission(username, "registered_model", name, "MANAGE")
    elif change == "renamed":
        store.rename_grants_for_resource("registered_model", name, new_name, workspace_scoped=True)
    elif change == "deleted":
        store.delete_grants_for_resource("registered_model", name, workspace_scoped=True)
    else:
        raise ValueError(f"unknown registered-model change {change!r}")


def server_security(flask_app) -> None:
    """MLflow's server security (Host names, CORS, X-Frame-Options and the like, as its
    ``MLFLOW_SERVER_*`` settings say) on a Flask app of our own inside ``mlflow server``. Relies
    on ``mlflow.server.security.init_security_middleware``."""
    from mlflow.server.security import init_security_middleware

    init_security_middleware(flask_app)
