"""How long things take: one way to write a duration (window and terminal alike), and a quick measurement of
how fast a model runs on this device, so that a long grid is priced before it starts."""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
from torch import nn

from padlens.core.activations import resize_input
from padlens.core.data import Normalization
from padlens.core.device import autocast
from padlens.core.jobs import Job, Progress, never

_rates: dict[tuple, float] = {}   # forward passes per second, by rate_key: measured once per session


FEW_MINUTES = 300.0   # a run estimated longer than this is offered an image count that fits in it


def fewer_images(seconds, images: int) -> str:
    """What a long run's estimate offers: the largest of a few image counts whose run (`seconds(n)`) fits in
    FEW_MINUTES, else a coarser grid; nothing for a run that fits already."""
    if seconds(images) <= FEW_MINUTES:
        return ""
    fits = [n for n in (500, 200, 100, 50, 20, 10) if n < images and seconds(n) <= FEW_MINUTES]
    return (f". {fits[0]} images: about {fmt_duration(seconds(fits[0]))}" if fits else
            ". A coarser step or a smaller range is quicker")


def fmt_duration(seconds: float) -> str:
    """A duration as a person reads it: '0.4 s', '45 s', '3 min 20 s', '25 min', '4 h 05 min'. Long ones in
    hours, never as minutes past 59 ('206:35' read as a time of day)."""
    if not math.isfinite(seconds):
        return "unknown"
    s = max(0.0, seconds)
    if s < 9.95:
        return f"{s:.1f} s"
    s = round(s)
    if s < 60:
        return f"{s} s"
    if s < 600:
        return f"{s // 60} min {s % 60:02d} s"
    m = round(s / 60)
    return f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def rate_key(model_id: object, device: torch.device, precision: str, input_size: int) -> tuple:
    """What a rate depends on: the model (its cache id), the device, the precision and the input size."""
    return model_id, str(device), precision, input_size


def known_rate(key: tuple) -> float | None:
    """The forward passes per second measured for key in this session, else None."""
    return _rates.get(key)


def measure_rate(model: nn.Module, norm: Normalization, device: torch.device, precision: str, input_size: int,
                 batch: int, key: tuple, seconds: float = 0.5, should_stop: Callable[[], bool] = never) -> Job:
    """Job: forward passes per second of `model` run as the translation grid runs it (batches of `batch`
    rows, channels_last, the precision's autocast), after one warm-up batch, over at least two batches and
    `seconds`. Remembered under key; None when stopped. A few batches: under 3 s for the flagship on a
    2-core CPU."""
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, generator=gen)
    x = resize_input(norm.apply(pixels), input_size).to(device).contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.inference_mode(), autocast(device, precision):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    forward()
    rows, t0 = 0, time.perf_counter()
    while rows < 2 * batch or time.perf_counter() - t0 < seconds:
        if should_stop():
            return None
        forward()
        rows += batch
        yield Progress(rows, 0, "timing this model on this device")
    rate = rows / (time.perf_counter() - t0)
    _rates[key] = rate
    return rate
