"""Tracking-read: the only door through which the viewer (and ``llmb runs``) reads runs.

Torch-free. Immutable things are cached: a run's params, the snapshot of a step, and the
metric series of a run that has ended. Metric reads use MLflow's sampled "bulk interval"
query, so a downsampled or incremental read costs the same on a 20,000-step run as on a
short one, locally (sqlite) or over REST against ``mlflow server``.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np
from cachetools import LRUCache, cachedmethod

from ..store import compat as mlflow_compat
from ..formats import snapshot as snapshot_format
from ..training import weights as weights_format
from ..errors import LLMBError
from ..run_layout import (
    CHECKPOINT_KIND, DEFAULT_EXPERIMENT, ENDED, KIND_TAG, PARAM_MAX_ITERS, SNAPSHOT_BYTES, STEP_TAG, TRAIN_LOSS,
    TRAINING_RUN, VOCABULARY_FILE, attn_entropy_head, snapshot_path, weights_path,
)
from ..training.shapes import DEFAULT_MAX_PARAMS
from ..formats.snapshot import Snapshot
from ..formats.vocabulary import MAX_BYTES as VOCABULARY_MAX_BYTES, Vocabulary
from ..store.client import client, is_missing, missing_as, store_errors
from ..numbers import whole_number

WINDOW = 2500  # the most points MLflow returns from one bulk-interval query
MAX_WINDOWS = 4  # windows an incremental read takes before it samples the rest
MODELS_PER_PAGE = 1000  # logged models per search (a run has at most a few thousand checkpoints)
MAX_SNAPSHOT_BYTES = 16 * 2**20  # a large model's snapshot is well under 1 MB
MAX_WEIGHTS_BYTES = 64 * 2**20  # the largest preset's weights are under 2 MB


class MissingArtifact(LLMBError):
    """An artifact the store does not have (as opposed to one it has that is unusable)."""


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    run_name: str
    experiment_id: str
    status: str
    start_time: int | None
    end_time: int | None
    params: dict[str, str]
    tags: dict[str, str]
    latest: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (step, value)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def max_iters(self) -> int | None:
        value = self.params.get(PARAM_MAX_ITERS) or ""  # anyone may have written it
        return whole_number(value)

    @property
    def last_step(self) -> int:
        return self.latest.get(TRAIN_LOSS, (0, None))[0]

    def last_value(self, key: str) -> float | None:
        return self.latest[key][1] if key in self.latest else None


@dataclass(frozen=True)
class Checkpoint:
    """A completely stored checkpoint: its step and its MLflow logged model."""

    step: int
    model_id: str
    name: str


@dataclass(frozen=True)
class MetricSeries:
    steps: np.ndarray  # int64, ascending
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.steps)

    def after(self, step: int) -> "MetricSeries":
        start = int(np.searchsorted(self.steps, step, side="right"))
        return MetricSeries(self.steps[start:], self.values[start:])

    @classmethod
    def from_points(cls, points) -> "MetricSeries":
        pairs = sorted({(int(step), float(value)) for step, value in points})
        return cls(np.array([p[0] for p in pairs], dtype=np.int64),
                   np.array([p[1] for p in pairs], dtype=np.float64))


class RunReader:
    def __init__(self, tracking_uri: str | None = None, snapshot_cache_size: int = 128,
                 artifacts_destination: str | None = None):
        """``artifacts_destination``: read ``mlflow-artifacts:`` URIs straight from there, as the
        tracking server serving them does (for code running inside that server)."""
        self.client = client(tracking_uri)
        self.uri = self.client.tracking_uri
        self.artifacts_destination = artifacts_destination
        self._lock = threading.Lock()  # guards the caches; never held while reading the store
        self._params = LRUCache(4096)
        self._ended_series = LRUCache(256)
        self._snapshots = LRUCache(snapshot_cache_size)
        self._vocabularies = LRUCache(16)  # a vocabulary of tokens can be a megabyte
        self._repositories = LRUCache(1024)

    # -- runs ------------------------------------------------------------------------------

    def experiments(self) -> list[str]:
        """Names of the store's active experiments, most recently created first."""
        return [name for _, name in self.experiment_list()]

    def experiment_list(self) -> list[tuple[str, str]]:
        """(id, name) of the store's active experiments, most recently created first."""
        with store_errors(self.uri):
            found = self.client.search_experiments(order_by=["creation_time DESC"])
        return [(e.experiment_id, e.name) for e in found]

    def runs(self, experiment: str = DEFAULT_EXPERIMENT, max_results: int = 100) -> list[RunSummary]:
        """LLMBreaker training runs of ``experiment``, newest first."""
        with store_errors(self.uri):
            exp = self.client.get_experiment_by_name(experiment)
        return self.runs_of([exp.experiment_id], max_results) if exp is not None else []

    def runs_of(self, experiment_ids: list[str], max_results: int = 200) -> list[RunSummary]:
        """LLMBreaker training runs of these experiments (ids), newest first, in one search."""
        if not experiment_ids:
            return []
        with store_errors(self.uri):
            runs = self.client.search_runs(
                experiment_ids,
                filter_string=f"tags.`{KIND_TAG}` = '{TRAINING_RUN}'",
                order_by=["attributes.start_time DESC"],
                max_results=max_results,
            )
        return [self._summary(run) for run in runs]

    def run(self, run_id: str) -> RunSummary:
        with store_errors(self.uri), missing_as(f"no run with id {run_id!r} in {self.uri}"):
            run = self.client.get_run(run_id)
        return self._summary(run)

    def _summary(self, run) -> RunSummary:
        info = run.info
        with self._lock:
            params = self._params.get(info.run_id)
        if params is None:
            params = dict(run.data.params)
            if params:  # logged once, never changed
                with self._lock:
                    self._params[info.run_id] = params
        return RunSummary(
            run_id=info.run_id,
            run_name=info.run_name or "",
            experiment_id=info.experiment_id,
            status=info.status,
            start_time=info.start_time,
            end_time=info.end_time,
            params=params,
            tags=dict(run.data.tags),
            latest=mlflow_compat.latest_metrics(run),
        )

    # -- metrics ---------------------------------------------------------------------------

    def metric(self, run_id: str, key: str, max_points: int | None = None,
               after_step: int | None = None, run: RunSummary | None = None) -> MetricSeries:
        """A metric's history: whole, downsampled to about ``max_points`` (first and last kept),
        or only the points after ``after_step`` (incremental reads for live polling).
        Pass ``run`` when it was just read, to spare a query. What a read costs follows the
        points it returns, never the steps they are at (anyone may log a point at step 2**62)."""
        run = run or self.run(run_id)
        latest = run.latest.get(key)
        if latest is None or (after_step is not None and latest[0] <= after_step):
            return MetricSeries.from_points([])
        if run.ended:  # it will not change: read once, slice for incremental reads
            series = self._ended_series_of(run_id, key, max_points if after_step is None else None)
            return series if after_step is None else series.after(after_step)
        if after_step is not None:
            return MetricSeries.from_points(self._points_after(run_id, key, after_step, latest[0]))
        if max_points is not None:
            return MetricSeries.from_points(self._bulk_interval(run_id, key, max_points, None, None))
        return MetricSeries.from_points(self._history(run_id, key))

    @cachedmethod(lambda self: self._ended_series, lock=lambda self: self._lock)
    def _ended_series_of(self, run_id: str, key: str, max_points: int | None) -> MetricSeries:
        points = (self._history(run_id, key) if max_points is None
                  else self._bulk_interval(run_id, key, max_points, None, None))
        return MetricSeries.from_points(points)

    def _points_after(self, run_id: str, key: str, after_step: int, last: int) -> list:
        """Every point after ``after_step`` in windows of WINDOW steps; past MAX_WINDOWS of them
        (a reader far behind, or a point logged far ahead) the rest is sampled in one query."""
        points, start = [], after_step + 1
        for _ in range(MAX_WINDOWS):
            if start > last:
                return points
            points += self._bulk_interval(run_id, key, WINDOW, start, start + WINDOW - 1)
            start += WINDOW
        return points + (self._bulk_interval(run_id, key, WINDOW, start, last) if start <= last else [])

    def _history(self, run_id: str, key: str) -> list:
        with store_errors(self.uri):
            return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def head_entropy(self, run_id: str, run: RunSummary | None = None,
                     max_points: int | None = None) -> dict[tuple[int, int], MetricSeries]:
        """Each head's attention entropy over the evaluations, by 0-based (layer, head): the
        ``attn_entropy/...`` metrics the run has (none for runs trained before they existed),
        one ``metric`` read each (downsampled as there; cached once the run has ended)."""
        run = run or self.run(run_id)
        heads = {head: key for key in run.latest if (head := attn_entropy_head(key)) is not None}
        return {head: self.metric(run_id, heads[head], max_points, run=run) for head in sorted(heads)}

    def value_at(self, run_id: str, key: str, step: int) -> float | None:
        """A metric's value at one step (None if it has none there)."""
        points = self._bulk_interval(run_id, key, 1, step, step)
        return points[-1][1] if points else None

    def _bulk_interval(self, run_id, key, max_results, start_step, end_step):
        with store_errors(self.uri):
            return mlflow_compat.metric_interval(self.client, run_id, key, max_results, start_step, end_step)

    # -- snapshots -------------------------------------------------------------------------

    def snapshot_steps(self, run_id: str, run: RunSummary | None = None) -> list[int]:
        """Steps whose snapshot is completely stored, ascending (once each: a snapshot sent
        again by ``llmb runs sync`` is logged again)."""
        return sorted({int(s) for s in self.metric(run_id, SNAPSHOT_BYTES, run=run).steps})

    def checkpoints(self, run_id: str, run: RunSummary | None = None) -> list[Checkpoint]:
        """The run's completely stored checkpoints (READY logged models), by step."""
        if not re.fullmatch(r"[\w-]+", run_id):  # it goes into a filter
            raise LLMBError(f"bad run id {run_id!r}")
        run = run or self.run(run_id)
        query = f"source_run_id = '{run_id}' AND tags.`{KIND_TAG}` = '{CHECKPOINT_KIND}'"
        found, token = [], None
        with store_errors(self.uri):
            while True:
                page = self.client.search_logged_models([run.experiment_id], filter_string=query,
                                                        max_results=MODELS_PER_PAGE, page_token=token)
                found.extend(page)
                token = page.token
                if not token:
                    break
        by_step = {}
        for model in found:
            if model.status != "READY":  # a filter on status matches nothing on SQL stores (MLflow 3.17)
                continue
            step = whole_number(model.tags.get(STEP_TAG))
            if step is not None:
                by_step.setdefault(step, Checkpoint(step, model.model_id, model.name))
        return [by_step[step] for step in sorted(by_step)]

    def checkpoint_steps(self, run_id: str, run: RunSummary | None = None) -> list[int]:
        """Steps whose checkpoint is completely stored, ascending."""
        return [c.step for c in self.checkpoints(run_id, run)]

    @cachedmethod(lambda self: self._snapshots, lock=lambda self: self._lock)
    def snapshot(self, run_id: str, step: int) -> Snapshot:
        """The decoded snapshot of ``step`` (an unreadable one is an LLMBError, not cached)."""
        label = f"snapshot of step {step} in run {run_id}"
        raw = self.artifact_bytes(run_id, snapshot_path(int(step)), label, MAX_SNAPSHOT_BYTES)
        snap = snapshot_format.decode(raw, label)
        if snap.vocab is None:
            try:
                snap = snap.with_vocab(self.vocabulary(run_id)).check()
            except ValueError as exc:
                raise LLMBError(f"{label} does not fit its run's vocabulary ({exc})") from None
        return snap

    @cachedmethod(lambda self: self._vocabularies, lock=lambda self: self._lock)
    def vocabulary(self, run_id: str) -> Vocabulary:
        """The tokens of a run whose vocabulary is not one character per id."""
        label = f"the vocabulary of run {run_id}"
        return Vocabulary.from_json(self.artifact_bytes(run_id, VOCABULARY_FILE, label, VOCABULARY_MAX_BYTES), label)

    def weights(self, run_id: str, step: int, max_params: int = DEFAULT_MAX_PARAMS, raise_with: str | None = None):
        """(ModelConfig, float32 arrays) of the model at ``step``, as stored beside its snapshot,
        once checked (``weights.decode``: at most ``max_params``, ``raise_with`` allowing more)."""
        label = f"the model's weights at step {step} in run {run_id}"
        raw = self.artifact_bytes(run_id, weights_path(int(step)), label, MAX_WEIGHTS_BYTES)
        return weights_format.decode(raw, label, max_params, raise_with)

    def artifact_bytes(self, run_id: str, path: str, label: str | None = None,
                       max_bytes: int | None = None) -> bytes:
        """The bytes of one run artifact; a missing one, or one over ``max_bytes``, is an
        LLMBError."""
        return self._artifact_bytes(("run", run_id), path, label or f"artifact {path} of run {run_id}", max_bytes)

    def model_artifact_bytes(self, model_id: str, path: str, label: str, max_bytes: int | None = None) -> bytes:
        """The bytes of one file of a logged model (as ``artifact_bytes``)."""
        return self._artifact_bytes(("model", model_id), path, label, max_bytes)

    def _artifact_bytes(self, owner: tuple[str, str], path: str, label: str, max_bytes: int | None) -> bytes:
        from mlflow.exceptions import MlflowException

        with store_errors(self.uri):
            repo = self._repository(owner)
            try:
                folder = mlflow_compat.local_folder(repo)
                if folder is not None:
                    return _read(os.path.join(folder, path), max_bytes, label)
                with tempfile.TemporaryDirectory(prefix="llmb-read-") as tmp:
                    return _read(repo.download_artifacts(path, tmp), max_bytes, label)
            except (FileNotFoundError, IsADirectoryError):
                raise MissingArtifact(f"{label} is missing from the artifact store") from None
            except MlflowException as exc:
                if is_missing(exc) or "404" in str(exc):
                    raise MissingArtifact(f"{label} is missing from the artifact store") from None
                raise

    @cachedmethod(lambda self: self._repositories, lock=lambda self: self._lock)
    def _repository(self, owner: tuple[str, str]):
        """The artifact repository of a ``("run", run_id)`` or a ``("model", model_id)``."""
        kind, key = owner
        if kind == "run":
            uri = self.client.get_run(key).info.artifact_uri
        else:
            with missing_as(f"no logged model {key!r} in {self.uri}"):
                uri = self.client.get_logged_model(key).artifact_location
        return mlflow_compat.artifact_repository(self._served(uri), self.uri)

    def _served(self, uri: str) -> str:
        if self.artifacts_destination and uri.startswith("mlflow-artifacts:"):
            return self.artifacts_destination.rstrip("/") + "/" + urlparse(uri).path.lstrip("/")
        return uri


def _read(path: str, max_bytes: int | None, label: str) -> bytes:
    with open(path, "rb") as f:
        if max_bytes is not None and os.fstat(f.fileno()).st_size > max_bytes:
            raise LLMBError(f"{label} is larger than {max_bytes / 2**20:,.0f} MB, more than it can be")
        return f.read()
