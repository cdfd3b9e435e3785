"""The `padlens` command, the application's top layer: no subcommand opens the app (gui); subcommands run
the core without a window."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from padlens.cli.terminal import common_args, fmt_time, progress_line
from padlens.core.checkpoint import CheckpointError, default_checkpoint
from padlens.core.data import DatasetError


def cmd_train(a) -> int:
    from padlens.core.data import load_split
    from padlens.core.device import pick_device
    from padlens.core.model import ModelConfig
    from padlens.core.train import Recipe, train
    if not 0 <= a.cutout <= 32:
        raise ValueError(f"--cutout {a.cutout}: the square must fit a 32x32 image (0 to 32; 0 = off)")
    device = pick_device(a.device)
    config = ModelConfig(widths=tuple(a.widths), padding_mode=a.padding, activation=a.activation)
    recipe = Recipe(epochs=a.epochs, batch_size=a.batch_size, crop_pad=a.crop_pad, cutout=a.cutout, seed=a.seed,
                    lr=a.lr, warmup=a.warmup, final_lr=a.final_lr, init=a.init or "",
                    teachers=tuple(a.teachers or ()), distill=a.distill,
                    precision="fp32" if a.fp32 else "bf16")
    train_set, test_set = load_split(a.data, "train"), load_split(a.data, "test")
    print(f"training on {train_set.source}, {len(train_set)} images, device {device}; run folder {a.run}",
          flush=True)
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
        shutil.copyfile(out, a.out)
        print(f"copied to {a.out}")
    return 0


def cmd_eval(a) -> int:
    from padlens.core.checkpoint import load_checkpoint
    from padlens.core.data import Normalization, load_split
    from padlens.core.device import pick_device, prepare_model, resolve_precision
    from padlens.core.evaluate import evaluate
    device = pick_device(a.device)
    model, meta = load_checkpoint(a.checkpoint)
    data = load_split(a.data, a.split)
    images, labels = data.images, data.labels
    if a.limit:
        images, labels = images[:a.limit], labels[:a.limit]
    precision = resolve_precision(a.precision, device)
    t = time.perf_counter()
    r = evaluate(prepare_model(model, device), images, labels, Normalization.from_dict(meta["normalization"]),
                 device, precision)
    result = {"checkpoint": str(a.checkpoint), "data": data.source, "images": r.count,
              "accuracy": round(r.accuracy, 6), "loss": round(r.loss, 6), "precision": precision,
              "seconds": round(time.perf_counter() - t, 2)}
    print(json.dumps(result) if a.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


def cmd_translate(a) -> int:
    from padlens.core.data import load_split
    from padlens.core.device import pick_device
    from padlens.core.grid_cache import GridRequest
    from padlens.core.jobs import run_job
    from padlens.core.session import load_model
    from padlens.core.spatial_bias import check_input_size
    from padlens.core.translation import GridSpec
    y_range = a.y_range or a.range
    spec = GridSpec(a.range[0], a.range[1], y_range[0], y_range[1], a.step)
    if a.images < 0:
        raise ValueError("--images must be 0 (all) or a positive number")
    loaded = load_model(a.checkpoint, pick_device(a.device))
    check_input_size(loaded.model, a.input_size)   # before the data loads: the error names a size that works
    data = load_split(a.data, "test")
    req = GridRequest(loaded, data, spec, a.mode, a.images, a.seed, a.precision, a.input_size,
                      fold=not a.no_fuse, compile=a.compile)
    out = Path(a.out)
    name = Path(a.checkpoint).name
    print(f"{name} on {data.source}: {req.images} images x {len(spec.dxs) * len(spec.dys)} shifts ({a.mode}), "
          f"device {req.device}, {req.precision}{', batch norm folded' if req.folded else ''}"
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

    job = req.job()
    finished: list = []   # the snapshot after the last chunk, kept in case of Ctrl-C

    def on_partial(r) -> None:
        finished[:] = [r]

    try:
        result = run_job(job, on_progress=on_progress, on_partial=on_partial)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        if not finished:
            raise
        finished[0].info["interrupted"] = True
        print(f"padlens: interrupted; saving the first {finished[0].images} images per cell to {out}",
              file=sys.stderr)
        save_grid(finished[0], out)
        return 130
    sys.stderr.write("\n")
    return report_grid(result, out, time.perf_counter() - t)


def report_grid(result, out: Path, seconds: float | None) -> int:
    """Print the grid's summary, then write its numbers and figures into out."""
    import numpy as np
    if seconds is not None:
        result.info["seconds"] = round(seconds, 2)
    acc = result.accuracy
    lines = []
    try:
        r0, c0 = result.cell(0, 0)
        lines.append(f"accuracy at (0, 0): {100 * acc[r0, c0]:.2f}%")
    except KeyError:
        lines.append("accuracy at (0, 0): not on this grid")
    worst = np.unravel_index(np.nanargmin(acc), acc.shape)
    lines += [f"mean accuracy over {acc.size} shifts: {100 * np.nanmean(acc):.2f}%",
              f"min accuracy: {100 * acc[worst]:.2f}% at (dx, dy) = ({result.dxs[worst[1]]}, {result.dys[worst[0]]})",
              f"images per cell: {result.images}"]
    if seconds is not None:
        lines += [f"time: {fmt_time(seconds)} ({result.count.sum() / max(seconds, 1e-9):.0f} cells x images/s; "
                  "shifts that leave only fill or repeat another shift's input ran once); "
                  f"{result.info.get('cache', '')}"]
    lines.append(f"writing {out / 'translation.npz'}, {out / 'translation.csv'} and the figures")
    print("\n".join(lines), flush=True)
    return save_grid(result, out)


def save_grid(result, out: Path) -> int:
    """The numbers (NPZ, CSV), then the heatmap figures where Qt is installed; returns the exit status."""
    result.save_npz(out / "translation.npz")
    result.write_csv(out / "translation.csv")
    try:   # the figures need Qt (gui); the numbers do not
        from padlens.gui.figures import save_heatmap_figures
    except ImportError as e:
        print(f"note: no heatmap figures ({e}); the numbers are in the files above")
        return 0
    try:
        written = save_heatmap_figures(result, out)
    except Exception as e:  # noqa: BLE001 - the numbers are saved; say what went wrong with the pictures
        print(f"padlens: the heatmap figures failed ({type(e).__name__}: {e}); the numbers are saved",
              file=sys.stderr)
        return 1
    if written:
        print("figures: " + ", ".join(str(p) for p in written))
    return 0


def cmd_bias(a) -> int:
    """Per-layer border bias for both blank inputs (and the dataset mean), mean-filter asymmetry and
    the padding arithmetic at the chosen input size."""
    import math

    from padlens.core.activations import blank_input, capture, mean_activations
    from padlens.core.data import Normalization, load_split, stratified_subset
    from padlens.core.device import pick_device, prepare_model
    from padlens.core.jobs import run_job
    from padlens.core.checkpoint import load_checkpoint
    from padlens.core.layers import describe_layers
    from padlens.core.spatial_bias import (BORDER_BIAS_HELP, check_input_size, filter_asymmetry, layer_biases, mean_filters,
                                   padding_arithmetic)
    device = pick_device(a.device)
    model, meta = load_checkpoint(a.checkpoint)
    check_input_size(model, a.input_size)
    norm = Normalization.from_dict(meta["normalization"])
    model = prepare_model(model, device)
    acts = {k: capture(model, blank_input(k, norm, a.input_size), device)[0] for k in ("normalized", "pixel")}
    if a.mean_images:
        data = load_split(a.data, "test")
        subset = data.images[stratified_subset(data.labels, a.mean_images)]   # ImageFolder splits are class-sorted
        mean_acts, n = run_job(mean_activations(model, subset, norm, device, size=a.input_size),
                               on_progress=lambda ev: progress_line(ev.done / ev.total, ev.message))
        sys.stderr.write("\n")
        acts[f"mean of {n}"] = mean_acts
    columns = {k: layer_biases(v) for k, v in acts.items()}
    filters = mean_filters(model)
    asym = {p: filter_asymmetry(k) for p, k in filters.items()}
    arith = {tuple(r["path"]): r for r in padding_arithmetic(model, a.input_size)}
    fmt = lambda v: "n/a" if v is None or math.isnan(v) else f"{v:.3f}"  # noqa: E731
    heads = ["layer", "type", *[f"bias {k}" for k in columns], "filter asym", "padding arithmetic"]
    rows = []
    leaves = [info for info in describe_layers(model, (3, a.input_size, a.input_size)) if not info.is_container]
    for info in leaves:
        ar = arith.get(info.path)
        rows.append([info.name, info.type, *[fmt(c.get(info.path)) for c in columns.values()],
                     fmt(asym[info.path]) if info.path in asym else "",
                     (("UNEVEN: " if ar["uneven"] else "") + ar["note"]) if ar else ""])
    widths = [max(len(r[i]) for r in rows + [heads]) for i in range(len(heads) - 1)]
    for r in [heads] + rows:
        print("  ".join(f"{c:<{w}}" for c, w in zip(r, widths)) + "  " + r[-1])
    print(f"\n{BORDER_BIAS_HELP}")
    if a.mean_images:
        print(f"Dataset mean measured on {data.source}.")
    if a.out:
        leaf_acts = {k: {i.path: v[i.path] for i in leaves if i.path in v} for k, v in acts.items()}
        for path in write_bias_files(Path(a.out), heads, rows, leaf_acts, filters, Path(a.checkpoint).stem):
            print(f"wrote {path}")
    return 0


def write_bias_files(out: Path, heads, rows, acts: dict, filters: dict, label: str) -> list[Path]:
    """bias.csv (the table), maps.npz (every layer's channel-mean map per input) and their figures;
    acts: {input: {layer path: activation}} of the layers to show."""
    import numpy as np

    from padlens.core.files import atomic_csv, atomic_write
    from padlens.core.figures_png import filters_figure, maps_figure
    from padlens.core.layers import path_name
    from padlens.core.spatial_bias import mean_map
    written = [atomic_csv(out / "bias.csv", [heads, *rows])]
    maps = {k: {p: mean_map(t) for p, t in v.items() if t.dim() == 3} for k, v in acts.items()}
    arrays = {f"{k}/{path_name(p)}": m.numpy() for k, v in maps.items() for p, m in v.items()}
    written.append(atomic_write(out / "maps.npz", lambda tmp: np.savez_compressed(tmp, **arrays)))
    for k, v in maps.items():
        name = k.replace(" ", "_")
        written.append(maps_figure(out / f"maps_{name}.png", list(v.values()),
                                   f"{label}: channel mean per layer, input: {k}",
                                   labels=[path_name(p) for p in v]))
    if filters:
        written.append(filters_figure(out / "mean_filters.png", list(filters.values()),
                                      f"{label}: mean conv kernels (blue negative, red positive)"))
    return written


def cmd_layers(a) -> int:
    from padlens.core.checkpoint import load_checkpoint
    from padlens.core.layers import describe_layers, format_layers
    model, _ = load_checkpoint(a.checkpoint)
    print(format_layers(describe_layers(model)))
    return 0


def cmd_download(a) -> int:
    from padlens.core.data import download
    print(f"CIFAR-10 is in {download(a.data)}")
    return 0


def default_ckpt() -> str:
    from padlens.core.checkpoint import default_checkpoint
    try:
        return str(default_checkpoint())
    except CheckpointError:
        return "checkpoints/vgg_zeros.pt"


def build_parser() -> argparse.ArgumentParser:
    from padlens.core.train import Recipe
    p = argparse.ArgumentParser(prog="padlens", description=__doc__)
    p.add_argument("--checkpoint", help="open the app with this checkpoint")
    common_args(p)   # the app's own --data and --device (each subcommand takes them after its name)
    sub = p.add_subparsers(dest="command")
    t = sub.add_parser("train", help="train a model (resumable run folder)")
    common_args(t)
    t.add_argument("--run", default="runs/zeros", help="run folder; an existing one is resumed")
    t.add_argument("--out", help="also copy the final checkpoint here")
    t.add_argument("--padding", default="zeros", choices=["zeros", "reflect", "replicate", "circular", "symmetric"])
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
    t.add_argument("--fp32", action="store_true", help="exact fp32 instead of bf16 autocast")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="accuracy and mean cross-entropy on a split or any ImageFolder tree")
    common_args(e)
    e.add_argument("--checkpoint", default=None)
    e.add_argument("--split", default="test", choices=["train", "test"])
    e.add_argument("--limit", type=int, default=0, help="only the first N images")
    e.add_argument("--precision", default="fp32", choices=["auto", "bf16", "fp32"])
    e.add_argument("--json", action="store_true", help="one JSON line instead of key: value lines")
    e.set_defaults(func=cmd_eval)
    from padlens.core.shifts import SHIFT_MODES
    tr = sub.add_parser("translate", help="translation-robustness grid: accuracy, loss and consistency per shift")
    common_args(tr)
    tr.add_argument("--checkpoint", default=None)
    tr.add_argument("--range", type=int, nargs=2, default=[-32, 32], metavar=("LO", "HI"),
                    help="shift range in pixels for dx, and for dy unless --y-range (default -32 32)")
    tr.add_argument("--y-range", type=int, nargs=2, metavar=("LO", "HI"),
                    help="dy range when it differs, e.g. --y-range 0 0 for horizontal shifts only")
    tr.add_argument("--step", type=int, default=2, help="grid step in pixels (default 2)")
    tr.add_argument("--images", type=int, default=1000, help="test images, class-balanced (0: all)")
    tr.add_argument("--mode", default="affine", choices=list(SHIFT_MODES))
    tr.add_argument("--out", required=True, help="folder for translation.npz, translation.csv and the figures")
    tr.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
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
    b.add_argument("--checkpoint", default=None)
    b.add_argument("--input-size", type=int, default=32, help="resize the input to this size (the resizing remedy)")
    b.add_argument("--mean-images", type=int, default=0, help="also the dataset mean over N test images")
    b.add_argument("--out", help="also write bias.csv, maps.npz and the map and filter figures (PNG) here")
    b.set_defaults(func=cmd_bias)
    from padlens.cli.report import add_report_parser
    add_report_parser(sub)
    la = sub.add_parser("layers", help="list every layer with its path (model[i][j] or model.block.conv), parameters and output shape")
    la.add_argument("--checkpoint", default=None)
    la.set_defaults(func=cmd_layers)
    d = sub.add_parser("download", help="download the original CIFAR-10 with torchvision")
    d.add_argument("--data")
    d.set_defaults(func=cmd_download)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        if a.command is None:   # the app (Qt is imported only now); it falls back to the flagship itself
            from padlens.gui.app import main as app_main
            return app_main(a)
        if getattr(a, "checkpoint", "unset") is None:
            a.checkpoint = str(default_checkpoint())
        return a.func(a)
    except (CheckpointError, DatasetError, ValueError) as e:
        print(f"padlens: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\npadlens: interrupted; a training run resumes from its last saved epoch", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
