"""Worst case over shifts: how many images some small shift flips, not how many one shift flips on average.

The grid's consistency is a per-shift average; an image that a 1-px shift right flips and a 1-px shift
down does not counts once in one cell and not in the other. Here each image counts once: flipped within
radius r when some grid shift with Chebyshev distance max(|dx|, |dy|) <= r (and not 0) gives a prediction
other than its unshifted one. Pure functions of GridResult.flip_radius (each image's smallest such
radius, inf when no grid shift flips it), recorded by core.translation.translation_grid.
"""
from __future__ import annotations

import numpy as np

from padlens.core.stats import wilson

RADII = tuple(range(1, 9))   # pixels: the small shifts a CNN is expected to shrug off


def flip_share(flip_radius: np.ndarray, radii=RADII) -> np.ndarray:
    """Per radius r, the share of images flipped by some grid shift within r (nan without images)."""
    flip_radius = np.asarray(flip_radius, dtype=float)
    if not len(flip_radius):
        return np.full(len(radii), np.nan)
    return np.array([(flip_radius <= r).mean() for r in radii])


def flip_histogram(flip_radius: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(radii, images whose smallest flipping shift has that radius, images no grid shift flips)."""
    flip_radius = np.asarray(flip_radius, dtype=float)
    finite = flip_radius[np.isfinite(flip_radius)]
    radii, counts = np.unique(finite, return_counts=True)
    return radii.astype(int), counts, int(len(flip_radius) - len(finite))


def tested_shifts(dxs, dys, r: int) -> int:
    """How many of the grid's shifts lie within radius r (the unshifted (0, 0) not counted)."""
    dx, dy = np.meshgrid(np.asarray(dxs), np.asarray(dys))
    cheb = np.maximum(np.abs(dx), np.abs(dy))
    return int(((cheb <= r) & (cheb > 0)).sum())


def complete_radius(dxs, dys) -> int:
    """The largest r for which every whole-pixel shift within r is a cell of the grid: beyond it (a step-2
    grid: already at r = 1) the shares count only the shifts the grid tried, a lower bound of the true
    worst case."""
    have = {(int(x), int(y)) for x in dxs for y in dys}
    r = 0
    while all((x, y) in have for x in range(-r - 1, r + 2) for y in range(-r - 1, r + 2)):
        r += 1
    return r


def worst_case(result, radii=RADII) -> dict | None:
    """The numbers the Translation tab, `padlens translate` and the report show; None for a grid saved
    without the per-image record. Only the radii the grid has a shift at are kept (2, 4, 6, 8 on a step-2
    grid; none beyond its range). Shares come with their 95% Wilson interval."""
    fr = result.flip_radius
    if fr is None:
        return None
    within = lambda r: tested_shifts(result.dxs, result.dys, r)  # noqa: E731
    radii = [r for r in radii if within(r) > within(r - 1)]
    n = len(fr)
    share = flip_share(fr, radii)
    flipped = [int((np.asarray(fr) <= r).sum()) for r in radii]
    low, high = wilson(flipped, np.full(len(radii), n))
    hist_r, hist_n, never = flip_histogram(fr)
    return {"images": n, "radii": radii, "share": share.tolist(), "low": np.atleast_1d(low).tolist(),
            "high": np.atleast_1d(high).tolist(), "flipped": flipped, "shifts": [within(r) for r in radii],
            "complete_radius": complete_radius(result.dxs, result.dys),
            "histogram": {"radius": hist_r.tolist(), "images": hist_n.tolist(), "never": never}}


def format_worst_case(w: dict | None) -> list[str]:
    """Lines of text for the summary (the CLI's output, the tab's label, the report's section)."""
    if w is None:
        return ["worst case over shifts: not recorded in this grid (saved before the per-image record); "
                "compute the grid again"]
    if not w["images"]:
        return ["worst case over shifts: no image finished yet"]
    lines = [f"worst case over shifts ({w['images']} images): share whose prediction some grid shift within "
             "radius r (max(|dx|, |dy|) <= r) flips away from the unshifted one"]
    cells = [f"r={r}: {100 * s:.1f}% [{100 * lo:.1f}-{100 * hi:.1f}] ({k} shifts)"
             for r, s, lo, hi, k in zip(w["radii"], w["share"], w["low"], w["high"], w["shifts"])]
    lines.append("  " + "; ".join(cells) if cells else "  the grid has no shift within these radii")
    if any(r > w["complete_radius"] for r in w["radii"]):
        lines.append(f"  the grid holds every shift only up to r={w['complete_radius']}; beyond, only its own "
                     "cells were tried, so those shares are lower bounds")
    h = w["histogram"]
    smallest = ", ".join(f"{r} px: {k}" for r, k in zip(h["radius"], h["images"]))
    lines.append(f"  smallest flipping shift per image: {smallest or 'none'}; no grid shift flips {h['never']}")
    return lines


def write_worst_case_csv(w: dict, path) -> None:
    """One row per radius the grid measures: shifts within it, images flipped, the share with its 95% interval,
    how many images flip first at exactly that radius, and whether the share is a lower bound (the grid lacks
    some whole-pixel shift within it)."""
    from padlens.core.files import atomic_csv
    first = dict(zip(w["histogram"]["radius"], w["histogram"]["images"]))
    rows = [("radius", "shifts_within", "images_flipped", "images", "share", "share_low", "share_high",
             "smallest_flip_here", "lower_bound")]
    rows += [(r, k, f, w["images"], f"{s:.6f}", f"{lo:.6f}", f"{hi:.6f}", first.get(r, 0), int(r > w["complete_radius"]))
             for r, k, f, s, lo, hi in zip(w["radii"], w["shifts"], w["flipped"], w["share"], w["low"], w["high"])]
    rows.append(("never", "", w["histogram"]["never"], w["images"], "", "", "", "", ""))
    atomic_csv(path, rows)
