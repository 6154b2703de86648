"""Registered versions as real MLflow models: a pyfunc that writes text.

Each checkpoint is stored as an MLflow model directory (``MLmodel``, the model code file
``pyfunc_code.py`` and ``artifacts/checkpoint.pt``), written with MLflow's "models from code",
so loading it executes only this package's code, never a pickle.

    mlflow.pyfunc.load_model("models:/NAME/1").predict(["ROMEO:"],
        params={"max_new_tokens": 200, "temperature": 0.8, "seed": 0})

returns one continuation (without the prompt) per input string. Loading refuses, in one line, a
checkpoint whose model has more than ``$LLMB_MAX_PARAMS`` parameters (default 100 M: see
``shapes``) or does not fit its own settings, before building the model.
"""

from __future__ import annotations

import os
import warnings

import mlflow.pyfunc

from .version import __version__
from .store import compat as mlflow_compat

CHECKPOINT_ARTIFACT = "checkpoint"
DEFAULT_PARAMS = {"max_new_tokens": 200, "temperature": 0.8, "seed": 0}
CODE_FILE = os.path.join(os.path.dirname(__file__), "pyfunc_code.py")
REQUIREMENTS = {"llmb-mlflow": f"=={__version__}", "torch": ">=2.2,<3", "numpy": ""}  # and MLflow's own
REQUIREMENT_MODULES = {package.replace("-", "_"): [package] for package in REQUIREMENTS}


class _Model:
    def load_context(self, context):
        from .training import checkpoint, shapes

        path = context.artifacts[CHECKPOINT_ARTIFACT]
        label, max_params = _label(path), shapes.env_max_params()
        allow_more = f"{shapes.MAX_PARAMS_ENV}=N"
        with open(path, "rb") as f:
            shapes.check_checkpoint_size(os.fstat(f.fileno()).st_size, label, max_params, allow_more)
            state = checkpoint.load(f.read(), label, max_params, allow_more)
        self.model, self.tokenizer = checkpoint.build_model(state)

    def predict(self, context, model_input, params=None):
        from .training.generate import generate

        settings = {**DEFAULT_PARAMS, **(params or {})}
        return [generate(self.model, self.tokenizer, prompt, int(settings["max_new_tokens"]),
                         float(settings["temperature"]), int(settings["seed"]))
                for prompt in _prompts(model_input)]


with warnings.catch_warnings():  # MLflow asks for type hints, which would drop our params schema
    warnings.simplefilter("ignore", UserWarning)
    LLMBreakerModel = type("LLMBreakerModel", (_Model, mlflow.pyfunc.PythonModel),
                           {"__module__": __name__, "__doc__": "LLMBreaker's pyfunc model."})


def _label(checkpoint_file: str) -> str:
    """The checkpoint named by the logged model and run its MLmodel (beside ``artifacts/``) names."""
    from mlflow.models import Model

    try:
        meta = Model.load(os.path.dirname(os.path.dirname(checkpoint_file)))
    except Exception:  # a model directory without a readable MLmodel: named generically
        return "the model's checkpoint"
    return f"the checkpoint of logged model {meta.model_id} (run {meta.run_id})"


def _prompts(model_input) -> list[str]:
    if isinstance(model_input, str):
        return [model_input]
    if hasattr(model_input, "iloc"):  # a pandas DataFrame or Series: the first column
        column = model_input.iloc[:, 0] if model_input.ndim == 2 else model_input
        return [str(v) for v in column]
    return [str(v) for v in model_input]


def save(model_dir: str, checkpoint_file: str, model_id: str | None = None, run_id: str | None = None) -> None:
    """Write an MLflow pyfunc model directory around ``checkpoint_file``; its MLmodel names the
    logged model and run it belongs to."""
    from mlflow.models import Model, infer_signature

    signature = infer_signature(["ROMEO:"], ["continuation"], params=DEFAULT_PARAMS)
    with warnings.catch_warnings(), mlflow_compat.requirement_modules(REQUIREMENT_MODULES):
        warnings.simplefilter("ignore", UserWarning)  # MLflow nags about input examples we skip
        mlflow.pyfunc.save_model(
            model_dir,
            python_model=CODE_FILE,
            artifacts={CHECKPOINT_ARTIFACT: checkpoint_file},
            signature=signature,
            pip_requirements=[package + version for package, version in REQUIREMENTS.items()],
            mlflow_model=Model(run_id=run_id, model_id=model_id, model_uuid=model_id),
        )
