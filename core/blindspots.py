"""Blind spots of a classifier: a test image scaled down to a patch and placed at every position of a canvas.

Mind the Pad (Alsallakh et al., ICLR 2021) found a detector that misses an object after a small shift; this
is the classifier version. Each test image is scaled to patch x patch pixels (bilinear, antialiased, as
core.activations.resize_input) and pasted with its top-left corner at (x, y), for x and y in 0, stride, ...,
up to canvas - patch, into a canvas of the image's size (32 x 32) whose background is blank (zeros in pixel
space: black), the data set's mean colour, or another test image (the next image of the subset with another
class). At each position the maps hold the softmax probability of the true class and the accuracy, averaged
over N images (a class-balanced subset). Positions are the patch's top-left corner, x to the right, y down;
the patch's centre lies at (x + patch / 2, y + patch / 2).

On a constant background a network without padding effects sees the same patch wherever it is: with
circular padding and global pooling, positions that differ by the pooling period give the same output
exactly. Zero padding lets the network tell where the border is, so a patch near it can be read
differently from one in the middle.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from padlens.core.activations import resize_input
from padlens.core.data import Normalization, mean_color
from padlens.core.device import autocast, describe_precision, resolve_precision
from padlens.core.evaluate import check_finite_outputs
from padlens.core.files import atomic_csv, atomic_write
from padlens.core.inference import fast_model, grid_batch
from padlens.core.jobs import Partial, Progress, never
from padlens.core.stats import wilson

BACKGROUNDS = {
    "blank": "blank (zeros in pixel space: black)",
    "mean": "the data set's mean colour",
    "image": "another test image (the next one of the subset with another class)",
}
DEFAULT_PATCH = 16
DEFAULT_STRIDE = 2     # 81 positions of a 16-px patch: every even offset, the far edge included
DEFAULT_IMAGES = 20    # 2 per class: 1,640 forward passes of a 96-320-320 model, within a minute on a busy 2-core CPU
DEFAULT_BACKGROUND = "blank"
BLINDSPOTS_HELP = (
    "Blind spots: each test image is scaled down to a patch and pasted at every position of a 32x32 canvas "
    "(blank: black; mean: the data set's mean colour; image: another test image); the maps hold the true-class "
    "probability and the accuracy per position of the patch's top-left corner (x right, y down), averaged over "
    "class-balanced test images. Full size: the same images unscaled, for reference.")


@dataclass(frozen=True)
class BlindspotSpec:
    """What is placed where: the patch's side, the step between positions and the canvas background."""
    patch: int = DEFAULT_PATCH
    stride: int = DEFAULT_STRIDE
    background: str = DEFAULT_BACKGROUND

    def check(self, canvas: int) -> None:
        """Refuse settings that place nothing, naming the fix."""
        if not 1 <= self.patch <= canvas:
            raise ValueError(f"patch size {self.patch}: give 1 to {canvas} pixels (the canvas is {canvas}x{canvas})")
        if self.stride < 1:
            raise ValueError(f"stride {self.stride}: the step between positions is at least 1 pixel")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, not {self.background!r}")

    def offsets(self, canvas: int = 32) -> np.ndarray:
        """Left (or top) edges of the patch: 0, stride, ... up to canvas - patch (reached when stride divides it)."""
        self.check(canvas)
        return np.arange(0, canvas - self.patch + 1, self.stride)


@dataclass
class BlindspotResult:
    """Sums and image counts per patch position [len(ys), len(xs)], so partial results read correctly; rows
    are y (the patch's top edge, down), columns x (its left edge, right). full_*: the same images unscaled."""
    xs: np.ndarray
    ys: np.ndarray
    patch: int
    prob_sum: np.ndarray
    correct: np.ndarray
    count: np.ndarray
    full_prob_sum: float = 0.0
    full_correct: float = 0.0
    full_count: int = 0
    info: dict = field(default_factory=dict)

    @classmethod
    def empty(cls, spec: BlindspotSpec, canvas: int, info: dict | None = None) -> BlindspotResult:
        xs = spec.offsets(canvas)
        z = np.zeros((len(xs), len(xs)))
        return cls(xs, xs.copy(), spec.patch, z.copy(), z.copy(), z.copy(), info=dict(info or {}))

    def _rate(self, a: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, a / np.maximum(self.count, 1), np.nan)

    @property
    def probability(self) -> np.ndarray:
        """Mean softmax probability of the true class per position (nan: no image yet)."""
        return self._rate(self.prob_sum)

    @property
    def accuracy(self) -> np.ndarray:
        return self._rate(self.correct)

    @property
    def accuracy_ci(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-position 95% Wilson interval (low, high) of the accuracy."""
        return wilson(self.correct, self.count)

    @property
    def images(self) -> int:
        return int(self.count.min()) if self.count.size else 0

    @property
    def full_accuracy(self) -> float:
        return self.full_correct / self.full_count if self.full_count else float("nan")

    @property
    def full_probability(self) -> float:
        return self.full_prob_sum / self.full_count if self.full_count else float("nan")

    def cell(self, x: int, y: int) -> tuple[int, int]:
        """(row, col) of the position with top-left corner (x, y), or raises KeyError."""
        ix, iy = np.flatnonzero(self.xs == x), np.flatnonzero(self.ys == y)
        if not len(ix) or not len(iy):
            raise KeyError((x, y))
        return int(iy[0]), int(ix[0])

    def arrays(self) -> dict[str, np.ndarray]:
        lo, hi = self.accuracy_ci
        return {"x": self.xs, "y": self.ys, "probability": self.probability, "accuracy": self.accuracy,
                "accuracy_low": lo, "accuracy_high": hi, "prob_sum": self.prob_sum, "correct": self.correct,
                "count": self.count, "full": np.array([self.full_prob_sum, self.full_correct, self.full_count]),
                "info": np.array(json.dumps({**self.info, "patch": self.patch}, default=str))}

    def rows(self, model: str) -> list[list]:
        """CSV rows, one per position (see CSV_HEAD)."""
        prob, acc, (lo, hi), half = self.probability, self.accuracy, self.accuracy_ci, self.patch / 2
        return [[model, int(x), int(y), f"{x + half:g}", f"{y + half:g}", int(self.count[r, c]),
                 f"{prob[r, c]:.6f}", f"{acc[r, c]:.6f}", f"{lo[r, c]:.6f}", f"{hi[r, c]:.6f}"]
                for r, y in enumerate(self.ys) for c, x in enumerate(self.xs)]


CSV_HEAD = ["model", "x", "y", "centre_x", "centre_y", "images", "probability", "accuracy", "acc_low", "acc_high"]


def save_data(path, results: dict[str, BlindspotResult]):
    """Every model's maps in one file, by its suffix: .csv (one row per model and position) or .npz (the arrays
    of BlindspotResult.arrays; with several models each name is prefixed by the model's, 'vgg_zeros/accuracy')."""
    from pathlib import Path
    path = Path(path)
    if path.suffix.lower() == ".npz":
        several = len(results) > 1
        arrays = {f"{name}/{k}" if several else k: v for name, r in results.items() for k, v in r.arrays().items()}
        return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))
    if path.suffix.lower() == ".csv":
        return atomic_csv(path, [CSV_HEAD, *[row for name, r in results.items() for row in r.rows(name)]])
    raise ValueError(f"save the maps as .csv or .npz, not {path.suffix or 'no suffix'}")


def other_class(labels: torch.Tensor) -> torch.Tensor:
    """For each image, the index of the next image (cyclically) of another class: its background under
    "image"; itself when every image has one class."""
    lab = labels.tolist()
    n = len(lab)
    return torch.tensor([next((j % n for j in range(i + 1, i + n) if lab[j % n] != lab[i]), i) for i in range(n)],
                        dtype=torch.long)


def backgrounds(pixels: torch.Tensor, labels: torch.Tensor, kind: str,
                fill_color: tuple[float, ...] | None = None) -> torch.Tensor:
    """The canvas behind each image, float pixels in [0, 1] [N, 3, H, W] on pixels' device (the constant ones
    an expanded view, no memory per image). fill_color: the data set's mean colour (default: that of pixels)."""
    n, c, h, w = pixels.shape
    if kind == "blank":
        return pixels.new_zeros((1, c, h, w), dtype=torch.float32).expand(n, -1, -1, -1)
    if kind == "mean":
        color = torch.tensor(fill_color or mean_color(pixels), dtype=torch.float32, device=pixels.device)
        return color.view(1, c, 1, 1).expand(n, c, h, w)
    if kind == "image":
        return pixels[other_class(labels).to(pixels.device)].float() / 255
    raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, not {kind!r}")


def canvases(patches: torch.Tensor, behind: torch.Tensor, positions: list[tuple[int, int]], a: int, b: int,
             k: int) -> torch.Tensor:
    """Rows a..b of a position-major block of k images (row r: position r // k, image r % k): each background
    with its image's patch pasted at the position's top-left (x, y)."""
    p = patches.shape[-1]
    img = torch.arange(a, b, device=patches.device) % k
    out = behind[img].clone()
    for j in range(a // k, (b - 1) // k + 1):
        s, e = max(a, j * k) - a, min(b, (j + 1) * k) - a
        x, y = positions[j]
        out[s:e, :, y:y + p, x:x + p] = patches[img[s:e]]
    return out


def blindspot_job(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, norm: Normalization,
                  spec: BlindspotSpec = BlindspotSpec(), device: torch.device = torch.device("cpu"),
                  precision: str = "auto", input_size: int = 32, fill_color: tuple[float, ...] | None = None,
                  info: dict | None = None, should_stop: Callable[[], bool] = never):
    """Job over uint8 images [N, 3, H, W] and their labels (already the subset): the BlindspotResult.

    The model runs as the translation grid runs it (core.inference.fast_model, the precision by
    core.device.resolve_precision: "auto" is bf16 where native, else fp16 on a CUDA GPU, else fp32-fast),
    its copy taken when the job starts. The images go to the device once; the canvases are made there, in
    batches of core.inference.grid_batch rows. Images go in groups that fill a batch (at least one image with
    every position, the full-size reference included) and count only once a group is finished, so every
    position always holds the same images. Yields Progress per batch and Partial (a copy) per group; when
    stopped, returns the finished groups."""
    precision = resolve_precision(precision, device)
    model = fast_model(model, device, precision)
    n, _, h, w = images.shape
    if h != w:
        raise ValueError(f"blind spots need square images (the canvas is the image's size), not {h}x{w}")
    spec.check(w)
    fill = (fill_color or mean_color(images)) if spec.background == "mean" else None
    result = BlindspotResult.empty(spec, w, {
        "patch": spec.patch, "stride": spec.stride, "background": spec.background, "canvas": w,
        "background_text": BACKGROUNDS[spec.background], "position": "top-left corner of the patch",
        "input_size": input_size, "precision": precision, "precision_text": describe_precision(precision, device),
        "images_asked": n, **({"fill_color": list(fill)} if fill else {}), **(info or {})})
    positions = [(int(x), int(y)) for y in result.ys for x in result.xs]   # row-major: y outer, as the maps
    pixels, targets = images.to(device), labels.to(device)
    patches = resize_input(pixels.float() / 255, spec.patch)
    behind = backgrounds(pixels, labels, spec.background, fill)
    rows_per_pass = grid_batch(device, precision)
    group = max(1, rows_per_pass // len(positions))

    def forward(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """True-class probability and correctness of float pixel canvases x with labels y."""
        x = resize_input(norm.apply(x), input_size).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(device, precision):
            logits = model(x).float()
        check_finite_outputs(logits, precision)
        prob = torch.softmax(logits, 1).gather(1, y[:, None])[:, 0]
        return prob.double(), (logits.argmax(1) == y).double()

    total, done = n * (len(positions) + 1), 0
    for lo in range(0, n, group):
        hi = min(lo + group, n)
        k = hi - lo
        full = [v.sum().item() for v in forward(pixels[lo:hi].float() / 255, targets[lo:hi])]
        done += k
        prob_sum = torch.zeros(len(positions), dtype=torch.float64, device=device)
        correct = torch.zeros_like(prob_sum)
        rows = len(positions) * k
        for a in range(0, rows, rows_per_pass):
            if should_stop():
                return result
            b = min(a + rows_per_pass, rows)
            r = torch.arange(a, b, device=device)
            prob, ok = forward(canvases(patches[lo:hi], behind[lo:hi], positions, a, b, k), targets[lo + r % k])
            prob_sum.index_add_(0, r // k, prob)
            correct.index_add_(0, r // k, ok)
            done += b - a
            yield Progress(done, total, f"images {lo + 1}-{hi} of {n}, positions {a // k + 1}-{(b - 1) // k + 1} "
                                        f"of {len(positions)}")
        shape = result.count.shape
        result.prob_sum += prob_sum.cpu().numpy().reshape(shape)
        result.correct += correct.cpu().numpy().reshape(shape)
        result.count += k
        result.full_prob_sum += full[0]
        result.full_correct += full[1]
        result.full_count += k
        yield Partial(copy.deepcopy(result))
    return result


def summarize(result: BlindspotResult) -> dict:
    """What the maps say: the mean over positions, the centred patch, the positions whose patch touches the
    canvas edge against the others, the worst and best position (by accuracy, then probability), each cell
    with its 95% interval, and the full-size reference. The intervals of the means count images, not
    positions x images (conservative: the positions share their images)."""
    acc, prob = result.accuracy, result.probability
    canvas = int(result.info.get("canvas", 32))
    lo, hi = result.accuracy_ci

    def at(r: int, c: int) -> dict:
        return {"x": int(result.xs[c]), "y": int(result.ys[r]), "accuracy": float(acc[r, c]),
                "probability": float(prob[r, c]), "low": float(lo[r, c]), "high": float(hi[r, c])}

    def mean(a, sel=None) -> float | None:
        v = a if sel is None else a[sel]
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else None

    if not result.images:
        return {"images": 0, "positions": int(acc.size)}
    order = np.lexsort((prob.ravel(), acc.ravel()))   # by accuracy, then probability
    worst, best = np.unravel_index(order[0], acc.shape), np.unravel_index(order[-1], acc.shape)
    middle = (canvas - result.patch) / 2
    centre = (int(np.abs(result.ys - middle).argmin()), int(np.abs(result.xs - middle).argmin()))
    right, bottom = result.xs + result.patch == canvas, result.ys + result.patch == canvas
    edge = (result.ys[:, None] == 0) | bottom[:, None] | (result.xs[None, :] == 0) | right[None, :]
    return {"images": result.images, "positions": int(acc.size), "mean_accuracy": mean(acc),
            "mean_probability": mean(prob), "edge_accuracy": mean(acc, edge), "edge_probability": mean(prob, edge),
            "inner_accuracy": mean(acc, ~edge), "inner_probability": mean(prob, ~edge),
            "centre": at(*centre), "worst": at(*worst), "best": at(*best),
            "full_accuracy": result.full_accuracy, "full_probability": result.full_probability,
            "full_interval": list(wilson(result.full_correct, result.full_count)),
            "mean_interval": list(wilson(mean(acc) * result.images, result.images))}


def blindspot_title(name: str, result: BlindspotResult) -> str:
    """What a figure or table shows, naming the lossy JPEG copy when the images come from it."""
    info = result.info
    jpeg = " (lossy JPEG copy)" if "JPEG" in str(info.get("data", "")) else ""
    size = int(info.get("input_size", 32))
    sized = f", input resized to {size}x{size}" if size != 32 else ""
    return (f"{name}: {result.patch}x{result.patch} patch every {info.get('stride')} px on a {info.get('canvas', 32)}"
            f"x{info.get('canvas', 32)} {info.get('background')} canvas, {result.images} test images of CIFAR-10"
            f"{jpeg}{sized}")


def save_blindspots(result: BlindspotResult, out, label: str, stem: str = "blindspots") -> list:
    """stem.npz (the arrays) and stem.csv (one row per position) in folder out; the figure is the app's
    (gui.blindspot_panel.write_blindspot_figures)."""
    results = {label: result}
    return [save_data(out / f"{stem}.npz", results), save_data(out / f"{stem}.csv", results)]