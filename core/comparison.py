"""The comparison of 2 to 4 models, without widgets: per model the translation grid (through the shared
grid cache), the channel-mean map and border bias of every layer for the blank input and for the
responses averaged over the grid's images. The Compare tab shows what this job yields.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from padlens.core.activations import blank_input, capture, mean_activations
from padlens.core.data import Dataset, stratified_subset
from padlens.core.device import resolve_precision
from padlens.core.grid_cache import GridRequest
from padlens.core.jobs import Partial, Progress, never, relay
from padlens.core.layers import LayerInfo, is_container, iter_paths
from padlens.core.session import LoadedModel
from padlens.core.spatial_bias import border_bias, mean_map
from padlens.core.translation import GridResult, GridSpec

SEED = 0                       # the translation tab's default seed, so the two tabs share cached grids


def crop_pad_of(loaded: LoadedModel) -> int | None:
    return (loaded.meta.get("recipe") or {}).get("crop_pad")


def _nanmean(values) -> float:
    vals = np.asarray([v for v in values if v is not None], dtype=float)
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else math.nan


@dataclass
class CheckpointEntry:
    """What the comparison knows of one checkpoint; fields stay None until computed."""
    path: str
    name: str
    padding: str
    accuracy: float | None
    accuracy_text: str
    crop_pad: int | None = None
    grid: GridResult | None = None
    from_cache: bool = False
    blank_maps: dict | None = None       # {layer path: [H,W] float32 channel-mean map}
    mean_maps: dict | None = None
    blank_bias: dict = field(default_factory=dict)   # {layer path: border bias (nan below 3x3)}
    mean_bias: dict = field(default_factory=dict)
    mean_images: int = 0

    @classmethod
    def of(cls, path: str, name: str, loaded: LoadedModel) -> "CheckpointEntry":
        acc = (loaded.meta.get("metrics") or {}).get("test_accuracy")
        return cls(str(path), name, loaded.padding_mode, float(acc) if acc is not None else None,
                   loaded.accuracy_text, crop_pad_of(loaded))

    @property
    def grid_done(self) -> bool:
        return self.grid is not None and bool((self.grid.count > 0).any())

    def grid_mean(self, what: str) -> float:
        if not self.grid_done:
            return math.nan
        return _nanmean(getattr(self.grid, what).ravel())

    def bias_all(self, which: str) -> float:
        biases = self.blank_bias if which == "blank" else self.mean_bias
        return _nanmean(biases.values())


def _leaf_paths(model: nn.Module) -> set:
    return {p for p, m in iter_paths(model) if not is_container(m)}


def _maps_and_biases(acts: dict, leaves: set) -> tuple[dict, dict]:
    maps = {p: mean_map(a) for p, a in acts.items() if p in leaves and a.dim() == 3}
    return {p: m.numpy() for p, m in maps.items()}, {p: border_bias(m) for p, m in maps.items()}


def comparison_job(models: list[tuple[str, str, LoadedModel]], data: Dataset, spec: GridSpec, mode: str = "affine",
                   n_images: int = 200, seed: int = SEED, precision: str = "auto", input_size: int = 32,
                   use_cache: bool = True, should_stop=never):
    """Job over (path, name, LoadedModel) triples: per checkpoint the translation grid (cached like the
    translation tab), the channel-mean map and border bias of every layer for the blank input and for
    the responses averaged over the grid's images. It hooks into the models: give it models no other
    thread uses at the same time.

    Yields Progress, and Partial(result so far) after each checkpoint; returns a dict with 'entries'
    (CheckpointEntry per checkpoint done, plus the one under way when stopped), 'spec', 'mode', 'images',
    'input_size', 'precision', 'data', 'notes' (cache files discarded) and 'complete'.
    """
    subset = stratified_subset(data.labels, n_images, seed)
    images = data.images[subset]
    n = len(subset)
    cells = len(spec.dxs) * len(spec.dys)
    per = n * cells + 1 + n
    total = per * len(models)
    out = {"spec": spec, "mode": mode, "images": n, "input_size": input_size, "data": data.source,
           "precision": precision, "entries": [], "notes": [], "complete": False}

    def snapshot(**extra):
        return dict(out, entries=list(out["entries"]), **extra)

    for k, (path, name, lm) in enumerate(models):
        if should_stop():
            return snapshot()
        base = k * per
        device = next(lm.model.parameters()).device
        out["precision"] = resolve_precision(precision, device)
        entry = CheckpointEntry.of(path, name, lm)
        out["entries"].append(entry)
        # 1. translation grid, from the shared cache when it is there
        req = GridRequest(lm, data, spec, mode, n_images, seed, precision, input_size)
        entry.grid = req.cached() if use_cache else None
        entry.from_cache = entry.grid is not None
        out["notes"] += req.notes
        if entry.grid is None:
            yield Progress(base, total, f"{name}: translation grid")
            entry.grid = yield from relay(req.job(should_stop), base, total, name)
        if should_stop():
            return snapshot()
        # 2. blank input: zeros in normalized space
        yield Progress(base + n * cells, total, f"{name}: blank input")
        model = lm.model.eval()   # the tab's private copy (ComparisonTab.run)
        leaves = _leaf_paths(model)
        acts, _ = capture(model, blank_input("normalized", lm.norm, input_size), device, "fp32")
        entry.blank_maps, entry.blank_bias = _maps_and_biases(acts, leaves)
        del acts
        if should_stop():
            return snapshot()
        # 3. responses averaged over the grid's images
        sums, done = yield from relay(
            mean_activations(model, images, lm.norm, device, "fp32", size=input_size,
                             should_stop=should_stop), base + n * cells + 1, total, f"{name}: dataset mean")
        if done:
            entry.mean_maps, entry.mean_bias = _maps_and_biases(sums, leaves)
            entry.mean_images = done
        del sums
        if should_stop():
            return snapshot()
        yield Partial(snapshot())
    return snapshot(complete=True)


def common_layers(infos: list[list[LayerInfo]]) -> list[LayerInfo]:
    """Layers (not containers) with a [C,H,W] output that every model has at the same path, of the same type
    and map size H x W. The channel counts may differ (the flagship is wider than the padding variants): the
    maps compared are channel means."""
    if not infos:
        return []

    def key(i: LayerInfo):
        return i.path, i.type, tuple(i.output_shape[1:])
    keys = [{key(i) for i in one if not i.is_container and len(i.output_shape) == 3} for one in infos]
    shared = set.intersection(*keys)
    return [i for i in infos[0] if not i.is_container and len(i.output_shape) == 3 and key(i) in shared]
