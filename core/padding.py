"""Padding modes for convolutions, including the "symmetric" and "partial" modes that torch lacks.

Mind the Pad recommends symmetric (mirror including the edge pixel) padding. torch's Conv2d knows
zeros, reflect, replicate and circular; symmetric and partial (Liu et al., "Partial convolution based
padding", 2018) are added here as Conv2d subclasses so that a layer stays one module at one index path
whatever its padding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric", "partial")
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


class PartialConv2d(nn.Conv2d):
    """A zero-padded Conv2d whose outputs are re-weighted by (kernel area / valid input pixels under the
    kernel), the bias added after (Liu et al. 2018): a window half outside the image is scaled up so that
    the border no longer reads as dark. Exact only for a flat kernel (then a constant input gives a constant
    map); a learned kernel whose weights differ where the image is missing still leaves a border."""

    def __init__(self, *args, **kwargs):
        kwargs["padding_mode"] = "zeros"
        super().__init__(*args, **kwargs)
        self.padding_mode = "partial"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
        y = y * partial_ratio(self, x.shape[-2:], x.device, y.dtype)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1).to(y.dtype)


def partial_ratio(conv: nn.Conv2d, size, device, dtype) -> torch.Tensor:
    """(1, 1, H_out, W_out): kernel area over the number of real (not padded) pixels each output sees;
    1 inside, 9/6 on an edge and 9/4 in a corner for a 3x3 kernel with padding 1. Recomputed per call:
    one single-channel convolution, negligible beside the layer's own."""
    kh, kw = conv.kernel_size
    valid = F.conv2d(torch.ones(1, 1, *size, device=device, dtype=dtype), torch.ones(1, 1, kh, kw, device=device,
                     dtype=dtype), None, conv.stride, conv.padding, conv.dilation)
    return (kh * kw) / valid


def make_conv(cin: int, cout: int, kernel_size: int = 3, padding: int = 1, bias: bool = False,
              padding_mode: str = "zeros") -> nn.Conv2d:
    """One convolution with the requested padding mode; the single place convs are created."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding_mode!r}; choose one of {', '.join(PADDING_MODES)}")
    cls = {"symmetric": SymmetricConv2d, "partial": PartialConv2d}.get(padding_mode, nn.Conv2d)
    kwargs = {"padding_mode": padding_mode} if padding_mode in TORCH_MODES else {}
    return cls(cin, cout, kernel_size, padding=padding, bias=bias, **kwargs)
