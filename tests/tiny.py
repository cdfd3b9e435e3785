"""The tiny models and data the tests share: fast to run, with non-trivial batch-norm statistics."""
import torch
from torch import nn

from padlens.core.data import Normalization
from padlens.core.model import ModelConfig, build_model

NORM = Normalization((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))


def tiny(mode: str = "zeros") -> tuple[nn.Sequential, ModelConfig]:
    """A 8-16-16 model in eval mode whose batch norms are not the identity, so folding, comparisons and
    a constant that survives only through the padding mode mean something."""
    torch.manual_seed(0)
    cfg = ModelConfig(widths=(8, 16, 16), stem_width=6, padding_mode=mode)
    m = build_model(cfg)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.bias.data.uniform_(-0.5, 0.5)
    return m.eval(), cfg
