"""Where shifts are computed: every way PadLens moves an image by (dx, dy).

dx > 0 moves content right, dy > 0 moves it down. "affine" is the canonical shift of the assignment
(torchvision's affine, black fill); "affine-mean" fills the uncovered border with the data set's mean
color instead, separating "the network fails" from "black borders are out of distribution"; "roll"
wraps content around (torch.roll), so nothing leaves the frame.
"""
from __future__ import annotations

import torch

SHIFT_MODES = {
    "affine": "torchvision affine, uncovered pixels black (the assignment's evaluation)",
    "affine-mean": "torchvision affine, uncovered pixels in the data set's mean color",
    "roll": "circular shift with torch.roll: content wraps around, nothing is lost",
}


def _fill(images: torch.Tensor, mode: str, mean_color) -> float | list[float]:
    if mode not in SHIFT_MODES:
        raise ValueError(f"shift mode must be one of {', '.join(SHIFT_MODES)}, not {mode!r}")
    if mode != "affine-mean":
        return 0.0
    if mean_color is None:
        raise ValueError("affine-mean needs the data set's mean color")
    return [round(c * 255) for c in mean_color] if images.dtype == torch.uint8 else list(mean_color)


def affine_shift(images: torch.Tensor, dx: float, dy: float, fill: float | list[float] = 0.0) -> torch.Tensor:
    """The canonical definition: torchvision's affine with only a translation (nearest, constant fill).
    torchvision is imported here, not with the module: it takes seconds, and integer shifts never need it."""
    from torchvision.transforms.v2 import functional as TF
    return TF.affine(images, angle=0.0, translate=[dx, dy], scale=1.0, shear=[0.0, 0.0], fill=fill)


def shift(images: torch.Tensor, dx: int, dy: int, mode: str = "affine",
          mean_color: tuple[float, float, float] | None = None) -> torch.Tensor:
    """Shift a batch of pixel-space images [N,3,H,W] (uint8 or float in [0,1])."""
    return shifted_copies(images, [(dx, dy)], mode, mean_color)


def shifted_copies(images: torch.Tensor, shifts: list[tuple[int, int]], mode: str = "affine",
                   mean_color: tuple[float, float, float] | None = None) -> torch.Tensor:
    """All shifts of a batch in one tensor [len(shifts) * N, 3, H, W], shift-major.

    Integer affine shifts are copied as slices into a filled tensor: bit-identical to `affine_shift`
    (tests check every shift across the frame) and ~10x cheaper than its grid sampling."""
    if mode == "roll":
        return torch.cat([torch.roll(images, shifts=(dy, dx), dims=(-2, -1)) for dx, dy in shifts])
    fill = _fill(images, mode, mean_color)
    if not all(float(d).is_integer() for s in shifts for d in s):
        return torch.cat([affine_shift(images, dx, dy, fill) for dx, dy in shifts])
    n, (h, w) = len(images), images.shape[-2:]
    out = torch.empty((len(shifts) * n, *images.shape[1:]), dtype=images.dtype, device=images.device)
    out[:] = torch.tensor(fill, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    for k, (dx, dy) in enumerate(shifts):
        dx, dy = int(dx), int(dy)
        kh, kw = h - abs(dy), w - abs(dx)
        if kh > 0 and kw > 0:
            out[k * n:(k + 1) * n, :, max(0, dy):max(0, dy) + kh, max(0, dx):max(0, dx) + kw] = \
                images[:, :, max(0, -dy):max(0, -dy) + kh, max(0, -dx):max(0, -dx) + kw]
    return out


def visible_fraction(dx: int, dy: int, size: int = 32, mode: str = "affine") -> float:
    """Share of the original image still inside the frame after the shift (1 for roll)."""
    if mode == "roll":
        return 1.0
    return max(0, size - abs(dx)) * max(0, size - abs(dy)) / (size * size)
