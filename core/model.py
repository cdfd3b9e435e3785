"""The VGG-style network, described as data and built in one place (like torchvision's vgg cfgs).

``model[i]`` is a level, ``model[i][j]`` a layer, the last level is the classifier head. The recipe
follows airbench (Jordan 2024): a frozen whitening stem, conv-pool-norm-act groups, batch norms with a
fixed scale, a max-pooled head and a scaled linear classifier, so that it trains fast on a CPU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from padlens.core.padding import make_conv


@dataclass(frozen=True)
class ModelConfig:
    widths: tuple[int, ...] = (96, 320, 320)
    stem_width: int = 54            # whitening stem: +/- pairs of all 27 eigenvectors of 3x3x3 patches
    padding_mode: str = "zeros"
    activation: str = "gelu"
    num_classes: int = 10
    logit_scale: float = 1 / 9
    bn_momentum: float = 0.4        # torch convention (airbench's 0.6 running-average weight)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        unknown = set(d) - set(known)
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        if "widths" in known:
            known["widths"] = tuple(known["widths"])
        return cls(**known)


ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}   # never in-place: captured activations must survive


class Scale(nn.Module):
    """Multiply by a constant; airbench's logit temperature, kept as its own layer."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:.4g}"


def _batch_norm(width: int, momentum: float) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(width, eps=1e-12, momentum=momentum)
    bn.weight.requires_grad_(False)   # scale fixed at 1: learns faster (airbench)
    return bn


def build_model(cfg: ModelConfig = ModelConfig()) -> nn.Sequential:
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {cfg.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    if cfg.stem_width % 2 or not 0 < cfg.stem_width <= 54:
        raise ValueError("stem_width must be even and at most 54 (two per 3x3x3 patch eigenvector)")
    act = ACTIVATIONS[cfg.activation]
    conv = lambda cin, cout, bias=False: make_conv(cin, cout, bias=bias, padding_mode=cfg.padding_mode)  # noqa: E731
    levels = [nn.Sequential(conv(3, cfg.stem_width, bias=True), act())]
    cin = cfg.stem_width
    for width in cfg.widths:
        levels.append(nn.Sequential(
            conv(cin, width), nn.MaxPool2d(2), _batch_norm(width, cfg.bn_momentum), act(),
            conv(width, width), _batch_norm(width, cfg.bn_momentum), act(),
        ))
        cin = width
    levels.append(nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                                nn.Linear(cin, cfg.num_classes, bias=False), Scale(cfg.logit_scale)))
    model = nn.Sequential(*levels)
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m is not model[0][0]:
            torch.nn.init.dirac_(m.weight.data[: m.in_channels])   # identity start for the first channels
    model[0][0].weight.requires_grad_(False)   # set by init_whitening, then frozen
    return model


def init_whitening(model: nn.Sequential, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set the stem to whiten 3x3 patches of normalized training images (airbench's trick)."""
    stem = model[0][0]
    k = stem.kernel_size[0]
    patches = images.float().unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * k * k)
    cov = patches.T @ patches / len(patches)
    eigval, eigvec = torch.linalg.eigh(cov)
    eigval, eigvec = eigval.flip(0), eigvec.T.flip(0)           # largest first
    half = stem.out_channels // 2
    filters = (eigvec[:half] / torch.sqrt(eigval[:half, None] + eps)).reshape(half, 3, k, k)
    with torch.no_grad():
        stem.weight.copy_(torch.cat([filters, -filters]))
        stem.bias.zero_()
