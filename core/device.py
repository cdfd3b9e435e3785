"""Where and how compute runs: GPU when present, all CPU cores otherwise, bf16 where supported."""
from __future__ import annotations

import contextlib
import os

import torch

PRECISIONS = ("bf16", "fp32")


def pick_device(name: str | None = None) -> torch.device:
    """`None`/"auto" picks CUDA when available, else the CPU with every core in use."""
    if name in (None, "", "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}: {e}. Use auto, cpu or cuda[:N].") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but this torch sees no CUDA GPU. Use --device cpu.")
    if device.type == "cpu":
        torch.set_num_threads(int(os.environ.get("PADLENS_THREADS") or os.cpu_count() or 1))
    return device


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """"auto" -> bf16 where the hardware runs it natively, else exact fp32."""
    if precision in (None, "auto"):
        return "bf16" if bf16_supported(device) else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    return precision


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move to device in channels_last, the fast layout for convolutions on CPU and GPU."""
    return model.to(device=device, memory_format=torch.channels_last)
