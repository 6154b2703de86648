"""Tracking-write: a Tracker that records a training run in MLflow.

The training thread only appends to in-memory buffers. A writer thread sends metrics with
``log_batch`` every ``flush_interval`` seconds (1 s), and stores each snapshot (``snapshots/``),
its sample as text (``samples/``) and its attention grid as a step image (``log_image``).
After a snapshot file is completely stored, a ``snapshot_bytes`` point is logged at its
step: readers list snapshots from that metric, so they never see a half-written file.
Checkpoints wait for the writer on disk, not in memory; each becomes an MLflow logged model of
the run's experiment, READY once its files are stored (readers list only READY ones), with the
losses at its step linked to it. The corpus is the run's dataset input, and MLflow's own
system-metrics logging records the machine and this process.

What is not sent yet waits in a ``spill.Backlog``, in the order it was logged: while the store
is unreachable the writer retries, and past ``spill.SPILL_BYTES`` of unsent data the backlog
moves it to the run's spool folder on disk, so memory stays bounded however long the outage;
once the store answers the writer sends the spilled data first, oldest first, then memory. If
the store is still down when the training ends, the folder gets the rest and the run's status,
for ``llmb runs sync``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time

from ..version import __version__
from ..store import compat as mlflow_compat
from ..formats import snapshot as snapshot_format
from . import spool
from .spill import SPILL_BYTES, Backlog, Batch, snapshot_size
from .spool import CHECKPOINT, SNAPSHOT, Artifact
from ..formats.attention_image import attention_grid
from .checkpoint_models import CheckpointModels, dataset_input
from ..errors import LLMBError
from ..library.control import end_run, heartbeat_tags, process_tags
from ..training.tracker import Control
from ..run_layout import (
    ATTENTION_IMAGE_KEY, CHARACTERS, CHECKPOINT_BYTES, CHECKPOINT_FILE, CHECKPOINT_LINKS, DATASET_TAG, DEFAULT_EXPERIMENT,
    HEARTBEAT_SECONDS, HEARTBEAT_TAG, IMAGE_DIR, KIND_TAG, NOTE_TAG, PARAM_DATASET, PARAM_PRESET, PRESET_TAG,
    SAMPLE_DIR, SNAPSHOT_BYTES, SOURCE_NAME_TAG, TOKENS, TOKENS_TAG, TRAINER_RUNNING, TRAINER_STATE_TAG, TRAINING_RUN, VERSION_TAG,
    VIEWER_PATH, VOCABULARY_FILE, sample_path, snapshot_path, weights_path,
)
from ..store.client import client, experiment_id, failure_line, first_line, store_errors
from ..training.tracker import RunDescription, Tracker

MAX_PARAMS_PER_BATCH = 100


def run_note(run_id: str, params: dict) -> str:
    """The run's description in MLflow's UI, linking to its view in ours."""
    return (f"LLMBreaker training: a {params.get('preset')} MicroGPT ({params.get('n_params', '?')} "
            f"parameters) on {params.get('dataset')}, {params.get('max_iters')} steps.\n\n"
            f"[Watch it learn in the LLMBreaker viewer]({VIEWER_PATH}?run={run_id}) (served here by "
            f"`mlflow server --app-name llmbreaker`; stand-alone: `llmb dash --run {run_id}`). "
            f"Samples are under `{SAMPLE_DIR}/`, attention grids under `{IMAGE_DIR}/`.")


class MlflowTracker(Tracker):
    wants_snapshots = True
    wants_checkpoints = True

    def __init__(self, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT,
                 flush_interval: float = 1.0, finish_timeout: float = 60.0, source: str | None = None,
                 system_metrics: float | None = None, pid: int | None = None,
                 spill_bytes: int = SPILL_BYTES):
        self.client = client(tracking_uri)
        self.pid = pid or os.getpid()  # the training's process, when this tracker runs in a helper
        self.uri = self.client.tracking_uri
        self.experiment = experiment
        self.source = source  # the command, as MLflow's UI shows a run's source
        self.system_metrics = system_metrics  # seconds between samples; None: not logged
        self._monitor = None
        self._models = CheckpointModels(self.client)
        self.flush_interval = flush_interval
        self.finish_timeout = finish_timeout
        self.run_id: str | None = None
        self.run_name: str | None = None
        self.last_error: str | None = None
        self.spill_bytes = spill_bytes
        self.backlog: Backlog | None = None  # what is unsent, once the run is known
        self._points_lock = threading.Lock()
        self._latest: dict[str, tuple[str, float, int, int]] = {}  # CHECKPOINT_LINKS key -> its latest point
        self._control = Control()
        self._reported_state: str | None = None
        self._last_heartbeat = time.monotonic()
        self.failed_writes, self.last_failure = 0, None  # passes that failed and were retried
        self._wanted_state: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pass_done = threading.Condition()
        self._writer: threading.Thread | None = None
        self._abandoned = False
        self._stopped_at = self._progress_at = 0.0  # when finish began; the last batch sent
        self._tmp = tempfile.TemporaryDirectory(prefix="llmb-snapshots-")
        self._vocabulary = None  # the run's, when its tokens are longer than a character

    def start(self, description: RunDescription) -> None:
        from mlflow.entities import Param

        params = description.params
        self._vocabulary = description.vocabulary
        tags = mlflow_compat.context_tags({
            KIND_TAG: TRAINING_RUN,
            VERSION_TAG: __version__,
            DATASET_TAG: str(params.get(PARAM_DATASET, "")),
            PRESET_TAG: str(params.get(PARAM_PRESET, "")),
            TOKENS_TAG: CHARACTERS if description.vocabulary is None or description.vocabulary.is_chars else TOKENS,
            **process_tags(self.pid),
            **heartbeat_tags(),
            **({SOURCE_NAME_TAG: self.source} if self.source else {}),
            **description.tags,
        })
        with store_errors(self.uri):
            exp_id = experiment_id(self.client, self.experiment)
            run = self.client.create_run(exp_id, run_name=description.run_name, tags=tags)
            self.run_id, self.run_name = run.info.run_id, run.info.run_name
            self.client.set_tag(self.run_id, NOTE_TAG, run_note(self.run_id, params))
            logged = [Param(k, str(v)) for k, v in params.items()]
            for i in range(0, len(logged), MAX_PARAMS_PER_BATCH):
                self.client.log_batch(self.run_id, params=logged[i:i + MAX_PARAMS_PER_BATCH])
            if description.dataset is not None:
                self.client.log_inputs(self.run_id, datasets=[dataset_input(description.dataset)])
            if description.vocabulary is not None and not description.vocabulary.is_chars:
                self.client.log_text(self.run_id, description.vocabulary.to_json(), VOCABULARY_FILE)
        self._models.describe(self.run_id, exp_id, description, tags)
        self._open_backlog(spool.spool_root() / self.run_id)
        self._start_writer()
        if self.system_metrics:
            self._monitor = mlflow_compat.start_system_metrics(
                self.run_id, self.uri, self.system_metrics, self.pid)

    def _open_backlog(self, folder, adopted: bool = False) -> None:
        self.backlog = Backlog(folder, self.run_id, self.uri, self.spill_bytes, adopted)

    def _start_writer(self) -> None:
        self._writer = threading.Thread(target=self._write_loop, name="llmb-mlflow-writer",
                                        daemon=True)
        self._writer.start()

    def log_metrics(self, step: int, metrics: dict[str, float], at_ms: int | None = None) -> None:
        """``at_ms``: when they were measured (ms since the epoch), if not now."""
        now = at_ms or int(time.time() * 1000)
        points = [(key, float(value), now, step) for key, value in metrics.items()]
        with self._points_lock:
            self._latest.update((p[0], p) for p in points if p[0] in CHECKPOINT_LINKS)
        self.backlog.add_points(points)

    def log_snapshot(self, snapshot) -> None:
        if snapshot.vocab is None and self._vocabulary is not None:  # sent without it by TrackingProcess
            snapshot = snapshot.with_vocab(self._vocabulary)
        self.backlog.add_artifact(Artifact(SNAPSHOT, snapshot.step, snapshot, snapshot_size(snapshot)))

    def log_checkpoint(self, step: int, payload: bytes) -> None:
        folder = os.path.join(self._tmp.name, f"checkpoint_{step:08d}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, CHECKPOINT_FILE)
        with open(path, "wb") as f:
            f.write(payload)
        with self._points_lock:
            links = list(self._latest.values())
        self._models.link(step, links)
        self.backlog.add_artifact(Artifact(CHECKPOINT, step, path, len(payload), links))

    def adopt(self, spooled: spool.Spooled) -> None:
        """Take over a run that ended with data unsent: send its spool folder (``finish`` ends
        the run). Each checkpoint's links are read with it."""
        self.run_id = spooled.run_id
        self._models.adopt(spooled.run_id)
        self._open_backlog(spooled.folder, adopted=True)
        self._start_writer()

    def control(self) -> Control:
        return self._control

    def wait_for_control(self, timeout: float) -> None:
        with self._pass_done:
            self._pass_done.wait(timeout)

    def report_state(self, state: str) -> None:
        if state != self._wanted_state:
            self._wanted_state = state
            self._wake.set()

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything logged so far is stored."""
        deadline = time.monotonic() + timeout
        with self._pass_done:
            while self._unsent():
                self._wake.set()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._writer or not self._writer.is_alive():
                    raise LLMBError(f"could not write to the tracking store {self.uri} "
                                    f"({self.last_error or 'timed out'})")
                self._pass_done.wait(remaining)

    def finish(self, status: str, failure: str | None = None) -> None:
        """Write everything still buffered, then close the run with ``status`` (``failure``: why
        it failed, kept as a tag). If the store stays unreachable for ``finish_timeout``
        seconds, what is unsent goes to the spool."""
        if self.run_id is None:
            return
        stopping = None
        if self._monitor is not None:  # its last samples are sent beside the writer's last pass
            stopping = threading.Thread(target=self._monitor.finish, daemon=True)
            stopping.start()
        self._stop.set()
        self._stopped_at = time.monotonic()
        self._wake.set()
        while self._writer is not None and self._writer.is_alive() and not self._gave_up():
            self._writer.join(1.0)
        try:
            if self._unsent() or (self._writer is not None and self._writer.is_alive()):
                self._spool_and_raise(status)
            if stopping is not None:  # the store answers, so they go in too (a helper exits after)
                stopping.join(self.finish_timeout)
            with store_errors(self.uri):
                end_run(self.client, self.run_id, status, failure)
        finally:
            if self.backlog is not None:
                self.backlog.close()
            self._tmp.cleanup()

    def _gave_up(self) -> bool:
        """The writer has sent nothing for ``finish_timeout`` seconds since the training ended
        (a long backlog still being sent keeps it going)."""
        return time.monotonic() - max(self._stopped_at, self._progress_at) > self.finish_timeout

    def _spool_and_raise(self, status: str) -> None:
        self._abandoned = True  # a writer stuck in a request sends nothing more
        try:
            folder = self.backlog.save(status)
            unsent = spool.load(folder)
        except OSError as exc:
            raise LLMBError(f"could not write to the tracking store {self.uri} "
                            f"({self.last_error or 'timed out'}) nor keep the unsent data of run "
                            f"{self.run_id} on disk ({first_line(exc)})") from None
        raise LLMBError(
            f"could not write to the tracking store {self.uri} ({self.last_error or 'timed out'}); "
            f"{unsent.describe()} of run {self.run_id} are kept in {folder}: send them with "
            f"`llmb runs sync` once the store is back")

    # -- writer thread -------------------------------------------------------------------

    def _write_loop(self) -> None:
        backoff = self.flush_interval
        while True:
            self._wake.wait(backoff)
            self._wake.clear()
            stopping = self._stop.is_set()
            if self._abandoned:
                return
            try:
                self._write_pending()
                self.last_error, backoff = None, self.flush_interval
            except Exception as exc:  # the store is down or refusing: keep data, retry
                self.last_error = self.last_failure = failure_line(exc)
                self.failed_writes += 1
                backoff = min(backoff * 2, 5.0)
            with self._pass_done:
                self._pass_done.notify_all()
            if stopping and (not self._unsent() or self._gave_up()):
                return

    def _unsent(self) -> int:
        return self.backlog.unsent() if self.backlog is not None else 0

    def _write_pending(self) -> None:
        """Send the backlog, oldest first, asking for the controllers' requests now and then.
        A pause or stop is published after the points logged before it, so a reader who sees
        ``paused`` sees every step up to the pause; ``running`` is published at once."""
        wanted = self._wanted_state
        if wanted == TRAINER_RUNNING:
            self._publish_state(wanted)
        self._exchange_control()
        asked = time.monotonic()
        while not self._abandoned and (batch := self.backlog.next()) is not None:
            sent = False
            try:
                self._send(batch)
                sent = True
            finally:
                self.backlog.done(batch, sent)
            self._progress_at = time.monotonic()
            if self._progress_at - asked >= self.flush_interval:
                self._exchange_control()
                asked = time.monotonic()
        if not self._abandoned:
            self._publish_state(wanted)

    def _send(self, batch: Batch) -> None:
        from mlflow.entities import Metric

        artifact = batch.artifact
        if artifact is None:
            self.client.log_batch(self.run_id, metrics=[Metric(*p) for p in batch.entries])
            return
        if artifact.kind == SNAPSHOT:
            metric, size = self._write_snapshot(artifact.step, artifact.item)
        else:
            if artifact.links:
                self._models.link(artifact.step, artifact.links)
            metric, size = self._write_checkpoint(artifact.step, artifact.item)
        # its marker, sent right after it: before anything logged later (a checkpoint after a
        # snapshot, say) is stored, so a reader lists what was logged in the order it was
        self.client.log_batch(self.run_id, metrics=[Metric(metric, size, int(time.time() * 1000), artifact.step)])

    def _exchange_control(self) -> None:
        """Send the heartbeat when due, and read the controllers' requests."""
        if time.monotonic() - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self.client.set_tag(self.run_id, HEARTBEAT_TAG, heartbeat_tags()[HEARTBEAT_TAG])
            self._last_heartbeat = time.monotonic()
        self._control = Control.from_tags(self.client.get_run(self.run_id).data.tags)

    def _publish_state(self, state: str | None) -> None:
        if state is not None and state != self._reported_state:
            self.client.set_tag(self.run_id, TRAINER_STATE_TAG, state)
            self._reported_state = state

    def _write_snapshot(self, step: int, snap) -> tuple[str, int]:
        if snap.weights:  # before the snapshot: a listed snapshot's weights are there too
            self._log_bytes(snap.weights, weights_path(snap.step))
        data = snapshot_format.encode(snap)
        self.client.log_text(self.run_id, sample_text(snap), sample_path(snap.step))
        if snap.n_layer:  # (a model recorded through a view may show no attention)
            self.client.log_image(self.run_id, attention_grid(snap.attention), key=ATTENTION_IMAGE_KEY,
                                  step=snap.step, synchronous=True)
        self._log_bytes(data, snapshot_path(snap.step))
        return SNAPSHOT_BYTES, len(data)

    def _log_bytes(self, data: bytes, artifact_path: str) -> None:
        path = os.path.join(self._tmp.name, os.path.basename(artifact_path))
        with open(path, "wb") as f:
            f.write(data)
        self.client.log_artifact(self.run_id, path, os.path.dirname(artifact_path))
        os.remove(path)

    def _write_checkpoint(self, step: int, checkpoint_file: str) -> tuple[str, int]:
        size = os.path.getsize(checkpoint_file)
        with tempfile.TemporaryDirectory(dir=self._tmp.name) as folder:
            self._models.store(step, checkpoint_file, folder)
        return CHECKPOINT_BYTES, size  # the backlog removes the file


def sample_text(snap) -> str:
    return f"step {snap.step} (temperature {snap.temperature:g})\n\n{snap.prompt}{snap.sample}\n"


def send_spooled(folder, tracking_uri: str | None = None, finish_timeout: float = 60.0) -> spool.Spooled:
    """Send a spool folder's data to its run (at ``tracking_uri`` if given, else where the run
    was), end the run with its status and remove the folder. If the store is still down, the
    data stays in the folder and the one-line LLMBError says so."""
    import shutil

    from ..store.client import check_reachable

    spooled = spool.load(folder)
    check_reachable(tracking_uri or spooled.tracking_uri)
    tracker = MlflowTracker(tracking_uri or spooled.tracking_uri, finish_timeout=finish_timeout)
    tracker.adopt(spooled)
    tracker.finish(spooled.status)
    shutil.rmtree(folder, ignore_errors=True)
    return spooled
