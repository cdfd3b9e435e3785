"""Tile every channel of a feature map into one image, so a view draws one image instead of hundreds.

Scaling decides what a grid can show: per map (each tile stretched to its own range: shapes, not
magnitudes), per layer (one range for the whole layer: which channels are strong) or fixed.
"""
from __future__ import annotations

import math

import numpy as np

SCALES = ("per map", "per layer", "fixed")
RELATIVE_FLOOR = 1e-6   # a map whose range is below this share of its magnitude is constant up to float rounding


def is_constant(lo, hi):
    """Whether values from lo to hi are one value plus float noise: stretching such a range to the full colour
    scale would paint rounding errors (a 1e-7 wobble) as a strong pattern."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    return (hi - lo) <= RELATIVE_FLOOR * np.maximum(np.abs(lo), np.abs(hi))


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) close to square, wider than tall."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def scale_maps(maps: np.ndarray, scale: str = "per layer", fixed: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """[C,H,W] -> same shape in [0,1] (NaN-free); a constant map (`is_constant`) becomes 0.5."""
    maps = np.asarray(maps, dtype=np.float32)
    if scale == "per map":
        lo = maps.min(axis=(1, 2), keepdims=True)
        hi = maps.max(axis=(1, 2), keepdims=True)
    elif scale == "per layer":
        lo, hi = maps.min(), maps.max()
    elif scale == "fixed":
        lo, hi = fixed
    else:
        raise ValueError(f"scale must be one of {SCALES}")
    span = np.asarray(hi - lo, dtype=np.float32)
    varies = (span > 0) & ~is_constant(lo, hi) if scale != "fixed" else span > 0
    out = np.where(varies, (maps - lo) / np.where(varies, span, 1), 0.5)
    return np.clip(out, 0, 1).astype(np.float32)


def mosaic(maps01: np.ndarray, gap: int = 1, fill: float = np.nan) -> tuple[np.ndarray, int, int]:
    """[C,H,W] -> one [rows*(H+gap)-gap, cols*(W+gap)-gap] image (row-major tiles), rows, cols."""
    c, h, w = maps01.shape
    rows, cols = grid_shape(c)
    tiles = np.full((rows * cols, h + gap, w + gap), fill, dtype=np.float32)
    tiles[:c, :h, :w] = maps01
    out = tiles.reshape(rows, cols, h + gap, w + gap).transpose(0, 2, 1, 3).reshape(rows * (h + gap), cols * (w + gap))
    return np.ascontiguousarray(out[:rows * (h + gap) - gap, :cols * (w + gap) - gap]), rows, cols


def tile_at(y: float, x: float, h: int, w: int, rows: int, cols: int, n: int, gap: int = 1):
    """Channel under mosaic pixel (y, x) and the pixel inside it, or None over a gap or outside."""
    if y < 0 or x < 0:
        return None
    r, ty = divmod(int(y), h + gap)
    q, tx = divmod(int(x), w + gap)
    k = r * cols + q
    if r >= rows or q >= cols or ty >= h or tx >= w or k >= n:
        return None
    return k, ty, tx
