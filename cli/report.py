"""`padlens report`: the command line around core.report's job (Ctrl-C once stops after the current step)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from padlens.cli.models import add_model_args, model_from_args
from padlens.cli.terminal import CtrlC, common_args, fmt_time, progress_line
from padlens.core.device import PRECISION_CHOICES, pick_device
from padlens.core.files import writable_folder
from padlens.core.jobs import Progress, run_job
from padlens.core.report import DEFAULT_MODES, WORST_CASE_GRID, WORST_CASE_IMAGES, FigureWriters, report
from padlens.core.report import __doc__ as report_doc
from padlens.core.shifts import SHIFT_MODES
from padlens.core.translation import GridSpec


def app_writers() -> FigureWriters | None:
    """The app's own figures as the report's writers (drawn offscreen), or None where Qt is not installed (the
    numbers are written anyway)."""
    try:
        from padlens.gui.bias_tab import write_bias_figures
        from padlens.gui.blindspot_panel import write_blindspot_figures
        from padlens.gui.channels_panel import write_channel_figures
        from padlens.gui.coverage_panel import write_coverage_figures
        from padlens.gui.equivariance_panel import write_equivariance_figures
        from padlens.gui.figures import save_heatmap_figures
    except ImportError as e:
        print(f"note: no figures ({e}); the numbers are still written", file=sys.stderr)
        return None
    return FigureWriters(save_heatmap_figures, write_bias_figures, write_coverage_figures, write_equivariance_figures,
                         write_blindspot_figures, write_channel_figures)


def cmd_report(a) -> int:
    lo, hi = a.range
    spec = GridSpec.square(min(lo, hi), max(lo, hi), a.step)
    writable_folder(a.out)   # before any work: a bad --out must not cost the measurements
    own = model_from_args(a, pick_device(a.device), own_only=True)   # on the device the job picks from a.device
    models = [*([own] if own else []), *(a.checkpoints or [])]
    if not models:
        raise ValueError("report needs a model: --checkpoints CKPT [CKPT ...], your own with --model-file F.py "
                         "--model-fn NAME, or both")
    t = time.perf_counter()

    def on_progress(ev: Progress) -> None:
        elapsed = time.perf_counter() - t
        eta = elapsed * (ev.total - ev.done) / ev.done if ev.done else 0
        progress_line(ev.done / max(ev.total, 1), f"{ev.message[:70]} left {fmt_time(eta)}")

    print(f"report on {len(models)} model(s) into {a.out} (Ctrl-C once: report what is finished; "
          "twice: quit)", flush=True)
    try:
        with CtrlC() as stop:
            md = run_job(report(models, a.out, a.data, a.device, a.images, spec, a.modes, a.mean_images,
                                a.precision, a.eval_images, a.seed, a.input_size, a.worst_case_images,
                                figures=None if a.no_figures else app_writers(),
                                should_stop=stop), on_progress=on_progress)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        print("padlens: interrupted; finished translation grids are cached and reused by the next run",
              file=sys.stderr)
        return 130
    except OSError as e:   # a full disk, a folder removed meanwhile: the grids finished so far are in the cache
        sys.stderr.write("\n")
        print(f"padlens: error: writing the report into {a.out} failed ({e}); the finished translation grids are "
              "cached, so the same command with room to write computes only the rest", file=sys.stderr)
        return 1
    sys.stderr.write("\n")
    if md is None:
        print("padlens: stopped before any checkpoint was finished; nothing written", file=sys.stderr)
        return 130 if stop.pressed else 1
    doc = json.loads(Path(md).with_name("report.json").read_text(encoding="utf-8"))
    for note in doc["settings"].get("cache_notes") or []:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {md} and {Path(md).with_name('report.json')} in {fmt_time(time.perf_counter() - t)}")
    if stop.pressed:
        print(f"padlens: interrupted; the report is partial, marked so in it: {len(doc['checkpoints'])} of "
              f"{len(models)} model(s) finished", file=sys.stderr)
        return 130
    return 0


def add_report_parser(sub):
    """Add the `report` subcommand to an argparse subparsers object; returns its parser."""
    r = sub.add_parser("report", help="measure checkpoints or your own model; write report.md, report.json, figures",
                       description=report_doc.split("\n\n")[0])
    r.add_argument("--checkpoints", nargs="+", metavar="CKPT", help="checkpoint files to compare")
    add_model_args(r, checkpoint=False)   # your own model, reported first, beside any checkpoints
    r.add_argument("--out", required=True, help="folder for report.md, report.json and the figures")
    common_args(r)
    r.add_argument("--images", type=int, default=500, help="class-balanced test images per translation grid (0: all)")
    r.add_argument("--range", type=int, nargs=2, default=[-16, 16], metavar=("LO", "HI"),
                   help="shift range in pixels for both dx and dy (default -16 16)")
    r.add_argument("--step", type=int, default=4, help="grid step in pixels (default 4)")
    r.add_argument("--modes", nargs="+", default=list(DEFAULT_MODES), choices=list(SHIFT_MODES),
                   help="shift modes (default: all three)")
    r.add_argument("--worst-case-images", type=int, default=WORST_CASE_IMAGES,
                   help=f"test images of the worst-case grid, every whole-pixel shift within {WORST_CASE_GRID.x_max} px "
                        f"(at most --images; default {WORST_CASE_IMAGES}; 0: none)")
    r.add_argument("--mean-images", type=int, default=500,
                   help="test images averaged for the dataset-mean feature maps (0: all)")
    r.add_argument("--eval-images", type=int, default=0,
                   help="test images for accuracy and loss, class-balanced (default 0: the whole test split)")
    r.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                   help="precision of the translation grids: auto (default) is bf16 where the hardware has it "
                        "natively, fp16 on other CUDA GPUs, else fp32-fast; accuracy and feature maps are always fp32")
    r.add_argument("--seed", type=int, default=0, help="seed of the image subsets")
    r.add_argument("--input-size", type=int, default=32,
                   help="resize inputs to this size for the grids, feature maps and padding arithmetic "
                        "(the resizing remedy; default 32)")
    r.add_argument("--no-figures", action="store_true",
                   help="write no figures, only report.md, report.json and the numbers (the figures need Qt)")
    r.set_defaults(func=cmd_report)
    return r
