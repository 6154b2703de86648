"""bfloat16 mixed precision: chosen where the hardware has it, float32 where it counts."""

import pytest
import torch
import torch.nn.functional as F

from llmb_mlflow.training import checkpoint, precision
from llmb_mlflow.training.corpus import prepare_dataset
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.training.model import causal_attention
from llmb_mlflow.training.trainer import Trainer

from conftest import tiny_config


def test_auto_is_bf16_only_where_the_device_multiplies_it_natively(monkeypatch):
    for native, chosen in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(precision, "native_bf16", lambda device: native)
        assert precision.resolve("auto", "cpu") == chosen
        # resuming keeps the checkpoint's, but not bf16 where it would be emulated
        assert precision.resumed("bf16", "cpu") == ("bf16" if native else "auto")
        assert precision.resumed("fp32", "cpu") == "fp32" and precision.resumed(None, "cpu") == "auto"
    monkeypatch.undo()
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
    in_float32 = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    assert y.dtype == torch.bfloat16 and torch.equal(y, in_float32.to(torch.bfloat16))
    assert not torch.equal(y, F.scaled_dot_product_attention(q, k, v, is_causal=True))  # bf16 throughout differs


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
    x, _ = bf16.batch("val", 2, torch.Generator().manual_seed(0))
    with bf16.computing():
        assert bf16.model(x)[0].dtype == torch.bfloat16  # the products really ran in bf16
    with fp32.computing():
        assert fp32.model(x)[0].dtype == torch.float32
    saved = checkpoint.load(checkpoint.dump(bf16))
    assert saved["precision"] == "bf16"
    assert all(t.dtype == torch.float32 for t in saved["model"].values())
    assert all(t.dtype == torch.float32 for s in saved["optimizer"]["state"].values()
               for t in s.values() if t.is_floating_point() and t.dim())
    assert bf16_losses != fp32_losses
    assert bf16_losses[-1] < bf16_losses[0] - 0.5
    assert abs(bf16_losses[-1] - fp32_losses[-1]) < 0.1  # same batches, same start
    assert abs(bf16.evaluate()["val_loss"] - fp32.evaluate()["val_loss"]) < 0.1
    assert trained(shakespeare, "bf16")[1] == bf16_losses  # deterministic, as resuming needs


def test_a_bad_precision_is_one_line_naming_the_flag(llmb):
    for command in ("train", "resume bard"):
        result = llmb(*command.split(), "--precision", "fp16")
        assert result.code == 2 and len(result.err.splitlines()) == 1
        assert "Invalid value for '--precision': 'fp16' is not one of 'auto', 'fp32', 'bf16'" in result.err


def test_a_resumed_training_continues_in_its_checkpoints_precision(shakespeare, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    for saved in ("fp32", "bf16"):
        trainer, _ = trained(shakespeare, saved, steps=3)
        state = checkpoint.load(checkpoint.dump(trainer))
        assert Trainer.from_checkpoint(state, trainer.config, trainer.dataset, "cpu").precision == saved
        assert Trainer.from_checkpoint(state, trainer.config, trainer.dataset, "cpu", "fp32").precision == "fp32"
