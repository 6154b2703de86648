"""bfloat16 mixed precision: chosen where the hardware has it, float32 where it counts."""

import pytest
import torch
import torch.nn.functional as F

from llmb_mlflow import precision
from llmb_mlflow.corpus import prepare_dataset
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.model import causal_attention
from llmb_mlflow.trainer import Trainer

from conftest import tiny_config


def test_auto_is_bf16_only_where_the_device_multiplies_it_natively():
    assert precision.resolve("auto", "cpu") == ("bf16" if torch.cpu._is_amx_tile_supported() else "fp32")
    if not torch.cuda.is_available():
        assert precision.resolve("auto", "cuda") == "fp32"
        with pytest.raises(LLMBError, match="--precision bf16: this GPU"):
            precision.resolve("bf16", "cuda")
    assert precision.resolve("fp32", "cpu") == "fp32" and precision.resolve("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="'fp16'"):
        precision.resolve("fp16", "cpu")


def test_attention_runs_in_float32_on_a_cpu_under_bf16_autocast():
    q, k, v = torch.randn(3, 2, 4, 10, 8).to(torch.bfloat16)
    with precision.compute("bf16", "cpu"):
        y = causal_attention(q, k, v)
    assert y.dtype == torch.float32
    assert torch.equal(y, F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True))


def trained(shakespeare, choice, steps=40):
    config = tiny_config(max_iters=steps, lr=3e-3, warmup=5)
    trainer = Trainer(config, prepare_dataset(shakespeare, config.model.block_size), "cpu", choice)
    losses = [trainer.train_step()["train_loss"] for _ in range(steps)]
    return trainer, losses


def test_a_bf16_training_keeps_float32_weights_learns_like_fp32_and_repeats_exactly(shakespeare):
    bf16, bf16_losses = trained(shakespeare, "bf16")
    fp32, fp32_losses = trained(shakespeare, "fp32")
    assert bf16.precision == "bf16" and bf16.describe()["precision"] == "bf16"
    assert fp32.describe()["precision"] == "fp32"
    state = bf16.optimizer.state_dict()["state"]
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    assert all(s["exp_avg"].dtype == torch.float32 for s in state.values())
    assert bf16_losses[-1] < bf16_losses[0] - 0.5
    assert abs(bf16_losses[-1] - fp32_losses[-1]) < 0.1  # same batches, same start
    assert abs(bf16.evaluate()["val_loss"] - fp32.evaluate()["val_loss"]) < 0.1
    assert trained(shakespeare, "bf16")[1] == bf16_losses  # deterministic, as resuming needs


def test_a_bad_precision_is_one_line_naming_the_flag(llmb):
    for command in ("train", "resume bard"):
        result = llmb(*command.split(), "--precision", "fp16")
        assert result.code == 2 and len(result.err.splitlines()) == 1
        assert "Invalid value for '--precision': 'fp16' is not one of 'auto', 'fp32', 'bf16'" in result.err
