"""Every use of something MLflow does not document as public, behind one door.

Each function names what it relies on; ``tests/test_mlflow_compat.py`` checks every reliance
against the installed MLflow (on sqlite and over REST), so an MLflow upgrade that breaks one
fails there, in one tested place. Nothing else in the project touches MLflow's internals.
"""

from __future__ import annotations

import os
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
    if hasattr(store, "get_host_creds"):  # REST: the server samples, as it does for its UI
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        params = {"run_ids": run_id, "metric_key": key, "max_results": max_results}
        if start_step is not None:
            params.update(start_step=start_step, end_step=end_step)
        response = http_request(store.get_host_creds(), BULK_INTERVAL_ENDPOINT, "GET", params=params)
        verify_rest_response(response, BULK_INTERVAL_ENDPOINT)
        return [(m["step"], m["value"]) for m in response.json().get("metrics", [])]
    found = store.get_metric_history_bulk_interval([run_id], key, max_results, start_step, end_step)
    return [(m.step, m.value) for m in found]


def context_tags(tags: dict[str, str]) -> dict[str, str]:
    """``tags`` plus the context tags MLflow's fluent API adds to a run (``mlflow.user``,
    ``mlflow.source.name``, ...). Relies on ``mlflow.tracking.context.registry.resolve_tags``."""
    from mlflow.tracking.context.registry import resolve_tags

    return resolve_tags(tags)


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
