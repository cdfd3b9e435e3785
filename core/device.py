"""Where and how compute runs: the device (a CUDA GPU, else Apple's MPS, else every CPU core) and the
precision that fits it. One rule, resolve_precision, serves every command: native bf16 where the device
runs it in hardware, else fp16 on a CUDA GPU, else fast fp32. Emulated bf16 is never picked: on a CPU
without AVX-512 BF16 or AMX it is about 4x slower than fp32."""
from __future__ import annotations

import contextlib
import os

import torch

PRECISIONS = {
    "bf16": "bf16 autocast: fast where the hardware has native bf16, emulated and slower than fp32 elsewhere",
    "fp16": "fp16 autocast, on a GPU",
    "fp32-fast": "fp32 with batch norm folded into the convolutions: within 0.1 points of exact fp32",
    "fp32": "exact fp32: the model's own numbers, bit-identical to a plain loop over the shifts",
}
PRECISION_CHOICES = ("auto", *PRECISIONS)   # what a user may ask for
DEVICE_TYPES = ("cpu", "cuda", "mps")


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def cpu_threads() -> int:
    """$PADLENS_THREADS, else every core this process may run on (its affinity, not the machine's count)."""
    env = os.environ.get("PADLENS_THREADS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"PADLENS_THREADS={env!r} is not a number of threads; set it to 1 or more, or unset it")
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pick_device(name: str | None = None) -> torch.device:
    """`None`/"auto" picks CUDA, else Apple's MPS, else the CPU with every core in use."""
    if name in (None, "", "auto"):
        name = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}: {e}. Use auto, cpu, cuda[:N] or mps.") from None
    if device.type not in DEVICE_TYPES:
        what = "holds shapes but no numbers" if device.type == "meta" else "is not one PadLens computes on"
        raise ValueError(f"device {name!r} {what}. Use auto, cpu, cuda[:N] or mps.")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but this torch sees no CUDA GPU. Use --device cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} CUDA "
                             f"GPU(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}.")
    if device.type == "mps" and not mps_available():
        raise ValueError(f"device {name!r} asked for, but this torch sees no Apple GPU (MPS needs an Apple Silicon "
                         "Mac and a torch built with MPS). Use --device cpu.")
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads())
    return device


def cpu_native_bf16() -> bool:
    """Whether oneDNN runs bf16 in hardware on this CPU (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def native_bf16(device: torch.device) -> bool:
    """Whether the device runs bf16 in hardware: a CUDA GPU from Ampere on, a CPU with AVX-512 BF16 or AMX.
    MPS counts as not native (bf16 there depends on the macOS version)."""
    if device.type == "cuda":
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:   # a torch without the argument
            return torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu" and cpu_native_bf16()


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """"auto" -> bf16 where the device runs it natively, else fp16 on a CUDA GPU, else fp32-fast; an explicit
    choice is checked and kept."""
    if precision in (None, "", "auto"):
        if native_bf16(device):
            return "bf16"
        return "fp16" if device.type == "cuda" else "fp32-fast"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, not {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 runs on a GPU (cuda or mps), not on the CPU; use fp32-fast there, or bf16 where "
                         "the CPU has it natively")
    return precision


def hardware(device: torch.device) -> str:
    """The device in a few words: 'AVX2 CPU', 'NVIDIA H100 80GB HBM3', 'Apple GPU (MPS)'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"{torch.backends.cpu.get_cpu_capability()} CPU"


def describe_precision(precision: str, device: torch.device) -> str:
    """Which precision runs and why, for the status bar, the command line and figure captions:
    'fp32-fast (AVX2 CPU, no native bf16)'."""
    hw, native = hardware(device), native_bf16(device)
    why = {"bf16": f"native on this {hw}" if native else f"emulated on this {hw}: slower than fp32",
           "fp16": f"{hw}" + ("" if native else ", no native bf16"),
           "fp32-fast": f"{hw}, " + ("native bf16 not used" if native else "no native bf16"),
           "fp32": f"exact; {hw}"}
    return f"{precision} ({why[precision]})"


def autocast(device: torch.device, precision: str):
    """bf16 or fp16 autocast for those precisions; fp32 and fp32-fast run without."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move to device in channels_last, the fast layout for convolutions on CPU and GPU."""
    return model.to(device=device, memory_format=torch.channels_last)
