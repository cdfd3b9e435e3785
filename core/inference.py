"""Make a model fast for inference: batch norm folded into the convolution before it.

A BatchNorm that follows a conv, directly or through a max-pool, is an affine map per channel; with a
positive scale it commutes with max-pooling, so it folds into the conv's weights and bias. Works on
any nested Sequential; a BN that cannot be folded is left as it is.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from core.padding import make_conv


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
    fused = make_conv(conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.padding[0], bias=True,
                      padding_mode=getattr(conv, "padding_mode", "zeros"))
    fused.stride, fused.dilation, fused.groups = conv.stride, conv.dilation, conv.groups
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        fused.bias.copy_((conv.bias if conv.bias is not None else 0) * scale + shift)
    return fused.to(conv.weight.device)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode model with every foldable BatchNorm merged into its conv."""
    model = copy.deepcopy(model).eval()

    def visit(seq: nn.Module) -> None:
        if not isinstance(seq, nn.Sequential):
            return
        mods = list(seq.children())
        for i, m in enumerate(mods):
            visit(m)
            if not isinstance(m, nn.BatchNorm2d) or m.running_var is None:
                continue
            j = i - 1
            if j >= 0 and isinstance(mods[j], nn.MaxPool2d):
                positive = (m.weight > 0).all() if m.affine else True
                if not positive:
                    continue
                j -= 1
            if j >= 0 and isinstance(mods[j], nn.Conv2d) and mods[j].kernel_size[0] == mods[j].kernel_size[1]:
                seq[j] = _fold(mods[j], m)
                seq[i] = nn.Identity()
                mods = list(seq.children())

    visit(model)
    return model
