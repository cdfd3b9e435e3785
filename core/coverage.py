"""The coverage (foveation) map: for every input pixel, how many paths through the whole network reach it.

Alsallakh et al., "Are convolutional networks inherently foveated?" (SVRHM 2021; Mind the Pad, Fig. 11):
a pixel near the border lies in fewer receptive fields than one in the centre, so the network sees the
centre more often. Counted exactly: a copy of the network in which every convolution has all-one kernels
and no bias, every pooling window sums its inputs (each input position of a max-pool window is a path,
whichever wins), normalisations and nonlinearities are identities, and Linear layers connect every
feature to every output; the gradient of the sum of its outputs with respect to an input pixel is then
the number of paths from that pixel to the output. Each layer keeps its padding mode, stride and
padding: zero padding carries no path (the gradient into padded positions is dropped), while reflect,
replicate, circular and symmetric padding route the paths of padded positions back onto the real pixels
they copy, which the gradient through the padding does by itself.

Channels are counted once: a convolution's weights are groups / out_channels and a Linear's
1 / out_features, so the gradient that reaches every channel equals the single-channel path count
(the channel product, the same factor for every pixel, is left out). A forward that is not linear once
its layers are replaced (a functional F.relu or torch.max inside forward) cannot be counted this way and
is refused.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from padlens.core.activations import resize_input
from padlens.core.files import atomic_csv, atomic_write
from padlens.core.jobs import Partial, Progress, never
from padlens.core.layers import iter_paths, layer_at, path_name

COVERAGE_HELP = ("Coverage: for every input pixel, the number of paths through the network's receptive fields "
                 "from that pixel to the output (all-one kernels, pools summing every window position, padding "
                 "as each layer pads; channels counted once). Zero padding makes border pixels reach fewer "
                 "outputs than central ones; a constant map means every pixel is seen equally often.")


class SumPool(nn.Module):
    """A pooling window as path counting: the sum of every input position it covers (padding adds none)."""

    def __init__(self, pool: nn.Module):
        super().__init__()
        self.kernel_size, self.stride = pool.kernel_size, pool.stride if pool.stride is not None else pool.kernel_size
        self.padding, self.ceil_mode = pool.padding, bool(getattr(pool, "ceil_mode", False))
        dilation = getattr(pool, "dilation", 1)
        if dilation not in (1, (1, 1)):
            raise ValueError(f"a max-pool with dilation {dilation} cannot be counted as paths yet; coverage "
                             "supports undilated pools")

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            count_include_pad=True, divisor_override=1)


class AdaptiveSumPool(nn.Module):
    """An adaptive pool as path counting: each output sums its window (torch's floor/ceil windows)."""

    def __init__(self, pool: nn.Module):
        super().__init__()
        self.output_size = pool.output_size

    def forward(self, x):
        h, w = x.shape[-2:]
        oh, ow = (self.output_size, self.output_size) if isinstance(self.output_size, int) else self.output_size
        oh, ow = oh or h, ow or w   # None keeps that axis
        rows = [(i * h // oh, -(-(i + 1) * h // oh)) for i in range(oh)]
        cols = [(j * w // ow, -(-(j + 1) * w // ow)) for j in range(ow)]
        return torch.stack([torch.stack([x[..., a:b, c:d].sum((-2, -1)) for c, d in cols], -1)
                            for a, b in rows], -2)


_IDENTITIES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
               nn.modules.dropout._DropoutNd)


class SumFeatures(nn.Module):
    """A Linear layer of the one-channel copy: every feature is one path to the (single) output."""

    def forward(self, x):
        return x.sum(-1, keepdim=True)


def _one_channel_ok(model: nn.Module) -> bool:
    """Whether the copy may run on one channel: a chain of Sequentials of the layers path_counting_copy knows,
    none of which reads how many channels it gets (a custom forward might: it keeps every channel)."""
    from padlens.core.model import Scale
    known = (nn.Sequential, nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d,
             nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity, Scale) + _IDENTITIES
    return all(isinstance(m, known) or type(m).__module__ == nn.modules.activation.__name__
               and not isinstance(m, nn.MultiheadAttention) for m in model.modules())


def path_counting_copy(model: nn.Module, dtype: torch.dtype = torch.float64) -> nn.Module:
    """The copy whose input gradient counts paths (see the module docstring), in eval mode and dtype.

    Every channel carries the same count, so a chain of known layers (`_one_channel_ok`) is counted on one
    channel: the same numbers, hundreds of times faster (2.2 s -> 6 ms per map for the 96-320-320 checkpoints
    on the shared 2-core CPU, where the app draws twelve maps at once); other models keep every channel."""
    from padlens.core.model import Scale
    one = _one_channel_ok(model)
    # on one channel no weight or buffer is read: copied as empty stand-ins, not converted to dtype
    memo = {id(t): torch.empty(0) for t in [*model.parameters(), *model.buffers()]} if one else {}
    counting = copy.deepcopy(model, memo).eval().to(dtype=dtype, memory_format=torch.contiguous_format)
    counting.requires_grad_(False)   # only the input's gradient is wanted
    for path, m in list(iter_paths(counting)):
        new = None
        if isinstance(m, nn.Conv2d) and one:
            m.in_channels = m.out_channels = m.groups = 1
            m.weight = nn.Parameter(torch.ones(1, 1, *m.kernel_size, dtype=dtype), requires_grad=False)
            m.bias = None
        elif isinstance(m, nn.Conv2d):
            with torch.no_grad():
                m.weight.fill_(m.groups / m.out_channels)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.Linear) and one:
            new = SumFeatures()
        elif isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.fill_(1 / m.out_features)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            new = SumPool(m)
        elif isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
            new = AdaptiveSumPool(m)
        elif (isinstance(m, _IDENTITIES + (Scale,)) or
              (type(m).__module__ == nn.modules.activation.__name__ and not isinstance(m, nn.MultiheadAttention))):
            new = nn.Identity()
        if new is not None:
            parent = layer_at(counting, path[:-1])
            key = list(parent._modules)[path[-1]] if isinstance(path[-1], int) else path[-1]
            parent._modules[key] = new
    return counting


def _input_channels(model: nn.Module) -> int:
    """Channels of the model's input: the first convolution's (3 for an image model without one)."""
    return next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 3)


def _check_linear(counting: nn.Module, shape: tuple, dtype: torch.dtype, device: torch.device) -> None:
    """Refuse a copy that is not linear: its gradient would depend on the input and count nothing."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(shape, generator=gen, dtype=dtype).to(device) for _ in range(2))
    with torch.no_grad():   # one pass of the three inputs
        fa, fb, fab = counting(torch.cat([a, b, a - 2 * b])).double().chunk(3)
    scale = max(float(fa.abs().max()), float(fb.abs().max()), 1e-30)
    if float((fab - (fa - 2 * fb)).abs().max()) > 1e-6 * scale:
        raise ValueError("coverage counts paths through Conv2d, pooling, Linear, normalisation and activation "
                         "layers; this model's forward is not linear once they are replaced (a functional call such "
                         "as F.relu or torch.max in forward, or a layer of another kind), so its paths cannot be "
                         "counted. Use nn.ReLU / nn.MaxPool2d modules in the model for this analysis.")


@dataclass
class CoverageMap:
    """Paths per pixel at one network input size. counts: [S, S] at the network's input; image: [32, 32],
    the same paths seen from the image before resize_input (bilinear weights, so not whole numbers when
    S != 32); uneven: the padding arithmetic's notes on layers that use this size unevenly."""
    size: int
    counts: np.ndarray
    image: np.ndarray
    uneven: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict:
        return coverage_summary(self.counts)


def coverage_summary(counts: np.ndarray) -> dict:
    """The numbers a map is read by: the paths at a corner, an edge's middle and the centre (means over the
    four corners, the four edge middles and the central 1 or 2 pixels per axis), min and max, their ratios,
    blind pixels (no path), and the asymmetry: max |M - M flipped| (left-right or top-bottom) / max M,
    non-zero where padding is read on one side only or rows are dropped."""
    m = np.asarray(counts, dtype=np.float64)
    h, w = m.shape
    mid = lambda n: slice((n - 1) // 2, n // 2 + 1)  # noqa: E731 - the 1 or 2 central indices
    corner = float(np.mean([m[0, 0], m[0, -1], m[-1, 0], m[-1, -1]]))
    edge = float(np.mean([m[0, mid(w)].mean(), m[-1, mid(w)].mean(), m[mid(h), 0].mean(), m[mid(h), -1].mean()]))
    centre = float(m[mid(h), mid(w)].mean())
    top = float(m.max())
    asym = max(float(np.abs(m - m[:, ::-1]).max()), float(np.abs(m - m[::-1, :]).max()))
    return {"size": [h, w], "corner": corner, "edge": edge, "centre": centre, "min": float(m.min()), "max": top,
            "corner_to_centre": corner / centre if centre else math.nan,
            "min_to_max": float(m.min()) / top if top else math.nan,
            "blind_pixels": int((m <= 1e-9 * max(top, 1e-300)).sum()),
            "asymmetry": asym / top if top else 0.0, "constant": bool(np.ptp(m) <= 1e-9 * max(top, 1e-300))}


def _snap(a: np.ndarray) -> np.ndarray:
    """Path counts are whole numbers; float rounding of the 1/out_channels weights is put back (values
    further than 1e-6 from a whole number, e.g. bilinear-weighted ones, stay as they are)."""
    r = np.rint(a)
    return np.where(np.abs(a - r) <= 1e-6 * np.maximum(1.0, np.abs(a)), r, a)


def uneven_notes(model: nn.Module, size: int) -> list[str]:
    """The padding arithmetic's notes on the layers that use a size x size input unevenly (one forward pass)."""
    from padlens.core.spatial_bias import padding_arithmetic
    return [f"{r['name']} {r['type']}: {r['note']}" for r in padding_arithmetic(model, size) if r["uneven"]]


def coverage_map(model: nn.Module, size: int = 32, image_size: int = 32,
                 device: torch.device | None = None, uneven: list[str] | None = None) -> CoverageMap:
    """The coverage map of the whole model at network input size x size (the image resized from image_size as
    resize_input does), with the uneven-padding notes of core.spatial_bias.padding_arithmetic at that size
    (`uneven`, when the caller has them: the model's forward pass at full width costs more than the map).
    Raises check_input_size's ValueError for a size the model cannot take."""
    device = device or next((p.device for p in model.parameters()), torch.device("cpu"))
    uneven = uneven_notes(model, size) if uneven is None else uneven
    dtype = torch.float32 if device.type == "mps" else torch.float64   # MPS has no float64
    counting = path_counting_copy(model, dtype).to(device)
    c = _input_channels(counting)
    _check_linear(counting, (1, c, size, size), dtype, device)
    image = torch.zeros(1, c, image_size, image_size, dtype=dtype, device=device, requires_grad=True)
    x = resize_input(image, size)
    if x is not image:
        x.retain_grad()   # the paths at the network's input; image.grad has them seen from the image
    out = counting(x)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"coverage needs a model that returns one tensor, not {type(out).__name__}")
    out.sum().backward()
    counts = _snap(x.grad[0, 0].double().cpu().numpy())
    return CoverageMap(size, counts, _snap(image.grad[0, 0].double().cpu().numpy()), uneven)


def with_padding(model: nn.Module, mode: str) -> nn.Module:
    """A copy of model whose every Conv2d pads in mode (core.padding.PADDING_MODES, symmetric and partial
    included), all else equal: the same architecture with another padding, whose coverage (which no weight
    changes) shows what that padding does to it. The copy shares model's weights (none is copied)."""
    from padlens.core.padding import PADDING_MODES, make_conv
    if mode not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {mode!r}; choose one of {', '.join(PADDING_MODES)}")
    out = copy.deepcopy(model, {id(t): t for t in [*model.parameters(), *model.buffers()]})
    for path, m in list(iter_paths(out)):
        if not isinstance(m, nn.Conv2d) or getattr(m, "padding_mode", "zeros") == mode:
            continue
        if isinstance(m.padding, str):
            raise ValueError(f"{path_name(path)} pads {m.padding!r}; another padding mode needs whole-number padding")
        conv = make_conv(m.in_channels, m.out_channels, 1, 0, m.bias is not None, mode)
        for name in ("kernel_size", "stride", "padding", "dilation", "groups", "_reversed_padding_repeated_twice"):
            setattr(conv, name, getattr(m, name))
        conv.weight, conv.bias = m.weight, m.bias
        parent = layer_at(out, path[:-1])
        parent._modules[list(parent._modules)[path[-1]] if isinstance(path[-1], int) else path[-1]] = conv
    return out


def comparison_size(size: int) -> int:
    """The other side of the 2^n vs 2^n + 1 comparison: size + 1 for a power of two (32 -> 33, where strided
    layers start dropping rows or reading padding on one side), else the power of two at or below it."""
    if size & (size - 1) == 0:
        return size + 1
    return 1 << (size.bit_length() - 1)


def padding_coverage_job(model: nn.Module, modes: list[str], sizes: list[int], image_size: int = 32,
                         device: torch.device | None = None, should_stop: Callable[[], bool] = never):
    """Job: the coverage maps of the model with each padding mode (`with_padding`) at each size, as
    {mode: [CoverageMap per size]}; Progress and a Partial of the maps so far after each mode. The uneven notes
    are the architecture's, the same for every mode: measured once per size. Stopped: the modes finished."""
    from padlens.core.spatial_bias import check_input_size
    for s in sizes:
        check_input_size(model, s)
    notes = {s: uneven_notes(model, s) for s in sizes}
    maps: dict[str, list[CoverageMap]] = {}
    for k, mode in enumerate(modes):
        if should_stop():
            break
        variant = with_padding(model, mode)
        maps[mode] = [coverage_map(variant, s, image_size, device, notes[s]) for s in sizes]
        yield Progress(k + 1, len(modes), f"coverage with {mode} padding")
        yield Partial(dict(maps))
    return maps


# ---------------------------------------------------------------------------------------------------
# Files and figures

def save_coverage(maps: list[CoverageMap], out, stem: str = "coverage") -> list:
    """stem.npz (counts_S and image_S per size) and stem.csv (one row per pixel and size); the figure is the
    app's (gui.coverage_panel.write_coverage_figures)."""
    arrays = {}
    for m in maps:
        arrays[f"counts_{m.size}"] = m.counts
        arrays[f"image_{m.size}"] = m.image
    written = [atomic_write(out / f"{stem}.npz", lambda tmp: np.savez_compressed(tmp, **arrays))]
    rows = [["input_size", "y", "x", "paths"]]
    for m in maps:
        rows += [[m.size, y, x, f"{m.counts[y, x]:.6g}"] for y in range(m.counts.shape[0])
                 for x in range(m.counts.shape[1])]
    written.append(atomic_csv(out / f"{stem}.csv", rows))
    return written