"""report.md: the Markdown write-up of what core.report measured (its report.json document).

Separate from the measuring job so that the wording can change without touching the measurements, and
the text can be re-rendered from a stored report.json.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from padlens.core.report import JPEG_LABEL, MAP_INPUTS


def _pct(x, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}%"


def _num(x, digits: int = 3, sign: str = "") -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:{sign}.{digits}f}"


def _pp(x) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:+.1f} pp"


def _ci(p, iv, digits: int = 1) -> str:
    """An accuracy with its 95% interval in brackets: "62.0% [52.1, 71.0]"."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return _pct(p, digits) + ("" if iv is None else f" [{100 * iv[0]:.{digits}f}, {100 * iv[1]:.{digits}f}]")


def _dci(d: dict | None) -> str:
    """A difference of two accuracies with its 95% interval: "+3.0 pp [-5.1, +11.0]"."""
    if d is None:
        return "n/a"
    lo, hi = d["interval"]
    return f"{_pp(d['value'])} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def _folding(results: list[dict], precision: str) -> str:
    """What the grids did with batch norm, from each grid's own record (fp32 never folds, core.inference.folds)."""
    grids = [(r["label"], m, g) for r in results for part in (r, r.get("at_32") or {"grids": {}})
             for m, g in part["grids"].items()]
    states = {g["batch_norm_folded"] for _, _, g in grids}
    if states == {True}:
        return "batch norm folded into the convolutions"
    if states == {False}:
        return "batch norm kept as trained" + (" (exact fp32 never folds it)" if precision == "fp32" else "")
    named = {True: "folded", False: "kept as trained", None: "not recorded"}
    return "batch norm " + "; ".join(f"{named[st]} in " + ", ".join(sorted({f'{lb} `{m}`' for lb, m, g in grids
                                                                              if g["batch_norm_folded"] is st}))
                                     for st in (True, False, None) if st in states)


def _rel(p, out: Path) -> str:
    try:
        return Path(p).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return str(p)


def _figure_link(text: str, path, out: Path, note: str = "") -> str:
    """A link to a figure, or why there is none (the writer failed: its note; else figures were skipped)."""
    if path:
        return f"[{text}]({_rel(path, out)})"
    return f"{text}: not drawn ({note or 'figures skipped: --no-figures'})"


def _figure(text: str, section: dict, out: Path) -> str:
    """An analysis's figure link (draw's 'figure' and 'figure_note' in its section)."""
    return _figure_link(text, section.get("figure"), out, section.get("figure_note", ""))


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
        f"{_folding(results, s['grid_precision'])}; modes: "
        + "; ".join(f"`{m}` = {SHIFT_MODES[m]}" for m in s["modes"]) + ".")
    add("- Uncertainty: every accuracy comes with its number of images and its 95% interval in brackets: "
        "\"62.0% [52.1, 71.0]\" reads 62.0%, 95% interval 52.1% to 71.0%; \"+3.0 pp [-5.1, +11.0]\" is a difference "
        f"in percentage points. {s['interval_method']}")
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
        links = [_figure_link(text, f.get(key), out, f.get("note", "")) for key, text in (
            ("maps_blank_normalized", "blank, zeros after normalization"), ("maps_blank_pixel", "blank, black image"),
            ("maps_dataset_mean", f"dataset mean{jl}"), ("mean_filters", "mean kernels"))]
        add("- Figures (every convolution's and activation's channel-mean map, named by layer, each on its own "
            "range; a flat tile is a constant map): " + ", ".join(links) + ".")
        add("")

    # 2 ------------------------------------------------------------------------------------------------
    add(f"## 2. How accuracy falls with shift{jl}\n")
    rings, far = s["ring_distances"], s["far"]
    add("Accuracy averaged over the ring of grid cells at Chebyshev distance max(|dx|, |dy|) = d "
        "(d = 0 is the unshifted image), with its 95% interval; images: test images per cell. Columns: distances on "
        "the grid up to its largest; every ring is in report.json.\n")
    add("| checkpoint | mode | images | " + " | ".join(f"d = {d}" for d in rings)
        + " | mean over grid | minimum (at dx, dy) | mean consistency |")
    add("|---|---|---|" + "---|" * len(rings) + "---|---|---|")
    for r in results:
        for mode, gr in r["grids"].items():
            prof, iv = gr["accuracy_by_distance"], gr["intervals"]
            add(f"| {r['label']} | {mode} | {gr['images']} | "
                + " | ".join(_ci(prof.get(d), iv["accuracy_by_distance"].get(d)) for d in rings)
                + f" | {_ci(gr['mean_accuracy'], iv['mean_accuracy'])} | {_ci(gr['min_accuracy'], iv['min_accuracy'])} "
                  f"at {tuple(gr['min_at'] or ())} | {_ci(gr['mean_consistency'], iv['mean_consistency'])} |")
    add("")
    for r in results:
        f = r["figures"]
        add(f"- {r['label']}: accuracy, loss and consistency over (dx, dy){jl}, the unshifted cell marked and the "
            "training crop range boxed: " + ", ".join(_figure_link(m, p, out, f.get("note", ""))
                                                    for m, p in f["heatmaps"].items()) + ".")
    add("")

    # 3 ------------------------------------------------------------------------------------------------
    add("## 3. Which evaluation choices distort the picture\n")
    crops = sorted({r["crop_pad"] for r in results if r["crop_pad"] is not None})
    unknown = [r["label"] for r in results if r["crop_pad"] is None]
    crop = (f"{crops[0]} px" if len(crops) == 1 else "its crop padding (table above)" if crops else None)
    add("**Fill of the uncovered border.** `affine` fills it black. "
        + (f"Training saw black borders only up to {crop}: its random crops are cut from the image padded with "
           f"black; a shift beyond that leaves a black area larger than anything in training"
           + (f" (crop padding unknown for {', '.join(unknown)})" if unknown else "") + ". " if crop else
           "The checkpoints do not record their training crop padding, so how much black border training "
           "showed them is unknown. ")
        + "`affine-mean` fills it with the data set's mean color; `roll` wraps content around, so "
        "nothing is lost and only the position changes.\n")
    add("| checkpoint | images | " + " | ".join(f"{m}: mean / at d = {far}" for m in s["modes"]) + " |")
    add("|---|---|" + "---|" * len(s["modes"]))
    for r in results:
        cells = []
        for m in s["modes"]:
            gr = r["grids"].get(m)
            if gr is None:
                cells.append("n/a")
                continue
            iv = gr["intervals"]
            cells.append(f"{_ci(gr['mean_accuracy'], iv['mean_accuracy'])} / "
                         f"{_ci(gr['accuracy_by_distance'].get(far), iv['accuracy_by_distance'].get(far))}")
        add(f"| {r['label']} | {s['grid_images']} | " + " | ".join(cells) + " |")
    add("")
    for r in results:
        if r.get("fill_vs_black"):
            others = ", ".join(f"{m} {_dci(d)}" for m, d in r["fill_vs_black"].items())
            add(f"- {r['label']}: at d = {far}, relative to the black fill ({s['grid_images']} images each): {others}.")
    add("")
    pitfall_rows = [(r["label"], mode, gr["pitfalls"], gr) for r in results for mode, gr in r["grids"].items()]
    add("**Content shifted out of the frame.** A shift by (dx, dy) leaves (32 - |dx|)(32 - |dy|) / 32² of the "
        "image in view (all of it under `roll`); beyond half the image gone, part of the accuracy drop is "
        "missing evidence, not a fragile network. Mean accuracy over the cells where at least / less than half "
        "of the image stays in frame:\n")
    add("| checkpoint | mode | images | >= half in frame | < half in frame | smallest share in frame |")
    add("|---|---|---|---|---|---|")
    for label, mode, b, gr in pitfall_rows:
        iv = gr["intervals"]
        add(f"| {label} | {mode} | {gr['images']} | {_ci(b['visible'], iv['visible'])} | "
            f"{_ci(b['hidden'], iv['hidden'])} | {_pct(b['min_visible'])} |")
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
        sp = gr["phase_spread"]
        head = f"- {r['label']}, `{mode}` shifts, period {period}, {gr['images']} images: "
        if sp is not None:
            (hy, hx), (ly, lx) = sp["highest"], sp["lowest"]
            add(head + f"spread between phases {_dci(sp)}: the highest phase (dy mod, dx mod) = ({hy}, {hx}) minus "
                f"the lowest ({ly}, {lx}); the interval is not widened for having picked that pair.")
        else:
            why = (f"its step, {g['step']} px, is a multiple of the period" if g["step"] % period == 0 else
                   "all its shifts are alike modulo the period")
            add(head + f"spread between phases n/a: the grid visits {gr['phases_visited'] or 'no'} pooling phase"
                f"{'' if gr['phases_visited'] == 1 else 's'} only ({why}), so it cannot show the effect; a grid whose "
                f"step is not a multiple of {period} px measures it.")
        if rows and cols:
            ivs = gr["intervals"]["phase_table"]
            add("")
            add("  | dy mod / dx mod | " + " | ".join(str(j) for j in cols) + " |")
            add("  |---|" + "---|" * len(cols))
            for i in rows:
                add(f"  | {i} | " + " | ".join(_ci(tab[i, j], ivs[i][j]) for j in cols) + " |")
            add("")
    add("")
    add("**Training crop augmentation.** Random crops of a padded image train shifts up to the checkpoint's "
        "crop padding in each direction; accuracy inside that box (|dx|, |dy| <= crop) vs outside it:\n")
    add("| checkpoint | crop (px) | mode | images | inside | outside | drop |")
    add("|---|---|---|---|---|---|---|")
    for label, mode, b, gr in pitfall_rows:
        iv = gr["intervals"]
        add(f"| {label} | {b['crop_pad'] if b['crop_pad'] is not None else 'unknown'} | {mode} | {gr['images']} | "
            f"{_ci(b['inside'], iv['inside'])} ({b['inside_cells']} cells) | "
            f"{_ci(b['outside'], iv['outside'])} ({b['outside_cells']} cells) | {_dci(gr['crop_drop'])} |")
    add("")
    add("**Data and precision.** " + ("The test images are the lossy JPEG copy of CIFAR-10: compression artifacts change accuracy "
                                      "by themselves, so compare checkpoints only on the same copy. " if jpeg else "")
        + f"The grids ran in {s['grid_precision_text']}, {_folding(results, s['grid_precision'])}; the accuracy column of "
        f"section 4 is fp32 on "
        f"{ev}, so the unshifted grid cell (on {s['grid_images']} images) can differ from it by sampling.\n")

    # 4 ------------------------------------------------------------------------------------------------
    add("## 4. What each fix changes\n")
    shift = s["comparison_mode"]   # every checkpoint has a grid per mode
    add(f"| checkpoint | padding | crop (px) | images (accuracy / grid) | accuracy | mean CE | mean consistency "
        f"({shift}) | accuracy at d = {far} ({shift}) | border bias, blank zeros | border bias, black image | "
        "border bias, dataset mean | mean kernel asymmetry |")
    add("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        gr, iv = r["grids"][shift], r["grids"][shift]["intervals"]
        mb = r["mean_border_bias"]
        add(f"| {r['label']} | {r['padding_mode']} | {r['crop_pad']} | {r['eval']['images']} / {gr['images']} | "
            f"{_ci(r['eval']['accuracy'], r['eval']['interval'], 2)} | {_num(r['eval']['loss'])} | "
            f"{_ci(gr['mean_consistency'], iv['mean_consistency'])} | "
            f"{_ci(gr['accuracy_by_distance'].get(far), iv['accuracy_by_distance'].get(far))} | "
            f"{_num(mb['blank_normalized'])} | {_num(mb['blank_pixel'])} | {_num(mb['dataset_mean'])} | "
            f"{_num(r['mean_filter_asymmetry'])} |")
    add("")
    add(f"Accuracy: fp32 on {ev}; 95% intervals in brackets. Border bias: mean over layers.\n")
    base = next(r for r in results if r["label"] == s["baseline"])
    for r in results:
        if r is base:
            continue
        vs = r["vs_baseline"]
        parts = [f"accuracy {_dci(vs['accuracy'])} ({r['eval']['images']} images)",
                 f"mean consistency ({shift}) {_dci(vs['mean_consistency'])}",
                 (f"accuracy at d = {far} ({shift}) {_dci(vs['accuracy_at_far'])} "
                  f"({r['grids'][shift]['images']} images)")]
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
            f"the same grid, {s['grid_images']} test images and seed {s['seed']}{jl}; change = {size}x{size} minus "
            "32x32, accuracies with their 95% intervals. Border bias: "
            "mean over the layers with a map of at least 3x3 at that size. Accuracy, mean cross-entropy and the mean "
            "kernels do not change: the evaluation stays at 32x32 and the weights are the same.\n")
        add(f"| resizing 32 -> {size} | at 32x32 | at {size}x{size} | change |")
        add("|---|---|---|---|")

        def row(name: str, key: str, d: int | None = None) -> None:
            """An accuracy of grid mode m at 32x32, resized, and the change, each with its interval."""
            g32, gn = r32["grids"][m], base["grids"][m]
            ch = r32["changes"][m][key]
            (a32, i32), (an, i_n) = [(g[key], g["intervals"][key]) if d is None else
                                     (g[key].get(d), g["intervals"][key].get(d)) for g in (g32, gn)]
            add(f"| {name} | {_ci(a32, i32)} | {_ci(an, i_n)} | {_dci(ch if d is None else ch.get(d))} |")
        for m in s["modes"]:
            for d in sorted({0, far}):
                row(f"accuracy at d = {d} ({m})", "accuracy_by_distance", d)
            row(f"mean accuracy over the grid ({m})", "mean_accuracy")
            row(f"mean consistency ({m})", "mean_consistency")
        for what, name in (("blank_normalized", "blank zeros"), ("blank_pixel", "black image")):
            at32, resized = r32["mean_border_bias"][what], base["mean_border_bias"][what]
            add(f"| border bias, {name} | {_num(at32)} | {_num(resized)} | {_num(resized - at32, sign='+')} |")
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
    _worst_case_section(add, results, jl, out)
    _coverage_section(add, results, out)
    _equivariance_section(add, results, out, jl)
    _blindspots_section(add, results, out, jl)
    _channels_section(add, results, out, jl)
    add("Numbers: [report.json](report.json). Grids per checkpoint and mode: `<checkpoint>/translation_<mode>.csv` "
        "and `.npz`.")
    return "\n".join(L) + "\n"


def _worst_case_section(add, results: list[dict], jl: str, out: Path) -> None:
    """Worst case over shifts (core.worst_case): first on each checkpoint's step-1 grid, where it is exact, then on
    the report's translation grids, where it is a lower bound beyond their complete radius."""
    add(f"## Worst case over shifts{jl}\n")
    add("Share of the images whose prediction some shift within radius r (max(|dx|, |dy|) <= r, the unshifted image "
        "excluded) changes from the unshifted one, with its 95% interval: each image counts once, whichever shift "
        "flips it, where the grid's consistency averages over shifts. Smallest flip: images per radius of their "
        "smallest flipping shift; never: no shift tried flips them.\n")
    exact = [(r["label"], r["padding_mode"], r["worst_case"]) for r in results if r.get("worst_case")]
    if exact:
        w0 = exact[0][2]
        reach = int(max(np.abs(w0["dx"]).max(), np.abs(w0["dy"]).max()))
        add(f"Every whole-pixel shift within {reach} px ({(2 * reach + 1) ** 2 - 1} shifts, `affine`, "
            f"{w0['images']} class-balanced test images, {w0['precision']}), so each share is exact for these "
            "images:\n")
        _worst_case_table(add, exact, "padding")
        def flipped(g, k: int) -> str:
            w = g[2]
            return f"{w['flipped'][k]} of {w['images']} images, {_ci(w['share'][k], (w['low'][k], w['high'][k]))}"
        for r_at in sorted({1, w0["radii"][-1]}):
            k = w0["radii"].index(r_at)
            if len(exact) == 1:
                add(f"\nWithin r = {r_at} a shift flips {flipped(exact[0], k)}.")
                continue
            top = max(exact, key=lambda g: g[2]["share"][k])
            low = min(exact, key=lambda g: g[2]["share"][k])
            add(f"\nWithin r = {r_at}: most flipped {top[0]} ({flipped(top, k)}), least {low[0]} ({flipped(low, k)}).")
        add("\nFigures (the share per radius and the smallest flips; the step-1 grid's heatmaps beside them): " + ", ".join(
            _figure_link(r["label"], r.get("figures", {}).get("worst_case"), out, r.get("figures", {}).get("note", ""))
            for r in results if r.get("worst_case")) + f"{jl}.")
        add("")
    grids = [(r["label"], mode, gr["worst_case"]) for r in results for mode, gr in r["grids"].items()
             if gr.get("worst_case")]
    if not grids:
        if not exact:
            add("No grid holds the per-image record (grids saved before it was kept); run the report again.\n")
        return
    add("On the report's translation grids (their own shifts only):\n")
    _worst_case_table(add, grids, "mode")
    complete = min(w["complete_radius"] for _, _, w in grids)
    radii = grids[0][2]["radii"]
    if radii and radii[-1] > complete:
        add(f"\nThe grids hold every whole-pixel shift only up to r = {complete}; beyond, only their own cells were "
            "tried, so these shares are lower bounds of the true worst case.")
    if radii:
        top = max(grids, key=lambda g: g[2]["share"][-1] if g[2]["radii"] else -1)
        r_max, w = radii[-1], top[2]
        add(f"\nMost flipped within r = {r_max}: {top[0]} `{top[1]}`, {w['flipped'][-1]} of {w['images']} images "
            f"({_ci(w['share'][-1], (w['low'][-1], w['high'][-1]))}).")
    add("")


def _worst_case_table(add, rows: list[tuple], second: str) -> None:
    """| checkpoint | second | images | r = ... | smallest flip | never |, a row per (label, second, worst case)."""
    radii = rows[0][2]["radii"]
    add(f"| checkpoint | {second} | images | " + " | ".join(f"r = {r}" for r in radii) + " | smallest flip | never |")
    add("|---|---|---|" + "---|" * len(radii) + "---|---|")
    for label, what, w in rows:
        share = dict(zip(w["radii"], zip(w["share"], w["low"], w["high"])))
        h = w["histogram"]
        add(f"| {label} | {what} | {w['images']} | "
            + " | ".join(_ci(share[r][0], share[r][1:]) if r in share else "n/a" for r in radii)
            + " | " + (", ".join(f"{r} px: {k}" for r, k in zip(h["radius"], h["images"])) or "-")
            + f" | {h['never']} |")


def _coverage_section(add, results: list[dict], out: Path) -> None:
    """The coverage map (core.coverage) per checkpoint and input size: paths at a corner, an edge, the centre."""
    rows = [(r, c) for r in results for c in (r.get("coverage") or {}).get("sizes", [])]
    if not rows:
        return
    add("## Coverage (foveation)\n")
    add(rows[0][0]["coverage"]["definition"] + " It depends on the architecture alone (no images). Corner, edge: "
        "means over the four corners and the four edge middles; asymmetry: largest difference between the map and "
        "its mirror image (left-right or top-bottom) over its maximum; 0 for a map as even as its layers.\n")
    add("| checkpoint | padding | input | corner | edge | centre | corner / centre | min / max | asymmetry | "
        "blind pixels | uneven layers |")
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for r, c in rows:
        n = c["input_size"]
        add(f"| {r['label']} | {r['padding_mode']} | {n}x{n} | {c['corner']:.10g} | {c['edge']:.10g} | "
            f"{c['centre']:.10g} | {_num(c['corner_to_centre'], 4)} | {_num(c['min_to_max'], 4)} | "
            f"{_num(c['asymmetry'], 4)} | {c['blind_pixels']} | "
            + ("; ".join(f"`{u}`" for u in c["uneven"]) or "none") + " |")
    add("")
    for r in results:
        if r.get("coverage"):
            sizes = r["coverage"]["sizes"]
            flat = [f"{c['input_size']}x{c['input_size']}" for c in sizes if c["constant"]]
            add(f"- {r['label']}: {_figure('coverage maps', r['coverage'], out)} at "
                + " and ".join(f"{c['input_size']}x{c['input_size']}" for c in sizes)
                + (f"; every pixel equally covered at {', '.join(flat)}" if flat else "")
                + f"; per pixel in `{_rel(r['coverage']['files']['csv'], out)}`.")
    add("")


def _equivariance_section(add, results: list[dict], out: Path, jl: str) -> None:
    """Shift equivariance per layer (core.equivariance): each layer's mean cosine at the period shifts, per
    checkpoint, the largest drop and the output's invariance with and without the pooling phase kept."""
    eqs = [(r, r["equivariance"]) for r in results if r.get("equivariance")]
    if not eqs:
        return
    e0 = eqs[0][1]
    g = e0["grid"]
    add(f"## Shift equivariance per layer{jl}\n")
    add(e0["definition"] + f" Here: `{e0['mode']}` shifts, dx and dy from {g['x_min']} to {g['x_max']} in steps of "
        f"{g['step']} ({e0['shifts']} shifts), {e0['images']} class-balanced test images per checkpoint. Period "
        f"shifts: the {len(e0['period_shifts'])} non-zero shifts that are multiples of every layer's stride, on which all "
        "layers compare; the other shifts change some layer's pooling phase.\n")
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    add("| checkpoint | padding | images | lowest layer (period shifts) | largest drop | output, period shifts | "
        "output, other shifts |")
    add("|---|---|---|---|---|---|---|")
    for r, e in eqs:
        spatial = [x for x in e["layers"][:-1] if x["stride"] is not None and x["at_period"] is not None]
        low = min(spatial, key=lambda x: x["at_period"]) if spatial else None
        d = e["largest_drop"]
        add(f"| {r['label']} | {r['padding_mode']} | {e['images']} | "
            + (f"`{low['layer']}` {low['type']} {fmt(low['at_period'])}" if low else "n/a") + " | "
            + (f"`{d['layer']}` {d['type']}: {fmt(d['before'])} -> {fmt(d['after'])}" if d else "none")
            + f" | {fmt(e['output_period'])} | {fmt(e['output_other'])} |")
    add("")
    names = list(dict.fromkeys(x["layer"] for _, e in eqs for x in e["layers"]))
    by = [{x["layer"]: x for x in e["layers"]} for _, e in eqs]
    add("Mean cosine per layer at the period shifts:\n")
    add("| layer | " + " | ".join(r["label"] for r, _ in eqs) + " |")
    add("|---|" + "---|" * len(eqs))
    for name in names:
        cells = [fmt(b[name]["at_period"]) if name in b else "n/a" for b in by]
        kind = next(b[name]["type"] for b in by if name in b)
        add(f"| `{name}` {kind} | " + " | ".join(cells) + " |")
    add("")
    for r, e in eqs:
        add(f"- {r['label']}: {_figure('layer x shift heatmap', e, out)}{jl}; the table in "
            f"`{_rel(e['files']['csv'], out)}`.")
    add("")


def _blindspots_section(add, results: list[dict], out: Path, jl: str) -> None:
    """Blind spots (core.blindspots): per checkpoint the accuracy of the scaled-down images at full size, over
    all positions, centred, touching the canvas edge or not, and at the worst and best position."""
    bss = [(r, r["blindspots"]) for r in results if r.get("blindspots")]
    if not bss:
        return
    b0 = bss[0][1]
    add(f"## Blind spots{jl}\n")
    add(b0["definition"] + f" Here: a {b0['patch']}x{b0['patch']} patch every {b0['stride']} px on a "
        f"{b0['background']} canvas ({b0['positions']} positions, both edges included), {b0['images']} class-balanced "
        f"test images per checkpoint, {b0['precision']}. Positions are the patch's top-left corner (x, y); "
        "accuracies carry their 95% Wilson interval (for the means over positions, counting images, not positions "
        "x images).\n")
    add("| checkpoint | padding | images | full size | mean over positions | centred | touching the edge | "
        "the others | worst position | best position |")
    add("|---|---|---|---|---|---|---|---|---|---|")

    def cell(c: dict) -> str:
        return f"({c['x']}, {c['y']}) {_ci(c['accuracy'], (c['low'], c['high']))}"
    for r, b in bss:
        add(f"| {r['label']} | {r['padding_mode']} | {b['images']} | {_ci(b['full_accuracy'], b['full_interval'])} | "
            f"{_ci(b['mean_accuracy'], b['mean_interval'])} | {cell(b['centre'])} | {_pct(b['edge_accuracy'])} | "
            f"{_pct(b['inner_accuracy'])} | {cell(b['worst'])} | {cell(b['best'])} |")
    add("")
    for r, b in bss:
        spread = b["best"]["accuracy"] - b["worst"]["accuracy"]
        add(f"- {r['label']}: scaled to {b['patch']}x{b['patch']}, {b['images']} images are "
            f"{_pct(b['mean_accuracy'])} right on average over the positions (full size {_pct(b['full_accuracy'])}); "
            f"the position changes it by up to {100 * spread:.1f} points, from {cell(b['worst'])} to "
            f"{cell(b['best'])}; mean true-class probability {_num(b['mean_probability'])}, "
            f"{_num(b['edge_probability'])} where the patch touches the edge and "
            f"{_num(b['inner_probability'])} elsewhere. {_figure('Maps', b, out)}{jl}; per position in "
            f"`{_rel(b['files']['csv'], out)}`.")
    add("")


def _channels_section(add, results: list[dict], out: Path, jl: str) -> None:
    """Padding-aware channels (core.channels): per checkpoint how many channels respond at the border on the blank
    input and on the dataset mean, the last convolution's top channels, and what zeroing them changed."""
    chs = [(r, r["channels"]) for r in results if r.get("channels")]
    if not chs:
        return
    c0, a0 = chs[0][1], chs[0][1]["ablation"]
    add(f"## Padding-aware channels{jl}\n")
    add(c0["definition"] + f" Here: the blank input and the dataset mean over {c0['mean_images']} test images; the top "
        f"{len(a0['channels'])} channels of the last convolution on the blank input zeroed, accuracy on {a0['images']} "
        f"class-balanced test images ({a0['precision']}, the same images before and after, so the predictions that "
        "changed are counted too; no translation grid here, `padlens channels` draws one). Responding: channels scoring "
        "at least "
        f"{c0['threshold']}, over every ranked layer (maps of at least 3x3).\n")
    add("| checkpoint | padding | responding, blank | responding, dataset mean | top channels of the last conv "
        "(score) | accuracy before | after | difference | predictions changed | its border bias, blank |")
    add("|---|---|---|---|---|---|---|---|---|---|")

    def responding(layers: list[dict]) -> str:
        k, n = sum(x["responding"] for x in layers), sum(x["channels"] for x in layers)
        some = sum(x["responding"] > 0 for x in layers)
        return f"{k:,} of {n:,} channels, in {some} of {len(layers)} layers"
    for r, c in chs:
        a = c["ablation"]
        last = next(x for x in c["inputs"]["blank"] if x["layer"] == a["layer"])
        bias = a["bias_at_layer"]
        add(f"| {r['label']} | {r['padding_mode']} | {responding(c['inputs']['blank'])} | "
            f"{responding(c['inputs']['mean'])} | `{a['layer']}` "
            + ", ".join(f"{t['channel']} ({t['score']:+.2f})" for t in last["top"])
            + f" | {_ci(a['accuracy_before'], a['interval_before'])} | "
            f"{_ci(a['accuracy_after'], a['interval_after'])} | {_dci(a['difference'])} | "
            f"{a['changed']} of {a['images']} | "
            + (f"{bias[0]:.3f} -> {bias[1]:.3f}" if bias else "n/a") + " |")
    add("")
    for r, c in chs:
        a = c["ablation"]
        last = next(x for x in c["inputs"]["blank"] if x["layer"] == a["layer"])
        add(f"- {r['label']}: zeroing channels {a['channels']} of `{a['layer']}` {a['type']} changed {a['changed']} of "
            f"{a['images']} predictions and the accuracy by {_dci(a['difference'])}; their border and centre means on "
            "the blank input: " + ", ".join(f"{t['channel']}: {t['border']:.3g} / {t['centre']:.3g}"
                                            for t in last["top"])
            + f". {_figure('Top channels and mean filters', c, out)}{jl}; every layer's ranking in "
            f"`{_rel(c['files']['csv'], out)}`, the ablation in `{_rel(c['files']['ablation_csv'], out)}`.")
    add("")
