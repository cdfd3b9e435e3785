"""`padlens report`: one command that measures everything the assignment asks about and writes it up.

For each checkpoint: test accuracy and mean cross-entropy, translation grids for each shift mode,
the border bias of every layer for the blank inputs and for the data set's mean response, the mean
filters of every conv and the padding arithmetic. With an input size other than 32, the zero-padded
baseline is also measured at 32x32 (grids and blank inputs), so that section 4 can say what resizing
changes. Writes PNG figures (core.figures_png, no Qt), the
heatmap figures of a writer the caller hands in (the command line passes the app's), `report.md` answering the questions with the measured
numbers and `report.json` with all of them.

The work is a job (core.jobs): a generator yielding Progress and returning the path of report.md
(None when stopped before any checkpoint was finished).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from padlens.core.checkpoint import checkpoint_labels
from padlens.core.files import atomic_text
from padlens.core.jobs import Progress, never, relay
from padlens.core.translation import GridSpec

DEFAULT_MODES = ("affine", "affine-mean", "roll")
DEFAULT_GRID = GridSpec(-16, 16, -16, 16, 4)
FAR = 16           # half the 32-px image: section 3 compares the fills at the grid distance nearest this
REGIONS = ("top edge", "bottom edge", "left edge", "right edge",
           "top-left corner", "top-right corner", "bottom-left corner", "bottom-right corner")
MAP_INPUTS = {"blank_normalized": "blank input, all zeros after normalization (every pixel at the mean color)",
              "blank_pixel": "blank input, all zeros before normalization (a black image)",
              "dataset_mean": "response averaged over test images"}
JPEG_LABEL = "measured on the lossy JPEG copy of CIFAR-10"
HEATMAP = 192      # displayed size of an accuracy heatmap


# ---------------------------------------------------------------------------------------------------
# Measures used by the report (pure functions, tested directly)

def region_deviations(map2d: torch.Tensor) -> dict[str, float]:
    """(mean of each border edge / corner - mean of the center) / RMS of the map, signed.

    The regions follow border_bias's ring: corners are the ring_width x ring_width blocks, edges the
    ring strips between them. Empty for maps below 3x3; all 0 for a constant map.
    """
    from padlens.core.spatial_bias import ring_width
    h, w = map2d.shape
    if h < 3 or w < 3:
        return {}
    m = map2d.detach().to("cpu", torch.float64)
    rms = m.square().mean().sqrt()
    if bool(m.max() == m.min()) or rms == 0:
        return {r: 0.0 for r in REGIONS}
    a, b = ring_width(h), ring_width(w)
    center = m[a:h - a, b:w - b].mean()
    parts = {"top edge": m[:a, b:w - b], "bottom edge": m[h - a:, b:w - b],
             "left edge": m[a:h - a, :b], "right edge": m[a:h - a, w - b:],
             "top-left corner": m[:a, :b], "top-right corner": m[:a, w - b:],
             "bottom-left corner": m[h - a:, :b], "bottom-right corner": m[h - a:, w - b:]}
    return {k: float((v.mean() - center) / rms) for k, v in parts.items()}


def worst_region(devs: dict[str, float]) -> str | None:
    finite = {k: v for k, v in devs.items() if math.isfinite(v)}
    if not finite or max(abs(v) for v in finite.values()) == 0:
        return None
    return max(finite, key=lambda k: abs(finite[k]))


def chebyshev(dxs: np.ndarray, dys: np.ndarray) -> np.ndarray:
    """max(|dx|, |dy|) per grid cell [ny, nx]."""
    return np.maximum(np.abs(np.asarray(dxs))[None, :], np.abs(np.asarray(dys))[:, None])


def ring_profile(values: np.ndarray, dxs, dys) -> dict[int, float]:
    """Mean of a grid quantity over the ring of cells at each Chebyshev distance present in the grid."""
    dist = chebyshev(dxs, dys)
    out = {}
    for d in np.unique(dist):
        sel = values[dist == d]
        out[int(d)] = float(np.nanmean(sel)) if np.isfinite(sel).any() else math.nan
    return out


def ring_distances(dxs, dys) -> tuple[list[int], int]:
    """The ring distances the report tabulates and `far`, all taken from the grid so that no column is
    empty whatever its step: the distances nearest 0, a quarter, half and all of the largest one, plus
    far, the distance nearest FAR (the smaller on a tie)."""
    present = np.unique(chebyshev(dxs, dys))

    def nearest(target: float) -> int:
        return int(min(present, key=lambda d: (abs(d - target), d)))

    top = int(present.max())
    far = nearest(FAR)
    return sorted({nearest(t) for t in (0, top / 4, top / 2, top)} | {far}), far


def _finite_mean(values) -> float:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else math.nan


def _is_activation(m: nn.Module) -> bool:
    return type(m).__module__ == nn.modules.activation.__name__


def _grid_entry(result, from_cache: bool, crop_pad, period) -> dict:
    """What report.json keeps of one translation grid, with the summaries the Markdown quotes."""
    from padlens.core.translation import phase_table, pitfalls
    acc, cons = result.accuracy, result.consistency
    worst = np.unravel_index(np.nanargmin(acc), acc.shape) if np.isfinite(acc).any() else None
    return {
        "from_cache": from_cache, "images": result.images, "precision": result.info.get("precision"),
        "dx": result.dxs, "dy": result.dys, "accuracy": acc, "consistency": cons, "loss": result.loss,
        "accuracy_by_distance": ring_profile(acc, result.dxs, result.dys),
        "consistency_by_distance": ring_profile(cons, result.dxs, result.dys),
        "mean_accuracy": float(np.nanmean(acc)), "mean_consistency": float(np.nanmean(cons)),
        "min_accuracy": float(acc[worst]) if worst else math.nan,
        "min_at": [int(result.dxs[worst[1]]), int(result.dys[worst[0]])] if worst else None,
        "pitfalls": pitfalls(result, crop_pad, period), "phase_table": phase_table(result, period) if period else None}


def _layer_rows(model: nn.Module, maps: dict[str, dict]) -> list[dict]:
    """Border bias and region deviations per layer (containers excluded) for each input in maps
    ({input: {path: mean map}}, keyed like MAP_INPUTS), one row per layer the blank zeros input reached."""
    from padlens.core.layers import is_container, iter_paths, path_name
    from padlens.core.spatial_bias import border_bias
    first = maps["blank_normalized"]
    rows = []
    for p, m in iter_paths(model):
        if is_container(m) or p not in first:
            continue
        row = {"path": list(p), "name": path_name(p), "type": type(m).__name__, "size": list(first[p].shape),
               "shown": isinstance(m, nn.Conv2d) or _is_activation(m)}
        for what, by_path in maps.items():
            mp = by_path.get(p)
            row[what] = border_bias(mp) if mp is not None else math.nan
            row[f"{what}_signed"] = border_bias(mp, signed=True) if mp is not None else math.nan
            devs = region_deviations(mp) if mp is not None else {}
            row[f"{what}_regions"] = devs
            row[f"{what}_worst_region"] = worst_region(devs)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------
# Formatting

def _pct(x, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}%"


def _num(x, digits: int = 3, sign: str = "") -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:{sign}.{digits}f}"


def _pp(x) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:+.1f} pp"


def _clean(o):
    """JSON-safe: NaN/inf -> null, numpy -> Python, tuples -> lists, paths -> str."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, torch.Tensor):
        return _clean(o.detach().cpu().tolist())
    if isinstance(o, np.ndarray):
        return _clean(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        f = float(o)
        return f if math.isfinite(f) else None
    if isinstance(o, Path):
        return str(o)
    return o


# ---------------------------------------------------------------------------------------------------
# Figures (core.figures_png, no Qt)

def _heatmap_image(acc: np.ndarray, dxs, dys, crop_pad: int | None) -> torch.Tensor:
    """Accuracy per cell (rows: dy from negative = up to positive = down), the (0,0) cell outlined in
    white, the training crop box in red, a color bar (0 at the bottom, 100% at the top) at the right."""
    from padlens.core.figures_png import colorbar, colorize, outline, upscale
    f = max(4, HEATMAP // max(acc.shape))
    img = upscale(colorize(acc, "viridis", (0.0, 1.0)), f).clone()
    dxs, dys = np.asarray(dxs), np.asarray(dys)
    if crop_pad is not None:
        cols, rows = np.flatnonzero(np.abs(dxs) <= crop_pad), np.flatnonzero(np.abs(dys) <= crop_pad)
        if len(cols) and len(rows):
            outline(img, rows[0] * f, cols[0] * f, (rows[-1] + 1) * f, (cols[-1] + 1) * f, (255, 60, 60), 2)
    c0, r0 = np.flatnonzero(dxs == 0), np.flatnonzero(dys == 0)
    if len(c0) and len(r0):
        outline(img, r0[0] * f, c0[0] * f, (r0[0] + 1) * f, (c0[0] + 1) * f, (255, 255, 255), 1)
    h = img.shape[-2]
    gap = torch.full((3, h, 6), 255, dtype=torch.uint8)
    return torch.cat([img, gap, colorbar(h, "viridis", 10)], dim=-1)


# ---------------------------------------------------------------------------------------------------
# The job

def report(checkpoints: list, out_dir, data_root=None, device="auto", images: int = 500,
           grid: GridSpec = DEFAULT_GRID, modes=DEFAULT_MODES, mean_images: int = 500, precision: str = "auto",
           eval_images: int = 0, seed: int = 0, input_size: int = 32,
           heatmap_figures: Callable | None = None, should_stop: Callable[[], bool] = never, progress: Callable[[Progress], None] | None = None):
    """Job: measure every checkpoint, write figures, report.md and report.json into out_dir.

    images: class-balanced test images per translation grid (0: all). eval_images: test images for
    accuracy and loss (0: the whole split, the assignment's evaluate; else a class-balanced subset).
    mean_images: test images averaged for the dataset-mean responses (0: all). precision applies to
    the translation grids; accuracy, loss and feature maps are always fp32. input_size: the resizing
    remedy, every input resized to input_size x input_size before the network for the translation grids
    (shifted at 32x32 first), the feature maps and the padding arithmetic; accuracy and loss stay the
    assignment's evaluate at 32x32. A model that does not run at that size fails before any work.
    Translation grids come from and go to the cache the GUI uses (core.grid_cache).
    progress, when given, is called with every Progress the job yields. Returns the path of report.md,
    or None when stopped before the first checkpoint was finished (checkpoints finished by then are
    reported).
    """
    from padlens.core.activations import BLANK_KINDS, blank_input, capture, mean_activations
    from padlens.core.data import load_split, stratified_subset
    from padlens.core.device import pick_device, resolve_precision
    from padlens.core.evaluate import evaluate
    from padlens.core.figures_png import filters_figure, maps_figure, montage, save_png, with_caption
    from padlens.core.layers import path_name
    from padlens.core.shifts import SHIFT_MODES
    from padlens.core.spatial_bias import (BORDER_BIAS_HELP, FILTER_ASYMMETRY_HELP, filter_asymmetry,
                                   format_padding_arithmetic, mean_filters, mean_map, padding_arithmetic)
    from padlens.core.grid_cache import GridRequest
    from padlens.core.session import load_model
    from padlens.core.translation import GridResult, shift_period

    paths = [Path(c) for c in checkpoints]
    if not paths:
        raise ValueError("report needs at least one checkpoint")
    modes = tuple(modes)
    bad = [m for m in modes if m not in SHIFT_MODES]
    if bad or not modes:
        raise ValueError(f"shift modes must be among {', '.join(SHIFT_MODES)}, not {bad or 'none'}")
    for name, v in (("images", images), ("mean_images", mean_images), ("eval_images", eval_images)):
        if v < 0:
            raise ValueError(f"{name} must be 0 (all) or a positive number")
    out = Path(out_dir)
    dev = pick_device(device)
    grid_precision = resolve_precision(precision, dev)
    loaded = [load_model(p, dev) for p in paths]           # fail on a bad file or input size before any work
    arith = []
    for p, lm in zip(paths, loaded):
        try:
            arith.append({size: padding_arithmetic(lm.model, size) for size in {input_size, 32}})
        except ValueError as e:
            raise ValueError(f"{p}: {e}") from None
    data = load_split(data_root, "test")
    jpeg = "JPEG" in data.source
    labels = checkpoint_labels(paths)

    grid_idx = stratified_subset(data.labels, images or None, seed)
    eval_idx = None if not eval_images else stratified_subset(data.labels, eval_images, seed)
    mean_idx = stratified_subset(data.labels, mean_images or None, seed)
    n_eval = len(data) if eval_idx is None else len(eval_idx)
    n_cells = len(grid.dxs) * len(grid.dys)

    def requests_at(lm, size: int) -> dict[str, GridRequest]:
        return {m: GridRequest(lm, data, grid, m, len(grid_idx), seed, grid_precision, size) for m in modes}

    requests = [requests_at(lm, input_size) for lm in loaded]
    base_i = _baseline([(lm.meta.get("model_config") or {}).get("padding_mode", lm.padding_mode) for lm in loaded])
    requests32 = requests_at(loaded[base_i], 32) if input_size != 32 else {}   # the resizing remedy's 32x32 side

    def grid_work(pre: dict) -> int:
        return sum(len(grid_idx) * n_cells for m in pre if pre[m] is None)

    ready = [{m: r.cached() for m, r in reqs.items()} for reqs in requests]
    ready32 = {m: r.cached() for m, r in requests32.items()}
    notes = [n for reqs in [*requests, requests32] for r in reqs.values() for n in r.notes]
    total = max(1, sum(n_eval + len(BLANK_KINDS) + len(mean_idx) + grid_work(pre) for pre in ready)
                + (len(BLANK_KINDS) + grid_work(ready32) if requests32 else 0))
    done = 0

    def emit(extra: int, message: str) -> Progress:
        ev = Progress(min(done + extra, total), total, message)
        if progress is not None:
            progress(ev)
        return ev

    def grids_at(head: str, size: int, pre: dict, reqs: dict):
        """Job: a grid per mode at this input size, from the cache (pre) or computed and cached;
        returns {mode: GridResult}, without the modes not finished when stopped."""
        nonlocal done
        at = f" at {size}x{size}" if size != input_size else ""
        out = {}
        for mode in modes:
            result = pre[mode]
            if result is None:
                t = time.perf_counter()
                result = yield from relay(reqs[mode].job(should_stop), done, total, f"{head}: {mode} grid{at}",
                                          progress)
                if should_stop() or result.images < len(grid_idx):
                    break
                result.info["seconds"] = round(time.perf_counter() - t, 2)
                done += len(grid_idx) * n_cells
            out[mode] = result
        return out

    def blank_maps(model, norm, head: str, size: int) -> dict[str, dict]:
        """Job: the channel-mean map of every layer for each blank input at this input size."""
        nonlocal done
        at = f" at {size}x{size}" if size != input_size else ""
        maps = {}
        for kind in BLANK_KINDS:
            yield emit(0, f"{head}: blank input ({kind}){at}")
            acts, _ = capture(model, blank_input(kind, norm, size), dev, "fp32")
            maps[f"blank_{kind}"] = {p: mean_map(a) for p, a in acts.items() if a.dim() == 3}
            done += 1
        return maps

    t_start = time.perf_counter()
    results: list[dict] = []
    interrupted = False
    sized = f", input resized to {input_size}x{input_size}" if input_size != 32 else ""
    for i, (path, lm, label) in enumerate(zip(paths, loaded, labels)):
        if should_stop():
            interrupted = True
            break
        head = f"{label} ({i + 1}/{len(paths)})"
        folder = out / label
        model, meta, norm = lm.model, lm.meta, lm.norm
        cfg = meta.get("model_config") or {}
        recipe = meta.get("recipe") or {}
        crop_pad = recipe.get("crop_pad")
        entry: dict = {"label": label, "checkpoint": str(path), "padding_mode": cfg.get("padding_mode"),
                       "model_config": cfg, "recipe": recipe, "crop_pad": crop_pad,
                       "stored_metrics": meta.get("metrics") or {}}

        # 1. accuracy and loss, fp32, on the unfolded model
        yield emit(0, f"{head}: evaluating on {n_eval} test images")
        ev_images = data.images if eval_idx is None else data.images[eval_idx]
        ev_labels = data.labels if eval_idx is None else data.labels[eval_idx]
        r = evaluate(model, ev_images, ev_labels, norm, dev, "fp32")
        entry["eval"] = {"accuracy": r.accuracy, "loss": r.loss, "images": r.count,
                         "subset": "all" if eval_idx is None else "class-balanced", "precision": "fp32",
                         "standard_error": math.sqrt(max(r.accuracy * (1 - r.accuracy), 0) / max(r.count, 1))}
        done += n_eval

        # 2. translation grids, batch norm folded, from the cache when there
        grids: dict[str, GridResult] = yield from grids_at(head, input_size, ready[i], requests[i])
        if len(grids) < len(modes):
            interrupted = True
            break
        period = shift_period(model, input_size)
        entry["grids"] = {}
        for mode, result in grids.items():
            result.save_npz(folder / f"translation_{mode}.npz")   # save_npz makes the folder
            result.write_csv(folder / f"translation_{mode}.csv")
            entry["grids"][mode] = _grid_entry(result, ready[i][mode] is not None, crop_pad, period)

        # 3. feature maps: blank inputs and the dataset-mean response, fp32, unfolded model
        maps = yield from blank_maps(model, norm, head, input_size)
        job = mean_activations(model, data.images[mean_idx], norm, dev, "fp32", size=input_size,
                               should_stop=should_stop)
        mean_acts, count = yield from relay(job, done, total, f"{head}: dataset-mean responses", progress)
        if should_stop() or count < len(mean_idx):
            interrupted = True
            break
        done += len(mean_idx)
        maps["dataset_mean"] = {p: mean_map(a) for p, a in mean_acts.items() if a.dim() == 3}

        layers = _layer_rows(model, maps)
        entry["layers"] = layers
        entry["mean_border_bias"] = {what: _finite_mean(r[what] for r in layers) for what in MAP_INPUTS}
        shown = [r for r in layers if r["shown"]]
        entry["mean_border_bias_shown"] = {what: _finite_mean(r[what] for r in shown) for what in MAP_INPUTS}

        filt = mean_filters(model)
        entry["filters"] = [{"path": list(p), "name": path_name(p),
                             "kernel": k, "asymmetry": filter_asymmetry(k)} for p, k in filt.items()]
        entry["mean_filter_asymmetry"] = _finite_mean(f["asymmetry"] for f in entry["filters"])
        entry["padding_arithmetic"] = arith[i][input_size]
        entry["padding_arithmetic_text"] = format_padding_arithmetic(arith[i][input_size])
        entry["uneven_at_32"] = [x["name"] for x in arith[i][32] if x["uneven"]]

        # 3b. the resizing remedy's other side: the baseline's grids and blank inputs at 32x32
        if i == base_i and requests32:
            grids32 = yield from grids_at(head, 32, ready32, requests32)
            if len(grids32) < len(modes):
                interrupted = True
                break
            maps32 = yield from blank_maps(model, norm, head, 32)
            rows32 = _layer_rows(model, maps32)
            period32 = shift_period(model, 32)
            entry["at_32"] = {
                "grids": {m: _grid_entry(g, ready32[m] is not None, crop_pad, period32) for m, g in grids32.items()},
                "layers": rows32,
                "mean_border_bias": {f"blank_{k}": _finite_mean(r[f"blank_{k}"] for r in rows32) for k in BLANK_KINDS}}

        # 4. figures
        figs: dict[str, object] = {}
        captions = {"blank_normalized": "blank input, zeros after normalization",
                    "blank_pixel": "blank input, black image",
                    "dataset_mean": f"mean response over {count} test images" + (", " + JPEG_LABEL if jpeg else "")}
        for what, text in captions.items():
            figs[f"maps_{what}"] = maps_figure(folder / f"maps_{what}.png",
                                                [maps[what][tuple(r["path"])] for r in shown],
                                                f"{label}: channel mean per layer, {text}{sized}")
        if filt:
            figs["mean_filters"] = filters_figure(folder / "mean_filters.png", list(filt.values()),
                                                   f"{label}: mean conv kernels (blue negative, red positive)")
        tiles = []
        for mode, g in grids.items():
            img = _heatmap_image(g.accuracy, g.dxs, g.dys, crop_pad)
            cap = f"{label}: accuracy, {mode} shifts{sized}"
            if jpeg:
                cap += ", " + JPEG_LABEL
            figs[f"accuracy_{mode}"] = save_png(folder / f"accuracy_{mode}.png", with_caption(img, cap))
            tiles.append(img)
        if tiles:
            both = montage(tiles, cols=len(tiles), gap=10, labels=list(grids))
            cap = f"{label}: accuracy per shift (dx right, dy down){sized}" + (", " + JPEG_LABEL if jpeg else "")
            figs["accuracy_heatmaps"] = save_png(folder / "accuracy_heatmaps.png", with_caption(both, cap))
        figs["qt"] = {}
        if heatmap_figures is not None:   # handed in by the top layer (the CLI passes gui.figures'); core draws no Qt
            for mode, g in grids.items():
                title = g.info.get("title") or f"{label}: {mode} shifts"
                if jpeg and "JPEG" not in title:
                    title += f" ({JPEG_LABEL})"
                try:
                    figs["qt"][mode] = heatmap_figures(g, folder / mode, title, crop_pad)
                except Exception as e:  # noqa: BLE001 - the numbers and PNGs exist; say what failed
                    entry["qt_figures_note"] = f"the heatmap figures failed: {type(e).__name__}: {e}"
                    break
        entry["figures"] = figs
        results.append(entry)
        yield emit(0, f"{head}: done")

    if not results:
        return None
    rings, far = ring_distances(grid.dxs, grid.dys)
    settings = {"data": data.source, "jpeg": jpeg, "device": str(dev), "grid_precision": grid_precision,
                "grid": {"x_min": grid.x_min, "x_max": grid.x_max, "y_min": grid.y_min, "y_max": grid.y_max,
                         "step": grid.step},
                "ring_distances": rings, "far": far, "input_size": input_size,
                "modes": list(modes), "grid_images": len(grid_idx), "eval_images": n_eval,
                "eval_subset": "all" if eval_idx is None else "class-balanced", "mean_images": len(mean_idx),
                "seed": seed, "interrupted": interrupted, "cache_notes": notes, "seconds": round(time.perf_counter() - t_start, 2),
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "border_bias_definition": BORDER_BIAS_HELP, "filter_asymmetry_definition": FILTER_ASYMMETRY_HELP}
    doc = {"settings": settings, "checkpoints": results}
    out.mkdir(parents=True, exist_ok=True)
    atomic_text(out / "report.json", json.dumps(_clean(doc), indent=1) + "\n")
    md = out / "report.md"
    atomic_text(md, render_markdown(doc, out))
    return md


# ---------------------------------------------------------------------------------------------------
# report.md

def _rel(p, out: Path) -> str:
    try:
        return Path(p).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return str(p)


def _baseline(padding_modes: list) -> int:
    """Index of the checkpoint the fixes are measured against: the first zero-padded one, else the first."""
    return next((i for i, m in enumerate(padding_modes) if m == "zeros"), 0)


def render_markdown(doc: dict, out: Path) -> str:
    from padlens.core.shifts import SHIFT_MODES
    s, results = doc["settings"], doc["checkpoints"]
    jpeg = s["jpeg"]
    jl = f" ({JPEG_LABEL})" if jpeg else ""
    g = s["grid"]
    L: list[str] = []
    add = L.append
    add("# PadLens report: padding, border artifacts and translation robustness\n")
    add(f"- Data: {s['data']}" + (f". **Every number and figure computed from test images in this report is {JPEG_LABEL}**, "
                                   "not on the original CIFAR-10 images." if jpeg else "."))
    ev = ("all " if s["eval_subset"] == "all" else "a class-balanced subset of ") + f"{s['eval_images']} test images"
    add(f"- Accuracy and mean cross-entropy: the assignment's evaluate on {ev}, fp32, batch norm as trained.")
    add(f"- Translation grids: dx, dy from {g['x_min']} to {g['x_max']} (y {g['y_min']}..{g['y_max']}) px in steps "
        f"of {g['step']}, {s['grid_images']} class-balanced test images (seed {s['seed']}), {s['grid_precision']}, "
        f"batch norm folded; modes: " + "; ".join(f"`{m}` = {SHIFT_MODES[m]}" for m in s["modes"]) + ".")
    add(f"- Dataset-mean feature maps: responses averaged over {s['mean_images']} class-balanced test images.")
    size = s["input_size"]
    add(f"- Input size: {size}x{size}" + (
        ", the native size of CIFAR-10 (`--input-size N` measures the input-resizing remedy)." if size == 32 else
        f": the input-resizing remedy. Every input is resized (bilinear) from 32x32 to {size}x{size} before the "
        "network for the translation grids (shifted at 32x32 first), the feature maps and the padding arithmetic; "
        "accuracy and mean cross-entropy stay the assignment's evaluate at 32x32. Resizing changes where padding and "
        "pooling use the input unevenly, and section 4 ends with what it changes against 32x32."))
    add(f"- Device {s['device']}; {s['seconds']:.1f} s; created {s['created']}."
        + (" **Interrupted: only the checkpoints listed below were finished.**" if s["interrupted"] else ""))
    add("")
    add("| checkpoint | file | padding | widths | crop augmentation (px) |")
    add("|---|---|---|---|---|")
    for r in results:
        widths = r["model_config"].get("widths")
        add(f"| {r['label']} | `{r['checkpoint']}` | {r['padding_mode']} | {widths} | {r['crop_pad']} |")
    add("")

    # 1 ------------------------------------------------------------------------------------------------
    add("## 1. Where are the artifacts?\n")
    add(s["border_bias_definition"] + " Per layer, the map is the layer's output for one input averaged over "
        "channels; the mean over layers covers every layer with a map of at least 3x3 (containers excluded).\n")
    for r in results:
        add(f"### {r['label']} ({r['padding_mode']} padding)\n")
        for what in ("blank_normalized", "blank_pixel"):
            rows = sorted((x for x in r["layers"] if math.isfinite(x[what])), key=lambda x: -x[what])
            desc = MAP_INPUTS[what]
            if not rows or rows[0][what] < 1e-4:
                add(f"- {desc}: no border artifact: the largest border bias is "
                    f"{_num(rows[0][what], 6) if rows else 'n/a'} (every map with a center is constant up to "
                    "float rounding).")
                continue
            top = rows[:3]
            parts = []
            for x in top:
                reg = x[f"{what}_worst_region"]
                dv = x[f"{what}_regions"].get(reg, math.nan) if reg else math.nan
                parts.append(f"`{x['name']}` {x['type']} {x['size'][0]}x{x['size'][1]}: **{_num(x[what])}**"
                             + (f", strongest at the {reg} ({_num(dv, 2)} x RMS "
                                f"{'above' if dv > 0 else 'below'} the center)" if reg else ""))
            worst = [x[f"{what}_worst_region"] for x in rows if x[f"{what}_worst_region"]]
            common = max(set(worst), key=worst.count) if worst else None
            add(f"- {desc}: largest border bias at " + "; ".join(parts) + ". Mean over layers "
                f"{_num(r['mean_border_bias'][what])}."
                + (f" Over all {len(worst)} layers the most deviating region is most often the {common} "
                   f"({worst.count(common)} layers)." if common else ""))
        dm = sorted((x for x in r["layers"] if math.isfinite(x["dataset_mean"])), key=lambda x: -x["dataset_mean"])
        if dm:
            x = dm[0]
            add(f"- {MAP_INPUTS['dataset_mean']}{jl}: largest border bias {_num(x['dataset_mean'])} at "
                f"`{x['name']}` {x['type']} ({x['dataset_mean_worst_region'] or 'no single region'}); mean over "
                f"layers {_num(r['mean_border_bias']['dataset_mean'])}.")
        f = r["figures"]
        shown = [x for x in r["layers"] if x["shown"]]
        add("- Figures (tiles numbered in this order: "
            + ", ".join(f"{k + 1} = `{x['name']}` {x['type']}" for k, x in enumerate(shown))
            + "; each tile scaled to its own min..max, a flat tile is a constant map): "
            f"[blank, zeros after normalization]({_rel(f['maps_blank_normalized'], out)}), "
            f"[blank, black image]({_rel(f['maps_blank_pixel'], out)}), "
            f"[dataset mean{jl}]({_rel(f['maps_dataset_mean'], out)})"
            + (f", [mean kernels]({_rel(f['mean_filters'], out)})" if "mean_filters" in f else "") + ".")
        add("")

    # 2 ------------------------------------------------------------------------------------------------
    add(f"## 2. How accuracy falls with shift{jl}\n")
    rings, far = s["ring_distances"], s["far"]
    add("Accuracy averaged over the ring of grid cells at Chebyshev distance max(|dx|, |dy|) = d "
        f"(d = 0 is the unshifted image); {s['grid_images']} images per cell, so one standard error is about "
        f"{_pct(math.sqrt(0.25 / max(s['grid_images'], 1)))} at 50% accuracy. Columns: distances on the grid up to "
        "its largest; every ring is in report.json.\n")
    add("| checkpoint | mode | " + " | ".join(f"d = {d}" for d in rings) + " | mean over grid | minimum (at dx, dy) "
        "| mean consistency |")
    add("|---|---|" + "---|" * len(rings) + "---|---|---|")
    for r in results:
        for mode, gr in r["grids"].items():
            prof = gr["accuracy_by_distance"]
            add(f"| {r['label']} | {mode} | " + " | ".join(_pct(prof.get(d)) for d in rings)
                + f" | {_pct(gr['mean_accuracy'])} | {_pct(gr['min_accuracy'])} at {tuple(gr['min_at'] or ())} "
                  f"| {_pct(gr['mean_consistency'])} |")
    add("")
    for r in results:
        f = r["figures"]
        if "accuracy_heatmaps" in f:
            qt = [f"[{m}]({_rel(p[0], out)})" for m, p in f.get("qt", {}).items() if p]
            add(f"- {r['label']}: [accuracy heatmaps]({_rel(f['accuracy_heatmaps'], out)}){jl}; white: the unshifted "
                "cell, red: the training crop box" + (f"; full figures with loss and consistency: {', '.join(qt)}"
                                                        if qt else "")
                + (f"; {r['qt_figures_note']}" if r.get("qt_figures_note") else "") + ".")
    add("")

    # 3 ------------------------------------------------------------------------------------------------
    add("## 3. Which evaluation choices distort the picture\n")
    add("**Fill of the uncovered border.** `affine` fills it black, an input the network never saw in "
        "training; `affine-mean` fills it with the data set's mean color; `roll` wraps content around, so "
        "nothing is lost and only the position changes.\n")
    add("| checkpoint | " + " | ".join(f"{m}: mean / at d = {far}" for m in s["modes"]) + " |")
    add("|---|" + "---|" * len(s["modes"]))
    for r in results:
        cells = []
        for m in s["modes"]:
            gr = r["grids"].get(m)
            cells.append("n/a" if gr is None else
                         f"{_pct(gr['mean_accuracy'])} / {_pct(gr['accuracy_by_distance'].get(far))}")
        add(f"| {r['label']} | " + " | ".join(cells) + " |")
    add("")
    for r in results:
        gs = r["grids"]
        if "affine" in gs and len(gs) > 1:
            a = gs["affine"]["accuracy_by_distance"].get(far, math.nan)
            others = ", ".join(f"{m} {_pp(gs[m]['accuracy_by_distance'].get(far, math.nan) - a)}"
                               for m in gs if m != "affine")
            add(f"- {r['label']}: at d = {far}, relative to the black fill: {others}.")
    add("")
    pitfall_rows = [(r["label"], mode, gr["pitfalls"]) for r in results for mode, gr in r["grids"].items()]
    add("**Content shifted out of the frame.** A shift by (dx, dy) leaves (32 - |dx|)(32 - |dy|) / 32² of the "
        "image in view (all of it under `roll`); beyond half the image gone, part of the accuracy drop is "
        "missing evidence, not a fragile network. Mean accuracy over the cells where at least / less than half "
        "of the image stays in frame:\n")
    add("| checkpoint | mode | >= half in frame | < half in frame | smallest share in frame |")
    add("|---|---|---|---|---|")
    for label, mode, b in pitfall_rows:
        add(f"| {label} | {mode} | {_pct(b['visible'])} | {_pct(b['hidden'])} | {_pct(b['min_visible'])} |")
    add("")
    add("**Pooling phase.** Shifts that are not multiples of the product of all pooling strides (the period) "
        "sample the pooling grid differently even when no content is lost. Mean accuracy by (dy mod period, "
        "dx mod period); only phases the grid visits are shown (a step equal to the period shows one phase).\n")
    for r in results:
        gs = r["grids"]
        mode = "roll" if "roll" in gs else next(iter(gs), None)
        if mode is None:
            continue
        gr = gs[mode]
        period = gr["pitfalls"]["period"]
        if gr["phase_table"] is None:
            add(f"- {r['label']}, `{mode}` shifts: at input size {size} the pools repeat at a fraction of "
                "a pixel of the 32 px shifts, so no shift keeps the phase; no phase table.")
            continue
        tab = np.asarray(gr["phase_table"], dtype=float)
        rows = [i for i in range(tab.shape[0]) if np.isfinite(tab[i]).any()]
        cols = [j for j in range(tab.shape[1]) if np.isfinite(tab[:, j]).any()]
        fin = tab[np.isfinite(tab)]
        spread = float(fin.max() - fin.min()) if fin.size else math.nan
        add(f"- {r['label']}, `{mode}` shifts, period {period}: spread between phases {_pp(spread)}.")
        if rows and cols:
            add("")
            add("  | dy mod / dx mod | " + " | ".join(str(j) for j in cols) + " |")
            add("  |---|" + "---|" * len(cols))
            for i in rows:
                add(f"  | {i} | " + " | ".join(_pct(tab[i, j]) for j in cols) + " |")
            add("")
    add("")
    add("**Training crop augmentation.** Random crops of a padded image train shifts up to the checkpoint's "
        "crop padding in each direction; accuracy inside that box (|dx|, |dy| <= crop) vs outside it:\n")
    add("| checkpoint | crop (px) | mode | inside | outside | drop |")
    add("|---|---|---|---|---|---|")
    for label, mode, b in pitfall_rows:
        drop = b["inside"] - b["outside"] if b["inside"] is not None and b["outside"] is not None else None
        add(f"| {label} | {b['crop_pad'] if b['crop_pad'] is not None else 'unknown'} | {mode} | "
            f"{_pct(b['inside'])} ({b['inside_cells']} cells) | {_pct(b['outside'])} ({b['outside_cells']} cells) "
            f"| {_pp(drop)} |")
    add("")
    add("**Data and precision.** " + ("The test images are the lossy JPEG copy of CIFAR-10: compression artifacts change accuracy "
                                      "by themselves, so compare checkpoints only on the same copy. " if jpeg else "")
        + f"The grids ran in {s['grid_precision']} with batch norm folded; the accuracy column of section 4 is fp32 on "
        f"{ev}, so the unshifted grid cell (on {s['grid_images']} images) can differ from it by sampling.\n")

    # 4 ------------------------------------------------------------------------------------------------
    add("## 4. What each fix changes\n")
    shift = "affine" if "affine" in s["modes"] else s["modes"][0]   # every checkpoint has a grid per mode
    add(f"| checkpoint | padding | crop (px) | accuracy | mean CE | mean consistency ({shift}) | accuracy at d = "
        f"{far} ({shift}) | border bias, blank zeros | border bias, black image | border bias, dataset mean | "
        "mean kernel asymmetry |")
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        gr = r["grids"][shift]
        mb = r["mean_border_bias"]
        add(f"| {r['label']} | {r['padding_mode']} | {r['crop_pad']} | {_pct(r['eval']['accuracy'], 2)} | "
            f"{_num(r['eval']['loss'])} | {_pct(gr['mean_consistency'])} | "
            f"{_pct(gr['accuracy_by_distance'].get(far))} | {_num(mb['blank_normalized'])} | "
            f"{_num(mb['blank_pixel'])} | {_num(mb['dataset_mean'])} | {_num(r['mean_filter_asymmetry'])} |")
    add("")
    add(f"Accuracy: fp32 on {ev}; one standard error is about "
        f"{_pct(results[0]['eval']['standard_error'], 2)}. Border bias: mean over layers.\n")
    base = results[_baseline([r["padding_mode"] for r in results])]
    for r in results:
        if r is base:
            continue
        gr, bgr = r["grids"][shift], base["grids"][shift]
        parts = [f"accuracy {_pp(r['eval']['accuracy'] - base['eval']['accuracy'])}",
                 f"mean consistency ({shift}) {_pp(gr['mean_consistency'] - bgr['mean_consistency'])}",
                 f"accuracy at d = {far} ({shift}) "
                 + _pp(gr['accuracy_by_distance'].get(far, math.nan) - bgr['accuracy_by_distance'].get(far, math.nan))]
        for what, name in (("blank_normalized", "blank-input border bias"), ("dataset_mean", "dataset-mean border bias")):
            parts.append(f"{name} {_num(base['mean_border_bias'][what])} -> {_num(r['mean_border_bias'][what])}")
        add(f"- {r['label']} ({r['padding_mode']}) vs {base['label']} ({base['padding_mode']}): " + "; ".join(parts) + ".")
    add("")
    add(f"**Input size {size}x{size}.** Layers whose padding or pooling uses the input unevenly (rows or columns "
        f"dropped, padding read on one side only), from the padding arithmetic at {size}x{size}"
        + (", and which were uneven at 32x32:\n" if size != 32 else ":\n"))
    for r in results:
        uneven = [f"`{x['name']}` {x['type']} {x['note']}" for x in r["padding_arithmetic"] if x["uneven"]]
        add(f"- {r['label']}: " + ("; ".join(uneven) if uneven else "none")
            + (f"; at 32x32: {', '.join(f'`{n}`' for n in r['uneven_at_32']) or 'none'}." if size != 32 else "."))
    add("")
    r32 = base.get("at_32")
    if r32:
        add(f"**Resizing 32 -> {size}.** {base['label']} ({base['padding_mode']} padding) measured at both sizes with "
            f"the same grid, {s['grid_images']} test images and seed {s['seed']}{jl}; change = {size}x{size} minus 32x32. Border bias: "
            "mean over the layers with a map of at least 3x3 at that size. Accuracy, mean cross-entropy and the mean "
            "kernels do not change: the evaluation stays at 32x32 and the weights are the same.\n")
        add(f"| resizing 32 -> {size} | at 32x32 | at {size}x{size} | change |")
        add("|---|---|---|---|")

        def row(name: str, at32, resized, pct: bool) -> None:
            fmt = _pct if pct else _num
            add(f"| {name} | {fmt(at32)} | {fmt(resized)} | "
                + (_pp(resized - at32) if pct else _num(resized - at32, sign="+")) + " |")
        for m in s["modes"]:
            g32, gn = r32["grids"][m], base["grids"][m]
            for d in sorted({0, far}):
                row(f"accuracy at d = {d} ({m})", g32["accuracy_by_distance"].get(d, math.nan),
                    gn["accuracy_by_distance"].get(d, math.nan), True)
            row(f"mean accuracy over the grid ({m})", g32["mean_accuracy"], gn["mean_accuracy"], True)
            row(f"mean consistency ({m})", g32["mean_consistency"], gn["mean_consistency"], True)
        for what, name in (("blank_normalized", "blank zeros"), ("blank_pixel", "black image")):
            row(f"border bias, {name}", r32["mean_border_bias"][what], base["mean_border_bias"][what], False)
        add("")

    # 5 ------------------------------------------------------------------------------------------------
    add("## 5. Details per checkpoint\n")
    for r in results:
        add(f"### {r['label']}\n")
        add("Border bias per layer (blank zeros / black image / dataset mean; most deviating region for the blank "
            "zeros input):\n")
        add("| layer | type | size | blank zeros | black image | dataset mean | region (blank zeros) |")
        add("|---|---|---|---|---|---|---|")
        for x in r["layers"]:
            add(f"| `{x['name']}` | {x['type']} | {x['size'][0]}x{x['size'][1]} | {_num(x['blank_normalized'])} | "
                f"{_num(x['blank_pixel'])} | {_num(x['dataset_mean'])} | {x['blank_normalized_worst_region'] or '-'} |")
        add("")
        add("Mean 3x3 kernels (averaged over output and input channels) and their asymmetry "
            "(" + doc["settings"]["filter_asymmetry_definition"].split(": ", 1)[-1] + "):\n")
        add("| conv | asymmetry | mean kernel (rows) |")
        add("|---|---|---|")
        for fl in r["filters"]:
            k = np.asarray(fl["kernel"], dtype=float)
            rows = " / ".join(" ".join(f"{v:+.3f}" for v in row) for row in k)
            add(f"| `{fl['name']}` | {_num(fl['asymmetry'])} | {rows} |")
        add("")
        add(f"Padding arithmetic for a {size}x{size} input:\n")
        add("```")
        add(r["padding_arithmetic_text"])
        add("```\n")
    add("Numbers: [report.json](report.json). Grids per checkpoint and mode: `<checkpoint>/translation_<mode>.csv` "
        "and `.npz`.")
    return "\n".join(L) + "\n"
