"""Walk any model by path: indices inside nn.Sequential / nn.ModuleList (model[i][j]), attribute names
elsewhere (model.layer1[0].conv1), so a user's own nn.Module subclass is as visible as our nested
Sequentials.

Used by the layer tree, the activation capture and the CLI listing; nothing here is specific to our
architecture.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


Path = tuple  # of int (index into a Sequential / ModuleList) or str (child attribute name)


@dataclass(frozen=True)
class LayerInfo:
    path: Path
    type: str
    params: str
    output_shape: tuple[int, ...]   # without the batch dimension
    is_container: bool

    @property
    def name(self) -> str:
        return path_name(self.path)


def path_name(path) -> str:
    """(2, 3) -> "model[2][3]", ("layer1", 0, "conv1") -> "model.layer1[0].conv1": what a user types."""
    return "model" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" if k.isidentifier() else f"[{k!r}]"
                             for k in path)


def iter_paths(model: nn.Module, prefix: Path = ()):
    """Yield (path, module) depth-first for every submodule, each once (a shared module at its first path)."""
    seen: set[int] = set()

    def walk(m: nn.Module, pre: Path):
        indexed = isinstance(m, (nn.Sequential, nn.ModuleList))
        for i, (name, child) in enumerate(m.named_children()):
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = pre + ((i if indexed else name),)
            yield path, child
            yield from walk(child, path)

    yield from walk(model, prefix)


def layer_at(model: nn.Module, path: Path) -> nn.Module:
    for k in path:
        model = model[k] if isinstance(k, int) else model._modules[k]
    return model


def is_container(m: nn.Module) -> bool:
    """Has sub-layers: a tree node rather than a leaf (a Sequential level, a residual block)."""
    return next(m.children(), None) is not None


def key_params(m: nn.Module) -> str:
    """A short human summary of what makes a layer what it is."""
    if isinstance(m, nn.Conv2d):
        mode = getattr(m, "padding_mode", "zeros")
        pad = m.padding if isinstance(m.padding, str) else "x".join(map(str, m.padding))
        return (f"{m.in_channels}->{m.out_channels}, kernel {'x'.join(map(str, m.kernel_size))}, "
                f"stride {m.stride[0]}, padding {pad} ({mode})")
    if isinstance(m, nn.BatchNorm2d):
        return f"{m.num_features} channels"
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return f"kernel {m.kernel_size}, stride {m.stride}"
    if isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        return f"output {m.output_size}"
    if isinstance(m, nn.Linear):
        return f"{m.in_features}->{m.out_features}"
    if isinstance(m, nn.Sequential):
        return f"{len(m)} layers"
    extra = m.extra_repr()
    return extra


def describe_layers(model: nn.Module, input_shape=(3, 32, 32)) -> list[LayerInfo]:
    """Every layer with index path, type, key parameters and output shape for one input."""
    paths = list(iter_paths(model))
    shapes: dict[int, tuple[int, ...]] = {}
    def keep(mod, inp, out):
        if isinstance(out, torch.Tensor):   # a block may return a tuple: no shape to show
            shapes[id(mod)] = tuple(out.shape[1:])

    hooks = [m.register_forward_hook(keep) for _, m in paths]
    try:
        p = next(model.parameters(), None)
        x = torch.zeros((1, *input_shape), device=p.device if p is not None else "cpu")
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            model(x)
        model.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    return [LayerInfo(path, type(m).__name__, key_params(m), shapes.get(id(m), ()), is_container(m))
            for path, m in paths]


def format_layers(infos: list[LayerInfo]) -> str:
    rows = [(("  " * (len(i.path) - 1)) + i.name, i.type, i.params, "x".join(map(str, i.output_shape)))
            for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows)
