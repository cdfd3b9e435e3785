"""Plain PNG figures without Qt: color maps, nearest-neighbour upscaling, montages and a tiny font.

Everything works on uint8 tensors [3,H,W] and is written with torchvision.io.write_png, so the
command-line report can draw its pictures on a machine without a display or PyQt.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from padlens.core.files import atomic_write

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


# ---------------------------------------------------------------------------------------------------
# A 3x5 pixel font: enough for labels and one-line captions (upper case, digits, a few symbols).

_GLYPHS = {
    "A": "010101111101101", "B": "110101110101110", "C": "011100100100011", "D": "110101101101110",
    "E": "111100110100111", "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101010", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010", "P": "110101110100100",
    "Q": "010101101110011", "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111",
    "0": "111101101101111", "1": "010110010010111", "2": "110001010100111", "3": "110001010001110",
    "4": "101101111001001", "5": "111100110001110", "6": "011100111101111", "7": "111001010010010",
    "8": "111101111101111", "9": "111101111001110",
    "-": "000000111000000", ".": "000000000000010", ",": "000000000010100", ":": "000010000010000",
    "%": "101001010100101", "(": "010100100100010", ")": "010001001001010", "[": "110100100100110",
    "]": "011001001001011", "/": "001001010100100", "+": "000010111010000", "=": "000111000111000",
    "_": "000000000000111", "'": "010010000000000", " ": "000000000000000",
}


def text_size(text: str, scale: int = 1) -> tuple[int, int]:
    """(height, width) in pixels of a line drawn by draw_text."""
    return 5 * scale, max(0, 4 * len(text) - 1) * scale


def draw_text(img: torch.Tensor, text: str, x: int, y: int, scale: int = 1,
              color: tuple[int, int, int] = (0, 0, 0)) -> torch.Tensor:
    """Draw one line of text (upper-cased; unknown characters are blank) into img [3,H,W] in place."""
    col = torch.tensor(color, dtype=img.dtype).view(3, 1, 1)
    h, w = img.shape[-2:]
    for i, ch in enumerate(text.upper()):
        bits = _GLYPHS.get(ch, _GLYPHS[" "])
        for r in range(5):
            for c in range(3):
                if bits[3 * r + c] == "1":
                    y0, x0 = y + r * scale, x + (4 * i + c) * scale
                    if 0 <= y0 and y0 + scale <= h and 0 <= x0 and x0 + scale <= w:
                        img[:, y0:y0 + scale, x0:x0 + scale] = col
    return img


def with_caption(img: torch.Tensor, text: str, scale: int = 2, background: int = 255) -> torch.Tensor:
    """img with one line of text above it (widened when the text is longer than the image)."""
    th, tw = text_size(text, scale)
    pad = 2 * scale
    h, w = img.shape[-2:]
    out = torch.full((3, h + th + 2 * pad, max(w, tw + 2 * pad)), background, dtype=torch.uint8)
    draw_text(out, text, pad, pad, scale)
    out[:, th + 2 * pad:, :w] = img
    return out


def outline(img: torch.Tensor, top: int, left: int, bottom: int, right: int,
            color: tuple[int, int, int] = (255, 60, 60), width: int = 1) -> torch.Tensor:
    """Draw the rectangle rows top..bottom-1, columns left..right-1 (clipped) into img in place."""
    h, w = img.shape[-2:]
    top, left, bottom, right = max(0, top), max(0, left), min(h, bottom), min(w, right)
    if bottom <= top or right <= left:
        return img
    col = torch.tensor(color, dtype=img.dtype).view(3, 1)
    img[:, top:min(top + width, bottom), left:right] = col.unsqueeze(-1)
    img[:, max(bottom - width, top):bottom, left:right] = col.unsqueeze(-1)
    img[:, top:bottom, left:min(left + width, right)] = col.unsqueeze(-1)
    img[:, top:bottom, max(right - width, left):right] = col.unsqueeze(-1)
    return img


def colorbar(height: int, cmap: str = "viridis", width: int = 8) -> torch.Tensor:
    """A vertical color bar [3,height,width], the high end at the top."""
    ramp = np.linspace(1.0, 0.0, max(height, 2))[:, None].repeat(width, 1)
    return colorize(ramp, cmap, (0.0, 1.0))


def montage(images: list[torch.Tensor], cols: int, gap: int = 4, labels: list[str] | None = None,
            background: int = 255, label_scale: int = 2) -> torch.Tensor:
    """Tiles on a grid of `cols` columns, each in a cell of the largest tile's size, `gap` pixels apart.

    labels (optional, one per tile) are drawn above each tile with the 3x5 font.
    """
    if not images:
        raise ValueError("montage needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError("one label per image")
    cols = max(1, min(cols, len(images)))
    rows = (len(images) + cols - 1) // cols
    ch = max(int(i.shape[-2]) for i in images)
    cw = max(int(i.shape[-1]) for i in images)
    lh = (text_size("0", label_scale)[0] + 2 * label_scale) if labels else 0
    if labels:
        cw = max(cw, max(text_size(t, label_scale)[1] for t in labels))
    out = torch.full((3, gap + rows * (lh + ch + gap), gap + cols * (cw + gap)), background, dtype=torch.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        y, x = gap + r * (lh + ch + gap), gap + c * (cw + gap)
        if labels:
            draw_text(out, labels[k], x, y + label_scale, label_scale)
        h, w = img.shape[-2:]
        out[:, y + lh:y + lh + h, x:x + w] = img.to(torch.uint8).expand(3, -1, -1)
    return out


def save_png(path, img: torch.Tensor) -> Path:
    """Write a uint8 [3,H,W] (or [1,H,W]) image as PNG, atomically."""
    from torchvision.io import write_png
    path = Path(path)
    if img.dtype != torch.uint8 or img.dim() != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"save_png needs a uint8 [3,H,W] image, got {img.dtype} {tuple(img.shape)}")
    return atomic_write(path, lambda tmp: write_png(img.contiguous().cpu(), str(tmp)))


TILE = 96          # displayed size of one feature-map tile in the montages


def map_tile(map2d: torch.Tensor) -> torch.Tensor:
    """One channel-mean map as a colored tile; a constant map is one flat color, not amplified noise."""
    a = map2d.detach().to("cpu", torch.float64)
    lo, hi = float(a.min()), float(a.max())
    levels = None
    if hi - lo <= 1e-5 * max(abs(lo), abs(hi), 1e-12):     # constant up to float noise: one flat color
        levels = (lo - 1.0, lo + 1.0)
    return upscale_to(colorize(a, "viridis", levels), TILE)


def maps_figure(path: Path, maps: list[torch.Tensor], caption: str, labels: list[str] | None = None) -> Path:
    """Tiles of channel-mean maps (one per layer), each on its own color scale, labelled (numbered by
    default), with a caption."""
    tiles = [map_tile(m) for m in maps]
    img = montage(tiles, cols=min(8, len(tiles)), gap=6, labels=labels or [str(i + 1) for i in range(len(tiles))])
    return save_png(path, with_caption(img, caption))


def filters_figure(path: Path, kernels: list[torch.Tensor], caption: str) -> Path:
    """Mean 3x3 kernels (Mind the Pad, Fig. 6b) on a diverging scale, numbered, with a caption."""
    tiles = [upscale_to(colorize(k, "diverging"), 48) for k in kernels]
    img = montage(tiles, cols=min(8, len(tiles)), gap=6, labels=[str(i + 1) for i in range(len(tiles))])
    return save_png(path, with_caption(img, caption))
