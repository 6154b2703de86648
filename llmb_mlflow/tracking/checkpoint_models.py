"""Checkpoints as MLflow logged models, and the corpus as the run's dataset input.

Each checkpoint of a run becomes a logged model of the run's experiment (MLflow 3's own answer
for deep-learning checkpoints): named by its step, with the model's settings as params, its
step, corpus and preset as tags, the pyfunc model folder as its files. The losses at its step
are linked to it (``Metric(model_id=...)``, sent again with the timestamp and value they were
first logged with, so the run's own history gains no point, and nothing re-reads a history);
the run lists it as an output at that step. It turns READY only once its files are stored:
readers list READY ones only, so they never see a half-written checkpoint. One waiting in the
spool (the store was down when the training ended) stays PENDING until ``llmb runs sync``
completes it; the writer's calls run on its own thread, never on the training's.
"""

from __future__ import annotations

import dataclasses
import os

from ..training.config import ModelConfig
from ..run_layout import (
    CHECKPOINT_KIND, CHECKPOINT_LINKS, DATASET_CONTEXT, DATASET_CONTEXT_TAG, DATASET_TAG, KIND_TAG, MODEL_TYPE,
    PRESET_TAG, STEP_TAG, VAL_LOSS, VAL_LOSS_STEP_TAG, checkpoint_name,
)
from .spool import Point

MODEL_PARAMS = (*(f.name for f in dataclasses.fields(ModelConfig)), "n_params")  # the model's shape
CORPUS_TAGS = (DATASET_TAG, PRESET_TAG)  # the run's tags each checkpoint carries too


def dataset_input(dataset):
    """The corpus as MLflow's dataset input of a run (context ``training``): its name, a digest
    of its text, where it came from, and a profile of its characters."""
    import json

    from mlflow.entities import Dataset, DatasetInput, InputTag

    source_type = "code" if dataset.bundled else "local"  # bundled: a file of this package
    entity = Dataset(
        name=dataset.name, digest=dataset.digest, source_type=source_type,
        source=json.dumps({"uri": dataset.source}),
        schema=json.dumps({"mlflow_colspec": [{"type": "string", "name": "text"}]}),
        profile=json.dumps(dataset.profile()),
    )
    return DatasetInput(entity, tags=[InputTag(DATASET_CONTEXT_TAG, DATASET_CONTEXT)])


class CheckpointModels:
    """The logged models of one run's checkpoints, made by the tracker's writer thread."""

    def __init__(self, client):
        self.client = client
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.tags: dict[str, str] = {}
        self.params: dict[str, str] = {}
        self.dataset: tuple[str, str] | None = None  # name, digest
        self._links: dict[int, list[Point]] = {}  # checkpoint step -> the CHECKPOINT_LINKS points to link
        self._pending: dict[int, str] = {}  # checkpoint step -> its logged model, not READY yet
        self._tried: set[int] = set()  # steps whose logged model may exist though no answer said so
        self._adopted = False

    def describe(self, run_id: str, experiment_id: str, description, run_tags: dict[str, str]) -> None:
        self.run_id, self.experiment_id = run_id, experiment_id
        self.tags = {key: run_tags.get(key, "") for key in CORPUS_TAGS}
        self.params = {key: str(value) for key, value in description.model_params.items()}
        if description.dataset is not None:
            self.dataset = (description.dataset.name, description.dataset.digest)

    def adopt(self, run_id: str) -> None:
        """Take over the checkpoints of ``run_id``, a run that ended with data unsent: the run's
        experiment, tags, params and dataset, and the losses it already holds, are read from the
        store when the first checkpoint is stored (the writer retries that); a checkpoint's
        logged model an earlier attempt created is completed, not made again."""
        self.run_id, self._adopted = run_id, True

    def link(self, step: int, points) -> None:
        """The points to link to the checkpoint at ``step``: per CHECKPOINT_LINKS key, the latest one."""
        latest: dict[str, Point] = {}
        for point in points:
            key = point[0]
            if key in CHECKPOINT_LINKS and (key not in latest or point[3] >= latest[key][3]):
                latest[key] = point
        self._links[step] = list(latest.values())

    def store(self, step: int, checkpoint_file: str, folder: str) -> None:
        """Make the checkpoint at ``step`` a READY logged model (again after a failed attempt:
        the same logged model is completed)."""
        from mlflow.entities import LoggedModelStatus, Metric

        from .. import serving

        if self._adopted and self.experiment_id is None:
            self._describe_from_store()
        model_id = self._pending.get(step) or self._find_or_create(step)
        if model_id is None:
            return  # stored completely by an earlier attempt at sending this spool
        model_dir = os.path.join(folder, "model")
        serving.save(model_dir, checkpoint_file, model_id=model_id, run_id=self.run_id)
        self.client.log_model_artifacts(model_id, model_dir)
        name, digest = self.dataset or (None, None)
        linked = [Metric(key, value, timestamp, at, model_id=model_id, dataset_name=name,
                         dataset_digest=digest, run_id=self.run_id)
                  for key, value, timestamp, at in self._links.get(step, ())]
        if linked:
            self.client.log_batch(self.run_id, metrics=linked)
        self._log_output(model_id, step)
        self.client.finalize_logged_model(model_id, LoggedModelStatus.READY)
        self._pending.pop(step, None)
        self._links.pop(step, None)

    def _log_output(self, model_id: str, step: int) -> None:
        """The run's output at ``step``; MLflow refuses it twice (an earlier attempt's answer may
        have been lost), so a refusal is fine once the run lists it."""
        from mlflow.entities import LoggedModelOutput
        from mlflow.exceptions import MlflowException

        try:
            self.client.log_outputs(self.run_id, [LoggedModelOutput(model_id, step)])
        except MlflowException:
            outputs = self.client.get_run(self.run_id).outputs
            if not any(o.model_id == model_id for o in (outputs.model_outputs if outputs else [])):
                raise

    def _find_or_create(self, step: int) -> str | None:
        if self._adopted or step in self._tried:  # made by an attempt whose answer was lost?
            from mlflow.entities import LoggedModelStatus

            found = self.client.search_logged_models(
                [self.experiment_id],
                filter_string=f"source_run_id = '{self.run_id}' AND tags.`{STEP_TAG}` = '{step}'")
            for model in found:
                if model.status == LoggedModelStatus.READY:
                    return None
                self._pending[step] = model.model_id
                return model.model_id
        links = {point[0]: point for point in self._links.get(step, ())}
        tags = {KIND_TAG: CHECKPOINT_KIND, STEP_TAG: str(step), **self.tags}
        if VAL_LOSS in links and links[VAL_LOSS][3] != step:
            tags[VAL_LOSS_STEP_TAG] = str(links[VAL_LOSS][3])
        self._tried.add(step)
        model = self.client.create_logged_model(
            self.experiment_id, name=checkpoint_name(step), source_run_id=self.run_id, tags=tags,
            params=self.params, model_type=MODEL_TYPE)
        self._pending[step] = model.model_id
        return model.model_id

    def _describe_from_store(self) -> None:
        run = self.client.get_run(self.run_id)
        params = run.data.params
        self.experiment_id = run.info.experiment_id
        self.tags = {key: run.data.tags.get(key, "") for key in CORPUS_TAGS}
        self.params = {key: params[key] for key in MODEL_PARAMS if key in params}
        inputs = run.inputs.dataset_inputs if run.inputs else []
        if inputs:
            self.dataset = (inputs[0].dataset.name, inputs[0].dataset.digest)
        unlinked = [step for step, points in self._links.items() if len(points) < len(CHECKPOINT_LINKS)]
        if unlinked:  # points sent before the store went away are not in the spool
            stored = [(m.key, m.value, m.timestamp, m.step) for key in CHECKPOINT_LINKS
                      for m in self.client.get_metric_history(self.run_id, key)]
            for step in unlinked:
                self.link(step, [*self._links[step], *(p for p in stored if p[3] <= step)])
