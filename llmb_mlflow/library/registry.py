"""The model library: checkpoints as versions in the MLflow Model Registry.

One registered model per name; each version is a checkpoint the trainer already stored as an
MLflow logged model of its run, registered from ``models:/<model_id>`` (so MLflow links the
version and the logged model both ways): no bytes are copied and no metric history is read. Every call goes through ``MlflowClient``, so the
library works the same on a local sqlite store and over REST against ``mlflow server``.
"""

from __future__ import annotations

from typing import Callable

import hashlib
import os
import re
import tempfile
import time
import unicodedata
from dataclasses import dataclass, replace

from . import control
from .control import not_a_training_run
from ..store import compat as mlflow_compat
from ..errors import LLMBError, shown
from .reader import RunReader
from ..run_layout import (
    DATASET_VERSION_TAG, KIND_TAG, MODEL_KIND, PARAM_DATASET, PARAM_PRESET, PRESET_VERSION_TAG, RUNNING,
    CHECKPOINT_MODEL_FILE, SAVE_TOKEN_TAG, SOURCE_RUN_VERSION_TAG, STEP_VERSION_TAG, TRAIN_LOSS, TRAINING_RUN,
    VAL_LOSS,
)
from ..training.shapes import DEFAULT_MAX_PARAMS, checkpoint_bytes
from ..store.client import is_missing, missing_as, store_errors
from ..numbers import whole_number

_BAD_NAME = re.compile(r"[/:@]")
_REF = re.compile(r"^(?:models:/)?(?P<name>[^/@]+?)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))?$")
_ALIAS = re.compile(r"^[A-Za-z_][\w-]*$")
_LOGGED_MODEL = re.compile(r"^models:/(m-[0-9a-f]{32})$")


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    step: int
    train_loss: float | None
    val_loss: float | None
    dataset: str
    preset: str
    run_id: str
    source: str
    aliases: tuple[str, ...]
    created: int
    model_id: str | None = None  # the checkpoint's logged model
    already: bool = False  # a save found the checkpoint saved as this version before: nothing new

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def saved_words(self) -> str:
        """What a save of it says: saved now, or saved before."""
        if self.already:
            return f"Step {self.step} is already saved as {self.ref}; nothing new was registered."
        return f"Saved step {self.step} as {self.ref}."


class SaveUnderWay(LLMBError):
    """Another caller is saving under the same token right now."""


def not_our_model(name: str) -> LLMBError:
    return LLMBError(f"registered model {name!r} is not an LLMBreaker model")


def check_name(name: str) -> str:
    if not isinstance(name, str):
        raise LLMBError(f"model name must be text (got {shown(name)})")
    if not name.strip():
        raise LLMBError("model name is empty")
    if _BAD_NAME.search(name):
        raise LLMBError(f"model name {shown(name)} may not contain '/', ':' or '@'")
    if name != name.strip() or len(name) > 200:
        raise LLMBError(f"model name {shown(name)} must have no surrounding spaces and at most 200 characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise LLMBError(f"model name {shown(name)} may not contain control characters")
    return name


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``NAME``, ``NAME/3``, ``NAME@alias``, ``models:/NAME/3`` -> (name, version, alias)."""
    match = _REF.match(ref.strip()) if ref else None
    if not match:
        raise LLMBError(f"bad model reference {ref!r}; use NAME, NAME/VERSION, NAME@ALIAS or models:/NAME/VERSION")
    return match["name"], match["version"], match["alias"]


class ModelLibrary:
    def __init__(self, tracking_uri: str | None = None, reader: RunReader | None = None,
                 on_created: Callable[[str], None] | None = None):
        """``on_created(name)``: called when saving creates a registered model (not when another
        saver created it first)."""
        self.reader = reader or RunReader(tracking_uri)
        self.on_created = on_created
        self.client = self.reader.client
        self.uri = self.reader.uri

    # -- saving ----------------------------------------------------------------------------

    def checkpoint_steps(self, run_id: str) -> list[int]:
        return self.reader.checkpoint_steps(run_id)

    def save(self, run_id: str, name: str, step: int | None = None, once: str | None = None) -> Version:
        """Register the run's checkpoint at ``step`` (the latest by default) as a new version.
        ``once``: a token that makes asking again harmless: the version saved under it the first
        time is returned, whichever process of this machine asks; while another one is saving
        under it, ``SaveUnderWay`` says so at once."""
        check_name(name)
        if once is None:
            return self._save(run_id, name, step, {})
        if not re.fullmatch(r"[0-9a-f]{16,64}", once):
            raise LLMBError(f"bad save token {shown(once)}")
        from filelock import FileLock, Timeout

        lock = os.path.join(tempfile.gettempdir(), f"llmb-save-{hashlib.sha256(name.encode()).hexdigest()[:16]}.lock")
        try:
            with FileLock(lock, timeout=0):
                with store_errors(self.uri):
                    found = self.client.search_model_versions(
                        f"name = {_quoted(name)} and tags.{SAVE_TOKEN_TAG} = '{once}'")
                if found:
                    return self._version(found[0])
                return self._save(run_id, name, step, {SAVE_TOKEN_TAG: once})
        except Timeout:
            raise SaveUnderWay(f"a save as {name} is under way") from None

    def _save(self, run_id: str, name: str, step: int | None, extra_tags: dict) -> Version:
        run = self._training_run(run_id)
        checkpoints = {c.step: c for c in self.reader.checkpoints(run_id, run)}
        if not checkpoints:
            raise LLMBError(f"run {run_id} has no checkpoints yet")
        if step is None:
            step = max(checkpoints)
        elif step not in checkpoints:
            raise LLMBError(f"run {run_id} has no checkpoint at step {step}; it has: "
                            + ", ".join(map(str, sorted(checkpoints))))
        with store_errors(self.uri):
            self._check_joinable(name)
            before = self.client.search_model_versions(f"name = {_quoted(name)} and run_id = '{run.run_id}'") \
                if self._registered(name) is not None else []
        for found in before:  # the same checkpoint under the same name: saying so beats a twin version
            version = self._version(found)
            if version.model_id == checkpoints[step].model_id:
                return replace(version, already=True)
        losses = {key: self.reader.value_at(run_id, key, step)
                  for key in (TRAIN_LOSS, VAL_LOSS)}
        tags = {
            STEP_VERSION_TAG: str(step),
            DATASET_VERSION_TAG: run.params.get(PARAM_DATASET, ""),
            PRESET_VERSION_TAG: run.params.get(PARAM_PRESET, ""),
            SOURCE_RUN_VERSION_TAG: run_id,
            **{key: f"{value:.6g}" for key, value in losses.items() if value is not None},
            **extra_tags,
        }
        with store_errors(self.uri):
            self._ensure_registered(name)
            created = mlflow_compat.register_logged_model(
                self.client, name, checkpoints[step].model_id, run_id=run_id, tags=tags,
                description=f"{run.params.get('preset')} MicroGPT on {run.params.get('dataset')}, step {step}",
                await_creation_for=0,
            )
        return self._version(created)

    def checkpoint_for_saving(self, run_id: str, name: str, max_checkpoints: int | None = None) -> int | None:
        """Make the run's model as it is now ready to save as ``name``: None if its latest
        checkpoint is it (its training has ended, or has just written one); else its training is
        asked for a checkpoint now (unless the run has ``max_checkpoints`` already), and the step
        to wait for (``has_checkpoint``) is returned. Everything that can be checked is checked
        before the training is asked."""
        check_name(name)
        run = self._training_run(run_id)
        with store_errors(self.uri):
            self._check_joinable(name)
        written = self.checkpoint_steps(run_id)
        if run.status != RUNNING or (written and written[-1] >= run.last_step):
            return None
        if max_checkpoints is not None and len(written) >= max_checkpoints:
            raise LLMBError(f"run {run_id} has {len(written)} checkpoints already; save its latest "
                            "once the training has ended")
        control.send(self.client, run_id, "checkpoint")
        return run.last_step

    def has_checkpoint(self, run_id: str, step: int) -> bool:
        """Whether the run has a checkpoint at ``step`` or later."""
        return any(s >= step for s in self.checkpoint_steps(run_id))

    def finish_saving(self, run_id: str, name: str, step: int, asked_ms: int, once: str,
                      wait_seconds: float = 30.0) -> Version | None:
        """The second half of ``checkpoint_for_saving``: the version, once the checkpoint the
        training was asked for at ``asked_ms`` (ms since the epoch) is written; None while it is
        not yet (or while another caller saves it). Asked again, it saves once (``once``)."""
        if not self.has_checkpoint(run_id, step):
            if time.time() * 1000 - asked_ms > wait_seconds * 1000:
                raise LLMBError("the training did not write a checkpoint in time; is it still alive?")
            return None
        try:
            return self.save(run_id, name, once=once)
        except SaveUnderWay:
            return None

    def _training_run(self, run_id: str):
        run = self.reader.run(run_id)
        if run.tags.get(KIND_TAG) != TRAINING_RUN:
            raise not_a_training_run(run_id)
        return run

    def _check_joinable(self, name: str) -> None:
        """A new version may join ``name`` if no model has that name or ours does."""
        model = self._registered(name)
        if model is not None and not _ours(model):
            raise not_our_model(name)

    def _ensure_registered(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        model = self._registered(name)
        if model is None:
            try:
                self.client.create_registered_model(
                    name, tags={KIND_TAG: MODEL_KIND},
                    description="An LLMBreaker MicroGPT; load a version with "
                                "mlflow.pyfunc.load_model('models:/NAME/VERSION').predict(['ROMEO:']).")
            except MlflowException:
                model = self._registered(name)  # created by someone else meanwhile
                if model is None:
                    raise
            else:
                if self.on_created:
                    self.on_created(name)
                return
        if not _ours(model):
            raise not_our_model(name)

    # -- reading ---------------------------------------------------------------------------

    def models(self) -> list[tuple[str, list[Version]]]:
        """Our registered models with their versions, newest first."""
        with store_errors(self.uri):
            found = self.client.search_registered_models(
                filter_string=f"tags.`{KIND_TAG}` = '{MODEL_KIND}'", max_results=1000)
            listing = [(model.name, self._versions_of(model)) for model in found]
        listing.sort(key=lambda item: -max((v.created for v in item[1]), default=0))
        return listing

    def saved_from(self, run_id: str) -> list[tuple[int, str]]:
        """(step, "name/version") of every version saved from the run's checkpoints."""
        with store_errors(self.uri):
            found = self.client.search_model_versions(f"run_id = '{run_id}'")
        return sorted((whole_number(v.tags.get(STEP_VERSION_TAG)), f"{v.name}/{v.version}")
                      for v in found if whole_number((v.tags or {}).get(STEP_VERSION_TAG)) is not None)

    def versions(self, name: str) -> list[Version]:
        """One model's versions, newest first."""
        with store_errors(self.uri):
            return self._versions_of(self._our_model(name))

    def _versions_of(self, model) -> list[Version]:
        found = self.client.search_model_versions(f"name = {_quoted(model.name)}")
        aliases = _aliases_by_version(model)
        return sorted((self._version(v, aliases) for v in found), key=lambda v: -int(v.version))

    def resolve(self, ref: str) -> Version:
        """The version a reference names; the latest version for a bare name."""
        name, version, alias = parse_ref(ref)
        what = f"alias {alias!r}" if alias else f"version {version}"
        with store_errors(self.uri):
            model = self._our_model(name)
            if alias and alias not in (model.aliases or {}):
                raise LLMBError(f"model {name!r} has no {what}")
            with missing_as(f"model {name!r} has no {what}"):
                if alias:
                    found = self.client.get_model_version_by_alias(name, alias)
                elif version:
                    found = self.client.get_model_version(name, version)
                else:
                    versions = self.client.search_model_versions(f"name = {_quoted(name)}")
                    if not versions:
                        raise LLMBError(f"model {name!r} has no versions")
                    found = max(versions, key=lambda v: int(v.version))
        return self._version(found, _aliases_by_version(model))

    def exists(self, name: str) -> bool:
        """Whether a registered model (ours or not) is named ``name``."""
        with store_errors(self.uri):
            return self._registered(name) is not None

    def _registered(self, name: str):
        """The registered model named ``name``, ours or not; None if there is none."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as exc:
            if is_missing(exc):
                return None
            raise

    def _our_model(self, name: str):
        model = self._registered(name)
        if model is None:
            raise LLMBError(f"no model named {name!r} (see 'llmb models list')")
        if not _ours(model):
            raise not_our_model(name)
        return model

    def checkpoint(self, ref: str, max_params: int = DEFAULT_MAX_PARAMS,
                   raise_with: str | None = None) -> tuple[Version, dict]:
        """A version and its checkpoint, loaded safely and checked (``checkpoint.load``)."""
        from ..training import checkpoint

        version = self.resolve(ref)
        label = f"checkpoint of model {version.ref}"
        if version.model_id is None:
            raise LLMBError(f"model {version.ref} is not an LLMBreaker checkpoint's logged model "
                            f"(its source is {version.source}); save it again from its run")
        raw = self.reader.model_artifact_bytes(version.model_id, CHECKPOINT_MODEL_FILE, label,
                                               checkpoint_bytes(max_params))
        return version, checkpoint.load(raw, label, max_params, raise_with)

    # -- changing --------------------------------------------------------------------------

    def rename(self, name: str, new_name: str) -> None:
        check_name(new_name)
        with store_errors(self.uri):
            self._our_model(name)
            if self._registered(new_name) is not None:
                raise LLMBError(f"a model named {new_name!r} already exists")
            self.client.rename_registered_model(name, new_name)

    def delete(self, name: str, version: str | None = None) -> bool:
        """Delete a version, or the whole model (``version`` None); the model goes with its
        last version. True when the model is gone. Checkpoint files stay with their runs."""
        with store_errors(self.uri):
            versions = self.versions(name)
            if version is not None and str(version) not in {v.version for v in versions}:
                raise LLMBError(f"model {name!r} has no version {version}")
            if version is None:
                self.client.delete_registered_model(name)
                return True
            self.client.delete_model_version(name, str(version))
            if self.versions(name):  # asked again: a version saved meanwhile keeps the model
                return False
            self.client.delete_registered_model(name)
            return True

    def alias(self, name: str, version: str, alias: str) -> None:
        if not _ALIAS.match(alias) or alias.lower() == "latest" or re.fullmatch(r"v\d+", alias):
            raise LLMBError(f"bad alias {alias!r}: use letters, digits, '_' or '-', "
                            "starting with a letter, not 'latest' or 'v<number>'")
        with store_errors(self.uri):
            self.resolve(f"{name}/{version}")
            self.client.set_registered_model_alias(name, alias, str(version))

    def _version(self, mv, aliases: dict[str, list[str]] | None = None) -> Version:
        tags = mv.tags or {}  # anyone who may edit the registry may have written these

        def number(key):
            try:
                return float(tags[key])
            except (KeyError, ValueError):
                return None

        logged_model = _LOGGED_MODEL.match(mv.source or "")
        return Version(
            name=mv.name, version=str(mv.version),
            step=whole_number(tags.get(STEP_VERSION_TAG)) or 0,
            train_loss=number(TRAIN_LOSS), val_loss=number(VAL_LOSS),
            dataset=tags.get(DATASET_VERSION_TAG, ""), preset=tags.get(PRESET_VERSION_TAG, ""),
            run_id=mv.run_id or tags.get(SOURCE_RUN_VERSION_TAG, ""), source=mv.source,
            aliases=tuple(sorted((aliases or {}).get(str(mv.version), mv.aliases or []))),
            created=mv.creation_timestamp or 0,
            model_id=logged_model[1] if logged_model else None,
        )


def _ours(model) -> bool:
    return (model.tags or {}).get(KIND_TAG) == MODEL_KIND


def _aliases_by_version(model) -> dict[str, list[str]]:
    by_version: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    return by_version


def _quoted(name: str) -> str:
    """``name`` as a string in a registry search filter, whose parser knows no escapes."""
    if "'" not in name:
        return f"'{name}'"
    if '"' not in name:
        return f'"{name}"'
    raise LLMBError(f"model name {shown(name)} has both kinds of quotes; the registry cannot search for it")
