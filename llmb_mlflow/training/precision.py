"""The arithmetic a training computes in: float32 throughout, or bfloat16 mixed precision.

Mixed precision (``torch.autocast``) runs the matrix products in bfloat16 and keeps the weights,
gradients, optimizer state, norms and the loss in float32, as nanoGPT does on GPUs. It pays
where the hardware multiplies bfloat16 natively: on a CPU with AMX tiles (measured on 2 cores,
nanoGPT's CPU model: matrix products 3.4x as fast, a training step 0.75x the time) or a CUDA
GPU that supports it. Elsewhere bfloat16 is emulated and slower, so ``auto`` keeps float32.
"""

from __future__ import annotations

import contextlib

import torch

from .config import PRECISIONS
from ..errors import LLMBError


def native_bf16(device: str) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (GPUs from Ampere on;
    ``torch.cuda.is_bf16_supported`` also says yes where it is only emulated)."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.get_device_capability(torch.device(device))[0] >= 8
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a PyTorch without the check
        return False


def resolve(precision: str, device: str) -> str:
    """``fp32`` or ``bf16``: ``auto`` is bf16 where the device multiplies it natively."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and device.startswith("cuda") and not (
            torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        raise LLMBError(f"--precision bf16: this GPU ({device}) has no bfloat16; use --precision fp32")
    return precision


def resumed(saved: str | None, device: str) -> str:
    """What a resumed training computes in by default: its checkpoint's precision (older
    checkpoints: ``auto``), unless that is bf16 on a device that would only emulate it."""
    if saved == "fp32" or (saved == "bf16" and native_bf16(device)):
        return saved
    return "auto"


def compute(precision: str, device: str):
    """The context a forward pass runs in at ``precision`` (already resolved)."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
