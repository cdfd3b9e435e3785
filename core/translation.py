"""The translation-robustness grid: accuracy, loss and consistency per (dx, dy) shift.

Fast by construction: many shifted copies go through one forward pass, batch norm is folded, bf16
and channels_last where supported. Progressive: images are taken in chunks that are each balanced
over classes, and after every chunk the whole heatmap is yielded, so the first complete picture comes
after the first chunk of 10 images (one per class); chunks then double.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from padlens.core.activations import resize_input
from padlens.core.data import Normalization, mean_color
from padlens.core.device import autocast
from padlens.core.evaluate import check_finite_outputs
from padlens.core.files import atomic_text, atomic_write
from padlens.core.jobs import Partial, Progress, never
from padlens.core.shifts import shifted_copies
from padlens.core.stats import wilson, wilson_halfwidth


@dataclass(frozen=True)
class GridSpec:
    x_min: int = -32
    x_max: int = 32
    y_min: int = -32
    y_max: int = 32
    step: int = 2

    def __post_init__(self):
        for name in ("x_min", "x_max", "y_min", "y_max", "step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be a whole number of pixels, not {value!r}")
        if self.step < 1:
            raise ValueError("step must be at least 1 pixel")
        if self.x_min > self.x_max or self.y_min > self.y_max:
            raise ValueError("range minimum must not exceed its maximum")

    def _axis(self, lo: int, hi: int) -> np.ndarray:
        """Steps counted from 0 when the range holds it, so the unshifted reference is always a cell
        (-32..32 step 3 is -30..30, not -32..31); otherwise from the range's start."""
        start = lo + (-lo) % self.step if lo <= 0 <= hi else lo
        return np.arange(start, hi + 1, self.step)

    @property
    def dxs(self) -> np.ndarray:
        return self._axis(self.x_min, self.x_max)

    @property
    def dys(self) -> np.ndarray:
        return self._axis(self.y_min, self.y_max)

    @classmethod
    def square(cls, lo: int, hi: int, step: int) -> "GridSpec":
        return cls(lo, hi, lo, hi, step)


@dataclass
class GridResult:
    """Sums per cell [ny, nx]; rates are derived so partial results merge by addition.

    flip_radius: one number per image of the finished chunks, in order, which the per-cell sums cannot
    give: the smallest Chebyshev radius max(|dx|, |dy|) of a grid shift whose prediction differs from the
    unshifted one, inf where none does (core.worst_case reads it). None for a grid saved without it."""
    dxs: np.ndarray
    dys: np.ndarray
    correct: np.ndarray
    loss_sum: np.ndarray
    consistent: np.ndarray
    count: np.ndarray
    info: dict = field(default_factory=dict)
    flip_radius: np.ndarray | None = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def empty(cls, spec: GridSpec, info: dict | None = None) -> "GridResult":
        z = np.zeros((len(spec.dys), len(spec.dxs)))
        return cls(spec.dxs, spec.dys, z.copy(), z.copy(), z.copy(), z.copy(), dict(info or {}))

    def _rate(self, a: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, a / np.maximum(self.count, 1), np.nan)

    @property
    def accuracy(self) -> np.ndarray:
        return self._rate(self.correct)

    @property
    def loss(self) -> np.ndarray:
        return self._rate(self.loss_sum)

    @property
    def consistency(self) -> np.ndarray:
        return self._rate(self.consistent)

    @property
    def accuracy_ci(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell 95% Wilson interval (low, high) of the accuracy: how far the true rate can be from a cell."""
        return wilson(self.correct, self.count)

    @property
    def consistency_ci(self) -> tuple[np.ndarray, np.ndarray]:
        return wilson(self.consistent, self.count)

    @property
    def accuracy_halfwidth(self) -> np.ndarray:
        """The '+-' of each cell's accuracy (95%); nan where a cell has no images."""
        return wilson_halfwidth(self.correct, self.count)

    @property
    def images(self) -> int:
        return int(self.count.min()) if self.count.size else 0

    def cell(self, dx: int, dy: int) -> tuple[int, int]:
        """(row, col) of a shift, or raises KeyError."""
        ix, iy = np.flatnonzero(self.dxs == dx), np.flatnonzero(self.dys == dy)
        if not len(ix) or not len(iy):
            raise KeyError((dx, dy))
        return int(iy[0]), int(ix[0])

    def save_npz(self, path) -> None:
        (acc_low, acc_high), (cons_low, cons_high) = self.accuracy_ci, self.consistency_ci
        atomic_write(path, lambda tmp: np.savez_compressed(
            tmp, dx=self.dxs, dy=self.dys, accuracy=self.accuracy, loss=self.loss, consistency=self.consistency,
            count=self.count, correct=self.correct, loss_sum=self.loss_sum, consistent=self.consistent,
            accuracy_low=acc_low, accuracy_high=acc_high, consistency_low=cons_low, consistency_high=cons_high,
            info=np.array(json.dumps(self.info, default=str)),
            **({} if self.flip_radius is None else {"flip_radius": self.flip_radius})))

    @classmethod
    def load_npz(cls, path) -> "GridResult":
        with np.load(path) as d:
            return cls(d["dx"], d["dy"], d["correct"], d["loss_sum"], d["consistent"], d["count"],
                       json.loads(str(d["info"])), d["flip_radius"] if "flip_radius" in d.files else None)

    def write_csv(self, path) -> None:
        """One row per cell; the 95% intervals come last, so the first six columns read as before."""
        rows = ["dx,dy,accuracy,loss,consistency,images,acc_low,acc_high,cons_low,cons_high"]
        acc, loss, cons = self.accuracy, self.loss, self.consistency
        (acc_lo, acc_hi), (cons_lo, cons_hi) = self.accuracy_ci, self.consistency_ci
        for r, dy in enumerate(self.dys):
            for c, dx in enumerate(self.dxs):
                rows.append(f"{dx},{dy},{acc[r, c]:.6f},{loss[r, c]:.6f},{cons[r, c]:.6f},{int(self.count[r, c])},"
                            f"{acc_lo[r, c]:.6f},{acc_hi[r, c]:.6f},{cons_lo[r, c]:.6f},{cons_hi[r, c]:.6f}")
        atomic_text(path, "\n".join(rows) + "\n")


def pooling_period(model: nn.Module) -> int:
    """Product of the strides of all pooling / strided layers: shifts by multiples of it keep the
    pooling phase; other shifts sample the grid differently even with no content lost."""
    period = 1
    for m in model.modules():
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            period *= s
        elif isinstance(m, nn.Conv2d) and m.stride[0] > 1:
            period *= m.stride[0]
    return period


def shift_period(model: nn.Module, input_size: int = 32, size: int = 32) -> int | None:
    """The pooling period in pixels of the size x size image that is shifted, when the network sees it
    resized to input_size: 8 at 32, 4 at 64; None where it is not a whole number of pixels (e.g. 48)."""
    period = pooling_period(model) * size / input_size
    return int(period) if period == int(period) else None


def phase_table(result: GridResult, period: int) -> np.ndarray:
    """Mean accuracy by (dy mod period, dx mod period): the pooling-phase effect in one table."""
    acc = result.accuracy
    table = np.full((period, period), np.nan)
    for py in range(period):
        for px in range(period):
            sel = acc[np.ix_(result.dys % period == py, result.dxs % period == px)]
            if np.isfinite(sel).any():
                table[py, px] = np.nanmean(sel)
    return table


FIRST_ROWS = 3000   # forward passes before the first heatmap: about 4 s at this 2-core CPU's ~700 images/s
SNAPSHOT_SECONDS = 2.0   # within a long chunk, a heatmap update at most this often


def shift_inputs(shifts: list[tuple[int, int]], mode: str, h: int, w: int) -> tuple[list[int], dict]:
    """Which shifts need forward passes of their own, as (blank, same): blank lists the shifts that push the
    whole h x w image out of the frame (only the fill is left, one input for every image); same groups the
    others by the input they give, each group run once (rolls by dx and dx + w are the same image)."""
    gone = [mode != "roll" and (abs(dx) >= w or abs(dy) >= h) for dx, dy in shifts]
    same: dict[tuple[int, int], list[int]] = {}
    for k, (dx, dy) in enumerate(shifts):
        if not gone[k]:
            same.setdefault((dx % w, dy % h) if mode == "roll" else (dx, dy), []).append(k)
    return [k for k, g in enumerate(gone) if g], same


def first_chunk_images(live_shifts: int) -> int:
    """Images before the first heatmap: one per class, fewer on big grids (at most FIRST_ROWS forward passes)."""
    return max(1, min(10, FIRST_ROWS // max(1, live_shifts)))


@dataclass(frozen=True)
class GridCost:
    """Forward passes (rows through the model) a grid runs: what a measured rate turns into a time."""
    first_rows: int   # before the first complete heatmap
    rows: int         # in all


def chunk_ends(images: int, first: int, chunk: int = 500) -> list[int]:
    """The image counts at which the grid's chunks end, where it shows a heatmap and checks its precision
    target: the first chunk, then chunks doubling (10, 20, 40, ...) up to `chunk` images."""
    ends = [min(first, images)]
    while ends[-1] < images:
        step = min(chunk, max(1, 2 * (ends[-1] - (ends[-2] if len(ends) > 1 else 0))))
        ends.append(min(ends[-1] + step, images))
    return ends


def images_to_precision(accuracy: np.ndarray, target_halfwidth: float, images: int, first: int,
                        chunk: int = 500) -> int | None:
    """Images the grid's precision stop would run if each cell's accuracy were `accuracy`: the first chunk end
    at which every cell's 95% Wilson half-width is at most target_halfwidth; None if not within `images`."""
    p = np.asarray(accuracy, dtype=float)
    p = p[np.isfinite(p)]
    for n in chunk_ends(images, first, chunk):
        if np.max(wilson_halfwidth(np.round(p * n), n)) <= target_halfwidth:
            return n
    return None


def grid_cost(spec: GridSpec, mode: str, images: int, size: int = 32) -> GridCost:
    """The forward passes translation_grid runs for `images` images: one per image and distinct shifted
    input, one per image for the unshifted reference, and one for the blank fill when a shift leaves the frame."""
    shifts = [(int(dx), int(dy)) for dy in spec.dys for dx in spec.dxs]
    blank, same = shift_inputs(shifts, mode, size, size)
    per_image, once = len(same) + 1, int(bool(blank))
    return GridCost(min(first_chunk_images(len(same)), images) * per_image + once, images * per_image + once)


def translation_grid(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, norm: Normalization,
                     spec: GridSpec, mode: str = "affine", device: torch.device = torch.device("cpu"),
                     precision: str = "fp32", input_size: int = 32, first_chunk: int | None = None,
                     chunk: int = 500, batch_images: int = 128, fill_color: tuple[float, ...] | None = None,
                     info: dict | None = None, should_stop: Callable[[], bool] = never,
                     target_halfwidth: float | None = None):
    """Job over uint8 images (already a subset, in the order to evaluate); returns a GridResult.

    fill_color: the affine-mean fill in [0, 1], the data set's mean colour (`Dataset.mean_color`);
    default the mean colour of `images`. Never the model's normalization mean, which for an own model
    may be 0 or ImageNet's.

    The (shift, image) pairs of a chunk stream through the model in batches of `batch_images` rows
    that ignore shift boundaries; small batches stay in the CPU caches (bf16 on this 2-core CPU: 767
    images/s at 128 rows, 590 at 1024). Shifts that push the whole image out of the frame leave only the
    fill, the same input for every image: it goes through the model once. Rolls that differ by whole
    image widths or heights are the same input and run once (the default -32..32 step-2 roll grid has
    1,089 cells but 256 distinct inputs).

    The first chunk is small so that a complete heatmap shows within seconds: by default 10 images
    (one per class in a stratified subset), fewer on big grids, at most FIRST_ROWS forward passes;
    later chunks double up to `chunk` images.

    Yields Progress per forward batch and Partial(a copy of the GridResult) after each image chunk, and
    within a chunk at most every SNAPSHOT_SECONDS (cells then differ in image counts). When
    stopped, returns the cells and images finished so far (counts say how many images each cell has).
    Each finished chunk appends its images' flip_radius (see GridResult), found on the fly from every batch's
    predictions: no prediction is kept.

    target_halfwidth (0.02: +-2 points): stop after the first chunk at which every cell's 95% Wilson
    interval of the accuracy is at most this wide either side; info['precision_reached'] then says so. The
    full default grid over 10,000 images takes hours on a laptop CPU; cells near 50% need about 2,400
    images for +-2 points, cells near 0% or 100% far fewer.
    """
    check_target_halfwidth(target_halfwidth)
    model = model.eval()
    fill = (fill_color or mean_color(images)) if mode == "affine-mean" else None
    result = GridResult.empty(spec, {"mode": mode, "precision": precision, "input_size": input_size,
                                     **({"fill_color": list(fill)} if fill else {}),
                                     **({"target_halfwidth": target_halfwidth} if target_halfwidth else {}),
                                     **(info or {})})
    shifts = [(int(dx), int(dy)) for dy in spec.dys for dx in spec.dxs]
    cells = [result.cell(dx, dy) for dx, dy in shifts]
    h, w = images.shape[-2:]
    blank, same = shift_inputs(shifts, mode, h, w)
    live = [ks[0] for ks in same.values()]
    members = {ks[0]: ks for ks in same.values()}

    def radius(ks: list[int]) -> float:
        return min(max(abs(shifts[j][0]), abs(shifts[j][1])) for j in ks)
    # per input the smallest radius that gives it; the unshifted input itself (also a roll by whole widths)
    # never counts as a flip, whatever the batch's rounding does to it
    live_radius = torch.tensor([math.inf if key == (0, 0) else radius(ks) for key, ks in same.items()],
                               dtype=torch.float64, device=device)
    total = len(images) * len(shifts)
    done = 0
    if first_chunk is None:
        first_chunk = first_chunk_images(len(live))
    bounds = [0, *chunk_ends(len(images), first_chunk, chunk)]

    def forward(x_pixels: torch.Tensor) -> torch.Tensor:
        n = len(x_pixels)   # torch.compile specializes batch 1: a lone row goes twice, not into a recompile
        x = resize_input(norm.apply(x_pixels.expand(2, -1, -1, -1) if n == 1 else x_pixels), input_size).to(device)
        with torch.inference_mode(), autocast(device, precision):
            out = model(x.contiguous(memory_format=torch.channels_last)).float()[:n]
        check_finite_outputs(out, precision)   # NaN logits would still give an argmax, and a plausible heatmap
        return out

    def add(ks: list[int], correct, loss_sum, consistent, counts: list[int]) -> int:
        """Per-shift sums (tensors over ks) and image counts into the cells of every shift with that
        input; returns the (shift, image) pairs this accounts for."""
        pairs = 0
        for k, c, l_, s, m in zip(ks, correct.tolist(), loss_sum.tolist(), consistent.tolist(), counts):
            for j in members.get(k, [k]):
                r, col = cells[j]
                result.correct[r, col] += c
                result.loss_sum[r, col] += l_
                result.consistent[r, col] += s
                result.count[r, col] += m
                pairs += m
        return pairs

    blank_logits = forward(shifted_copies(images[:1].to(device), [shifts[blank[0]]], mode, fill)) if blank else None
    last_snapshot = time.monotonic()
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi <= lo:
            continue
        x0, y0 = images[lo:hi].to(device), labels[lo:hi].to(device)   # shift where the model runs
        n = len(x0)
        base_pred = torch.cat([forward(x0[i:i + batch_images]).argmax(1) for i in range(0, n, batch_images)])
        flips = torch.full((n,), math.inf, dtype=torch.float64, device=device)   # this chunk's flip_radius
        if blank:
            logits = blank_logits.expand(n, -1)
            pred = logits.argmax(1)
            flips[pred != base_pred] = radius(blank)
            one = torch.stack([(pred == y0).sum().double(), F.cross_entropy(logits, y0, reduction="sum").double(),
                               (pred == base_pred).sum().double()])
            done += add(blank, *(v.repeat(len(blank)) for v in one), [n] * len(blank))
        rows = len(live) * n
        for a in range(0, rows, batch_images):
            if should_stop():
                return result
            b = min(a + batch_images, rows)
            k0, k1 = a // n, (b - 1) // n
            x = shifted_copies(x0, [shifts[live[k]] for k in range(k0, k1 + 1)], mode, fill)
            logits = forward(x[a - k0 * n:b - k0 * n])
            r = torch.arange(a, b, device=logits.device)
            img, sid = r % n, r // n - k0
            pred = logits.argmax(1)
            flipped = pred != base_pred[img]
            flips.scatter_reduce_(0, img[flipped], live_radius[k0 + sid[flipped]], "amin")

            def per_shift(v: torch.Tensor) -> torch.Tensor:
                return torch.zeros(k1 - k0 + 1, dtype=torch.float64, device=v.device).index_add_(0, sid, v.double())
            done += add([live[k] for k in range(k0, k1 + 1)], per_shift(pred == y0[img]),
                        per_shift(F.cross_entropy(logits, y0[img], reduction="none")),
                        per_shift(pred == base_pred[img]),
                        [min(b, (k + 1) * n) - max(a, k * n) for k in range(k0, k1 + 1)])
            repeats = len(shifts) - len(blank) - len(live)
            shared = f" (+{repeats} that repeat these inputs)" if repeats else ""
            yield Progress(done, total, f"images {lo + 1}-{hi} of {len(images)}, {min(k1 + 1, len(live))}/{len(live)} shifts"
                           + shared + (f" (+{len(blank)} fully out of frame, computed once)" if blank else ""))
            if lo > 0 and time.monotonic() - last_snapshot > SNAPSHOT_SECONDS:
                last_snapshot = time.monotonic()   # big chunks take minutes: show what they have so far
                yield Partial(copy.deepcopy(result))
        last_snapshot = time.monotonic()
        result.flip_radius = np.concatenate([result.flip_radius, flips.cpu().numpy()])
        if target_halfwidth and hi < len(images) and np.nanmax(result.accuracy_halfwidth) <= target_halfwidth:
            result.info["precision_reached"] = (f"precision reached: every cell within ±{100 * target_halfwidth:.1f} "
                                                f"points (95% interval) after {hi} of {len(images)} images")
            return result
        yield Partial(copy.deepcopy(result))   # a snapshot: a GUI reads it while the job goes on
    if target_halfwidth and len(images):
        widest = float(np.nanmax(result.accuracy_halfwidth))
        if widest > target_halfwidth:
            result.info["precision_not_reached"] = (f"precision not reached: the widest cell is ±{100 * widest:.1f} "
                                                    f"points (95% interval) after all {len(images)} images; more "
                                                    "images narrow it")
    return result


def check_target_halfwidth(target: float | None) -> None:
    """A stop-at-precision target is a share of accuracy between 0 and 0.5 (None: all images)."""
    if target is not None and not 0 < target < 0.5:
        raise ValueError(f"the target half-width {target!r} must be a share of accuracy above 0 and below 0.5, "
                         "e.g. 0.02 to stop at +-2 points")


def pitfalls(result: GridResult, crop_pad: int | None, period: int | None, size: int = 32) -> dict:
    """The numbers behind what makes a shift evaluation misleading, each None where the grid cannot say.

    unshifted: accuracy at (0, 0); visible / hidden: mean accuracy where at least / less than half the
    image stays in frame; min_visible: smallest visible share on the grid; inside / outside: mean
    accuracy within / beyond the training crop range (inside_cells / outside_cells: how many cells);
    phase_min / phase_max: mean accuracy over the pooling phases (dx mod period, dy mod period; None
    without a whole-pixel period, see shift_period).
    """
    from padlens.core.shifts import visible_fraction
    acc = result.accuracy
    finite = np.isfinite(acc)

    def mean(sel):
        sel = sel & finite
        return float(np.mean(acc[sel])) if sel.any() else None

    out: dict = {"mode": result.info.get("mode", "affine"), "crop_pad": crop_pad, "period": period}
    try:
        r, c = result.cell(0, 0)
        out["unshifted"] = float(acc[r, c]) if finite[r, c] else None
        out["unshifted_images"] = int(result.count[r, c])
    except KeyError:
        out["unshifted"], out["unshifted_images"] = None, 0
    vis = np.array([[visible_fraction(int(dx), int(dy), size, out["mode"]) for dx in result.dxs] for dy in result.dys])
    out["min_visible"] = float(vis.min())
    out["visible"], out["hidden"] = mean(vis >= 0.5), mean(vis < 0.5)
    if crop_pad is not None:
        inside = (np.abs(result.dxs)[None, :] <= crop_pad) & (np.abs(result.dys)[:, None] <= crop_pad)
        out["inside"], out["outside"] = mean(inside), mean(~inside)
        out["inside_cells"], out["outside_cells"] = int(inside.sum()), int((~inside).sum())
    else:
        out["inside"] = out["outside"] = None
        out["inside_cells"] = out["outside_cells"] = 0
    table = phase_table(result, period) if period else np.full((1, 1), np.nan)
    several = np.isfinite(table).sum() > 1
    out["phase_min"] = float(np.nanmin(table)) if several else None
    out["phase_max"] = float(np.nanmax(table)) if several else None
    return out
