"""Which layer breaks shift equivariance: features of the shifted image against the shifted features.

For a layer whose map is H x W on a 32 x 32 image, a shift by (dx, dy) image pixels moves its features by
(dx * W / 32, dy * H / 32) map pixels. Where that is a whole number (the shift is a multiple of the layer's
stride: 1 px before the first pool, 2 after it, 8 after three), the layer is equivariant to it when
f(shift(x)) equals shift(f(x)). The similarity of a layer and shift is the cosine between the two,
each flattened over channels and positions, per image, averaged over the images. Under `roll` both are
rolled and compared whole; under `affine` and `affine-mean` only the region valid in both is compared
(content that left the frame, and the fill that came in, are left out). Other shifts are n/a for that
layer: they change its pooling phase. A 1 x 1 map (after global pooling) and the model's output have no
position left, so there the shifted image's features are compared with the unshifted ones: invariance.

With circular padding and `roll` shifts by multiples of the pooling period, every layer is exactly
equivariant (similarity 1 to float precision); zero padding lowers it from the layer whose receptive
field first reaches the padding ring.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from padlens.core.activations import resize_input
from padlens.core.data import Normalization, mean_color
from padlens.core.files import atomic_csv, atomic_write
from padlens.core.jobs import Partial, Progress, never
from padlens.core.layers import hook_outputs, is_container, iter_paths, path_name
from padlens.core.shifts import shifted_copies
from padlens.core.translation import GridSpec

DEFAULT_GRID = GridSpec(-8, 8, -8, 8, 2)   # 81 shifts: every phase of the 2-px layers, 9 of the 8-px ones
DEFAULT_IMAGES = 20   # two per class: the cosines vary little between images; 1,620 forward passes in all
DEFAULT_MODE = "roll"   # nothing leaves the frame: what differs is the padding and the pooling phase
OUTPUT = "output"
DROP_NOISE = 1e-4   # a fall in similarity this small is float32 rounding over large maps, not a lost equivariance
EQUIVARIANCE_HELP = (
    "Shift equivariance per layer: cosine similarity between the features of the shifted image and the "
    "unshifted image's features shifted by the same amount at that layer's resolution (flattened over channels "
    "and positions, per image, averaged over the images). Under affine shifts only the region valid in both is "
    "compared; under roll the whole map. n/a: the shift is not a multiple of the layer's stride. 1x1 maps and "
    "the output are compared unshifted (invariance).")


@dataclass
class EquivarianceResult:
    """Sums of cosines and image counts per (layer, shift), so partial results read correctly.

    layers: path names ("output" last); types; sizes: each map's [H, W] ([1, 1] for the output); shifts [K, 2]
    of (dx, dy); aligned [L, K]: the shift is a whole number of that layer's map pixels and some of the map
    stays in frame (else n/a)."""
    layers: list[str]
    types: list[str]
    sizes: list[tuple[int, int]]
    shifts: np.ndarray
    aligned: np.ndarray
    sums: np.ndarray
    counts: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def similarity(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.aligned & (self.counts > 0), self.sums / np.maximum(self.counts, 1), np.nan)

    @property
    def images(self) -> int:
        c = self.counts[self.aligned]
        return int(c.min()) if c.size else 0

    def copy(self) -> "EquivarianceResult":
        """A snapshot the job goes on without changing (what a Partial hands to another thread)."""
        return dataclasses.replace(self, sums=self.sums.copy(), counts=self.counts.copy(), info=dict(self.info))

    def stride(self, i: int, size: int = 32) -> float | None:
        """Image pixels per map pixel of layer i (None for the output and 1x1 maps, compared unshifted)."""
        h, w = self.sizes[i]
        return None if h == w == 1 else size / w

    def save_npz(self, path) -> None:
        atomic_write(path, lambda tmp: np.savez_compressed(
            tmp, similarity=self.similarity, dx=self.shifts[:, 0], dy=self.shifts[:, 1], layers=np.array(self.layers),
            types=np.array(self.types), sizes=np.array(self.sizes), aligned=self.aligned, sums=self.sums,
            counts=self.counts, info=np.array(json.dumps(self.info, default=str))))

    def write_csv(self, path) -> None:
        """The layer x shift table: one row per layer, one column per shift ("n/a" where not aligned)."""
        sim = self.similarity
        head = ["layer", "type", "map", "images", *[f"dx={dx} dy={dy}" for dx, dy in self.shifts]]
        rows = [[name, t, f"{h}x{w}", int(self.counts[i].max()),
                 *["n/a" if not np.isfinite(v) else f"{v:.6f}" for v in sim[i]]]
                for i, (name, t, (h, w)) in enumerate(zip(self.layers, self.types, self.sizes))]
        atomic_csv(path, [head, *rows])


def _feature_shift(dx: int, dy: int, hw: tuple[int, int], image: tuple[int, int]) -> tuple[int, int] | None:
    """(fx, fy) in map pixels, (0, 0) for a 1x1 map, or None where the shift is not a whole map pixel."""
    h, w = hw
    if h == w == 1:
        return 0, 0
    if (dx * w) % image[1] or (dy * h) % image[0]:
        return None
    return dx * w // image[1], dy * h // image[0]


def _rows(x: torch.Tensor) -> torch.Tensor:
    """A layer's output as float32 rows [N, H, W, C] in channels-last order (free for a channels_last map; the
    model's output [N, K] becomes [N, 1, 1, K]): the layout the strided views below read."""
    x = x.float()
    x = x.permute(0, 2, 3, 1) if x.dim() == 4 else x.reshape(len(x), 1, 1, -1)
    return x if x.is_contiguous() else x.contiguous()


def _cosines(dot: torch.Tensor, na: torch.Tensor, nb: torch.Tensor) -> torch.Tensor:
    """dot / (na nb); 1 where both rows are zero (identical), 0 where only one is."""
    cos = dot / (na * nb).clamp_min(1e-300)
    return torch.where((na == 0) & (nb == 0), torch.ones_like(cos), torch.where((na == 0) | (nb == 0), 0.0 * cos, cos))


def _wrap(f: tuple[int, int], hw: tuple[int, int]) -> tuple[int, int]:
    """A roll by f as the equal roll of at most half the map each way (so a circular pad of the map holds it)."""
    (fx, fy), (h, w) = f, hw
    return (fx + w // 2) % w - w // 2, (fy + h // 2) % h - h // 2


def _window(f: int, n: int) -> tuple[slice, slice]:
    """Along one axis of n map pixels: where the shifted image's features and the reference moved by f
    pixels are both in frame, as (slice of the shifted, slice of the unshifted)."""
    return slice(max(0, f), n + min(0, f)), slice(max(0, -f), n - max(0, f))


@dataclass
class _Reference:
    """One layer's output for the unshifted chunk as the comparisons read it: rows [n, H + 2 py, W + 2 px, C],
    padded by the largest feature shift (circularly under roll, with zeros else), so the reference moved by
    any shift is a strided view of it (`_runs`), never a copy; its norms over the whole map, and per position
    (squared, summed over channels) for the norms over an overlap."""
    padded: torch.Tensor
    norms: torch.Tensor
    energy: torch.Tensor


def _runs(items: list[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """(start, end, index step, offset step) of maximal runs of (row block, element offset) pairs, in block
    order, whose steps are constant and not negative: each run is one strided view of the reference."""
    runs, a = [], 0
    while a < len(items):
        b, dj, doff = a + 1, 0, 0
        if b < len(items) and items[b][1] >= items[a][1]:
            dj, doff = items[b][0] - items[a][0], items[b][1] - items[a][1]
            while b < len(items) and (items[b][0] - items[b - 1][0], items[b][1] - items[b - 1][1]) == (dj, doff):
                b += 1
        runs.append((a, b, dj, doff))
        a = b
    return runs


def _layers(model: nn.Module, x: torch.Tensor) -> list[tuple]:
    """(path, module, [H, W]) of every leaf layer with a 4-D output, in the order a forward pass runs them."""
    paths = [(p, m) for p, m in iter_paths(model) if not is_container(m)]
    shapes: dict = {}
    hooks = hook_outputs(model, lambda p, out: shapes.__setitem__(p, tuple(out.shape)), paths)
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return [(p, m, shapes[p][-2:]) for p, m in paths if p in shapes and len(shapes[p]) == 4]


def equivariance_job(model: nn.Module, images: torch.Tensor, norm: Normalization, spec: GridSpec = DEFAULT_GRID,
                     mode: str = DEFAULT_MODE, device: torch.device = torch.device("cpu"), input_size: int = 32,
                     batch_images: int = 32, batch_rows: int = 128, fill_color: tuple[float, ...] | None = None,
                     info: dict | None = None, should_stop: Callable[[], bool] = never):
    """Job over uint8 images [N, 3, H, W] (already the subset to use): the EquivarianceResult, fp32.

    Images go in chunks of batch_images: one forward pass keeps every layer's output of the unshifted chunk
    (padded, `_Reference`), then its shifted copies run in batches of whole shifts, about batch_rows rows, and
    a forward hook per layer compares each with the reference as it comes, so no shifted feature map is kept.
    The shifts run from the last to the first, so that the reference's views of a batch's shifts lie at
    evenly growing offsets: a layer compares a whole batch in a few strided products (`_runs`) instead of one
    rolled copy per shift (on this 2-core CPU the comparisons had cost 4x the forward passes). Yields Progress
    and a Partial copy of the result per batch; when stopped, returns what is finished (counts say how many
    images each cell has). fill_color: the affine-mean fill (default: the mean colour of images)."""
    model = model.eval()
    h0, w0 = images.shape[-2:]
    fill = (fill_color or mean_color(images)) if mode == "affine-mean" else None
    shifts = [(int(dx), int(dy)) for dy in spec.dys for dx in spec.dxs]

    def prepare(pixels: torch.Tensor) -> torch.Tensor:
        x = resize_input(norm.apply(pixels.to(device)), input_size)
        return x.contiguous(memory_format=torch.channels_last)

    found = _layers(model, prepare(images[:1]))
    names = [path_name(p) for p, _, _ in found] + [OUTPUT]
    types = [type(m).__name__ for _, m, _ in found] + ["output"]
    sizes = [tuple(int(v) for v in hw) for _, _, hw in found] + [(1, 1)]
    moves = [[_feature_shift(dx, dy, hw, (h0, w0)) for dx, dy in shifts] for hw in sizes]
    if mode != "roll":   # a map shifted entirely out of its frame has nothing left to compare
        moves = [[f if f is not None and (hw == (1, 1) or (abs(f[0]) < hw[1] and abs(f[1]) < hw[0])) else None
                  for f in row] for row, hw in zip(moves, sizes)]
    else:
        moves = [[f if f is None else _wrap(f, hw) for f in row] for row, hw in zip(moves, sizes)]
    pads = [(max([abs(f[1]) for f in row if f] or [0]), max([abs(f[0]) for f in row if f] or [0])) for row in moves]
    result = EquivarianceResult(names, types, sizes, np.array(shifts, dtype=int).reshape(-1, 2),
                                np.array([[f is not None for f in row] for row in moves], dtype=bool),
                                np.zeros((len(names), len(shifts))), np.zeros((len(names), len(shifts))),
                                {"mode": mode, "input_size": input_size, **({"fill_color": list(fill)} if fill else {}),
                                 **(info or {})})
    index = {**{p: i for i, (p, _, _) in enumerate(found)}, OUTPUT: len(found)}
    refs: dict[int, _Reference] = {}
    batch: list[int] = []   # the shifts of the rows the hooks see, one block of every image of the chunk each

    def store_reference(p, out):
        i = index[p]
        rows = _rows(out)
        (py, px), n = pads[i], len(rows)
        padded = rows
        if py or px:
            padded = F.pad(rows.permute(0, 3, 1, 2), (px, px, py, py), "circular" if mode == "roll" else "constant")
            padded = padded.permute(0, 2, 3, 1).contiguous()
        refs[i] = _Reference(padded, torch.linalg.vector_norm(rows.reshape(n, -1), dim=1).double(),
                             torch.linalg.vector_norm(rows, dim=-1).double().square())

    def compare(i: int, out: torch.Tensor) -> None:
        """Add the cosines of this batch's rows at layer i: whole maps under roll, at (0, 0), for 1x1 maps and
        the output; else the region valid in both (the zero-padded reference adds nothing outside it)."""
        ref, rows = refs[i], _rows(out)
        n, (h, w, c), (hp, wp) = len(ref.norms), rows.shape[1:], ref.padded.shape[1:3]
        (py, px) = pads[i]
        todo = [(j, k, moves[i][k]) for j, k in enumerate(batch) if moves[i][k] is not None]
        if not todo:
            return
        starts = [(j, ((py - f[1]) * wp + px - f[0]) * c) for j, _, f in todo]
        dots = []
        for a, b, dj, doff in _runs(starts):
            j0, off = starts[a]
            mine = rows.as_strided((b - a, n, h, w, c), (dj * n * h * w * c, h * w * c, w * c, c, 1),
                                   rows.storage_offset() + j0 * n * h * w * c)
            theirs = ref.padded.as_strided((b - a, n, h, w, c), (doff, hp * wp * c, wp * c, c, 1),
                                           ref.padded.storage_offset() + off)
            dots.append((mine * theirs).sum((2, 3, 4)).double())
        dots = torch.cat(dots)
        whole = torch.linalg.vector_norm(rows.reshape(len(rows), -1), dim=1).double()
        energy = None
        for (j, k, f), dot in zip(todo, dots):
            mine = whole[j * n:(j + 1) * n]
            theirs = ref.norms
            if mode != "roll" and f != (0, 0):
                energy = torch.linalg.vector_norm(rows, dim=-1).double().square() if energy is None else energy
                (ya, yb), (xa, xb) = _window(f[1], h), _window(f[0], w)
                mine = energy[j * n:(j + 1) * n, ya, xa].sum((1, 2)).sqrt()
                theirs = ref.energy[:, yb, xb].sum((1, 2)).sqrt()
            result.sums[i, k] += float(_cosines(dot, mine, theirs).sum())
            result.counts[i, k] += n

    order = list(range(len(shifts)))[::-1]
    total, done = len(images) * len(shifts), 0
    for lo in range(0, len(images), batch_images):
        x0 = images[lo:lo + batch_images].to(device)
        n = len(x0)
        hooks = hook_outputs(model, store_reference, [(p, m) for p, m, _ in found])
        try:
            with torch.inference_mode():
                store_reference(OUTPUT, model(prepare(x0)))
        finally:
            for h in hooks:
                h.remove()
        hooks = hook_outputs(model, lambda p, out: compare(index[p], out), [(p, m) for p, m, _ in found])
        per = max(1, batch_rows // n)
        try:
            for a in range(0, len(order), per):
                if should_stop():
                    return result
                batch[:] = order[a:a + per]
                x = shifted_copies(x0, [shifts[k] for k in batch], mode, fill)
                with torch.inference_mode():
                    compare(len(found), model(prepare(x)))
                done += len(x)
                yield Progress(done, total, f"images {lo + 1}-{lo + n} of {len(images)}, "
                                            f"shifts {a + 1}-{a + len(batch)} of {len(shifts)}")
                yield Partial(result.copy())
        finally:
            for h in hooks:
                h.remove()
        refs.clear()
    return result


def models_job(models: list[tuple[str, object]], images: torch.Tensor, spec: GridSpec = DEFAULT_GRID,
               mode: str = DEFAULT_MODE, device: torch.device = torch.device("cpu"), input_size: int = 32,
               batch_images: int = 32, fill_color: tuple[float, ...] | None = None, info: dict | None = None,
               should_stop: Callable[[], bool] = never):
    """Job: equivariance_job for each (name, LoadedModel or checkpoint path) in turn, a path loaded when its
    turn comes (off the caller's thread, in a worker); Progress over every model, a Partial {name: result so
    far} per batch; returns {name: result}, when stopped the models begun. Each result's info names its model
    and padding."""
    from padlens.core.session import LoadedModel, load_model
    total = len(models) * len(images) * len(spec.dxs) * len(spec.dys)
    done: dict[str, EquivarianceResult] = {}
    for k, (name, model) in enumerate(models):
        if should_stop():
            break
        yield Progress(k * total // len(models), total, f"{name}: loading")
        loaded = model if isinstance(model, LoadedModel) else load_model(model, device)
        job = equivariance_job(loaded.model, images, loaded.norm, spec, mode, device, input_size, batch_images,
                               fill_color=fill_color, should_stop=should_stop,
                               info={**(info or {}), "model": name, "padding": loaded.padding_mode})
        while True:
            try:
                ev = next(job)
            except StopIteration as stop:
                done[name] = stop.value
                break
            if isinstance(ev, Progress):
                yield Progress(k * total // len(models) + ev.done, total, f"{name}: {ev.message}")
            else:
                yield Partial({**done, name: ev.value})
    return done


def summarize(result: EquivarianceResult, size: int = 32) -> dict:
    """What the table says, per layer and overall.

    period_shifts: the non-zero shifts aligned at every layer (multiples of the pooling period); each layer's
    `mean` is over its own aligned non-zero shifts, `at_period` over the period shifts, so that layers compare
    on the same shifts; largest_drop: the layer whose at_period falls most below the layer before it (None
    without period shifts on the grid, or when no layer falls by more than DROP_NOISE); output_period / output_other: the output's mean similarity at the
    period shifts and at the other non-zero shifts (the pooling phase's effect on the output)."""
    sim = result.similarity
    nonzero = np.any(result.shifts != 0, axis=1)
    period = nonzero & result.aligned.all(axis=0)

    def mean(v):
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else None

    rows = []
    for i, name in enumerate(result.layers):
        own = result.aligned[i] & nonzero
        worst = None
        if np.isfinite(sim[i][own]).any():
            k = int(np.flatnonzero(own)[np.nanargmin(sim[i][own])])
            worst = [int(result.shifts[k, 0]), int(result.shifts[k, 1])]
        rows.append({"layer": name, "type": result.types[i], "size": list(result.sizes[i]),
                     "stride": result.stride(i, size), "aligned": int(own.sum()), "mean": mean(sim[i][own]),
                     "min": float(np.nanmin(sim[i][own])) if worst else None, "min_at": worst,
                     "at_period": mean(sim[i][period]) if period.any() else None})
    drop = None
    for prev, row in zip(rows, rows[1:]):
        if prev["at_period"] is not None and row["at_period"] is not None:
            d = prev["at_period"] - row["at_period"]
            if d > DROP_NOISE and (drop is None or d > drop["drop"]):
                drop = {"layer": row["layer"], "type": row["type"], "before": prev["at_period"],
                        "after": row["at_period"], "drop": d}
    out = len(result.layers) - 1
    other = nonzero & ~period
    return {"layers": rows, "period_shifts": result.shifts[period].tolist(), "largest_drop": drop,
            "output_period": mean(sim[out][period]) if period.any() else None,
            "output_other": mean(sim[out][other]) if other.any() else None, "images": result.images,
            "mode": result.info.get("mode")}


def equivariance_title(name: str, result: EquivarianceResult) -> str:
    """What a figure or table shows, naming the lossy JPEG copy when the images come from it."""
    jpeg = " (lossy JPEG copy)" if "JPEG" in str(result.info.get("data", "")) else ""
    size = result.info.get("input_size", 32)
    sized = f", input resized to {size}x{size}" if size != 32 else ""
    return (f"{name}: shift equivariance per layer, {result.info.get('mode')} shifts, {result.images} test images "
            f"of CIFAR-10{jpeg}{sized}")


def save_equivariance(result: EquivarianceResult, out, stem: str = "equivariance") -> list:
    """stem.npz and stem.csv (the layer x shift table) in folder out; the figure is the app's
    (gui.equivariance_panel.write_equivariance_figures)."""
    result.save_npz(out / f"{stem}.npz")
    result.write_csv(out / f"{stem}.csv")
    return [out / f"{stem}.npz", out / f"{stem}.csv"]