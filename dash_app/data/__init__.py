"""The viewer's one door to the store, in parts of one concern each: which runs are LLMBreaker
trainings (``runs``), who may do what (``permissions``), what is read (``reads``), the changes
made (``changes``), trainings started (``launches``) and corpora uploaded (``uploads``).
``ViewerData`` composes them; its methods are its parts' own."""

from __future__ import annotations

from typing import Callable

from llmb_mlflow.launch import launcher
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.library.registry import ModelLibrary
from llmb_mlflow.run_layout import DEFAULT_EXPERIMENT

from ..access import Open
from .changes import Changes
from .launches import Launches
from .permissions import Permissions
from .reads import Reads
from .runs import TrainingRuns
from .uploads import Uploads


class _Of:
    """A method of ViewerData that is its part's method of the same name (``part``: the
    attribute holding that part)."""

    def __init__(self, part: str):
        self.part = part

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, data, owner=None):
        return self if data is None else getattr(getattr(data, self.part), self.name)


class ViewerData:
    """``training_uri``: the tracking URI trainings started from the viewer log to (a string, or
    a function of the current request); the reader's own by default. ``read_only``: the viewer
    only shows; every change (controls, models, new trainings, uploads) is refused. ``access``:
    who may do what (``access.Open``: everyone everything; ``access.SignedIn``: MLflow's
    permissions of the signed-in user); ``max_trainings``: how many trainings started from the
    viewer may run at once (``launcher.default_at_most()`` if None); ``training_env``: environment
    variables trainings started from the viewer get (None: removed from the viewer's own)."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT,
                 cache_size: int = 4096, artifacts_destination: str | None = None,
                 training_uri: str | Callable[[], str] | None = None, read_only: bool = False,
                 access: Open | None = None, max_trainings: int | None = None,
                 training_env: dict[str, str | None] | None = None):
        self.reader = RunReader(tracking_uri, artifacts_destination=artifacts_destination)
        self.experiment, self.read_only, self.access = experiment, read_only, access or Open()
        library = ModelLibrary(reader=self.reader, on_created=lambda name: self.access.model_changed("created", name))
        self.permissions = Permissions(TrainingRuns(self.reader), self.access, read_only, experiment)
        self.reads = Reads(self.permissions, library, cache_size)
        self.changes = Changes(self.reads, library)
        self.launches = Launches(self.permissions, library, training_uri or self.reader.uri,
                                 dict(training_env or {}), max_trainings or launcher.default_at_most())
        self.uploads = Uploads(self.permissions)

    check_writable = _Of("permissions")
    refusal = _Of("permissions")
    require = _Of("permissions")
    experiment_to_train_in = _Of("permissions")
    refusal_to_train = _Of("permissions")

    experiments = _Of("reads")
    comparable_runs = _Of("reads")
    runs = _Of("reads")
    run = _Of("reads")
    check_run = _Of("reads")
    experiment_of = _Of("reads")
    models = _Of("reads")
    checkpoints = _Of("reads")
    chart = _Of("reads")
    series = _Of("reads")
    entropy = _Of("reads")
    new_points = _Of("reads")
    value_at = _Of("reads")
    events = _Of("reads")
    snapshot_steps = _Of("reads")
    snapshot = _Of("reads")
    weights = _Of("reads")
    checkpoint_before = _Of("reads")
    samples = _Of("reads")
    embedding_range = _Of("reads")
    export = _Of("reads")

    control = _Of("changes")
    mark_failed = _Of("changes")
    save_model = _Of("changes")
    finish_save = _Of("changes")
    rename_model = _Of("changes")
    check_deletable = _Of("changes")
    delete_version = _Of("changes")

    training_uri = _Of("launches")
    start_training = _Of("launches")
    load_model = _Of("launches")
    follow_launch = _Of("launches")

    keep_upload = _Of("uploads")
