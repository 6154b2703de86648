"""``llmb models``, ``llmb resume`` and ``llmb generate``: the model library commands."""

from __future__ import annotations

import time

import click

from .options import (
    OUTPUT, SettingsCommand, echo_table, fmt_loss, max_params_option, report,
    precision_option, run_options, setting_options, tracking_uri_option,
)
from ..training.corpus import BUNDLED

REF_HELP = "MODEL_REF is NAME (latest version), NAME/VERSION, NAME@ALIAS or models:/NAME/VERSION."


def _library(tracking_uri):
    from ..library.registry import ModelLibrary

    return ModelLibrary(tracking_uri)


@click.group()
def models():
    """The model library: checkpoints registered in the MLflow Model Registry."""


@models.command("save")
@click.argument("run_id")
@click.option("--name", required=True, help="Registered model name (no '/', ':' or '@').")
@click.option("--step", type=int, help="Checkpoint step to register.  [default: the latest]")
@tracking_uri_option
def models_save(run_id, name, step, tracking_uri):
    """Register a run's checkpoint as a new version of model NAME."""
    version = _library(tracking_uri).save(run_id, name, step)
    if version.already:
        click.echo(f"Step {version.step} of run {run_id} is already saved as {version.ref} (models:/{version.ref}); "
                   "nothing new was registered.")
    else:
        click.echo(f"Saved step {version.step} of run {run_id} as {version.ref} (models:/{version.ref}).")


@models.command("list")
@tracking_uri_option
def models_list(tracking_uri):
    """LLMBreaker models and their versions, newest first."""
    listing = _library(tracking_uri).models()
    if not listing:
        click.echo("No LLMBreaker models yet (save one with 'llmb models save RUN_ID --name NAME').")
        return
    rows = [("NAME", "VERSION", "STEP", "TRAIN LOSS", "VAL LOSS", "ALIASES", "DATASET", "CREATED")]
    for name, versions in listing:
        for v in versions:
            rows.append((name, v.version, v.step, fmt_loss(v.train_loss), fmt_loss(v.val_loss),
                         ",".join(v.aliases) or "-", v.dataset,
                         time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created / 1000))))
    echo_table(rows)


@models.command("rename")
@click.argument("name")
@click.argument("new_name")
@tracking_uri_option
def models_rename(name, new_name, tracking_uri):
    """Rename model NAME to NEW_NAME (its versions and aliases move with it)."""
    _library(tracking_uri).rename(name, new_name)
    click.echo(f"Renamed {name} to {new_name}.")


@models.command("delete")
@click.argument("name")
@click.option("--version", help="Delete only this version.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@tracking_uri_option
def models_delete(name, version, yes, tracking_uri):
    """Delete model NAME or one of its versions from the registry (a model goes with its last
    version).

    Only registry entries are deleted: the checkpoint files stay in the training runs that
    wrote them, so the same checkpoint can be saved again; deleting a run (in mlflow ui) and
    running 'mlflow gc' frees the disk space."""
    library = _library(tracking_uri)
    what = f"version {version} of model {name}" if version else f"model {name} and all its versions"
    library.resolve(f"{name}/{version}" if version else name)
    if version and len(library.versions(name)) == 1:
        what += " (its last version: the model goes with it)"
    if not yes:
        click.confirm(f"Delete {what}?", abort=True)
    model_gone = library.delete(name, version)
    click.echo(f"Deleted version {version} of model {name}; it was the last, so model {name} is gone too."
               if version and model_gone else f"Deleted {what}.")


@models.command("alias")
@click.argument("name")
@click.argument("version")
@click.argument("alias")
@tracking_uri_option
def models_alias(name, version, alias, tracking_uri):
    """Point ALIAS, such as best, at VERSION of model NAME; use it as NAME@ALIAS."""
    _library(tracking_uri).alias(name, version, alias)
    click.echo(f"{name}@{alias} now points to version {version}.")


@click.command(cls=SettingsCommand, epilog=REF_HELP)
@click.argument("model_ref")
@click.option("--dataset", metavar="NAME|PATH",
              help=f"Corpus to continue on ({', '.join(BUNDLED)} or a file).  [default: the checkpoint's]")
@setting_options(inherited=True)
@run_options
@precision_option(inherited=True)
@max_params_option
@click.option("--viewer-limits", is_flag=True, hidden=True,
              help="Refuse what a training started from a viewer may not do (see llmb_mlflow.launch.limits).")
def resume(model_ref, dataset, experiment, run_name, tracking_uri, register, no_system_metrics, threads,
           precision, max_params, viewer_limits, **overrides):
    """Continue training a saved model in a new run linked to its source.

    Weights, optimizer state and step are restored; the new run's steps continue after the
    checkpoint's. Training settings may change; the model's shape may not."""
    from .. import session
    from ..training.trainer import Trainer

    plan = session.prepare_resume(model_ref, dataset, overrides, tracking_uri, viewer_limits, max_params)
    with session.data_parallel() as parallel:
        trainer = Trainer.from_checkpoint(plan.state, plan.config, plan.data, device=session.device(parallel),
                                          precision_choice=precision)  # None: the checkpoint's
        tracking = session.Tracking(plan.uri, experiment, register, "llmb resume", not no_system_metrics)
        report(session.run(trainer, tracking, run_name or plan.run_name,
                           tags=plan.tags, parallel=parallel, out=OUTPUT, threads=threads), register)


@click.command(cls=SettingsCommand, epilog=REF_HELP)
@click.argument("model_ref")
@click.option("--prompt", required=True, help="Text to continue.")
@click.option("--max-new-tokens", type=int, default=200, show_default=True)
@click.option("--temperature", type=float, default=0.8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@max_params_option
@tracking_uri_option
def generate(model_ref, prompt, max_new_tokens, temperature, seed, max_params, tracking_uri):
    """Print a saved model's continuation of a prompt."""
    from ..training.checkpoint import build_model
    from ..training.generate import generate as continue_text

    _, state = _library(tracking_uri).checkpoint(model_ref, max_params, "--max-params")
    model, tokenizer = build_model(state)
    click.echo(prompt + continue_text(model, tokenizer, prompt, max_new_tokens, temperature, seed))
