"""Colour maps as uint8 RGB tensors [3,H,W], without Qt: the cells of the channels panel's mosaic (a map beside
its mean filter, each on its own scale, in one image) and the blue-white-red map its colour bar shows.
Every figure file is drawn by the app's Qt figures (gui.export.write_offscreen)."""
from __future__ import annotations


import numpy as np
import torch

# Color maps as small lookup tables (position in [0,1], RGB), interpolated linearly in numpy.
# viridis and inferno: matplotlib's maps sampled every 1/8; "diverging": blue-white-red (RdBu reversed).
_CMAPS: dict[str, list[tuple[float, tuple[int, int, int]]]] = {
    "viridis": [(0.0, (68, 1, 84)), (0.125, (71, 44, 122)), (0.25, (59, 81, 139)), (0.375, (44, 113, 142)),
                (0.5, (33, 144, 141)), (0.625, (39, 173, 129)), (0.75, (92, 200, 99)),
                (0.875, (170, 220, 50)), (1.0, (253, 231, 37))],
    "inferno": [(0.0, (0, 0, 4)), (0.125, (31, 12, 72)), (0.25, (85, 15, 109)), (0.375, (136, 34, 106)),
                (0.5, (186, 54, 85)), (0.625, (227, 89, 51)), (0.75, (249, 140, 10)),
                (0.875, (249, 201, 50)), (1.0, (252, 255, 164))],
    "diverging": [(0.0, (33, 102, 172)), (0.25, (103, 169, 207)), (0.5, (247, 247, 247)),
                  (0.75, (239, 138, 98)), (1.0, (178, 24, 43))],
}
CMAPS = tuple(_CMAPS)
NAN_GREY = (128, 128, 128)


def _as_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def colorize(array2d, cmap: str = "viridis", levels: tuple[float, float] | None = None) -> torch.Tensor:
    """A [H,W] array as a uint8 RGB image [3,H,W].

    levels (lo, hi) map to the ends of the color map (values outside are clipped). Without levels: the
    finite min and max, or for "diverging" +-max|value| so that 0 is white. A constant map gets the
    middle color. NaN (and +-inf) pixels are grey.
    """
    if cmap not in _CMAPS:
        raise ValueError(f"cmap must be one of {', '.join(CMAPS)}, not {cmap!r}")
    a = _as_numpy(array2d)
    if a.ndim != 2:
        raise ValueError(f"colorize needs a 2-D array, got shape {a.shape}")
    finite = np.isfinite(a)
    if levels is None:
        if finite.any():
            lo, hi = float(a[finite].min()), float(a[finite].max())
            if cmap == "diverging":
                m = max(abs(lo), abs(hi))
                lo, hi = -m, m
        else:
            lo, hi = 0.0, 1.0
    else:
        lo, hi = float(levels[0]), float(levels[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.full(a.shape, 0.5) if hi <= lo else (a - lo) / (hi - lo)
    t = np.clip(np.where(finite, t, 0.0), 0.0, 1.0)
    pos = np.array([p for p, _ in _CMAPS[cmap]])
    rgb = np.array([c for _, c in _CMAPS[cmap]], dtype=np.float64)
    out = np.stack([np.interp(t, pos, rgb[:, k]) for k in range(3)])
    out[:, ~finite] = np.array(NAN_GREY, dtype=np.float64)[:, None]
    return torch.from_numpy(np.rint(out).astype(np.uint8))


def upscale(img: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour enlargement of a [C,H,W] image by a whole factor."""
    if factor < 1:
        raise ValueError("factor must be at least 1")
    if factor == 1:
        return img
    return img.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def upscale_to(img: torch.Tensor, size: int) -> torch.Tensor:
    """Upscale by the largest whole factor that keeps the longer side at most `size` (at least 1)."""
    return upscale(img, max(1, size // max(img.shape[-2:])))


TILE = 96          # displayed size of one channel's map in the mosaic


def map_tile(map2d: torch.Tensor) -> torch.Tensor:
    """One channel-mean map as a colored tile; a constant map is one flat color, not amplified noise."""
    a = map2d.detach().to("cpu", torch.float64)
    lo, hi = float(a.min()), float(a.max())
    levels = None
    if hi - lo <= 1e-5 * max(abs(lo), abs(hi), 1e-12):     # constant up to float noise: one flat color
        levels = (lo - 1.0, lo + 1.0)
    return upscale_to(colorize(a, "viridis", levels), TILE)
