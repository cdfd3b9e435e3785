"""The `padlens` command, the application's top layer: no subcommand opens the app (gui); subcommands run
the core without a window."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from padlens.cli.models import add_model_args, model_from_args

# Nothing heavier than the standard library at import: torch and the core load inside main(), whose Ctrl-C
# handling then covers them (a Ctrl-C while torch imports was a bare KeyboardInterrupt traceback).


def cmd_train(a) -> int:
    from padlens.cli.terminal import fmt_time, progress_line
    from padlens.core.data import load_split
    from padlens.core.device import describe_precision, pick_device
    from padlens.core.files import atomic_write, writable_folder
    from padlens.core.model import ModelConfig
    from padlens.core.train import Recipe, train, training_precision
    if not 0 <= a.cutout <= 32:
        raise ValueError(f"--cutout {a.cutout}: the square must fit a 32x32 image (0 to 32; 0 = off)")
    writable_folder(a.run, "--run")   # before hours of training
    if a.out:
        if Path(a.out).is_dir():
            raise ValueError(f"--out {a.out} is a folder; give the checkpoint file to copy to, e.g. {Path(a.out) / 'model.pt'}")
        writable_folder(Path(a.out).expanduser().parent, f"--out {a.out}: its folder")
    device = pick_device(a.device)
    config = ModelConfig(widths=tuple(a.widths), padding_mode=a.padding, activation=a.activation)
    recipe = Recipe(epochs=a.epochs, batch_size=a.batch_size, crop_pad=a.crop_pad, cutout=a.cutout, seed=a.seed,
                    lr=a.lr, warmup=a.warmup, final_lr=a.final_lr, init=a.init or "",
                    teachers=tuple(a.teachers or ()), distill=a.distill,
                    precision=a.precision)
    precision = describe_precision(training_precision(a.precision, device), device)
    train_set, test_set = load_split(a.data, "train"), load_split(a.data, "test")
    print(f"training on {train_set.source}, {len(train_set)} images, device {device}, {precision}; "
          f"run folder {a.run}", flush=True)
    for ev in train(train_set, test_set, a.run, config, recipe, device):
        if ev.kind == "teachers":
            progress_line(ev.step / ev.total_steps, "teachers' predictions for the training images")
        elif ev.kind == "step":
            progress_line(ev.step / ev.total_steps, f"epoch {ev.epoch}/{recipe.epochs} loss {ev.loss:.3f} "
                          f"train acc {100 * ev.train_accuracy:.1f}% left {fmt_time(ev.eta)}")
        else:
            sys.stderr.write("\n")
            print(f"epoch {ev.epoch}/{recipe.epochs} loss {ev.loss:.4f} train_acc {ev.train_accuracy:.4f} "
                  f"test_acc {ev.test_accuracy:.4f} test_loss {ev.test_loss:.4f} elapsed {fmt_time(ev.elapsed)}",
                  flush=True)
    out = Path(a.run) / "model.pt"
    print(f"saved {out}")
    if a.out:
        import shutil
        atomic_write(a.out, lambda tmp: shutil.copyfile(out, tmp))
        print(f"copied to {a.out}")
    return 0


def cmd_eval(a) -> int:
    from padlens.core.data import load_split, stratified_subset
    from padlens.core.device import pick_device, resolve_precision
    from padlens.core.evaluate import evaluate
    from padlens.core.inference import fast_model
    if a.limit < 0:
        raise ValueError(f"--limit {a.limit}: give a number of images, or 0 for all of them")
    device = pick_device(a.device)
    loaded = model_from_args(a, device)
    data = load_split(a.data, a.split)
    images, labels = data.images, data.labels
    if a.limit:   # not the first N: an ImageFolder split is sorted by class, so those would be all airplanes
        idx = stratified_subset(labels, a.limit, a.seed)
        images, labels = images[idx], labels[idx]
    precision = resolve_precision(a.precision, device)
    t = time.perf_counter()
    r = evaluate(fast_model(loaded.model, device, precision), images, labels, loaded.norm, device, precision)
    result = {"model": loaded.name, "checkpoint": loaded.meta["path"], "data": data.source, "images": r.count,
              **({"subset": "class-balanced", "seed": a.seed} if a.limit else {"subset": "all"}),
              "accuracy": round(r.accuracy, 6), "loss": round(r.loss, 6), "precision": precision,
              "seconds": round(time.perf_counter() - t, 2)}
    print(json.dumps(result) if a.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


def grid_from_args(a):
    """The GridSpec of --range, --y-range and --step, refused with the fix when the range is reversed."""
    from padlens.core.translation import GridSpec
    for option, lo_hi in (("--range", a.range), ("--y-range", a.y_range)):
        if lo_hi and lo_hi[0] > lo_hi[1]:
            raise ValueError(f"{option} {lo_hi[0]} {lo_hi[1]}: the lowest shift comes first, e.g. {option} "
                             f"{lo_hi[1]} {lo_hi[0]}")
    if a.step < 1:
        raise ValueError(f"--step {a.step}: the grid step is at least 1 pixel")
    y_range = a.y_range or a.range
    return GridSpec(a.range[0], a.range[1], y_range[0], y_range[1], a.step)


def cmd_translate(a) -> int:
    from padlens.cli.terminal import CtrlC, fmt_time, progress_line
    from padlens.core.data import load_split
    from padlens.core.device import pick_device
    from padlens.core.files import writable_folder
    from padlens.core.grid_cache import GridRequest
    from padlens.core.jobs import run_job
    from padlens.core.spatial_bias import check_input_size
    spec = grid_from_args(a)
    if a.images < 0:
        raise ValueError("--images must be 0 (all) or a positive number")
    if a.until_ci is not None and not 0 < a.until_ci < 50:
        raise ValueError(f"--until-ci {a.until_ci}: give the half-width in accuracy points, above 0 and below 50 "
                         "(e.g. --until-ci 2 stops once every cell is within +-2 points)")
    out = writable_folder(a.out)   # before any work: a bad --out must not cost the grid
    loaded = model_from_args(a, pick_device(a.device))
    check_input_size(loaded.model, a.input_size)   # before the data loads: the error names a size that works
    data = load_split(a.data, "test")
    req = GridRequest(loaded, data, spec, a.mode, a.images, a.seed, a.precision, a.input_size,
                      fold=not a.no_fuse, compile=a.compile,
                      target_halfwidth=a.until_ci / 100 if a.until_ci else None)
    print(f"{loaded.name} on {data.source}: {req.images} images x {len(spec.dxs) * len(spec.dys)} shifts ({a.mode}), "
          f"device {req.device}, {req.precision_text}{', batch norm folded' if req.folded else ''}"
          f"{'; compiling at the first batch (about 12 s on a 2-core CPU)' if a.compile else ''}", flush=True)
    result = None if a.no_cache else req.cached()
    for note in req.notes:
        print(f"note: {note}", file=sys.stderr)
    if result is not None:
        print(f"from the cache ({req.path}); --no-cache computes it again", flush=True)
        return report_grid(result, out, None)
    t = time.perf_counter()

    def on_progress(ev) -> None:
        elapsed = time.perf_counter() - t
        eta = elapsed * (ev.total - ev.done) / ev.done if ev.done else 0
        progress_line(ev.done / max(ev.total, 1), f"{ev.message} left {fmt_time(eta)}")

    with CtrlC("the current batch, then save the cells computed so far") as stop:
        result = run_job(req.job(stop), on_progress=on_progress)
        sys.stderr.write("\n")
        if not stop.pressed:
            return report_grid(result, out, time.perf_counter() - t)
        if not result.count.any():
            print("padlens: interrupted before any shift was computed; nothing to save", file=sys.stderr)
            return 130
        per_cell = mark_partial(result, req)
        print(f"padlens: interrupted; saving the cells computed so far ({per_cell}), marked partial",
              file=sys.stderr)
        report_grid(result, out, time.perf_counter() - t, "translation_partial")
        return 130


def mark_partial(result, req) -> str:
    """Mark a stopped grid partial in its info and its figures' title, with the true image counts per cell
    (cells differ: the grid stops within a chunk); returns the counts in words."""
    from padlens.core.grid_cache import grid_title
    lo, hi = int(result.count.min()), int(result.count.max())
    counts = f"{lo} of {req.images}" if lo == hi else f"{lo}-{hi} of {req.images}"
    result.info.update(interrupted=True, partial=f"interrupted: {counts} images per cell",
                       title=grid_title(req.loaded.name, req.mode, f"partial (interrupted), {counts}",
                                        req.data.source, req.input_size, req.precision_text))
    return f"{counts} images per cell"


def report_grid(result, out: Path, seconds: float | None, stem: str = "translation") -> int:
    """Print the grid's summary, then write its numbers and figures into out as stem.npz, stem.csv, ..."""
    import numpy as np

    from padlens.cli.terminal import fmt_time
    from padlens.core.worst_case import format_worst_case, worst_case
    if seconds is not None:
        result.info["seconds"] = round(seconds, 2)
    acc = result.accuracy
    lines = []
    try:
        r0, c0 = result.cell(0, 0)
        lines.append(f"accuracy at (0, 0): {100 * acc[r0, c0]:.2f}%" if result.count[r0, c0] else
                     "accuracy at (0, 0): not computed yet")
    except KeyError:
        lines.append("accuracy at (0, 0): not on this grid")
    done = result.count > 0
    worst = np.unravel_index(np.nanargmin(acc), acc.shape)   # NaN only in cells without images
    lo, hi = int(result.count.min()), int(result.count.max())
    lines += [f"mean accuracy over {int(done.sum())} of {acc.size} shifts: {100 * np.nanmean(acc):.2f}%"
              if not done.all() else f"mean accuracy over {acc.size} shifts: {100 * np.nanmean(acc):.2f}%",
              f"min accuracy: {100 * acc[worst]:.2f}% at (dx, dy) = ({result.dxs[worst[1]]}, {result.dys[worst[0]]})",
              (f"images per cell: {lo if lo == hi else f'{lo}-{hi}'}"
               + (f" ({result.info['partial']})" if "partial" in result.info else "")
               + f" (widest 95% interval ±{100 * np.nanmax(result.accuracy_halfwidth):.1f} points)")]
    lines += [result.info[k] for k in ("precision_reached", "precision_not_reached") if k in result.info]
    lines += format_worst_case(worst_case(result))
    if seconds is not None:
        lines += [f"time: {fmt_time(seconds)} ({result.count.sum() / max(seconds, 1e-9):.0f} cells x images/s; "
                  "shifts that leave only fill or repeat another shift's input ran once); "
                  f"{result.info.get('cache', '')}"]
    lines.append(f"writing {out / f'{stem}.npz'}, {out / f'{stem}.csv'}, {out / f'{stem}_worst_case.csv'} and the "
                 "figures")
    print("\n".join(lines), flush=True)
    return save_grid(result, out, stem)


def save_grid(result, out: Path, stem: str = "translation") -> int:
    """The numbers (NPZ, CSV, the worst case's CSV), then the heatmap and worst-case figures where Qt is
    installed; returns the exit status.
    Numbers that cannot be written into out (a full disk, a folder gone meanwhile) are kept elsewhere
    (keep_unsaved) and the message names the file."""
    from padlens.core.worst_case import worst_case, write_worst_case_csv
    w = worst_case(result)
    try:
        result.save_npz(out / f"{stem}.npz")
        result.write_csv(out / f"{stem}.csv")
        if w is not None:
            write_worst_case_csv(w, out / f"{stem}_worst_case.csv")
    except OSError as e:
        print(f"padlens: error: writing into {out} failed ({e}); {keep_unsaved(result, stem)}", file=sys.stderr)
        return 1
    return app_figures("figures", "save_heatmap_figures", result, out, name=f"{stem}_heatmaps")


def app_figures(module: str, function: str, *args, **kwargs) -> int:
    """Write figures with the app's own figure code (padlens.gui.MODULE.FUNCTION, drawn offscreen), after the
    numbers are saved: so a command's figure is the one the window exports (300 dpi PNG and SVG, axes, labelled
    colour bars, caption). Without Qt, a note (the numbers stand alone); a failure is an error, the numbers kept."""
    try:   # the figures need Qt (gui); the numbers do not
        draw = getattr(importlib.import_module(f"padlens.gui.{module}"), function)
    except ImportError as e:
        print(f"note: no figures ({e}); the numbers are in the files above")
        return 0
    try:
        written = draw(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the numbers are saved; say what went wrong with the pictures
        print(f"padlens: the figures failed ({type(e).__name__}: {e}); the numbers are saved", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_bias(a) -> int:
    """Per-layer border bias for both blank inputs (and the dataset mean), mean-filter asymmetry and
    the padding arithmetic at the chosen input size."""
    import math

    from padlens.cli.terminal import progress_line
    from padlens.core.activations import blank_input, capture, mean_activations
    from padlens.core.data import load_split, stratified_subset
    from padlens.core.device import pick_device
    from padlens.core.files import writable_folder
    from padlens.core.jobs import run_job
    from padlens.core.layers import path_name
    from padlens.core.spatial_bias import BORDER_BIAS_HELP, bias_table, check_input_size, mean_filters
    if a.mean_images < 0:
        raise ValueError(f"--mean-images {a.mean_images}: give a number of test images, or 0 for none")
    out = writable_folder(a.out) if a.out else None   # before any work
    device = pick_device(a.device)
    loaded = model_from_args(a, device)
    model, norm = loaded.model, loaded.norm
    check_input_size(model, a.input_size)
    acts = {k: capture(model, blank_input(k, norm, a.input_size), device)[0] for k in ("normalized", "pixel")}
    what = {"normalized": "blank input, all zeros after normalization", "pixel": "blank input, a black image"}
    if a.mean_images:
        data = load_split(a.data, "test")
        subset = data.images[stratified_subset(data.labels, a.mean_images)]   # ImageFolder splits are class-sorted
        mean_acts, n = run_job(mean_activations(model, subset, norm, device, size=a.input_size),
                               on_progress=lambda ev: progress_line(ev.done / ev.total, ev.message))
        sys.stderr.write("\n")
        acts[f"mean of {n}"] = mean_acts
        what[f"mean of {n}"] = f"dataset mean over {n} test images"
    table = bias_table(model, acts, a.input_size)
    fmt = lambda v: "n/a" if v is None or math.isnan(v) else f"{v:.3f}"  # noqa: E731
    heads = ["layer", "type", *[f"bias {k}" for k in acts], "filter asym", "padding arithmetic"]
    rows = [[x["name"], x["type"], *[fmt(x[k]) for k in acts],
             fmt(x["filter_asymmetry"]) if x["filter_asymmetry"] is not None else "", x["padding_arithmetic"]]
            for x in table]
    widths = [max(len(r[i]) for r in rows + [heads]) for i in range(len(heads) - 1)]
    for r in [heads] + rows:
        print("  ".join(f"{c:<{w}}" for c, w in zip(r, widths)) + "  " + r[-1])
    print(f"\n{BORDER_BIAS_HELP}")
    if a.mean_images:
        print(f"Dataset mean measured on {data.source}.")
    if out:
        leaf_acts = {k: {x["path"]: v[x["path"]] for x in table if x["path"] in v} for k, v in acts.items()}
        try:
            written, maps = write_bias_files(out, heads, rows, leaf_acts)
        except OSError as e:
            print(f"padlens: error: writing into {out} failed ({e}); the table above is the result, and the "
                  "same command with a writable --out writes the files", file=sys.stderr)
            return 1
        for path in written:
            print(f"wrote {path}")
        key = lambda k: k.replace(" ", "_")  # noqa: E731 - the file name's part
        filters = {path_name(p): k for p, k in mean_filters(model).items()}
        return app_figures("bias_tab", "write_bias_figures", {key(k): v for k, v in maps.items()}, filters, out,
                           loaded.name, loaded.padding_mode, {key(k): what[k] for k in maps},
                           {key(k): data.source for k in maps if k.startswith("mean of")}, a.input_size)
    return 0


def keep_unsaved(result, stem: str) -> str:
    """Keep a grid that could not be written into --out: in the cache folder's unsaved/, else the temp folder.
    Returns where, in words, for the error message."""
    import tempfile

    from padlens.core.data import cache_dir
    name = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.npz"
    cached = (" The complete grid is also in the cache: the same command with a writable --out writes its files "
              "without computing." if str(result.info.get("cache", "")).startswith("cached as") else "")
    failed = []
    for folder in (cache_dir() / "unsaved", Path(tempfile.gettempdir())):
        try:
            result.save_npz(folder / name)
        except OSError as e:
            failed.append(str(e))
            continue
        return f"the grid is kept in {folder / name} (GridResult.load_npz reads it).{cached}"
    return f"it could not be kept elsewhere either ({'; '.join(failed)}).{cached}"


def write_bias_files(out: Path, heads, rows, acts: dict) -> tuple[list[Path], dict]:
    """bias.csv (the table) and maps.npz (every layer's channel-mean map per input); returns the paths and the
    maps ({input: {layer name: map}}) for the figures. acts: {input: {layer path: activation}} of the layers
    to show."""
    import numpy as np

    from padlens.core.files import atomic_csv, atomic_write
    from padlens.core.layers import path_name
    from padlens.core.spatial_bias import mean_map
    written = [atomic_csv(out / "bias.csv", [heads, *rows])]
    maps = {k: {path_name(p): mean_map(t) for p, t in v.items() if t.dim() == 3} for k, v in acts.items()}
    arrays = {f"{k}/{p}": m.numpy() for k, v in maps.items() for p, m in v.items()}
    written.append(atomic_write(out / "maps.npz", lambda tmp: np.savez_compressed(tmp, **arrays)))
    return written, maps


def cmd_coverage(a) -> int:
    """Paths per input pixel (the foveation map) at --input-size and at its 2^n / 2^n + 1 partner, for the model's
    own padding and each of --modes (the same architecture padded otherwise: the weights play no part)."""
    from padlens.core.coverage import COVERAGE_HELP, comparison_size, padding_coverage_job, save_coverage
    from padlens.core.device import pick_device
    from padlens.core.files import writable_folder
    from padlens.core.jobs import run_job
    from padlens.core.padding import PADDING_MODES
    if a.compare_size is not None and a.compare_size < 0:
        raise ValueError(f"--compare-size {a.compare_size}: give an input size, or 0 for no comparison")
    wanted = list(PADDING_MODES) if a.modes == "all" else [m.strip() for m in (a.modes or "").split(",") if m.strip()]
    unknown = [m for m in wanted if m not in PADDING_MODES]
    if unknown:
        raise ValueError(f"--modes {a.modes}: unknown padding mode {', '.join(unknown)}; give 'all' or some of "
                         f"{','.join(PADDING_MODES)}")
    out = writable_folder(a.out) if a.out else None   # before any work
    device = pick_device(a.device)
    loaded = model_from_args(a, device)
    other = comparison_size(a.input_size) if a.compare_size is None else a.compare_size
    sizes = [a.input_size] + ([other] if other and other != a.input_size else [])
    own = loaded.padding_mode
    modes = [own] + [m for m in wanted if m != own]
    maps = run_job(padding_coverage_job(loaded.model, modes, sizes, device=device))
    print(f"{loaded.name} ({own} padding): paths from each input pixel to the output"
          + (f"; the same architecture padded {', '.join(modes[1:])} beside it" if len(modes) > 1 else ""))
    heads = ["padding", "input", "corner", "edge", "centre", "min", "max", "corner/centre", "asymmetry",
             "blind pixels"]
    rows = [[mode, f"{m.size}x{m.size}", *[f"{s[k]:.10g}" for k in ("corner", "edge", "centre", "min", "max")],
             f"{s['corner_to_centre']:.4f}", f"{s['asymmetry']:.4f}", str(s["blind_pixels"])]
            for mode in modes for m, s in ((m, m.summary) for m in maps[mode])]
    widths = [max(len(r[i]) for r in rows + [heads]) for i in range(len(heads))]
    for r in [heads] + rows:
        print("  ".join(f"{c:<{w}}" for c, w in zip(r, widths)))
    for m in maps[own]:
        print(f"uneven at {m.size}x{m.size}: " + ("; ".join(m.uneven) if m.uneven else "none"))
    print(f"\n{COVERAGE_HELP}")
    if out:
        for mode in modes:
            for path in save_coverage(maps[mode], out, "coverage" if mode == own else f"coverage_{mode}"):
                print(f"wrote {path}")
        return app_figures("coverage_panel", "write_coverage_figures", maps, out, loaded.name, own)
    return 0


def cmd_equivariance(a) -> int:
    """Per layer and shift, the cosine between the shifted image's features and the shifted features."""
    from padlens.cli.terminal import CtrlC, fmt_time, progress_line
    from padlens.core.data import load_split, stratified_subset
    from padlens.core.device import pick_device
    from padlens.core.equivariance import (EQUIVARIANCE_HELP, equivariance_job, equivariance_title,
                                           save_equivariance, summarize)
    from padlens.core.files import writable_folder
    from padlens.core.jobs import run_job
    from padlens.core.spatial_bias import check_input_size
    spec = grid_from_args(a)
    if a.images < 1:
        raise ValueError(f"--images {a.images}: give a number of test images, at least 1")
    out = writable_folder(a.out) if a.out else None   # before any work
    device = pick_device(a.device)
    loaded = model_from_args(a, device)
    check_input_size(loaded.model, a.input_size)
    data = load_split(a.data, "test")
    images = data.images[stratified_subset(data.labels, a.images, a.seed)]
    shifts = len(spec.dxs) * len(spec.dys)
    print(f"{loaded.name} on {data.source}: {len(images)} images x {shifts} shifts ({a.mode}), device {device}, fp32",
          flush=True)
    t = time.perf_counter()

    def on_progress(ev) -> None:
        elapsed = time.perf_counter() - t
        progress_line(ev.done / max(ev.total, 1),
                      f"{ev.message} left {fmt_time(elapsed * (ev.total - ev.done) / ev.done if ev.done else 0)}")

    with CtrlC("the current batch, then report the images finished") as stop:
        result = run_job(equivariance_job(loaded.model, images, loaded.norm, spec, a.mode, device, a.input_size,
                                          fill_color=data.mean_color, info={"data": data.source, "seed": a.seed},
                                          should_stop=stop), on_progress=on_progress)
    sys.stderr.write("\n")
    if not result.counts.any():
        print("padlens: interrupted before any image was compared; nothing to report", file=sys.stderr)
        return 130
    summary = summarize(result)
    title = equivariance_title(loaded.name, result)
    print(title + (" (interrupted: partial)" if stop.pressed else ""))
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    heads = ["layer", "type", "map", "aligned shifts", "mean", "min (at dx, dy)", "at period shifts"]
    rows = [[r["layer"], r["type"], "x".join(map(str, r["size"])), str(r["aligned"]), fmt(r["mean"]),
             f"{fmt(r['min'])} at {tuple(r['min_at'])}" if r["min_at"] else "n/a", fmt(r["at_period"])]
            for r in summary["layers"]]
    widths = [max(len(r[i]) for r in rows + [heads]) for i in range(len(heads))]
    for r in [heads] + rows:
        print("  ".join(f"{c:<{w}}" for c, w in zip(r, widths)))
    drop = summary["largest_drop"]
    print(f"period shifts (aligned at every layer): {len(summary['period_shifts'])}; output at them "
          f"{fmt(summary['output_period'])}, at the other shifts {fmt(summary['output_other'])}"
          + (f"; largest drop at {drop['layer']} {drop['type']}: {drop['before']:.4f} -> {drop['after']:.4f}"
             if drop else ""))
    print(f"time: {fmt_time(time.perf_counter() - t)}\n{EQUIVARIANCE_HELP}")
    if out:
        for path in save_equivariance(result, out):
            print(f"wrote {path}")
        rc = app_figures("equivariance_panel", "write_equivariance_figures", {loaded.name: result}, out)
        return 130 if stop.pressed else rc
    return 130 if stop.pressed else 0


def cmd_blindspots(a) -> int:
    """A test image scaled down to a patch at every position of the canvas: true-class probability and accuracy
    per position of the patch's top-left corner."""
    from padlens.cli.terminal import CtrlC, fmt_time, progress_line
    from padlens.core.blindspots import (BLINDSPOTS_HELP, BlindspotSpec, blindspot_job, blindspot_title,
                                         save_blindspots, summarize)
    from padlens.core.data import load_split, stratified_subset
    from padlens.core.device import describe_precision, pick_device, resolve_precision
    from padlens.core.files import writable_folder
    from padlens.core.jobs import run_job
    from padlens.core.spatial_bias import check_input_size
    if a.images < 1:
        raise ValueError(f"--images {a.images}: give a number of test images, at least 1")
    spec = BlindspotSpec(a.patch_size, a.stride, a.background)
    offsets = spec.offsets(32)   # refuses a bad patch size, stride or background before any work
    out = writable_folder(a.out) if a.out else None
    device = pick_device(a.device)
    precision = resolve_precision(a.precision, device)
    loaded = model_from_args(a, device)
    check_input_size(loaded.model, a.input_size)
    data = load_split(a.data, "test")
    idx = stratified_subset(data.labels, a.images, a.seed)
    print(f"{loaded.name} on {data.source}: {len(idx)} images x {len(offsets) ** 2} positions of a {spec.patch}x"
          f"{spec.patch} patch ({spec.background} background), device {device}, "
          f"{describe_precision(precision, device)}", flush=True)
    t = time.perf_counter()

    def on_progress(ev) -> None:
        elapsed = time.perf_counter() - t
        progress_line(ev.done / max(ev.total, 1),
                      f"{ev.message} left {fmt_time(elapsed * (ev.total - ev.done) / ev.done if ev.done else 0)}")

    with CtrlC("the current image, then report the images finished") as stop:
        result = run_job(blindspot_job(loaded.model, data.images[idx], data.labels[idx], loaded.norm, spec, device,
                                       precision, a.input_size, data.mean_color,
                                       {"data": data.source, "seed": a.seed}, should_stop=stop),
                         on_progress=on_progress)
    sys.stderr.write("\n")
    if not result.images:
        print("padlens: interrupted before the first image was finished; nothing to report", file=sys.stderr)
        return 130
    title = blindspot_title(loaded.name, result)
    if stop.pressed:
        result.info["interrupted"] = True
        title += f" (interrupted: partial, {result.images} of {len(idx)} images)"
    s = summarize(result)
    print(title)
    print("accuracy (%) per position of the patch's top-left corner: columns x (right), rows y (down)")
    acc = result.accuracy
    print("y\\x " + "".join(f"{x:>5d}" for x in result.xs))
    for r, y in enumerate(result.ys):
        print(f"{y:>4d} " + "".join(f"{100 * v:>5.0f}" for v in acc[r]))

    def cell(c: dict) -> str:
        return (f"({c['x']}, {c['y']}) {100 * c['accuracy']:.1f}% [{100 * c['low']:.1f}, {100 * c['high']:.1f}], "
                f"p {c['probability']:.3f}")
    print(f"full size (unscaled): accuracy {100 * s['full_accuracy']:.1f}%, p {s['full_probability']:.3f}\n"
          f"mean over {s['positions']} positions: accuracy {100 * s['mean_accuracy']:.1f}%, "
          f"p {s['mean_probability']:.3f}\n"
          f"patch touching the canvas edge: {100 * s['edge_accuracy']:.1f}%"
          + (f"; the others: {100 * s['inner_accuracy']:.1f}%" if s["inner_accuracy"] is not None else "") + "\n"
          f"centred: {cell(s['centre'])}\nworst: {cell(s['worst'])}\nbest: {cell(s['best'])}\n"
          f"images per position: {result.images}; time: {fmt_time(time.perf_counter() - t)}\n{BLINDSPOTS_HELP}")
    if out:
        for path in save_blindspots(result, out, loaded.name):
            print(f"wrote {path}")
        rc = app_figures("blindspot_panel", "write_blindspot_figures", [(loaded.name, loaded.padding_mode, result)],
                         out, title)
        return 130 if stop.pressed else rc
    return 130 if stop.pressed else 0


def cmd_channels(a) -> int:
    """Padding-aware channels: every layer's channels ranked by how much more they respond at the border ring than
    at the centre (blank input, dataset mean); then the top --ablate channels of one layer zeroed and measured."""
    from padlens.cli.terminal import CtrlC, fmt_time, progress_line
    from padlens.core.channels import (CHANNELS_HELP, INPUTS, ablation_job, ablation_text, default_layer, find_layer,
                                       save_channels, scan_job, summarize)
    from padlens.core.data import load_split, stratified_subset
    from padlens.core.device import describe_precision, pick_device, resolve_precision
    from padlens.core.files import writable_folder
    from padlens.core.jobs import run_job
    from padlens.core.spatial_bias import check_input_size
    for option, v, least in (("--top", a.top, 1), ("--ablate", a.ablate, 0), ("--images", a.images, 1),
                             ("--grid-images", a.grid_images, 0), ("--mean-images", a.mean_images, 0)):
        if v < least:
            what = "channels" if option in ("--top", "--ablate") else "test images"
            raise ValueError(f"{option} {v}: give a number of {what}, at least {least}")
    if a.input == "mean" and not a.mean_images:
        raise ValueError("--input mean ranks on the dataset mean: give --mean-images N (more than 0)")
    out = writable_folder(a.out) if a.out else None   # before any work
    device = pick_device(a.device)
    precision = resolve_precision(a.precision, device)
    loaded = model_from_args(a, device)
    check_input_size(loaded.model, a.input_size)
    data = load_split(a.data, "test") if a.mean_images or a.ablate else None
    inputs = list(dict.fromkeys(["blank", *(["mean"] if a.mean_images else []), a.input]))
    mean = data.images[stratified_subset(data.labels, a.mean_images, a.seed)] if a.mean_images else None
    print(f"{loaded.name} ({loaded.padding_mode} padding): channels ranked on the {', '.join(inputs)} input"
          + (f"; {data.source}" if data else "") + f"; device {device}", flush=True)
    t = time.perf_counter()

    def on_progress(ev) -> None:
        elapsed = time.perf_counter() - t
        progress_line(ev.done / max(ev.total, 1),
                      f"{ev.message} left {fmt_time(elapsed * (ev.total - ev.done) / ev.done if ev.done else 0)}")

    with CtrlC("the current step, then report what is finished") as stop:
        scan = run_job(scan_job(loaded.model, loaded.norm, mean, inputs, device, a.input_size,
                                {"data": data.source if data else "", "model": loaded.name}, stop), on_progress)
        sys.stderr.write("\n")
        if a.input not in scan.inputs:
            print("padlens: interrupted before the ranking was finished; nothing to report", file=sys.stderr)
            return 130
        layer = find_layer(scan, a.layer) if a.layer else default_layer(scan)
        for kind, layers in scan.inputs.items():
            n = f" ({scan.info['mean_images']} test images)" if kind == "mean" else ""
            print(f"\n{kind}: {INPUTS[kind]}{n}; per layer the channels scoring >= 0.5 and the top {a.top}")
            rows = [[lc.name, lc.type, "x".join(map(str, lc.maps.shape)), f"{lc.responding()} of {len(lc.score)}",
                     ", ".join(f"{c} {lc.score[c]:+.2f}" for c in lc.top(a.top))] for lc in layers.values()]
            heads = ["layer", "type", "map", "responding", "top channels (score)"]
            widths = [max(len(r[i]) for r in rows + [heads]) for i in range(len(heads))]
            for r in [heads] + rows:
                print("  ".join(f"{c:<{w}}" for c, w in zip(r, widths)))
        lc = scan.layer(a.input, layer)
        print(f"\n{lc.label}, {a.input} input" + (f", mean filters of {lc.conv}" if lc.conv else "") + ":")
        print("rank  channel  score    border mean  centre mean  filter asym")
        for r, c in enumerate(lc.top(a.top)):
            print(f"{r + 1:<4}  {c:<7}  {lc.score[c]:+.3f}   {lc.border[c]:<11.4g}  {lc.centre[c]:<11.4g}  "
                  f"{lc.asymmetry[c]:.3f}")
        result = None
        if a.ablate:
            grid = f" and the translation grid on {a.grid_images}" if a.grid_images else ""
            print(f"\nzeroing the top {a.ablate} of {lc.name}: accuracy on {a.images} images{grid}, "
                  f"{describe_precision(precision, device)}", flush=True)
            result = run_job(ablation_job(loaded, data, layer, lc.top(a.ablate), a.input, a.images, a.grid_images,
                                          precision=precision, input_size=a.input_size, seed=a.seed,
                                          mean_images=a.mean_images, should_stop=stop), on_progress)
            sys.stderr.write("\n")
            print("\n".join(ablation_text(summarize(result))))
            if not result.complete:
                print(f"padlens: interrupted: accuracy on {result.evaluated} of {a.images} images"
                      + ("" if result.grids[1] is not None else ", no grid after"), file=sys.stderr)
    print(f"time: {fmt_time(time.perf_counter() - t)}\n{CHANNELS_HELP}")
    if out:
        for path in save_channels(scan, out, layer, result):
            print(f"wrote {path}")
        rc = app_figures("channels_panel", "write_channel_figures", scan, a.input, layer, a.top, loaded.name,
                         loaded.padding_mode, out, result, device)
        return 130 if stop.pressed else rc
    return 130 if stop.pressed else 0


def cmd_layers(a) -> int:
    from padlens.core.device import pick_device
    from padlens.core.layers import describe_layers, format_layers
    print(format_layers(describe_layers(model_from_args(a, pick_device("cpu")).model)))
    return 0


def cmd_download(a) -> int:
    from padlens.core.data import download
    print(f"CIFAR-10 is in {download(a.data)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from padlens.cli.terminal import common_args, precision_arg
    from padlens.core.device import PRECISION_CHOICES
    from padlens.core.padding import PADDING_MODES
    from padlens.core.train import Recipe
    # no abbreviations at the top: it sees every subcommand's options too, and --mode would match --model-file
    p = argparse.ArgumentParser(prog="padlens", description=__doc__, allow_abbrev=False)
    add_model_args(p)   # the model the app opens
    common_args(p)   # the app's own --data and --device (each subcommand takes them after its name)
    sub = p.add_subparsers(dest="command")
    t = sub.add_parser("train", help="train a model (resumable run folder)")
    common_args(t)
    t.add_argument("--run", default="runs/zeros", help="run folder; an existing one is resumed")
    t.add_argument("--out", help="also copy the final checkpoint here")
    t.add_argument("--padding", default="zeros", choices=PADDING_MODES)
    t.add_argument("--widths", type=int, nargs="+", default=[96, 320, 320])
    t.add_argument("--activation", default="gelu", choices=["gelu", "relu"])
    t.add_argument("--epochs", type=int, default=18)
    t.add_argument("--batch-size", type=int, default=512)
    t.add_argument("--crop-pad", type=int, default=4)
    t.add_argument("--cutout", type=int, default=0, help="side of a random mean-colour square per image (0 = off)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--lr", type=float, default=Recipe.lr, help="peak learning rate per 1024 examples")
    t.add_argument("--warmup", type=float, default=Recipe.warmup, help="fraction of steps warming up")
    t.add_argument("--final-lr", type=float, default=Recipe.final_lr,
                   help="learning rate at the end, as a fraction of the peak")
    t.add_argument("--init", help="start from this checkpoint's weights (a second cycle of a finished run)")
    t.add_argument("--teachers", nargs="+", help="zero-padded checkpoints whose mean predictions to distill")
    t.add_argument("--distill", type=float, default=Recipe.distill,
                   help="weight of the teachers' probabilities in the targets (with --teachers)")
    t.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                   help="auto (default): bf16 where the hardware has it natively, fp16 on other CUDA GPUs, "
                        "else fp32")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="accuracy and mean cross-entropy on a split or any ImageFolder tree")
    common_args(e)
    add_model_args(e)
    e.add_argument("--split", default="test", choices=["train", "test"])
    e.add_argument("--limit", type=int, default=0,
                   help="only N images, a class-balanced subset (the same number of each class; 0: all)")
    e.add_argument("--seed", type=int, default=0, help="seed of the --limit subset (default 0)")
    e.add_argument("--precision", default="fp32", choices=PRECISION_CHOICES,
                   help="fp32 (default) is exact; auto: bf16 where native, else fp16 on a CUDA GPU, else fp32-fast")
    e.add_argument("--json", action="store_true", help="one JSON line instead of key: value lines")
    e.set_defaults(func=cmd_eval)
    from padlens.core.shifts import SHIFT_MODES
    tr = sub.add_parser("translate", help="translation-robustness grid: accuracy, loss and consistency per shift")
    common_args(tr)
    add_model_args(tr)
    tr.add_argument("--range", type=int, nargs=2, default=[-32, 32], metavar=("LO", "HI"),
                    help="shift range in pixels for dx, and for dy unless --y-range (default -32 32)")
    tr.add_argument("--y-range", type=int, nargs=2, metavar=("LO", "HI"),
                    help="dy range when it differs, e.g. --y-range 0 0 for horizontal shifts only")
    tr.add_argument("--step", type=int, default=2, help="grid step in pixels (default 2)")
    tr.add_argument("--images", type=int, default=1000, help="test images, class-balanced (0: all)")
    tr.add_argument("--until-ci", type=float, metavar="POINTS",
                    help="stop adding images once every cell's 95%% confidence interval of the accuracy is within "
                         "+-POINTS (e.g. 2; cells near 50%% need about 2,400 images, so pair it with --images 0)")
    tr.add_argument("--mode", default="affine", choices=list(SHIFT_MODES))
    tr.add_argument("--out", required=True, help="folder for translation.npz, translation.csv and the figures")
    precision_arg(tr)
    tr.add_argument("--seed", type=int, default=0, help="seed of the image subset")
    tr.add_argument("--compile", action="store_true",
                    help="torch.compile the model first (about 12 s here, then ~1.2x faster on a CPU)")
    tr.add_argument("--input-size", type=int, default=32, help="resize the (shifted) input to this size")
    tr.add_argument("--no-fuse", action="store_true", help="keep batch norm as separate layers")
    tr.add_argument("--no-cache", action="store_true",
                    help="compute the grid even when the cache (shared with the app and the report) has it")
    tr.set_defaults(func=cmd_translate)
    b = sub.add_parser("bias", help="spatial bias per layer: border bias, mean-filter asymmetry, padding arithmetic")
    common_args(b)
    add_model_args(b)
    b.add_argument("--input-size", type=int, default=32, help="resize the input to this size (the resizing remedy)")
    b.add_argument("--mean-images", type=int, default=0, help="also the dataset mean over N test images")
    b.add_argument("--out", help="also write bias.csv, maps.npz and the map and filter figures (PNG) here")
    b.set_defaults(func=cmd_bias)
    cv = sub.add_parser("coverage", help="coverage (foveation) map: how many paths reach each input pixel")
    common_args(cv, data=False)
    add_model_args(cv)
    cv.add_argument("--input-size", type=int, default=32, help="the network's input size (the resizing remedy)")
    cv.add_argument("--compare-size", type=int,
                    help="a second input size beside it (default: 33 for 32, 2^n + 1 for any 2^n, else the power of "
                         "two below; 0: none)")
    cv.add_argument("--modes", default="",
                    help="also the same architecture with these padding modes (comma-separated, or all), a column "
                         "each in the figure (default: the model's own only)")
    cv.add_argument("--out", help="also write coverage.npz, coverage.csv (coverage_MODE.* for each of --modes) and "
                                  "coverage.png, .svg here")
    cv.set_defaults(func=cmd_coverage)
    from padlens.core.equivariance import DEFAULT_GRID, DEFAULT_IMAGES, DEFAULT_MODE
    eq = sub.add_parser("equivariance", help="which layer breaks shift equivariance: per layer and shift, features "
                        "of the shifted image against the shifted features")
    common_args(eq)
    add_model_args(eq)
    eq.add_argument("--range", type=int, nargs=2, default=[DEFAULT_GRID.x_min, DEFAULT_GRID.x_max],
                    metavar=("LO", "HI"), help="shift range in pixels for dx, and for dy unless --y-range "
                    f"(default {DEFAULT_GRID.x_min} {DEFAULT_GRID.x_max})")
    eq.add_argument("--y-range", type=int, nargs=2, metavar=("LO", "HI"), help="dy range when it differs")
    eq.add_argument("--step", type=int, default=DEFAULT_GRID.step, help=f"grid step (default {DEFAULT_GRID.step})")
    eq.add_argument("--images", type=int, default=DEFAULT_IMAGES,
                    help=f"test images, class-balanced (default {DEFAULT_IMAGES})")
    eq.add_argument("--mode", default=DEFAULT_MODE, choices=list(SHIFT_MODES),
                    help=f"shift mode (default {DEFAULT_MODE}: nothing leaves the frame; affine compares the region "
                         "valid in both)")
    eq.add_argument("--input-size", type=int, default=32, help="resize the (shifted) input to this size")
    eq.add_argument("--seed", type=int, default=0, help="seed of the image subset")
    eq.add_argument("--out", help="also write equivariance.npz, equivariance.csv (layer x shift) and the heatmap here")
    eq.set_defaults(func=cmd_equivariance)
    from padlens.core.blindspots import BACKGROUNDS, DEFAULT_IMAGES, DEFAULT_PATCH, DEFAULT_STRIDE
    bs = sub.add_parser("blindspots", help="blind spots: a test image scaled down to a patch at every position of "
                        "the canvas, true-class probability and accuracy per position")
    common_args(bs)
    add_model_args(bs)
    bs.add_argument("--patch-size", type=int, default=DEFAULT_PATCH,
                    help=f"side of the scaled-down image in pixels (default {DEFAULT_PATCH})")
    bs.add_argument("--stride", type=int, default=DEFAULT_STRIDE,
                    help=f"step between the patch's positions in pixels (default {DEFAULT_STRIDE})")
    bs.add_argument("--background", default="blank", choices=list(BACKGROUNDS),
                    help="the canvas behind the patch: " + "; ".join(f"{k}: {v}" for k, v in BACKGROUNDS.items())
                    + " (default blank)")
    bs.add_argument("--images", type=int, default=DEFAULT_IMAGES,
                    help=f"test images, class-balanced (default {DEFAULT_IMAGES})")
    precision_arg(bs)
    bs.add_argument("--input-size", type=int, default=32, help="resize the canvas to this size")
    bs.add_argument("--seed", type=int, default=0, help="seed of the image subset")
    bs.add_argument("--out", help="also write blindspots.npz, blindspots.csv (one row per position) and blindspots.png")
    bs.set_defaults(func=cmd_blindspots)
    from padlens.core import channels as chan
    ch = sub.add_parser("channels", help="padding-aware channels: every layer's channels ranked by their response at "
                        "the border ring against the centre, the top ones zeroed and measured again")
    common_args(ch)
    add_model_args(ch)
    ch.add_argument("--layer", help="the layer to detail and ablate, by path name, e.g. model[3][4] (default: the "
                    "last convolution; `padlens layers` lists them)")
    ch.add_argument("--input", default=chan.DEFAULT_INPUT, choices=list(chan.INPUTS),
                    help="the ranking the layer's table, figure and ablation use: " + "; ".join(
                        f"{k}: {v}" for k, v in chan.INPUTS.items()) + f" (default {chan.DEFAULT_INPUT})")
    ch.add_argument("--top", type=int, default=chan.DEFAULT_TOP,
                    help=f"channels listed per layer and drawn (default {chan.DEFAULT_TOP})")
    ch.add_argument("--ablate", type=int, default=chan.DEFAULT_ABLATE, metavar="K",
                    help=f"zero the layer's top K channels and measure again (default {chan.DEFAULT_ABLATE}; 0: no "
                         "ablation)")
    ch.add_argument("--images", type=int, default=chan.DEFAULT_IMAGES,
                    help=f"class-balanced test images for the accuracy before and after (default "
                         f"{chan.DEFAULT_IMAGES})")
    ch.add_argument("--grid-images", type=int, default=chan.DEFAULT_GRID_IMAGES,
                    help="test images for the translation grid before and after (affine shifts -8..8 step 4; default "
                         f"{chan.DEFAULT_GRID_IMAGES}; 0: no grid)")
    ch.add_argument("--mean-images", type=int, default=chan.DEFAULT_MEAN_IMAGES,
                    help=f"test images averaged for the dataset mean (default {chan.DEFAULT_MEAN_IMAGES}; 0: none)")
    precision_arg(ch, "of the accuracy and the grids (the rankings are always fp32): ")
    ch.add_argument("--input-size", type=int, default=32, help="resize the input to this size")
    ch.add_argument("--seed", type=int, default=0, help="seed of the image subsets")
    ch.add_argument("--out", help="also write channels.npz, channels.csv (every layer's ranking), channels.png and the "
                    "ablation's channels_ablation.csv and .png here")
    ch.set_defaults(func=cmd_channels)
    from padlens.cli.report import add_report_parser
    add_report_parser(sub)
    la = sub.add_parser("layers", help="list every layer with its path (model[i][j] or model.block.conv), parameters and output shape")
    add_model_args(la)
    la.set_defaults(func=cmd_layers)
    d = sub.add_parser("download", help="download the original CIFAR-10 with torchvision")
    d.add_argument("--data")
    d.set_defaults(func=cmd_download)
    return p


APP_VALUE_OPTIONS = ("--checkpoint", "--data", "--device")   # the app's options that take a value


def opens_app(argv: list[str]) -> bool:
    """Whether argv opens the window (no subcommand, no --help), told without the parser, whose choices import
    torch: the window then shows before torch loads. An own model (--model-file) is opened and checked first, so
    that a bad one never opens a window."""
    if any(t in ("-h", "--help") or t.startswith("--model-file") for t in argv):
        return False
    tokens = iter(argv)
    for t in tokens:
        if t in APP_VALUE_OPTIONS:
            next(tokens, None)
        elif not t.startswith("-"):   # a subcommand
            return False
    return True


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = startup = None
    try:
        if opens_app(argv):
            from padlens.gui.app import import_core, start_window
            startup = start_window()
            startup.wait_for(import_core)
        a = build_parser().parse_args(argv)
        return run(a, startup)
    except KeyboardInterrupt:   # translate and report save what they finished themselves; this is the rest
        command = getattr(a, "command", None)
        left = ("the run folder resumes from its last saved epoch: run the same command again" if command == "train"
                else "nothing half-written is left (every file is written whole or not at all)")
        print(f"\npadlens{f' {command}' if command else ''}: interrupted; {left}", file=sys.stderr)
        return 130


def run(a, startup=None) -> int:
    """Run the parsed command line; a problem with an input becomes one line naming it and the fix. startup: the
    app's start-up window, already on screen (main's opens_app)."""
    from padlens.core.checkpoint import CheckpointError
    from padlens.core.data import DatasetError
    try:
        if a.command is None:   # the app (Qt is imported only now); it opens --checkpoint or the flagship itself
            from padlens.core.device import pick_device
            from padlens.gui.app import main as app_main
            device = pick_device(a.device) if a.model_file else None   # a checkpoint: the app picks the device
            return app_main(a, model_from_args(a, device, own_only=True), startup)   # a bad own model: no window
        return a.func(a)
    except (CheckpointError, DatasetError, ValueError) as e:
        print(f"padlens: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:   # a write that failed after the checks (a full disk); what was finished is named above
        print(f"padlens: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
