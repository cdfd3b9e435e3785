"""Padding-aware channels: which channels of a layer respond at the border ring rather than the centre, and what
zeroing them changes.

Garcia-Gasulla et al. (2023, "Padding aware neurons") find filters in every model they look at that learn to
detect the padding. Here every channel of every layer is scored on inputs with no content of their own: the
blank input (zeros after normalization), a black image, and the dataset mean (each layer's response averaged
over test images, core.activations.mean_activations), all fp32.

Score: core.spatial_bias.border_bias of the channel's own map, signed, so that one definition of the ring
(core.spatial_bias.ring_width) and of the bias holds everywhere: (mean of the ring - mean of the centre) / RMS of
the map, positive where the ring is higher. Channels are ranked by it, highest first (ties: the lower channel).
Maps below 3x3 have no centre and are not ranked. Border mean and centre mean are the two means the score
compares, in the map's own units (a high score on a map of 1e-4 is a weak channel). A channel's mean filter is
its kernel averaged over the input channels, of the convolution that makes the channel: the layer itself, or the
last convolution before it in the forward pass with as many output channels.

Ablation: a copy of the model whose layer outputs zero in the chosen channels (ChannelAblation, wrapped around
the layer so every other layer keeps its path), then, before and after: the accuracy on N class-balanced test
images (Wilson intervals; the difference with Newcombe's interval, conservative on the same images, and how many
predictions changed, which the pairing shows), the translation accuracy on a small grid (core.grid_cache, cached
like every grid) and its difference, and every layer's border bias (core.spatial_bias.layer_biases) on the
ranking's input.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from padlens.core.activations import blank_input, capture, mean_activations, resize_input
from padlens.core.data import Dataset, Normalization, stratified_subset
from padlens.core.device import autocast, resolve_precision
from padlens.core.evaluate import check_finite_outputs
from padlens.core.files import atomic_csv, atomic_write
from padlens.core.grid_cache import GridRequest
from padlens.core.inference import fast_model, grid_batch
from padlens.core.jobs import Partial, Progress, forward, never, relay
from padlens.core.layers import Path as LayerPath
from padlens.core.layers import is_container, iter_paths, layer_at, path_name
from padlens.core.session import LoadedModel
from padlens.core.spatial_bias import border_bias, filter_asymmetry, layer_biases, ring_width
from padlens.core.stats import diff_interval, wilson
from padlens.core.translation import GridResult, GridSpec

INPUTS = {"blank": "blank input, all zeros after normalization (every pixel at the mean colour)",
          "black": "black image, all zeros before normalization",
          "mean": "dataset mean, each layer's response averaged over test images"}
BLANK_KIND = {"blank": "normalized", "black": "pixel"}   # core.activations.blank_input's names
DEFAULT_INPUT = "blank"
DEFAULT_MEAN_IMAGES = 100   # one forward pass each; the rankings of the last layers barely move beyond this
DEFAULT_TOP = 8
DEFAULT_ABLATE = 4
DEFAULT_IMAGES = 500        # accuracy before and after: about +-2.5 points each at 90%, 1,000 forward passes
DEFAULT_GRID_IMAGES = 10    # the grid difference: 25 shifts x 10 images x 2 models, 520 forward passes
ABLATION_GRID = GridSpec(-8, 8, -8, 8, 4)
ABLATION_MODE = "affine"
BORDER_SCORE = 0.5   # counted as responding at the border: ring and centre differ by half the map's RMS, ring higher
CHANNELS_HELP = (
    "Padding-aware channels: each channel's score is the signed border bias of its own map, (mean of the border "
    "ring - mean of the centre) / RMS of the map, with the ring of the border bias (max(1, H//8) rows, max(1, W//8) "
    "columns); positive: the channel responds more at the border. Channels are ranked by it on the blank input, a "
    f"black image and the dataset mean; 'responding' counts scores of at least {BORDER_SCORE}. Ablation zeroes the "
    "top channels' outputs in a copy of the model and measures accuracy, translation accuracy and border bias again.")


# ---------------------------------------------------------------------------------------------------
# Ranking

@dataclass
class LayerChannels:
    """One layer's channels on one input. maps [C, H, W] float32; score, border, centre [C] (see the module
    docstring); filters [C, kh, kw]: each channel's mean filter, of the convolution `conv` (None without one)."""
    path: LayerPath
    type: str
    maps: np.ndarray
    score: np.ndarray
    border: np.ndarray
    centre: np.ndarray
    filters: np.ndarray | None = None
    conv: str | None = None
    filter_asymmetry: np.ndarray | None = None   # [C]: core.spatial_bias.filter_asymmetry of each mean filter

    @property
    def name(self) -> str:
        return path_name(self.path)

    @property
    def label(self) -> str:
        """What a layer picker shows: "model[2][6] GELU 320x8x8"."""
        return f"{self.name} {self.type} {'x'.join(map(str, self.maps.shape))}"

    @cached_property
    def ranking(self) -> np.ndarray:
        """Channel numbers by score, highest first; ties (and NaN, last) by channel number."""
        score = np.nan_to_num(self.score, nan=-np.inf)
        return np.lexsort((np.arange(len(score)), -score))

    def top(self, k: int) -> list[int]:
        return [int(c) for c in self.ranking[:k]]

    @property
    def asymmetry(self) -> np.ndarray:
        """Each channel's filter asymmetry, NaN without filters."""
        return np.full(len(self.score), np.nan) if self.filter_asymmetry is None else self.filter_asymmetry

    def responding(self) -> int:
        """Channels scoring at least BORDER_SCORE."""
        return int((np.nan_to_num(self.score, nan=-np.inf) >= BORDER_SCORE).sum())


def rank_layer(path: LayerPath, kind: str, act: torch.Tensor, conv: tuple[str, np.ndarray, np.ndarray] | None = None
               ) -> LayerChannels:
    """Score every channel of a [C, H, W] map (H, W at least 3): core.spatial_bias.border_bias per channel. conv:
    (name, mean filters [C, kh, kw], their asymmetry [C]) of the convolution that makes the channels."""
    m = act.detach().to("cpu", torch.float64)
    c, h, w = m.shape
    score = np.array([border_bias(m[k], signed=True) for k in range(c)])
    centre = torch.zeros(h, w, dtype=torch.bool)
    centre[ring_width(h):h - ring_width(h), ring_width(w):w - ring_width(w)] = True
    name, filters, asymmetry = conv or (None, None, None)
    return LayerChannels(path, kind, m.float().numpy(), score, m[:, ~centre].mean(1).numpy(),
                         m[:, centre].mean(1).numpy(), filters, name, asymmetry)


def channel_filters(conv: nn.Conv2d) -> tuple[np.ndarray, np.ndarray]:
    """Each output channel's kernel averaged over the input channels [C, kh, kw], and its filter_asymmetry [C]."""
    k = conv.weight.detach().to("cpu", torch.float64).mean(1)
    return k.float().numpy(), np.array([filter_asymmetry(f) for f in k])


def rank_channels(model: nn.Module, acts: dict[LayerPath, torch.Tensor]) -> dict[LayerPath, LayerChannels]:
    """LayerChannels of every leaf layer with a [C, H, W] map of at least 3x3, in the order of acts (a forward
    pass's: core.activations.capture and mean_activations keep it)."""
    modules = dict(iter_paths(model))
    out: dict[LayerPath, LayerChannels] = {}
    conv = None   # the last convolution so far: [module, name, (name, filters, asymmetry) once computed]
    for p, a in acts.items():
        m = modules.get(p)
        if m is None or is_container(m):
            continue
        if isinstance(m, nn.Conv2d):
            conv = [m, path_name(p), None]
        if a.dim() != 3 or min(a.shape[-2:]) < 3:
            continue
        made = None
        if conv is not None and conv[0].out_channels == a.shape[0]:
            if conv[2] is None:   # once per convolution: its pool, norm and activation share the filters
                conv[2] = (conv[1], *channel_filters(conv[0]))
            made = conv[2]
        out[p] = rank_layer(p, type(m).__name__, a, made)
    return out


@dataclass
class ChannelScan:
    """The rankings by input (keys of INPUTS), each {path: LayerChannels} in forward order; info: the model, the
    input size, mean_images (the images the dataset mean averaged, 0 without one), the data set."""
    inputs: dict[str, dict[LayerPath, LayerChannels]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def paths(self) -> list[LayerPath]:
        return list(next(iter(self.inputs.values()), {}))

    def layer(self, kind: str, path: LayerPath) -> LayerChannels:
        return self.inputs[kind][tuple(path)]


def default_layer(scan: ChannelScan) -> LayerPath | None:
    """The layer to ablate without a choice: the last convolution that is ranked (its own filters score), else the
    last ranked layer."""
    paths = scan.paths()
    layers = next(iter(scan.inputs.values()), {})
    convs = [p for p in paths if layers[p].type == "Conv2d"]
    return (convs or paths or [None])[-1]


def find_layer(scan: ChannelScan, name: str) -> LayerPath:
    """The ranked layer called name ("model[3][4]"); a ValueError naming the layers that are ranked."""
    for p in scan.paths():
        if path_name(p) == name:
            return p
    names = [path_name(p) for p in scan.paths()]
    raise ValueError(f"no ranked layer {name!r}: give one of {', '.join(names)} (layers with maps of at least 3x3; "
                     "`padlens layers` lists every layer)")


def scan_job(model: nn.Module, norm: Normalization, images: torch.Tensor | None = None, inputs=tuple(INPUTS),
             device: torch.device = torch.device("cpu"), input_size: int = 32, info: dict | None = None,
             should_stop: Callable[[], bool] = never):
    """Job: the ChannelScan of model on each input of `inputs` (the dataset mean only with uint8 images [N, 3, H, W],
    the subset to average), fp32 on the model as it is. Yields Progress and a Partial copy per input; when stopped,
    returns the inputs finished (a dataset mean stopped part-way is left out, not ranked on fewer images)."""
    bad = [k for k in inputs if k not in INPUTS]
    if bad:
        raise ValueError(f"inputs must be among {', '.join(INPUTS)}, not {', '.join(bad)}")
    kinds = [k for k in inputs if k != "mean" or (images is not None and len(images))]
    model = model.eval()
    scan = ChannelScan({}, {"input_size": input_size, "mean_images": 0, **(info or {})})
    total = sum(len(images) if k == "mean" else 1 for k in kinds) or 1
    done = 0
    for kind in kinds:
        if should_stop():
            break
        if kind == "mean":
            acts, n = yield from forward(mean_activations(model, images, norm, device, "fp32", size=input_size,
                                                          should_stop=should_stop),
                                         lambda ev: Progress(done + ev.done, total, f"dataset mean: {ev.message}"))
            if n < len(images):
                break
            scan.info["mean_images"] = n
            done += n
        else:
            acts, _ = capture(model, blank_input(BLANK_KIND[kind], norm, input_size), device)
            done += 1
        scan.inputs[kind] = rank_channels(model, acts)
        yield Progress(done, total, f"ranked every layer's channels on the {kind} input")
        yield Partial(ChannelScan(dict(scan.inputs), dict(scan.info)))
    return scan


# ---------------------------------------------------------------------------------------------------
# Ablation

class ChannelAblation(nn.Module):
    """A layer whose outputs in `channels` are zero: wrapped around the layer, so that every other layer keeps its
    path and the copy runs as any model does (batch norm folded, compiled, on any device)."""

    def __init__(self, layer: nn.Module, channels, width: int):
        super().__init__()
        self.layer = layer
        self.channels = tuple(int(c) for c in channels)
        keep = torch.ones(1, width, 1, 1)
        keep[0, list(self.channels)] = 0
        self.register_buffer("keep", keep)

    def forward(self, *args, **kwargs):
        out = self.layer(*args, **kwargs)
        return out * self.keep.to(out.device, out.dtype)   # a no-op once on the layer's device and precision

    def extra_repr(self) -> str:
        return f"channels {list(self.channels)} zeroed"


def ablated(model: nn.Module, path: LayerPath, channels, width: int) -> nn.Module:
    """A copy of model whose layer at path outputs zero in channels (of its width); ValueError for a channel out of
    range or no channel."""
    channels = [int(c) for c in channels]
    if not channels:
        raise ValueError("ablation needs at least one channel")
    wrong = [c for c in channels if not 0 <= c < width]
    if wrong:
        raise ValueError(f"{path_name(path)} has channels 0 to {width - 1}, not {', '.join(map(str, wrong))}")
    out = copy.deepcopy(model)
    parent = layer_at(out, path[:-1])
    key = list(parent._modules)[path[-1]] if isinstance(path[-1], int) else path[-1]
    parent._modules[key] = ChannelAblation(parent._modules[key], channels, width)
    return out


@dataclass
class AblationResult:
    """What zeroing `channels` of one layer changes. correct: [before, after] over `evaluated` of the `images`
    asked (all of the data set's, where it holds fewer); changed: the images whose prediction differs; grids:
    (before, after) GridResults, None without a grid; bias_before, bias_after: per spatial layer (bias_layers, by
    name) its border bias on the ranking's input."""
    path: LayerPath
    type: str
    channels: list[int]
    input: str
    images: int
    correct: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=int))
    evaluated: int = 0
    changed: int = 0
    grids: tuple[GridResult | None, GridResult | None] = (None, None)
    bias_layers: list[str] = field(default_factory=list)
    bias_before: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bias_after: np.ndarray = field(default_factory=lambda: np.zeros(0))
    info: dict = field(default_factory=dict)

    @property
    def layer(self) -> str:
        return path_name(self.path)

    @property
    def accuracy(self) -> tuple[float, float]:
        n = max(self.evaluated, 1)
        return (self.correct[0] / n, self.correct[1] / n) if self.evaluated else (math.nan, math.nan)

    @property
    def intervals(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The 95% Wilson interval of each accuracy."""
        return wilson(self.correct[0], self.evaluated), wilson(self.correct[1], self.evaluated)

    @property
    def difference(self) -> tuple[float, tuple[float, float]]:
        """after - before and its 95% interval (Newcombe's, core.stats.diff_interval)."""
        b, a = self.accuracy
        return a - b, diff_interval(self.correct[1], self.evaluated, self.correct[0], self.evaluated)

    @property
    def grid_difference(self) -> np.ndarray | None:
        """Accuracy after - before per grid cell (NaN where either has no image yet)."""
        before, after = self.grids
        if before is None or after is None:
            return None
        return after.accuracy - before.accuracy

    @property
    def complete(self) -> bool:
        before, after = self.grids
        grid_asked = int(self.info.get("grid_images", 0))
        return self.evaluated == self.images and (not grid_asked or (
            before is not None and after is not None and before.images == after.images == grid_asked))

    def copy(self) -> AblationResult:
        return dataclasses.replace(self, correct=self.correct.copy(), info=dict(self.info),
                                   grids=tuple(copy.deepcopy(g) for g in self.grids))


def ablated_model(loaded: LoadedModel, path: LayerPath, channels, width: int) -> LoadedModel:
    """The LoadedModel of the ablated copy, cached under the model's cache id and the zeroed channels (never cached
    where the model itself is not)."""
    channels = [int(c) for c in channels]
    model = ablated(loaded.model, path, channels, width)
    what = f"zeroed {path_name(path)} {channels}"
    return LoadedModel(model, loaded.norm, f"{loaded.name}, {len(channels)} channels of {path_name(path)} zeroed",
                       {**loaded.meta, "ablation": what}, loaded.classes,
                       None if loaded.cache_id is None else f"{loaded.cache_id}|{what}")


def ablation_job(loaded: LoadedModel, data: Dataset, path: LayerPath, channels, rank_input: str = DEFAULT_INPUT,
                 images: int = DEFAULT_IMAGES, grid_images: int = DEFAULT_GRID_IMAGES, spec: GridSpec = ABLATION_GRID,
                 mode: str = ABLATION_MODE, precision: str = "auto", input_size: int = 32, seed: int = 0,
                 mean_images: int = DEFAULT_MEAN_IMAGES, info: dict | None = None,
                 should_stop: Callable[[], bool] = never):
    """Job: the AblationResult of zeroing `channels` of the layer at path in loaded's model (which it reads, never
    changes: the GUI hands in a copy of its own).

    First every layer's border bias before and after on rank_input (fp32, the dataset mean over mean_images
    class-balanced test images), then the accuracy of both on `images` class-balanced test images in batches (the
    models as the translation grid runs them: core.inference.fast_model, `precision` resolved as it does), then the
    translation grid of both on grid_images images (0: none) through core.grid_cache, from the cache where it has
    them. Yields Progress and a Partial copy after each stage; when stopped, returns what is finished (evaluated and
    the grids' counts say how much)."""
    if rank_input not in INPUTS:
        raise ValueError(f"rank_input must be one of {', '.join(INPUTS)}, not {rank_input!r}")
    for what, n in (("images", images), ("grid images", grid_images), ("mean images", mean_images)):
        if n < 0:
            raise ValueError(f"{what} {n}: give a number of test images (0: none)")
    device = next(loaded.model.parameters()).device
    precision = resolve_precision(precision, device)
    before = loaded.model.eval()
    mean_idx = stratified_subset(data.labels, mean_images, seed) if rank_input == "mean" else None
    idx = stratified_subset(data.labels, images, seed) if images else torch.zeros(0, dtype=torch.long)
    grid_images = len(stratified_subset(data.labels, grid_images, seed)) if grid_images else 0   # all, when fewer
    cells = len(spec.dxs) * len(spec.dys)
    total = 2 * (len(mean_idx) if mean_idx is not None else 1) + 2 * len(idx) + 2 * grid_images * cells
    done = 0

    def biases(model):
        """Job: layer_biases of every layer on rank_input, by path."""
        nonlocal done
        if mean_idx is None:
            acts, _ = capture(model, blank_input(BLANK_KIND[rank_input], loaded.norm, input_size), device)
            done += 1
        else:
            job = mean_activations(model, data.images[mean_idx], loaded.norm, device, "fp32", size=input_size,
                                   should_stop=should_stop)
            acts, _ = yield from relay(job, done, total, "border bias, dataset mean")
            done += len(mean_idx)
        yield Progress(done, total, f"border bias on the {rank_input} input")
        return acts

    acts = yield from biases(before)
    if tuple(path) not in acts or acts[tuple(path)].dim() != 3:
        raise ValueError(f"{path_name(path)} gives no [C, H, W] map to ablate channels of")
    width = acts[tuple(path)].shape[0]
    after_loaded = ablated_model(loaded, tuple(path), channels, width)
    result = AblationResult(tuple(path), type(layer_at(before, path)).__name__, [int(c) for c in channels],
                            rank_input, len(idx), info={"precision": precision, "input_size": input_size, "seed": seed,
                                                      "grid_images": grid_images, "mode": mode,
                                                      "mean_images": len(mean_idx) if mean_idx is not None else 0,
                                                      "data": data.source, "model": loaded.name, **(info or {})})
    spatial = [p for p, b in layer_biases(acts).items() if math.isfinite(b) and not is_container(layer_at(before, p))]
    if should_stop():
        return result
    acts_after = yield from biases(after_loaded.model)
    if should_stop():
        return result
    result.bias_layers = [path_name(p) for p in spatial]
    bb, ba = layer_biases({p: acts[p] for p in spatial}), layer_biases({p: acts_after[p] for p in spatial})
    result.bias_before = np.array([bb[p] for p in spatial])
    result.bias_after = np.array([ba[p] for p in spatial])
    yield Partial(result.copy())

    models = [fast_model(before, device, precision), fast_model(after_loaded.model, device, precision)]

    def predict(model, pixels):
        x = resize_input(loaded.norm.apply(pixels.to(device)), input_size).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(device, precision):
            logits = model(x).float()
        check_finite_outputs(logits, precision)
        return logits.argmax(1)

    batch = grid_batch(device, precision)
    for lo in range(0, len(idx), batch):
        if should_stop():
            return result
        sel = idx[lo:lo + batch]
        labels = data.labels[sel].to(device)
        pred = [predict(m, data.images[sel]) for m in models]
        result.correct += np.array([int((p == labels).sum()) for p in pred])
        result.changed += int((pred[0] != pred[1]).sum())
        result.evaluated += len(sel)
        done += 2 * len(sel)
        yield Progress(done, total, f"accuracy before and after: {result.evaluated} of {len(idx)} images")
    yield Partial(result.copy())

    if grid_images:
        grids = []
        for which, lm in (("before", loaded), ("after", after_loaded)):
            req = GridRequest(lm, data, spec, mode, grid_images, seed, precision, input_size)
            grid = req.cached()
            if grid is None:
                grid = yield from relay(req.job(should_stop), done, total, f"translation grid {which}")
            done += grid_images * cells
            grids.append(grid)
            result.grids = tuple(grids + [None] * (2 - len(grids)))
            yield Partial(result.copy())
            if should_stop():
                return result
    return result


def summarize(result: AblationResult) -> dict:
    """What the ablation found, for the command line and the report: the accuracies with their intervals, the
    difference (Newcombe), the predictions changed, the border bias at the layer and its mean over the layers after
    it, and the grid's mean accuracies and largest change (None without a grid)."""
    (b, a), (ib, ia) = result.accuracy, result.intervals
    d, di = result.difference
    names = result.bias_layers
    at = names.index(result.layer) if result.layer in names else None
    after = slice(at + 1, None) if at is not None else slice(0, 0)

    def mean(v):
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else None

    out = {"layer": result.layer, "type": result.type, "channels": result.channels, "input": result.input,
           "images": result.evaluated, "accuracy_before": b, "accuracy_after": a, "interval_before": list(ib),
           "interval_after": list(ia), "difference": {"value": d, "interval": list(di)}, "changed": result.changed,
           "bias_at_layer": ([float(result.bias_before[at]), float(result.bias_after[at])] if at is not None else None),
           "bias_after_layer": [mean(result.bias_before[after]), mean(result.bias_after[after])],
           "layers_after": len(names[after]), "precision": result.info.get("precision"), "grid": None}
    diff = result.grid_difference
    before, after_grid = result.grids
    if diff is not None and np.isfinite(diff).any():
        r, c = np.unravel_index(np.nanargmin(diff), diff.shape)
        out["grid"] = {"images": min(before.images, after_grid.images), "shifts": int(diff.size),
                       "mode": before.info.get("mode"), "mean_before": float(np.nanmean(before.accuracy)),
                       "mean_after": float(np.nanmean(after_grid.accuracy)), "mean_difference": float(np.nanmean(diff)),
                       "largest_drop": {"dx": int(before.dxs[c]), "dy": int(before.dys[r]), "value": float(diff[r, c])}}
    return out


# ---------------------------------------------------------------------------------------------------
# Words, figures and files

def channels_title(name: str, scan: ChannelScan, kind: str, layer: LayerChannels, top: int) -> str:
    """What the figure of a layer's top channels shows, with the image count of a dataset mean and the JPEG copy."""
    jpeg = " (lossy JPEG copy)" if "JPEG" in str(scan.info.get("data", "")) else ""
    what = (f"dataset mean over {scan.info.get('mean_images')} test images of CIFAR-10{jpeg}" if kind == "mean"
            else INPUTS[kind].split(",")[0])
    size = int(scan.info.get("input_size", 32))
    return (f"{name}: the top {min(top, len(layer.score))} channels of {layer.label} by border score, {what}"
            + (f", input {size}x{size}" if size != 32 else ""))


def ablation_text(s: dict) -> list[str]:
    """summarize()'s numbers as lines for the terminal."""
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    iv = lambda v: f"[{100 * v[0]:.1f}, {100 * v[1]:.1f}]"  # noqa: E731
    d = s["difference"]
    lines = [f"zeroing channels {s['channels']} of {s['layer']} {s['type']} (the top {len(s['channels'])} on the "
             f"{s['input']} input):",
             f"  accuracy on {s['images']} test images ({s['precision']}): before {pct(s['accuracy_before'])} "
             f"{iv(s['interval_before'])}, after {pct(s['accuracy_after'])} {iv(s['interval_after'])}; difference "
             f"{100 * d['value']:+.1f} pp [{100 * d['interval'][0]:+.1f}, {100 * d['interval'][1]:+.1f}] (Newcombe); "
             f"predictions changed: {s['changed']} of {s['images']}"]
    if s["bias_at_layer"]:
        b, a = s["bias_at_layer"]
        mb, ma = s["bias_after_layer"]
        lines.append(f"  border bias on the {s['input']} input at {s['layer']}: {b:.3f} -> {a:.3f}"
                     + (f"; mean over the {s['layers_after']} layers after it: {mb:.3f} -> {ma:.3f}"
                        if mb is not None and ma is not None else ""))
    g = s["grid"]
    if g:
        drop = g["largest_drop"]
        lines.append(f"  translation grid ({g['mode']}, {g['shifts']} shifts, {g['images']} images): mean accuracy "
                     f"{pct(g['mean_before'])} -> {pct(g['mean_after'])} ({100 * g['mean_difference']:+.1f} pp); "
                     f"largest fall {100 * drop['value']:+.1f} pp at (dx, dy) = ({drop['dx']}, {drop['dy']})")
    return lines


def channel_cells(layer: LayerChannels, channels: list[int]) -> list[torch.Tensor]:
    """One uint8 [3, h, w] picture per channel: its map (viridis, its own range; core.colormaps.map_tile) above its
    mean filter (blue negative, white 0, red positive, its own range), centred; the map alone without filters."""
    from padlens.core.colormaps import colorize, map_tile, upscale_to
    cells = []
    for c in channels:
        tile = map_tile(torch.from_numpy(layer.maps[c]))
        if layer.filters is not None:
            k = upscale_to(colorize(layer.filters[c], "diverging"), tile.shape[-1] // 2)
            below = torch.full((3, 4 + k.shape[-2], tile.shape[-1]), 255, dtype=torch.uint8)
            x = (tile.shape[-1] - k.shape[-1]) // 2
            below[:, 4:, x:x + k.shape[-1]] = k
            tile = torch.cat([tile, below], -2)
        cells.append(tile)
    return cells


CSV_HEAD = ["input", "layer", "type", "map", "rank", "channel", "score", "border_mean", "centre_mean",
            "filter_asymmetry", "filter_of"]
ABLATION_HEAD = ["quantity", "layer", "dx", "dy", "before", "after", "difference", "diff_low", "diff_high", "images"]


def ranking_rows(scan: ChannelScan) -> list[list]:
    """One CSV row per input, layer and channel, in rank order (see CSV_HEAD)."""
    rows = []
    for kind, layers in scan.inputs.items():
        for lc in layers.values():
            shape = "x".join(map(str, lc.maps.shape))
            rows += [[kind, lc.name, lc.type, shape, r + 1, int(c), f"{lc.score[c]:.6f}", f"{lc.border[c]:.6g}",
                      f"{lc.centre[c]:.6g}", f"{lc.asymmetry[c]:.6f}", lc.conv or ""]
                     for r, c in enumerate(lc.ranking)]
    return rows


def ablation_rows(result: AblationResult) -> list[list]:
    """The ablation in long form (see ABLATION_HEAD): accuracy, predictions changed, every layer's border bias and
    every grid cell's accuracy, each difference of accuracies with its 95% interval."""
    n = result.evaluated
    (b, a), (d, (lo, hi)) = result.accuracy, result.difference
    rows = [["accuracy", result.layer, "", "", f"{b:.6f}", f"{a:.6f}", f"{d:.6f}", f"{lo:.6f}", f"{hi:.6f}", n],
            ["predictions_changed", result.layer, "", "", "", "", result.changed, "", "", n]]
    rows += [["border_bias", name, "", "", f"{x:.6f}", f"{y:.6f}", f"{y - x:.6f}", "", "", ""]
             for name, x, y in zip(result.bias_layers, result.bias_before, result.bias_after)]
    before, after = result.grids
    if before is not None and after is not None:
        for r, dy in enumerate(before.dys):
            for c, dx in enumerate(before.dxs):
                k0, n0, k1, n1 = before.correct[r, c], before.count[r, c], after.correct[r, c], after.count[r, c]
                lo, hi = diff_interval(k1, n1, k0, n0)
                rows.append(["grid_accuracy", "", int(dx), int(dy), f"{before.accuracy[r, c]:.6f}",
                             f"{after.accuracy[r, c]:.6f}", f"{after.accuracy[r, c] - before.accuracy[r, c]:.6f}",
                             f"{lo:.6f}", f"{hi:.6f}", int(min(n0, n1))])
    return rows


def save_data(path, scan: ChannelScan, layer: LayerPath | None = None, ablation: AblationResult | None = None) -> Path:
    """By the file's suffix: .csv, the ranking (ranking_rows); .npz, every layer's score, border and centre means
    and filter asymmetry per input ('blank/model[3][4]/score'), the maps and mean filters of `layer`, and the
    ablation ('ablation/...', with the grids' accuracies and counts)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return atomic_csv(path, [CSV_HEAD, *ranking_rows(scan)])
    if path.suffix.lower() != ".npz":
        raise ValueError(f"save the channels as .csv or .npz, not {path.suffix or 'no suffix'}")
    arrays = {"info": np.array(json.dumps(scan.info, default=str))}
    for kind, layers in scan.inputs.items():
        for p, lc in layers.items():
            for key in ("score", "border", "centre", "asymmetry"):
                arrays[f"{kind}/{lc.name}/{key}"] = getattr(lc, key)
            if layer is not None and p == tuple(layer):
                arrays[f"{kind}/{lc.name}/maps"] = lc.maps
                if lc.filters is not None:
                    arrays[f"{kind}/{lc.name}/filters"] = lc.filters
    if ablation is not None:
        a = ablation
        arrays.update({"ablation/layer": np.array(a.layer), "ablation/channels": np.array(a.channels),
                       "ablation/correct": a.correct, "ablation/evaluated": np.array(a.evaluated),
                       "ablation/changed": np.array(a.changed), "ablation/bias_layers": np.array(a.bias_layers),
                       "ablation/bias_before": a.bias_before, "ablation/bias_after": a.bias_after,
                       "ablation/info": np.array(json.dumps(a.info, default=str))})
        for which, g in zip(("before", "after"), a.grids):
            if g is not None:
                arrays.update({"ablation/grid_dx": g.dxs, "ablation/grid_dy": g.dys,
                               f"ablation/grid_accuracy_{which}": g.accuracy, f"ablation/grid_count_{which}": g.count})
    return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def save_channels(scan: ChannelScan, out, layer: LayerPath, ablation: AblationResult | None = None,
                  stem: str = "channels") -> list[Path]:
    """stem.npz and stem.csv (save_data) and, with an ablation, stem_ablation.csv (ablation_rows); the figures are
    the app's (gui.channels_panel.write_channel_figures)."""
    out = Path(out)
    written = [save_data(out / f"{stem}.npz", scan, layer, ablation), save_data(out / f"{stem}.csv", scan)]
    if ablation is not None:
        written.append(atomic_csv(out / f"{stem}_ablation.csv", [ABLATION_HEAD, *ablation_rows(ablation)]))
    return written


def ablation_title(name: str, result: AblationResult) -> str:
    """What the ablation figure shows: the model, the channels zeroed, the grid and its image count."""
    before = result.grids[0]
    jpeg = " (lossy JPEG copy)" if "JPEG" in str(result.info.get("data", "")) else ""
    images = min(g.images for g in result.grids if g is not None) if before is not None else 0
    return (f"{name}: {result.info.get('mode', ABLATION_MODE)} shift accuracy with channels {result.channels} of "
            f"{result.layer} zeroed, {images} test images of CIFAR-10{jpeg}")
