"""`padlens report`: one command that measures everything the assignment asks about and writes it up.

For each checkpoint: test accuracy and mean cross-entropy, translation grids for each shift mode,
the border bias of every layer for the blank inputs and for the data set's mean response, the mean
filters of every conv, the padding arithmetic, the coverage map, shift equivariance per layer, the
blind-spot maps and the padding-aware channels (core.coverage, core.equivariance, core.blindspots,
core.channels). With an input size other than 32, the zero-padded
baseline is also measured at 32x32 (grids and blank inputs), so that section 4 can say what resizing
changes. Writes the figures with the writers the caller hands in (FigureWriters: core draws no Qt, and the
command line passes the app's own figures, PNG at 300 dpi and SVG), `report.md` answering the questions with the measured
numbers (written by core.report_markdown) and `report.json` with all of them, every accuracy and accuracy
difference with its 95% interval (core.stats).

The work is a job (core.jobs): a generator yielding Progress and returning the path of report.md
(None when stopped before any checkpoint was finished).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from padlens.core.blindspots import BlindspotSpec
from padlens.core.checkpoint import checkpoint_labels
from padlens.core.files import atomic_text
from padlens.core.jobs import Progress, never, relay
from padlens.core.stats import diff_interval, wilson
from padlens.core.translation import GridSpec

DEFAULT_MODES = ("affine", "affine-mean", "roll")
DEFAULT_GRID = GridSpec(-16, 16, -16, 16, 4)
WORST_CASE_GRID = GridSpec(-8, 8, -8, 8, 1)   # every whole-pixel shift within 8 px: the worst case exact at r = 1..8
WORST_CASE_IMAGES = 100   # 289 shifts each: a quarter of the default grids' work per checkpoint
FAR = 16           # half the 32-px image: section 3 compares the fills at the grid distance nearest this
MAP_INPUTS = {"blank_normalized": "blank input, all zeros after normalization (every pixel at the mean color)",
              "blank_pixel": "blank input, all zeros before normalization (a black image)",
              "dataset_mean": "response averaged over test images"}
JPEG_LABEL = "measured on the lossy JPEG copy of CIFAR-10"
INTERVAL_METHOD = ("95% intervals: Wilson score interval for an accuracy (core.stats.wilson); Newcombe's hybrid "
                   "score interval, from the two Wilson intervals, for a difference of two accuracies "
                   "(core.stats.diff_interval). Both are conservative here: a mean over grid cells counts its images, "
                   "not cells x images, and the differences compare accuracies on the same images, which Newcombe's "
                   "method treats as independent.")


# ---------------------------------------------------------------------------------------------------
# Measures used by the report (pure functions, tested directly)

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


def baseline_index(padding_modes: list) -> int:
    """Index of the checkpoint the fixes are measured against: the first zero-padded one, else the first."""
    return next((i for i, m in enumerate(padding_modes) if m == "zeros"), 0)


def _is_activation(m: nn.Module) -> bool:
    return type(m).__module__ == nn.modules.activation.__name__


def interval(p, n: int) -> list[float] | None:
    """The 95% Wilson interval [low, high] of a rate p measured on n images; None where p is not measured.

    A mean over grid cells that all see the same n images counts n images, not cells x n: an image's
    share of correct cells varies at most as much as one right-or-wrong answer, so the interval is
    conservative (a little too wide), never too narrow."""
    if p is None or not math.isfinite(p) or n <= 0:
        return None
    return list(wilson(p * n, n))


def difference(p1, n1: int, p2, n2: int) -> dict | None:
    """p1 - p2 with its 95% interval (core.stats.diff_interval, Newcombe's method) and both image counts;
    None where either rate is not measured. The report's differences are all on the same images, for
    which Newcombe's interval (made for independent samples) is conservative."""
    if interval(p1, n1) is None or interval(p2, n2) is None:
        return None
    return {"value": p1 - p2, "interval": list(diff_interval(p1 * n1, n1, p2 * n2, n2)), "images": [n1, n2]}


def _add_differences(results: list[dict], far: int, mode: str) -> int:
    """Put the differences the report quotes, each with its interval (`difference`), into the checkpoints'
    entries: every fill against the black one at d = far (`fill_vs_black`), each checkpoint against the
    baseline (`vs_baseline`: the accuracy, and the mean consistency and accuracy at d = far of `mode`'s
    grid) and the resizing remedy's changes (`at_32`'s `changes`, resized minus 32x32). Returns the
    baseline's index."""
    b = baseline_index([r["padding_mode"] for r in results])
    base = results[b]

    def change(g, g0, key: str, d: int | None = None) -> dict | None:
        a, a0 = (g[key], g0[key]) if d is None else (g[key].get(d, math.nan), g0[key].get(d, math.nan))
        return difference(a, g["images"], a0, g0["images"])

    for r in results:
        gs = r["grids"]
        if "affine" in gs:
            r["fill_vs_black"] = {m: change(g, gs["affine"], "accuracy_by_distance", far)
                                  for m, g in gs.items() if m != "affine"}
        if r is not base:
            ev, ev0 = r["eval"], base["eval"]
            g, g0 = gs[mode], base["grids"][mode]
            r["vs_baseline"] = {"baseline": base["label"], "mode": mode,
                                "accuracy": difference(ev["accuracy"], ev["images"], ev0["accuracy"], ev0["images"]),
                                "mean_consistency": change(g, g0, "mean_consistency"),
                                "accuracy_at_far": change(g, g0, "accuracy_by_distance", far)}
        if "at_32" in r:
            r["at_32"]["changes"] = {
                m: {"accuracy_by_distance": {d: change(gs[m], g32, "accuracy_by_distance", d)
                                             for d in sorted({0, far})},
                    **{k: change(gs[m], g32, k) for k in ("mean_accuracy", "mean_consistency")}}
                for m, g32 in r["at_32"]["grids"].items()}
    return b


def _grid_entry(result, from_cache: bool, crop_pad, period) -> dict:
    """What report.json keeps of one translation grid, with the summaries the Markdown quotes and the 95%
    interval of each (`intervals`, over result.images images)."""
    from padlens.core.translation import phase_table, pitfalls
    from padlens.core.worst_case import worst_case
    acc, cons = result.accuracy, result.consistency
    n = result.images
    worst = np.unravel_index(np.nanargmin(acc), acc.shape) if np.isfinite(acc).any() else None
    entry = {
        "from_cache": from_cache, "images": n, "precision": result.info.get("precision"),
        "batch_norm_folded": result.info.get("fused"),
        "dx": result.dxs, "dy": result.dys, "accuracy": acc, "consistency": cons, "loss": result.loss,
        "accuracy_by_distance": ring_profile(acc, result.dxs, result.dys),
        "consistency_by_distance": ring_profile(cons, result.dxs, result.dys),
        "mean_accuracy": float(np.nanmean(acc)), "mean_consistency": float(np.nanmean(cons)),
        "min_accuracy": float(acc[worst]) if worst else math.nan,
        "min_at": [int(result.dxs[worst[1]]), int(result.dys[worst[0]])] if worst else None,
        "pitfalls": pitfalls(result, crop_pad, period), "phase_table": phase_table(result, period) if period else None,
        "worst_case": worst_case(result)}
    pit, table = entry["pitfalls"], entry["phase_table"]
    entry["intervals"] = {
        "accuracy_by_distance": {d: interval(v, n) for d, v in entry["accuracy_by_distance"].items()},
        "consistency_by_distance": {d: interval(v, n) for d, v in entry["consistency_by_distance"].items()},
        **{k: interval(entry[k], n) for k in ("mean_accuracy", "mean_consistency")},
        "min_accuracy": interval(entry["min_accuracy"], int(result.count[worst])) if worst else None,
        **{k: interval(pit[k], n) for k in ("visible", "hidden", "inside", "outside")},
        "phase_table": None if table is None else [[interval(v, n) for v in row] for row in table]}
    entry["crop_drop"] = difference(pit["inside"], n, pit["outside"], n)
    phases = [] if table is None else [(float(table[i, j]), [int(i), int(j)])
                                       for i, j in zip(*np.nonzero(np.isfinite(table)))]
    entry["phases_visited"] = len(phases)
    entry["phase_spread"] = None
    if len(phases) > 1:     # the highest phase minus the lowest; one phase alone has no spread
        (hi, at_hi), (lo, at_lo) = max(phases), min(phases)
        entry["phase_spread"] = {**difference(hi, n, lo, n), "highest": at_hi, "lowest": at_lo}
    return entry


def worst_case_entry(result, from_cache: bool, folder: Path) -> dict:
    """What report.json keeps of the worst-case grid: core.worst_case's numbers with the grid's settings; its
    numbers go to folder as worst_case_grid.npz/.csv and worst_case.csv."""
    from padlens.core.worst_case import worst_case, write_worst_case_csv
    w = worst_case(result)
    result.save_npz(folder / "worst_case_grid.npz")
    result.write_csv(folder / "worst_case_grid.csv")
    write_worst_case_csv(w, folder / "worst_case.csv")
    return {**w, "from_cache": from_cache, "mode": result.info.get("mode", "affine"), "dx": result.dxs,
            "dy": result.dys, "precision": result.info.get("precision"), "seconds": result.info.get("seconds")}


def _layer_rows(model: nn.Module, maps: dict[str, dict], input_size: int) -> list[dict]:
    """core.spatial_bias.bias_table of the maps ({input: {path: mean map}}, keyed like MAP_INPUTS), each row
    marked `shown` when its map is a tile of the figures (convs and activations)."""
    from padlens.core.layers import iter_paths
    from padlens.core.spatial_bias import bias_table
    modules = dict(iter_paths(model))
    rows = bias_table(model, maps, input_size)
    for row in rows:
        m = modules[row["path"]]
        row["shown"] = isinstance(m, nn.Conv2d) or _is_activation(m)
    return rows


# ---------------------------------------------------------------------------------------------------
# report.json

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
# The job

def report(checkpoints: list, out_dir, data_root=None, device="auto", images: int = 500,
           grid: GridSpec = DEFAULT_GRID, modes=DEFAULT_MODES, mean_images: int = 500, precision: str = "auto",
           eval_images: int = 0, seed: int = 0, input_size: int = 32,
           worst_case_images: int = WORST_CASE_IMAGES, worst_case_grid: GridSpec = WORST_CASE_GRID,
           figures: FigureWriters | None = None, should_stop: Callable[[], bool] = never, progress: Callable[[Progress], None] | None = None):
    """Job: measure every checkpoint, write figures, report.md and report.json into out_dir.

    checkpoints: checkpoint paths, or models already opened on the device `device` picks (core.session's
    LoadedModel, e.g. your own from load_custom: no model config or recipe, so no training crop range).
    images: class-balanced test images per translation grid (0: all). eval_images: test images for
    accuracy and loss (0: the whole split, the assignment's evaluate; else a class-balanced subset).
    mean_images: test images averaged for the dataset-mean responses (0: all). precision applies to
    the translation grids; accuracy, loss and feature maps are always fp32. input_size: the resizing
    remedy, every input resized to input_size x input_size before the network for the translation grids
    (shifted at 32x32 first), the feature maps and the padding arithmetic; accuracy and loss stay the
    assignment's evaluate at 32x32. A model that does not run at that size fails before any work.
    worst_case_images: class-balanced test images (at most `images`; 0: none) of an affine grid with every
    whole-pixel shift of worst_case_grid, for the worst case over shifts (core.worst_case), which the step-4
    grids could only bound from below.
    Translation grids come from and go to the cache the GUI uses (core.grid_cache).
    progress, when given, is called with every Progress the job yields. Returns the path of report.md,
    or None when stopped before the first checkpoint was finished (checkpoints finished by then are
    reported).
    """
    from padlens.core.activations import BLANK_KINDS, blank_input, capture, mean_activations
    from padlens.core.data import load_split, stratified_subset
    from padlens.core.device import describe_precision, pick_device, resolve_precision
    from padlens.core.evaluate import evaluate
    from padlens.core.layers import path_name
    from padlens.core.shifts import SHIFT_MODES
    from padlens.core.spatial_bias import (BORDER_BIAS_HELP, FILTER_ASYMMETRY_HELP, filter_asymmetry,
                                   format_padding_arithmetic, mean_filters, mean_map, padding_arithmetic)
    from padlens.core.grid_cache import GridRequest
    from padlens.core.session import LoadedModel, load_model
    from padlens.core.translation import GridResult, shift_period

    if not checkpoints:
        raise ValueError("report needs at least one checkpoint or model")
    modes = tuple(modes)
    bad = [m for m in modes if m not in SHIFT_MODES]
    if bad or not modes:
        raise ValueError(f"shift modes must be among {', '.join(SHIFT_MODES)}, not {bad or 'none'}")
    for name, v in (("images", images), ("mean_images", mean_images), ("eval_images", eval_images),
                    ("worst_case_images", worst_case_images)):
        if v < 0:
            raise ValueError(f"{name} must be 0 (all) or a positive number")
    out = Path(out_dir)
    dev = pick_device(device)
    grid_precision = resolve_precision(precision, dev)
    # fail on a bad file or input size before any work
    loaded = [c if isinstance(c, LoadedModel) else load_model(c, dev) for c in checkpoints]
    paths = [Path(lm.meta["path"]) for lm in loaded]   # an own model's: its weights, else its Python file
    pads = [(lm.meta.get("model_config") or {}).get("padding_mode", lm.padding_mode) for lm in loaded]
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
    eq_idx = stratified_subset(data.labels, EQUIVARIANCE_IMAGES, seed)
    eq_work = len(eq_idx) * len(EQUIVARIANCE_GRID.dxs) * len(EQUIVARIANCE_GRID.dys)   # rows per model
    bs_idx = stratified_subset(data.labels, BLINDSPOT_IMAGES, seed)
    bs_work = len(bs_idx) * (len(BLINDSPOT_SPEC.offsets(32)) ** 2 + 1)   # canvases and full-size images per model
    ch_work = 2 * CHANNEL_IMAGES + 2   # the channel ablation: both models on the images and the blank input
    n_eval = len(data) if eval_idx is None else len(eval_idx)
    n_cells = len(grid.dxs) * len(grid.dys)

    def requests_at(lm, size: int) -> dict[str, GridRequest]:
        return {m: GridRequest(lm, data, grid, m, len(grid_idx), seed, grid_precision, size) for m in modes}

    requests = [requests_at(lm, input_size) for lm in loaded]
    n_worst = min(worst_case_images, len(grid_idx))
    worst_requests = [GridRequest(lm, data, worst_case_grid, "affine", n_worst, seed, grid_precision, input_size)
                      if n_worst else None for lm in loaded]
    worst_ready = [r.cached() if r else None for r in worst_requests]
    worst_work = n_worst * len(worst_case_grid.dxs) * len(worst_case_grid.dys)
    base_i = baseline_index(pads)
    requests32 = requests_at(loaded[base_i], 32) if input_size != 32 else {}   # the resizing remedy's 32x32 side

    def grid_work(pre: dict) -> int:
        return sum(len(grid_idx) * n_cells for m in pre if pre[m] is None)

    ready = [{m: r.cached() for m, r in reqs.items()} for reqs in requests]
    ready32 = {m: r.cached() for m, r in requests32.items()}
    notes = [n for reqs in [*requests, requests32] for r in reqs.values() for n in r.notes]
    notes += [n for r in worst_requests if r for n in r.notes]
    total = max(1, sum(n_eval + len(BLANK_KINDS) + len(mean_idx) + grid_work(pre) + eq_work + bs_work + ch_work
                       + (worst_work if worst_requests[k] and worst_ready[k] is None else 0)
                       for k, pre in enumerate(ready))
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
        entry: dict = {"label": label, "checkpoint": str(path), "padding_mode": pads[i],
                       "custom": bool(meta.get("custom")), "model_config": cfg, "recipe": recipe, "crop_pad": crop_pad,
                       "stored_metrics": meta.get("metrics") or {}}

        # 1. accuracy and loss, fp32, on the unfolded model
        yield emit(0, f"{head}: evaluating on {n_eval} test images")
        ev_images = data.images if eval_idx is None else data.images[eval_idx]
        ev_labels = data.labels if eval_idx is None else data.labels[eval_idx]
        r = evaluate(model, ev_images, ev_labels, norm, dev, "fp32")
        entry["eval"] = {"accuracy": r.accuracy, "loss": r.loss, "images": r.count,
                         "subset": "all" if eval_idx is None else "class-balanced", "precision": "fp32",
                         "interval": interval(r.accuracy, r.count)}
        done += n_eval

        # 2. translation grids (batch norm folded where the precision allows), from the cache when there
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

        # 2b. the worst case over shifts: every whole-pixel shift within worst_case_grid's range
        worst = worst_ready[i]
        if worst_requests[i] and worst is None:
            t = time.perf_counter()
            worst = yield from relay(worst_requests[i].job(should_stop), done, total,
                                     f"{head}: worst-case grid", progress)
            if should_stop() or worst.images < n_worst:
                interrupted = True
                break
            worst.info["seconds"] = round(time.perf_counter() - t, 2)
            done += worst_work
        entry["worst_case"] = worst_case_entry(worst, worst_ready[i] is not None, folder) if worst else None

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

        layers = _layer_rows(model, maps, input_size)
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
            rows32 = _layer_rows(model, maps32, 32)
            period32 = shift_period(model, 32)
            entry["at_32"] = {
                "grids": {m: _grid_entry(g, ready32[m] is not None, crop_pad, period32) for m, g in grids32.items()},
                "layers": rows32,
                "mean_border_bias": {f"blank_{k}": _finite_mean(r[f"blank_{k}"] for r in rows32) for k in BLANK_KINDS}}

        # 4. figures: every layer's channel-mean maps per input, the mean filters, the translation heatmaps
        what = {"blank_normalized": "blank input, zeros after normalization", "blank_pixel": "blank input, a black image",
                "dataset_mean": f"mean response over {count} test images"}
        layer_maps = {k: {r["name"]: maps[k][tuple(r["path"])] for r in shown} for k in what}
        drawn = draw(figures, "bias", layer_maps, {path_name(p): k for p, k in filt.items()}, folder, label,
                     pads[i], what, {"dataset_mean": data.source}, input_size)
        figs = {name: next((p for p in drawn["figures"] if Path(p).name == f"{name}.png"), None)
                for name in [f"maps_{k}" for k in what] + ["mean_filters"]}
        figs["heatmaps"] = {}
        notes_here = [drawn["figure_note"]] if drawn.get("figure_note") else []
        for mode, g in grids.items():
            title = g.info.get("title") or f"{label}: {mode} shifts"
            if jpeg and "JPEG" not in title:
                title += f" ({JPEG_LABEL})"
            drawn = draw(figures, "heatmaps", g, folder / mode, title, crop_pad)
            figs["heatmaps"][mode] = drawn["figure"]
            notes_here += [drawn["figure_note"]] if drawn.get("figure_note") else []
        if worst:
            title = f"{label}: every whole-pixel shift within {worst_case_grid.x_max} px, {n_worst} images"
            if jpeg:
                title += f" ({JPEG_LABEL})"
            drawn = draw(figures, "heatmaps", worst, folder / "worst_case", title, crop_pad)
            figs["worst_case"] = next((p for p in drawn["figures"] if Path(p).name.endswith("_worst_case.png")), None)
            notes_here += [drawn["figure_note"]] if drawn.get("figure_note") else []
        figs["note"] = "; ".join(notes_here)
        entry["figures"] = figs

        # 5. further analyses: the coverage map, shift equivariance per layer and blind spots
        entry["coverage"] = coverage_section(lm, folder, label, input_size, figures)
        job = equivariance_section(lm, data.images[eq_idx], data.source, folder, label, input_size, dev, should_stop,
                                   figures)
        entry["equivariance"] = yield from relay(job, done, total, f"{head}: shift equivariance per layer", progress)
        if entry["equivariance"] is None:
            interrupted = True
            break
        done += eq_work
        job = blindspots_section(lm, data, bs_idx, folder, label, input_size, dev, grid_precision, should_stop,
                                 figures)
        entry["blindspots"] = yield from relay(job, done, total, f"{head}: blind spots", progress)
        if entry["blindspots"] is None:
            interrupted = True
            break
        done += bs_work
        job = channels_section(lm, data, mean_acts, count, folder, label, input_size, dev, grid_precision, seed,
                               should_stop, figures)
        entry["channels"] = yield from relay(job, done, total, f"{head}: padding-aware channels", progress)
        if entry["channels"] is None:
            interrupted = True
            break
        done += ch_work
        results.append(entry)
        yield emit(0, f"{head}: done")

    if not results:
        return None
    rings, far = ring_distances(grid.dxs, grid.dys)
    compare = "affine" if "affine" in modes else modes[0]
    base = results[_add_differences(results, far, compare)]
    settings = {"data": data.source, "jpeg": jpeg, "device": str(dev), "grid_precision": grid_precision,
                "grid_precision_text": describe_precision(grid_precision, dev),
                "grid": {"x_min": grid.x_min, "x_max": grid.x_max, "y_min": grid.y_min, "y_max": grid.y_max,
                         "step": grid.step},
                "ring_distances": rings, "far": far, "input_size": input_size,
                "baseline": base["label"], "comparison_mode": compare, "interval_method": INTERVAL_METHOD,
                "modes": list(modes), "grid_images": len(grid_idx), "eval_images": n_eval,
                "worst_case_images": n_worst, "worst_case_grid": {"x_min": worst_case_grid.x_min,
                                                                  "x_max": worst_case_grid.x_max,
                                                                  "step": worst_case_grid.step},
                "eval_subset": "all" if eval_idx is None else "class-balanced", "mean_images": len(mean_idx),
                "seed": seed, "interrupted": interrupted, "cache_notes": notes, "seconds": round(time.perf_counter() - t_start, 2),
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "border_bias_definition": BORDER_BIAS_HELP, "filter_asymmetry_definition": FILTER_ASYMMETRY_HELP}
    doc = {"settings": settings, "checkpoints": results}
    out.mkdir(parents=True, exist_ok=True)
    atomic_text(out / "report.json", json.dumps(_clean(doc), indent=1) + "\n")
    md = out / "report.md"
    # imported here, not at the top: report_markdown imports this module
    from padlens.core.report_markdown import render_markdown
    atomic_text(md, render_markdown(doc, out))
    return md


@dataclass(frozen=True)
class FigureWriters:
    """What draws the report's translation and analysis figures, handed in by the caller: core draws no Qt, and
    the command line passes the app's own figures (cli.report.app_writers), so a report's figure is the one the
    window exports. Each writes PNG and SVG files into the folder it is given and returns their paths."""
    heatmaps: Callable       # (GridResult, folder, title, crop_pad)
    bias: Callable           # ({input: {layer name: map}}, {conv name: mean filter}, folder, label, padding mode,
                             #  {input: what it is}, {input: its data source}, input size)
    coverage: Callable       # ({padding mode: [CoverageMap per size]}, folder, label, padding mode)
    equivariance: Callable   # ({label: EquivarianceResult}, folder)
    blindspots: Callable     # ([(label, padding mode, BlindspotResult)], folder, title)
    channels: Callable       # (ChannelScan, input kind, layer path, top, label, padding mode, folder, ablation, device)


def draw(figures: FigureWriters | None, name: str, *args) -> dict:
    """{"figures": paths, "figure": the PNG} from writer `name`; no writers: none drawn. A writer that fails
    leaves "figure_note" (the report says it) and the numbers, which are written first, stand."""
    if figures is None:
        return {"figures": [], "figure": None}
    try:
        paths = list(getattr(figures, name)(*args))
    except Exception as e:  # noqa: BLE001 - the numbers exist; say what failed
        return {"figures": [], "figure": None, "figure_note": f"the {name} figure failed: {type(e).__name__}: {e}"}
    return {"figures": paths, "figure": next((p for p in paths if Path(p).suffix == ".png"), None)}


# ---------------------------------------------------------------------------------------------------
# Further analyses, one function each, called by the job for every model: coverage, shift equivariance, blind spots

EQUIVARIANCE_IMAGES = 10   # few: the cosines vary little between images, and the report stays quick
EQUIVARIANCE_GRID = GridSpec(-8, 8, -8, 8, 4)   # 25 shifts: 0, 4 and 8 px; 8 of them multiples of the period


def coverage_section(loaded, folder: Path, label: str, input_size: int, figures: FigureWriters | None = None) -> dict:
    """The coverage map at input_size and at its 2^n / 2^n + 1 partner (core.coverage.comparison_size): the
    summary and uneven layers per size, coverage.npz/.csv and its figure in folder. Needs no images."""
    from padlens.core.coverage import COVERAGE_HELP, comparison_size, coverage_map, save_coverage
    maps = [coverage_map(loaded.model, s) for s in (input_size, comparison_size(input_size))]
    npz, csv = save_coverage(maps, folder)
    return {"definition": COVERAGE_HELP, "sizes": [{**m.summary, "input_size": m.size, "uneven": m.uneven}
                                                   for m in maps],
            "files": {"npz": npz, "csv": csv},
            **draw(figures, "coverage", {loaded.padding_mode: maps}, folder, label, loaded.padding_mode)}


def equivariance_section(loaded, images: torch.Tensor, data_source: str, folder: Path, label: str, input_size: int,
                         device, should_stop: Callable[[], bool] = never, figures: FigureWriters | None = None):
    """Job: core.equivariance on these images under `roll` shifts of EQUIVARIANCE_GRID (roll: nothing leaves
    the frame, so what differs is the padding and the pooling phase); returns its summary (core.equivariance.
    summarize) with the settings, and writes equivariance.npz/.csv and its figure into folder. Returns None when
    stopped."""
    from padlens.core.equivariance import (EQUIVARIANCE_HELP, equivariance_job, equivariance_title,
                                           save_equivariance, summarize)
    result = yield from equivariance_job(loaded.model, images, loaded.norm, EQUIVARIANCE_GRID, "roll", device,
                                         input_size, info={"data": data_source}, should_stop=should_stop)
    if should_stop():
        return None
    title = equivariance_title(label, result)
    npz, csv = save_equivariance(result, folder)
    g = EQUIVARIANCE_GRID
    return {**summarize(result), "definition": EQUIVARIANCE_HELP, "title": title, "shifts": len(result.shifts),
            "grid": {"x_min": g.x_min, "x_max": g.x_max, "y_min": g.y_min, "y_max": g.y_max, "step": g.step},
            "files": {"npz": npz, "csv": csv}, **draw(figures, "equivariance", {label: result}, folder)}


BLINDSPOT_IMAGES = 10   # one per class: the report runs 260 canvases per model, the command line defaults more
BLINDSPOT_SPEC = BlindspotSpec(16, 4, "blank")   # 25 positions, both edges included


def blindspots_section(loaded, data, idx: torch.Tensor, folder: Path, label: str, input_size: int, device,
                       precision: str, should_stop: Callable[[], bool] = never, figures: FigureWriters | None = None):
    """Job: core.blindspots on the images idx of data (BLINDSPOT_SPEC, the grids' precision); returns its summary
    (core.blindspots.summarize) with the settings, and writes blindspots.npz/.csv and its figure into folder.
    Returns None when stopped."""
    from padlens.core.blindspots import BLINDSPOTS_HELP, blindspot_job, blindspot_title, save_blindspots, summarize
    result = yield from blindspot_job(loaded.model, data.images[idx], data.labels[idx], loaded.norm, BLINDSPOT_SPEC,
                                      device, precision, input_size, data.mean_color, {"data": data.source},
                                      should_stop=should_stop)
    if result.images < len(idx):
        return None
    title = blindspot_title(label, result)
    npz, csv = save_blindspots(result, folder, label)
    return {**summarize(result), "definition": BLINDSPOTS_HELP, "title": title, "patch": BLINDSPOT_SPEC.patch,
            "stride": BLINDSPOT_SPEC.stride, "background": BLINDSPOT_SPEC.background, "input_size": input_size,
            "precision": result.info["precision"], "files": {"npz": npz, "csv": csv},
            **draw(figures, "blindspots", [(label, loaded.padding_mode, result)], folder, title)}


CHANNEL_IMAGES = 500   # accuracy before and after zeroing: 1,000 forward passes per model, no grid
CHANNEL_ABLATE = 4


def channels_section(loaded, data, mean_acts: dict, mean_count: int, folder: Path, label: str, input_size: int,
                     device, precision: str, seed: int = 0, should_stop: Callable[[], bool] = never,
                     figures: FigureWriters | None = None):
    """Job: core.channels on this model. Every layer's channels ranked on the blank input and on the dataset-mean
    responses the report already has (mean_acts, over mean_count images); the top CHANNEL_ABLATE of the last
    convolution on the blank input zeroed: accuracy on CHANNEL_IMAGES class-balanced test images at the grids'
    precision and every layer's border bias on the blank input, before and after (no grid, to keep it cheap).
    Writes channels.npz/.csv, channels_ablation.csv and the figure into folder; returns the numbers, None when
    stopped."""
    from padlens.core.activations import blank_input, capture
    from padlens.core.channels import (BLANK_KIND, BORDER_SCORE, CHANNELS_HELP, ChannelScan, ablation_job,
                                       default_layer, rank_channels, save_channels, summarize)
    yield Progress(0, 2 * CHANNEL_IMAGES + 2, "ranking every layer's channels on the blank input and the dataset mean")
    acts, _ = capture(loaded.model, blank_input(BLANK_KIND["blank"], loaded.norm, input_size), device)
    scan = ChannelScan({"blank": rank_channels(loaded.model, acts), "mean": rank_channels(loaded.model, mean_acts)},
                       {"input_size": input_size, "mean_images": mean_count, "data": data.source, "model": label})
    layer = default_layer(scan)
    top = scan.layer("blank", layer).top(CHANNEL_ABLATE)
    result = yield from ablation_job(loaded, data, layer, top, "blank", CHANNEL_IMAGES, 0, precision=precision,
                                     input_size=input_size, seed=seed, should_stop=should_stop)
    if not result.complete:
        return None
    npz, csv, ablation_csv = save_channels(scan, folder, layer, result)
    inputs = {kind: [{"layer": lc.name, "type": lc.type, "channels": len(lc.score), "responding": lc.responding(),
                      "top": [{"channel": c, "score": float(lc.score[c]), "border": float(lc.border[c]),
                               "centre": float(lc.centre[c])} for c in lc.top(CHANNEL_ABLATE)]}
                     for lc in layers.values()] for kind, layers in scan.inputs.items()}
    return {"definition": CHANNELS_HELP, "threshold": BORDER_SCORE, "mean_images": mean_count, "inputs": inputs,
            "ablation": summarize(result), "files": {"npz": npz, "csv": csv, "ablation_csv": ablation_csv},
            **draw(figures, "channels", scan, "blank", layer, CHANNEL_ABLATE, label, loaded.padding_mode, folder,
                   result, device)}
