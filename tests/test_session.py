"""A training as the commands run it, called without a terminal: what it says, how it ends,
and a stop asked for between two steps."""

from llmb_mlflow import session
from llmb_mlflow.training.corpus import prepare_dataset
from llmb_mlflow.training.trainer import Trainer

from conftest import tiny_config


def tiny_trainer(shakespeare, **overrides):
    config = tiny_config(**overrides)
    return Trainer(config, prepare_dataset(shakespeare, config.model.block_size), device="cpu")


def test_a_tracked_training_runs_to_its_end_and_says_where_it_logs(store_uri, shakespeare):
    said, warned = [], []
    trainer = tiny_trainer(shakespeare, max_iters=12)
    outcome = session.run(trainer, session.Tracking(store_uri, "sessions"), "a-session",
                          out=session.Output(said.append, warned.append))
    assert not outcome.stopped and outcome.step == 12 and outcome.experiment == "sessions"
    assert outcome.run_name == "a-session" and set(outcome.losses) == {"val_loss", "eval_train_loss"}
    assert said[0].startswith("Training small MicroGPT") and warned == []
    assert said[1].startswith(f"{session.RUN_ANNOUNCEMENT} {outcome.run_id} (a-session) at ")
    version = session.register(outcome, "from-a-session")
    assert (version.ref, version.step) == ("from-a-session/1", 12)


def test_a_stop_asked_for_ends_the_training_after_its_step_as_interrupted(shakespeare):
    said, warned = [], []
    trainer = tiny_trainer(shakespeare, max_iters=10_000)
    trainer.request_stop()  # what Ctrl-C does: finish the step, then stop
    outcome = session.run(trainer, None, out=session.Output(said.append, warned.append))
    assert outcome.stopped and outcome.interrupted and outcome.run_id is None
    assert (outcome.uri, outcome.experiment, outcome.default_store) == (None, None, False)
    assert outcome.step < 10_000 and warned == [f"Stopped at step {outcome.step}."]
