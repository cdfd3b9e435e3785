"""Padding modes for convolutions, including the "symmetric" mode that torch lacks.

Mind the Pad recommends symmetric (mirror including the edge pixel) padding. torch's Conv2d knows
zeros, reflect, replicate and circular; symmetric is added here as a Conv2d subclass so that a layer
stays one module at one index path whatever its padding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
TORCH_MODES = ("zeros", "reflect", "replicate", "circular")


def symmetric_pad(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Pad the last two dims like numpy.pad(mode="symmetric"); pad = (left, right, top, bottom)."""
    left, right, top, bottom = pad
    if max(left, right) > x.shape[-1] or max(top, bottom) > x.shape[-2]:
        raise ValueError(f"symmetric padding {pad} is larger than the input {tuple(x.shape[-2:])}")
    parts = [x[..., :, :left].flip(-1), x, x[..., :, x.shape[-1] - right:].flip(-1)]
    x = torch.cat(parts, dim=-1)
    parts = [x[..., :top, :].flip(-2), x, x[..., x.shape[-2] - bottom:, :].flip(-2)]
    return torch.cat(parts, dim=-2)


class SymmetricConv2d(nn.Conv2d):
    """A Conv2d whose padding mirrors the input including its edge pixel."""

    def __init__(self, *args, **kwargs):
        kwargs["padding_mode"] = "zeros"
        super().__init__(*args, **kwargs)
        self.padding_mode = "symmetric"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.padding
        x = symmetric_pad(x, (pw, pw, ph, ph))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def make_conv(cin: int, cout: int, kernel_size: int = 3, padding: int = 1, bias: bool = False,
              padding_mode: str = "zeros") -> nn.Conv2d:
    """One convolution with the requested padding mode; the single place convs are created."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding_mode!r}; choose one of {', '.join(PADDING_MODES)}")
    cls = SymmetricConv2d if padding_mode == "symmetric" else nn.Conv2d
    kwargs = {} if padding_mode == "symmetric" else {"padding_mode": padding_mode}
    return cls(cin, cout, kernel_size, padding=padding, bias=bias, **kwargs)
