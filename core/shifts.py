"""Where shifts are computed: every way PadLens moves an image by (dx, dy).

dx > 0 moves content right, dy > 0 moves it down. "affine" is the canonical shift of the assignment
(torchvision's affine, black fill); "affine-mean" fills the uncovered border with the data set's mean
color instead, separating "the network fails" from "black borders are out of distribution"; "roll"
wraps content around (torch.roll), so nothing leaves the frame.
"""
from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as TF

SHIFT_MODES = {
    "affine": "torchvision affine, uncovered pixels black (the assignment's evaluation)",
    "affine-mean": "torchvision affine, uncovered pixels in the data set's mean color",
    "roll": "circular shift with torch.roll: content wraps around, nothing is lost",
}


def shift(images: torch.Tensor, dx: int, dy: int, mode: str = "affine",
          mean_color: tuple[float, float, float] | None = None) -> torch.Tensor:
    """Shift a batch of pixel-space images [N,3,H,W] (uint8 or float in [0,1])."""
    if mode == "roll":
        return torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
    if mode not in SHIFT_MODES:
        raise ValueError(f"shift mode must be one of {', '.join(SHIFT_MODES)}, not {mode!r}")
    fill = 0.0
    if mode == "affine-mean":
        if mean_color is None:
            raise ValueError("affine-mean needs the data set's mean color")
        scale = 255.0 if images.dtype == torch.uint8 else 1.0
        fill = [round(c * scale) if scale > 1 else c for c in mean_color]
    if dx == 0 and dy == 0:
        return images
    return TF.affine(images, angle=0.0, translate=[dx, dy], scale=1.0, shear=[0.0, 0.0], fill=fill)


def visible_fraction(dx: int, dy: int, size: int = 32, mode: str = "affine") -> float:
    """Share of the original image still inside the frame after the shift (1 for roll)."""
    if mode == "roll":
        return 1.0
    return max(0, size - abs(dx)) * max(0, size - abs(dy)) / (size * size)
