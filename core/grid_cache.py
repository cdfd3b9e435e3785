"""The translation grid's one protocol: what decides a grid (GridRequest), its cache key and file, loading
it (an unreadable file is discarded and named), computing it and saving it.

The command line, the Translation and Compare tabs and the report all go through here, so each finds the
grids the others computed, under the same rules: only complete grids are cached and read back.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from padlens.core.data import Dataset, cache_dir, stratified_subset
from padlens.core.device import describe_precision, resolve_precision
from padlens.core.inference import fast_model, folds, grid_batch
from padlens.core.jobs import Job, never
from padlens.core.session import LoadedModel
from padlens.core.timing import measure_rate, rate_key
from padlens.core.translation import GridResult, GridSpec, check_target_halfwidth, translation_grid

GRID_VERSION = 3   # bump when the same settings would compute a different grid (2: axes anchored at 0;
                   # 3: affine-mean fills with the data set's mean colour, data keyed by content)


def grid_title(model_name: str, mode: str, n: int, data_source: str, input_size: int = 32,
               precision_text: str = "") -> str:
    jpeg = " (lossy JPEG copy)" if "JPEG" in data_source else ""
    resized = f", input resized to {input_size}x{input_size}" if input_size != 32 else ""
    ran = f"; {precision_text}" if precision_text else ""
    return f"{model_name}: {mode} shifts, {n} test images of CIFAR-10{jpeg}{resized}{ran}"


def cache_file(key: str) -> Path:
    return cache_dir() / "translation" / f"{key}.npz"


@dataclass(eq=False)
class GridRequest:
    """Everything that decides a grid's numbers: the model (by its files' content), the data (by content),
    the class-balanced image subset, the shifts and how the model runs. precision 'auto' is resolved for
    the model's device on creation."""
    loaded: LoadedModel
    data: Dataset
    spec: GridSpec
    mode: str = "affine"
    n_images: int = 0            # 0: the whole split; else a class-balanced subset of this many
    seed: int = 0
    precision: str = "auto"
    input_size: int = 32
    fold: bool = True            # batch norm folded where the precision allows (core.inference.folds)
    compile: bool = False
    target_halfwidth: float | None = None   # stop once every cell's 95% interval is this narrow (0.02: +-2 points)
    notes: list[str] = field(default_factory=list, compare=False)   # what happened to cache files, for the user

    def __post_init__(self):
        self.precision = resolve_precision(self.precision, self.device)
        check_target_halfwidth(self.target_halfwidth)

    @property
    def device(self) -> torch.device:
        return next(self.loaded.model.parameters()).device

    @cached_property
    def subset(self) -> torch.Tensor:
        return stratified_subset(self.data.labels, self.n_images or None, self.seed)

    @property
    def images(self) -> int:
        return len(self.subset)

    @property
    def rate_key(self) -> tuple:
        """What this grid's speed depends on (core.timing.rate_key): model, device, precision, input size."""
        return rate_key(self.loaded.cache_id or id(self.loaded), self.device, self.precision, self.input_size)

    def timing_job(self) -> Callable[[Callable[[], bool]], Job]:
        """A job that times this grid's model as the grid runs it (core.timing.measure_rate, remembered under
        rate_key). The model is prepared now, on the caller's thread: the GUI's, whose hooks a job must not meet."""
        model = fast_model(self.loaded.model, self.device, self.precision, fold=self.fold)
        norm, device, precision, size, key = self.loaded.norm, self.device, self.precision, self.input_size, self.rate_key
        return lambda stop: measure_rate(model, norm, device, precision, size, grid_batch(device, precision), key,
                                         should_stop=stop)

    @property
    def folded(self) -> bool:
        return folds(self.precision, self.fold)

    def _settings(self) -> list:
        run = self.precision if self.folded == folds(self.precision) else f"{self.precision}, batch norm unfolded"
        target = [self.target_halfwidth] if self.target_halfwidth else []   # grids without one keep their keys
        return [self.data.fingerprint, asdict(self.spec), self.mode, self.images, self.seed, run, self.input_size,
                *target]

    def same_grid(self, other: GridRequest | None) -> bool:
        """Whether other asks for the same numbers of the same loaded model (also one never cached)."""
        return other is not None and other.loaded is self.loaded and other._settings() == self._settings()

    @property
    def key(self) -> str | None:
        """The cache key, None for a model that is never cached (an own model without weights)."""
        if self.loaded.cache_id is None:
            return None
        payload = json.dumps([GRID_VERSION, self.loaded.cache_id, *self._settings()])
        return hashlib.sha1(payload.encode()).hexdigest()[:20]

    @property
    def path(self) -> Path | None:
        key = self.key
        return None if key is None else cache_file(key)

    @property
    def crop_pad(self) -> int | None:
        return (self.loaded.meta.get("recipe") or {}).get("crop_pad")

    @property
    def title(self) -> str:
        return self._title(self.images)

    def _title(self, n: int) -> str:
        return grid_title(self.loaded.name, self.mode, n, self.data.source, self.input_size, self.precision_text)

    @property
    def precision_text(self) -> str:
        """Which precision runs and why, in words (the captions and the command line say it)."""
        return describe_precision(self.precision, self.device)

    def complete(self, result: GridResult) -> bool:
        """Every cell has all the images asked for, or, with a target, the same images and every cell's
        interval within it (the grid stopped there because precision was reached)."""
        if not result.count.size or result.flip_radius is None:   # None: saved before the per-image record
            return False
        n = int(result.count.min())
        return n == self.images or bool(self.target_halfwidth and n == int(result.count.max())
                                        and np.nanmax(result.accuracy_halfwidth) <= self.target_halfwidth)

    def info(self) -> dict:
        return {"checkpoint": self.loaded.meta.get("path", self.loaded.name), "padding": self.loaded.padding_mode,
                "data": self.data.source,
                "images": self.images, "seed": self.seed, "crop_pad": self.crop_pad, "fused": self.folded,
                "device": str(self.device), "precision_text": self.precision_text, "title": self.title}

    def cached(self) -> GridResult | None:
        """The complete grid from the cache, else None; an unreadable or incomplete file is deleted and
        named in `notes`."""
        path = self.path
        if path is None or not path.is_file():
            return None
        try:
            result = GridResult.load_npz(path)
        except Exception as e:  # noqa: BLE001 - numpy raises many kinds for a truncated or damaged file
            problem = f"unreadable ({type(e).__name__})"
        else:
            if self.complete(result):
                return result
            problem = "incomplete"
        path.unlink(missing_ok=True)
        self.notes.append(f"discarded the {problem} cached grid {path.name}; computing it again")
        return None

    def save(self, result: GridResult) -> str:
        """Cache a complete grid; returns what happened, in words."""
        path = self.path
        if path is None:
            return "not cached (a model without weights is a new random init each time)"
        if not self.complete(result):
            return "not cached (incomplete)"
        try:
            result.save_npz(path)
        except OSError as e:
            return f"could not cache it ({e})"
        return f"cached as {path.name}"

    def make_job(self) -> Callable[..., Job]:
        """make_job(should_stop) -> the grid computation, returning its GridResult (info['cache'] says
        whether it was cached). The model copy that runs it is taken now, on the caller's thread: a copy
        taken on a worker could catch a hook the GUI has on the model at that moment."""
        model = fast_model(self.loaded.model, self.device, self.precision, fold=self.fold, compile=self.compile)
        subset = self.subset

        def work(should_stop: Callable[[], bool] = never):
            result = yield from translation_grid(
                model, self.data.images[subset], self.data.labels[subset], self.loaded.norm, self.spec, self.mode,
                self.device, self.precision, self.input_size, batch_images=grid_batch(self.device, self.precision),
                fill_color=self.data.mean_color, info=self.info(),
                should_stop=should_stop, target_halfwidth=self.target_halfwidth)
            if "precision_reached" in result.info:   # fewer images than asked for: the title says how many ran
                result.info["title"] = self._title(result.images)
            result.info["cache"] = self.save(result)
            return result
        return work

    def job(self, should_stop: Callable[[], bool] = never) -> Job:
        return self.make_job()(should_stop)
