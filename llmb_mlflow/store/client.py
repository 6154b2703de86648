"""Connecting to the MLflow tracking store, and turning its failures into one-line errors."""

from __future__ import annotations

import contextlib
import os
import re
import time
from urllib.parse import urlparse

from . import sqlite as sqlite_store
from ..errors import LLMBError, first_line
from ..run_layout import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND


def resolve_uri(tracking_uri: str | None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else MLflow's own default."""
    import mlflow

    if tracking_uri:
        return tracking_uri
    return os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()


def client(tracking_uri: str | None = None, check: bool = True):
    """An MlflowClient for the store; with ``check``, fail fast if the store is unusable. MLflow's
    own log of a store failure is one line (``outage.quiet_store_logging``): the failure reaches
    the caller as our one-line error."""
    from mlflow import MlflowClient

    from .logs import quiet_store_logging

    quiet_store_logging()
    uri = resolve_uri(tracking_uri)
    if check:
        check_reachable(uri)
    with store_errors(uri), _first_open_lock(uri):
        path = _sqlite_path(uri)
        if not path or uri in _opened_sqlite:
            return MlflowClient(tracking_uri=uri, registry_uri=uri)
        sqlite_store.ready(uri, path)
        deadline = time.monotonic() + sqlite_store.WAIT_SECONDS
        while True:
            try:
                mlflow_client = MlflowClient(tracking_uri=uri, registry_uri=uri)
                mlflow_client.search_experiments(max_results=1)  # creates or checks the tables
                mlflow_client.search_registered_models(max_results=1)
                break
            except Exception as exc:
                if "database is locked" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise LLMBError(f"tracking store {uri} stayed locked by another program for "
                                    f"{sqlite_store.WAIT_SECONDS:.0f} s; try again once it is done") from None
                time.sleep(sqlite_store.POLL_SECONDS)
        _opened_sqlite.add(uri)
        return mlflow_client


_opened_sqlite: set[str] = set()


def _sqlite_path(uri: str) -> str:
    """The file of a sqlite store on disk, else ''."""
    if urlparse(uri).scheme != "sqlite" or "sqlite:///" not in uri:
        return ""
    path = uri.split("sqlite:///", 1)[1].split("?", 1)[0]
    return "" if not path or path.startswith(":memory:") else path


@contextlib.contextmanager
def _first_open_lock(uri: str):
    """Hold a lock file beside a sqlite store while this process first opens it, so our
    processes ready a brand-new store one at a time (``store.sqlite`` deals with others)."""
    path = _sqlite_path(uri)
    if uri in _opened_sqlite or not path:
        yield
        return
    from filelock import FileLock

    with FileLock(path + ".llmb-lock"):
        yield


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """One quick probe so a down server is reported at once, not after MLflow's retries."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        import requests

        try:
            requests.get(uri.rstrip("/") + "/health", timeout=timeout).raise_for_status()
        except requests.RequestException as exc:
            raise LLMBError(f"tracking server {uri} is unreachable ({first_line(exc)})") from None
    elif parsed.scheme == "sqlite":
        path = uri.split("sqlite:///", 1)[-1]
        folder = os.path.dirname(os.path.abspath(path)) if path and path != ":memory:" else "."
        if not os.path.isdir(folder):
            raise LLMBError(f"tracking store folder does not exist: {folder} (from {uri})")


@contextlib.contextmanager
def store_errors(uri: str):
    """Re-raise store failures as a one-line LLMBError naming the store."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except LLMBError:
        raise
    except MlflowException as exc:
        raise LLMBError(f"tracking store {uri}: {first_line(exc.message)}") from None
    except (OSError, ConnectionError) as exc:
        raise LLMBError(f"tracking store {uri} failed: {first_line(exc)}") from None
    except Exception as exc:  # sqlalchemy, requests and boto3 errors have no common base
        package = type(exc).__module__.split(".")[0]
        if package in ("sqlalchemy", "requests", "urllib3"):
            raise LLMBError(f"tracking store {uri} failed: {first_line(exc)}") from None
        if package in S3_PACKAGES:  # artifacts read or written in S3 directly
            raise LLMBError(s3_failure(exc)) from None
        raise


S3_PACKAGES = ("botocore", "boto3", "s3transfer")


def failure_line(exc) -> str:
    """One line for any failure to write to the store or its artifacts."""
    return s3_failure(exc) if type(exc).__module__.split(".")[0] in S3_PACKAGES else first_line(exc)


def s3_failure(exc) -> str:
    """One line for an error of boto3, which MLflow uses for ``s3://`` artifacts (an address's
    query string left out)."""
    text = re.sub(r"\?[^\s\"]*", "", first_line(exc))
    if type(exc).__name__ == "NoCredentialsError":
        text += (" (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or log through a tracking "
                 "server started with --serve-artifacts)")
    return f"S3 artifact store failed: {text}"


def experiment_id(mlflow_client, name: str, create: bool = True) -> str | None:
    """The id of the named experiment; created when missing (if ``create``) in MLflow's
    model-training mode. One created by someone else gets that mode the first time we train in
    it, unless it has a kind already."""
    from mlflow.exceptions import MlflowException

    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        if not create:
            return None
        try:
            return mlflow_client.create_experiment(name, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})
        except MlflowException:  # another trainer created it a moment ago
            experiment = mlflow_client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise LLMBError(
            f"experiment {name!r} is deleted; restore it (mlflow experiments restore) "
            "or choose another --experiment"
        )
    if create and EXPERIMENT_KIND_TAG not in experiment.tags:
        mlflow_client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    return experiment.experiment_id


@contextlib.contextmanager
def missing_as(message: str):
    """Turn MLflow's "does not exist" into a one-line LLMBError saying ``message``."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if is_missing(exc):
            raise LLMBError(message) from None
        raise


def is_missing(exc) -> bool:
    """Whether an MLflow error says the thing asked for does not exist."""
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"
