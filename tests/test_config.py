import pytest

from llmb_mlflow.config import PRESETS, build_config
from llmb_mlflow.errors import LLMBError


def test_presets_match_their_documented_sizes():
    assert PRESETS["small"] == dict(n_embd=32, n_layer=3, n_head=4, block_size=96)
    assert PRESETS["medium"] == dict(n_embd=64, n_layer=4, n_head=4, block_size=128)
    assert PRESETS["large"] == dict(n_embd=96, n_layer=6, n_head=6, block_size=256)
    assert PRESETS["baby"] == dict(n_embd=128, n_layer=4, n_head=4, block_size=64)


def test_defaults_are_medium_with_documented_training_settings():
    config = build_config()
    assert config.preset == "medium"
    assert (config.model.n_embd, config.model.n_layer, config.model.block_size) == (64, 4, 128)
    t = config.train
    assert (t.batch_size, t.max_iters, t.lr, t.warmup, t.grad_clip) == (64, 5000, 1e-3, 100, 1.0)
    assert (t.eval_interval, t.eval_iters, t.temperature) == (100, 20, 0.8)
    assert t.final_lr == pytest.approx(1e-4)


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


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(LLMBError, match="unknown preset 'huge'; choose one of: small, medium, large, baby"):
        build_config("huge")
