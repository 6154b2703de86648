"""The Token Playground's server time per next character, the model swap included.

    python bench/playground.py [--steps 40] [--warm 3] [--train 3]

Builds, in a fresh sqlite store, a real `medium` run with `--steps` evaluation steps, each with
its snapshot and weights (`--train` training steps between them, captured as bench/viewer.py
does), and times the playground's callback through Dash's real endpoint (Flask's test client):

- swap, cold: the scrubber moves to a step not shown before (the step's weights read from the
  artifact store, decoded, loaded into the model), and the bars are drawn;
- warm: Step at the shown step (one character drawn, then the bars), `--warm` times per step;
- swap, revisited: back to a step shown before (its weights decoded already).

Target: next-character p95 <= 50 ms server time including the swap. Then where a cold swap's
time goes, and the stored weights per evaluation step of every preset, measured from the files
of a short run of each (a few training steps before each evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from viewer import Endpoint, p95  # noqa: E402  (bench/viewer.py)

from llmb_mlflow.training.config import PRESETS, build_config  # noqa: E402
from llmb_mlflow.training.corpus import load_corpus, prepare_dataset  # noqa: E402
from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker  # noqa: E402
from llmb_mlflow.training.tracker import RunDescription  # noqa: E402
from llmb_mlflow.training.trainer import Trainer  # noqa: E402

TARGET_MS = 50


def weights_run(uri: str, corpus: str, preset: str, evaluations: int, train: int) -> tuple[str, list[int]]:
    """A run of ``preset`` with ``evaluations`` snapshots (weights included), ``train`` real
    training steps before each but the first; its id and its snapshot steps."""
    config = build_config(preset, max_iters=train * evaluations)
    trainer = Trainer(config, prepare_dataset(corpus, config.model.block_size))
    tracker = MlflowTracker(uri)
    tracker.start(RunDescription(params=trainer.describe()))
    tracker.wants_checkpoints = False
    steps = [train * i for i in range(evaluations)]
    for step in steps:
        for _ in range(train if step else 0):
            loss = trainer.train_step()["train_loss"]
        tracker.log_metrics(step, {"train_loss": loss} if step else {})
        tracker.log_snapshot(trainer.probe.capture(trainer.model, step))
    tracker.finish("FINISHED")
    return tracker.run_id, steps


class Playground:
    """The page's side of the playground: its moves, the state the server returned, the view."""

    def __init__(self, endpoint: Endpoint, run_id: str, steps: list[int]):
        self.endpoint, self.steps = endpoint, steps
        self.run_state = {"run_id": run_id, "status": "FINISHED", "max_iters": steps[-1], "last_step": steps[-1],
                          "last_train": steps[-1], "last_val": steps[-1], "ema": 2.0, "smoothing": 0.6}
        self.moves = {"prompt": "ROMEO:", "seed": 0, "turn": 0, "moves": []}
        self.state = {"text": "ROMEO:", "turn": 0, "done": 0}
        self.step = steps[0]

    def request(self, changed: str) -> float:
        elapsed, body = self.endpoint.call(
            "..pg-state.data", {"pg-moves": self.moves, "pg-temperature": 1.0, "tabs": "playground",
                                "view": {"live": False, "playing": False, "step": self.step}},
            {"pg-state": self.state, "run-state": self.run_state, "steps": self.steps}, changed)
        answer = json.loads(body)["response"]
        if answer["pg-error"]["children"]:
            raise RuntimeError(answer["pg-error"]["children"])
        self.state = answer["pg-state"]["data"]
        return elapsed

    def swap(self, step: int) -> float:
        self.step = step
        return self.request("view.data")

    def next_character(self) -> float:
        self.moves = {**self.moves, "moves": self.moves["moves"] + [-1]}
        return self.request("pg-moves.data")


def where_the_time_goes(data, run_id: str, steps: list[int]) -> str:
    """A cold swap's parts, outside Dash: read, decode, load into the model, one forward pass."""
    from dash_app.panels.playground import load_into, next_probabilities
    from llmb_mlflow.training import weights
    from llmb_mlflow.training.model import MicroGPT
    from llmb_mlflow.run_layout import weights_path

    parts = {"read": [], "decode": [], "load_state_dict": [], "forward (128 chars)": []}
    model = None
    for step in steps:
        started = time.perf_counter()
        raw = data.reader.artifact_bytes(run_id, weights_path(step))
        read = time.perf_counter()
        config, state = weights.decode(raw)
        decoded = time.perf_counter()
        model = model or MicroGPT(config).eval()
        built = time.perf_counter()
        load_into(model, state)
        loaded = time.perf_counter()
        next_probabilities(model, [1] * config.block_size, 1.0)
        done = time.perf_counter()
        for name, (a, b) in zip(parts, ((started, read), (read, decoded), (built, loaded), (loaded, done))):
            parts[name].append(b - a)
    return ", ".join(f"{name} {statistics.median(t) * 1e3:.1f}" for name, t in parts.items()) + " ms (medians)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="evaluation steps of the medium run")
    parser.add_argument("--warm", type=int, default=3, help="Step requests at each step")
    parser.add_argument("--train", type=int, default=3, help="training steps between evaluations")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="llmb-bench-")
    os.chdir(folder)
    uri = f"sqlite:///{folder}/mlflow.db"
    corpus = load_corpus("shakespeare")
    print(f"building a medium run with {args.steps} evaluation steps...", flush=True)
    run_id, steps = weights_run(uri, corpus, "medium", args.steps, args.train)

    from dash_app.app import create_app

    app = create_app(uri)
    page = Playground(Endpoint(app), run_id, steps)
    order = random.Random(0).sample(steps, len(steps))
    page.swap(order[0])  # the first request imports torch and builds the model: not timed
    cold, warm, revisited = [], [], []
    for step in order[1:]:
        cold.append(page.swap(step))
        warm.extend(page.next_character() for _ in range(args.warm))
    for step in random.Random(1).sample(steps, len(steps)):
        revisited.append(page.swap(step))
        warm.append(page.next_character())
    print(f"{len(page.state['text'])} characters written")
    for label, times in (("warm (Step at the shown step)", warm), ("swap, cold (a step not shown before)", cold),
                         ("swap, revisited", revisited), ("all requests", warm + cold + revisited)):
        print(f"{label:38s} n={len(times):3d}  p50 {statistics.median(times) * 1e3:5.1f} ms  "
              f"p95 {p95(times) * 1e3:5.1f} ms  (target p95 <= {TARGET_MS} ms: "
              f"{'met' if p95(times) * 1e3 <= TARGET_MS else 'MISSED'})")
    from dash_app.data import ViewerData

    print("where a cold swap's time goes:", where_the_time_goes(ViewerData(uri), run_id, steps))

    print("stored weights per evaluation step (files of a 3-evaluation run of each preset):")
    from llmb_mlflow.library.reader import RunReader
    from llmb_mlflow.run_layout import weights_path

    reader = RunReader(uri)
    for preset in PRESETS:
        preset_run, preset_steps = weights_run(uri, corpus, preset, 3, 2)
        sizes = [len(reader.artifact_bytes(preset_run, weights_path(s))) for s in preset_steps]
        bound = "  (bound <= 0.5 MB)" if preset == "medium" else ""
        print(f"  {preset:7s} {max(sizes) / 2**20:.3f} MB max, {statistics.mean(sizes) / 2**20:.3f} MB mean{bound}")


if __name__ == "__main__":
    main()
