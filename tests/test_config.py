import re
from pathlib import Path

import pytest

from llmb_mlflow.training.config import DEFAULT_PRESET, PRESETS, SettingError, build_config
from llmb_mlflow.errors import LLMBError

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_readmes_preset_table_is_what_the_presets_build():
    """README: | preset | layers | heads | embedding | context | parameters | (on Shakespeare)."""
    from llmb_mlflow.training.model import MicroGPT

    rows = re.findall(r"^ *\| `(\w+)`([^|]*) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) K \|$", README, re.M)
    assert [row[0] for row in rows] == list(PRESETS)
    for name, default, layers, heads, width, context, thousands in rows:
        config = build_config(name)
        model = config.model
        assert (model.n_layer, model.n_head, model.n_embd, model.block_size) == tuple(
            map(int, (layers, heads, width, context)))
        assert ("(default)" in default) == (name == DEFAULT_PRESET)
        parameters = MicroGPT(type(model)(**{**vars(model), "vocab_size": 65})).num_parameters()
        shown = round(parameters / 1000) if parameters < 100_000 else round(parameters / 10_000) * 10
        assert shown == int(thousands), (name, parameters)


def test_the_readmes_training_defaults_are_the_defaults():
    text = " ".join(README[README.index("**Training defaults**"):].split("\n\n")[0].split())
    train = build_config().train
    def sci(value):  # 1e-3, as the README writes it
        return f"{value:.0e}".replace("e-0", "e-")

    expected = (f"batch {train.batch_size}, {train.max_iters:,} steps, AdamW with learning rate "
                f"{sci(train.lr)} ({train.warmup} warm-up steps, then cosine decay to {sci(train.final_lr)}), "
                f"gradient clipping at {train.grad_clip}, an evaluation every {train.eval_interval} "
                f"steps over {train.eval_iters} batches, samples at temperature {train.temperature}, "
                f"seed {train.seed}")
    assert expected in text, text


def test_overrides_replace_preset_values_and_none_is_ignored():
    config = build_config("baby", n_layer=2, dropout=0.1, lr=3e-4, batch_size=None)
    assert config.model.n_layer == 2 and config.model.n_embd == 128
    assert config.model.dropout == 0.1
    assert config.train.lr == 3e-4 and config.train.batch_size == 64


def test_params_list_every_setting():
    params = build_config("small").as_params()
    for key in ("preset", "n_layer", "n_head", "n_embd", "block_size", "dropout", "batch_size",
                "max_iters", "lr", "min_lr", "warmup", "grad_clip", "eval_interval", "eval_iters",
                "temperature", "seed", "dataset"):
        assert key in params
    assert build_config("small", lr=3e-3).as_params()["min_lr"] == 3e-4  # not 0.00030000000000000003


@pytest.mark.parametrize("overrides, message", [
    (dict(lr=0), "lr must be in (0, 1]"),
    (dict(lr=-1e-3), "lr must be in (0, 1]"),
    (dict(n_embd=30, n_head=4), "divisible by n_head"),
    (dict(eval_interval=0), "eval_interval must be between 1"),
    (dict(max_iters=0), "max_iters must be between 1"),
    (dict(batch_size=0), "batch_size must be between 1"),
    (dict(block_size=1), "block_size must be between 2"),
    (dict(dropout=1.0), "dropout must be in [0, 1)"),
    (dict(dropout=-0.1), "dropout must be in [0, 1)"),
    (dict(temperature=0), "temperature must be in (0, 10]"),
    (dict(warmup=-5), "warmup must be between 0"),
    (dict(eval_iters=0), "eval_iters must be between 1"),
    (dict(n_layer=0), "n_layer must be between 1"),
    (dict(seed=-1), "seed must be between 0"),
    (dict(n_head=2.5), "n_head must be an integer"),
    (dict(activation="tanh"), "activation must be one of gelu, relu"),
    (dict(min_lr=1.0), "min_lr must be in [0, lr="),
])
def test_bad_settings_get_one_line_errors(overrides, message):
    with pytest.raises(LLMBError) as error:
        build_config("small", **overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_setting_error_names_each_setting_it_involves_as_its_reader_calls_it():
    with pytest.raises(SettingError) as error:
        build_config("small", n_head=5)
    found = error.value
    assert (found.setting, found.others, found.problem) == ("n_embd", ("n_head",), "(32) must be divisible by n_head (5)")
    assert found.named(str.upper) == "N_EMBD (32) must be divisible by N_HEAD (5)" and str(found) == found.named(str)
    with pytest.raises(SettingError) as error:  # a value is never taken for a setting
        build_config("small", activation="{n_head}")
    assert error.value.named(str.upper) == "ACTIVATION must be one of gelu, relu, got '{n_head}'"


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(LLMBError, match="unknown preset 'huge'; choose one of: small, medium, large, baby, demo"):
        build_config("huge")


def test_a_checkpoints_settings_and_a_presets_take_overrides_alike():
    from llmb_mlflow.training.checkpoint import run_config
    from llmb_mlflow.training.config import SETTINGS

    state = {"preset": "small", "model_config": {**PRESETS["small"], "vocab_size": 65},
             "train_config": {"lr": 3e-4, "seed": 7, "dropped_long_ago": 1}}
    resumed = run_config(state, seed=None, max_iters=50, dropout=0.1)
    built = build_config("small", lr=3e-4, seed=7, max_iters=50, dropout=0.1)
    assert resumed.train == built.train and resumed.model == type(built.model)(**{**vars(built.model), "vocab_size": 65})
    for merged in (lambda **given: run_config(state, **given), lambda **given: build_config("small", **given)):
        with pytest.raises(LLMBError, match=r"^unknown setting\(s\): bogus, vocab_size$"):
            merged(bogus=1, vocab_size=65)
    assert "vocab_size" not in SETTINGS


def test_every_setting_the_cli_or_the_viewer_offers_says_what_it_is():
    from dash_app.panels.training import FORM
    from llmb_mlflow.cli.options import SETTING_OPTIONS
    from llmb_mlflow.training.config import SETTINGS

    assert all(SETTINGS[name].help for name in SETTING_OPTIONS)
    assert all(setting.label for setting in FORM) and len({s.label for s in FORM}) == len(FORM)
