"""Make a model fast for inference: batch norm folded into the convolution before it.

A BatchNorm that follows a conv, directly or through a max-pool, is an affine map per channel; with a
positive scale it commutes with max-pooling, so it folds into the conv's weights and bias. Works on
any nested Sequential; a BN that cannot be folded is left as it is.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of `conv` (same class, padding, stride, groups, dtype, device) computing bn(conv(x)).

    The merged weights are computed in float64 and stored in the conv's dtype.
    """
    var, mean = bn.running_var.double(), bn.running_mean.double()
    scale = (bn.weight.double() if bn.affine else torch.ones_like(var)) / torch.sqrt(var + bn.eps)
    shift = (bn.bias.double() if bn.affine else torch.zeros_like(var)) - mean * scale
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    dtype = conv.weight.dtype
    fused = copy.deepcopy(conv)
    with torch.no_grad():
        fused.weight = nn.Parameter((conv.weight.double() * scale.view(-1, 1, 1, 1)).to(dtype))
        fused.bias = nn.Parameter((bias * scale + shift).to(dtype))
    return fused


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode model with every foldable BatchNorm merged into its conv, inside every
    Sequential of the model (whatever module holds it)."""
    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        mods = list(seq._modules.values())   # by position: children() would skip a module reused twice
        for i, m in enumerate(mods):
            if not isinstance(m, nn.BatchNorm2d) or m.running_var is None:
                continue
            j = i - 1
            if j >= 0 and isinstance(mods[j], nn.MaxPool2d):
                positive = (m.weight > 0).all() if m.affine else True
                if not positive:
                    continue
                j -= 1
            if j >= 0 and isinstance(mods[j], nn.Conv2d) and mods[j].out_channels == m.num_features:
                seq[j] = _fold(mods[j], m)
                seq[i] = nn.Identity()
                mods = list(seq._modules.values())
    return model


def compile_for_inference(model: nn.Module) -> nn.Module:
    """torch.compile with inductor "freezing" (weights folded as constants and prepacked for oneDNN) and
    a dynamic batch size, so the grid's varying batches compile once: on this 2-core CPU a folded bf16
    model ran 1.2x faster than eager at batch 1024, after ~12 s of compiling."""
    import torch._inductor.config as inductor_config
    inductor_config.freezing = True
    return torch.compile(model, dynamic=True)


def folds(precision: str, fold: bool = True) -> bool:
    """Whether fast_model folds batch norm: in fp32-fast, bf16 and fp16, never in exact fp32 (folding
    changes the rounding, and fp32 promises the model's own numbers)."""
    return fold and precision != "fp32"


def grid_batch(device: torch.device, precision: str) -> int:
    """Rows per forward pass of the translation grid. On a CPU small batches keep each layer's activations
    in the caches: 128 rows in bf16, 64 in fp32, whose activations take twice the bytes (on the 2-core
    AVX2 CPU, the flagship's fp32-fast grid ran 97 images/s at 64 rows, 92 at 128;
    bench/translation.py sweeps the sizes). A GPU needs thousands of rows to keep its cores busy."""
    if device.type != "cpu":
        return 4096
    return 128 if precision in ("bf16", "fp16") else 64


def fast_model(model: nn.Module, device: torch.device, precision: str, fold: bool = True,
               compile: bool = False) -> nn.Module:
    """What the translation grid runs: a copy channels_last on the device, batch norm folded where
    `folds` says so, optionally compiled."""
    from padlens.core.device import prepare_model
    fold = folds(precision, fold)
    model = prepare_model(fold_batchnorm(model) if fold else copy.deepcopy(model).eval(), device)
    return compile_for_inference(model) if compile else model
