"""One forward pass keeps every layer's output, keyed by layer path; plus the dataset-mean responses.

Inputs are built here too: a dataset image, a blank tensor (zeros in normalized space, or a black
image), an image file, each as a normalized [1,3,H,W] batch.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from padlens.core.data import Normalization
from padlens.core.device import autocast
from padlens.core.jobs import Progress, never
from padlens.core.layers import Path, hook_outputs

Activations = dict[Path, torch.Tensor]

BLANK_KINDS = {
    "normalized": ("all zeros after normalization: every pixel at the normalization's mean color "
                   "(the data set's, for our models)"),
    "pixel": "all zeros before normalization: a black image, which the network sees as strongly negative",
}


def blank_input(kind: str, norm: Normalization, size: int = 32) -> torch.Tensor:
    """The assignment's tensor full of zeros, in normalized space or as a black image."""
    if kind == "normalized":
        return torch.zeros(1, 3, size, size)
    if kind == "pixel":
        return norm.apply(torch.zeros(1, 3, size, size))
    raise ValueError(f"blank kind must be one of {list(BLANK_KINDS)}")


def resize_input(x: torch.Tensor, size: int) -> torch.Tensor:
    """The input-resizing remedy: bilinear resize of a normalized batch to size x size."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def capture(model: nn.Module, x: torch.Tensor, device: torch.device = torch.device("cpu"),
            precision: str = "fp32") -> tuple[Activations, torch.Tensor]:
    """Every layer's output for one normalized input [1,3,H,W] -> ({path: [C,H,W] float cpu}, logits)."""
    acts: Activations = {}
    # clone: a later in-place op (ReLU(inplace=True)) must not overwrite what we kept
    hooks = hook_outputs(model, lambda p, out: acts.__setitem__(p, out[0].detach().float().cpu().clone()))
    try:
        with torch.inference_mode(), autocast(device, precision):
            logits = model(x.to(device).contiguous(memory_format=torch.channels_last)).float().cpu()
    finally:
        for h in hooks:
            h.remove()
    return acts, logits[0]


def mean_activations(model: nn.Module, images: torch.Tensor, norm: Normalization,
                     device: torch.device = torch.device("cpu"), precision: str = "fp32", batch_size: int = 100,
                     size: int = 32, should_stop: Callable[[], bool] = never):
    """Job: every layer's response averaged over images (not the response to the mean image).

    Returns (sums / count, count); when stopped early the mean covers the images done so far. The images
    go to the device as uint8 and the sums stay there: each comes back to the CPU once, at the end.
    """
    sums: Activations = {}

    def add(p, out):
        s = out.detach().float().sum(0)
        sums[p] = sums[p] + s if p in sums else s

    done = 0
    hooks = hook_outputs(model, add)
    try:
        for i in range(0, len(images), batch_size):
            if should_stop():
                break
            x = resize_input(norm.apply(images[i:i + batch_size].to(device)), size)
            with torch.inference_mode(), autocast(device, precision):
                model(x.contiguous(memory_format=torch.channels_last))
            done += len(x)
            yield Progress(done, len(images), f"{done}/{len(images)} images")
    finally:
        for h in hooks:
            h.remove()
    return {p: (s / max(done, 1)).cpu() for p, s in sums.items()}, done
