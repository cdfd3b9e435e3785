"""Walk any model by path: indices inside nn.Sequential / nn.ModuleList (model[i][j]), attribute names
elsewhere (model.layer1[0].conv1), so a user's own nn.Module subclass is as visible as our nested
Sequentials.

Used by the layer tree, the activation capture and the CLI listing; nothing here is specific to our
architecture.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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
    """Yield (path, module) depth-first for every submodule at every place it is registered: a ReLU
    object reused at model[1] and model[3] is listed at both (see hook_outputs for which call is which)."""
    indexed = isinstance(model, (nn.Sequential, nn.ModuleList))
    for i, (name, child) in enumerate(model._modules.items()):
        if child is None:
            continue
        path = prefix + ((i if indexed else name),)
        yield path, child
        yield from iter_paths(child, path)


def hook_outputs(model: nn.Module, store: Callable[..., None], paths=None, inputs: bool = False) -> list:
    """Forward hooks that call store(path, output) once per path and forward pass: the k-th call of a
    module in one pass goes to its k-th path (a module reused in a Sequential gets each place's output;
    one called twice inside a block's forward keeps its first call); outputs that are not tensors are
    skipped. inputs=True: store(path, output, first input). Returns the handles to remove."""
    places: dict[int, list] = {}
    for path, m in (paths if paths is not None else iter_paths(model)):
        places.setdefault(id(m), [m]).append(path)
    calls: dict[int, int] = {}

    def hook(mod, inp, out):
        k = calls.get(id(mod), 0)
        calls[id(mod)] = k + 1
        where = places[id(mod)]
        if k + 1 < len(where) and isinstance(out, torch.Tensor):
            store(where[k + 1], out, inp[0]) if inputs else store(where[k + 1], out)

    handles = [model.register_forward_pre_hook(lambda mod, inp: calls.clear())]   # a new pass
    handles += [ms[0].register_forward_hook(hook) for ms in places.values()]
    return handles


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
    """Every layer with its path, type, key parameters and output shape for one input."""
    paths = list(iter_paths(model))
    shapes: dict[Path, tuple[int, ...]] = {}   # a layer returning a tuple has no shape to show
    hooks = hook_outputs(model, lambda p, out: shapes.__setitem__(p, tuple(out.shape[1:])), paths)
    was_training = model.training
    try:
        p = next(model.parameters(), None)
        x = torch.zeros((1, *input_shape), device=p.device if p is not None else "cpu")
        model.eval()
        with torch.inference_mode():
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return [LayerInfo(path, type(m).__name__, key_params(m), shapes.get(path, ()), is_container(m))
            for path, m in paths]


def format_layers(infos: list[LayerInfo]) -> str:
    rows = [(("  " * (len(i.path) - 1)) + i.name, i.type, i.params, "x".join(map(str, i.output_shape)))
            for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows)
