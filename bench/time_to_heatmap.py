"""Time to a trustworthy heatmap: the default translation grid (-32..32 step 2, 1,089 shifts, affine) as the app
and `padlens translate --until-ci 2` run it, stopping at the first chunk end (chunks double up to 500 images)
at which every cell's 95% Wilson interval of the accuracy is within +-2 points.

A full grid over all 10,000 test images is 10.9 M forward passes, hours on a laptop CPU, and so is the run to
+-2 points: cells near 50% need about 2,400 images. By default this bench therefore PROJECTS the time, and
says so: it runs the app's default path on --sample images with all 1,089 shifts (measuring this machine's
rate, images with all their shifts per second, and each cell's accuracy), then finds the chunk end at which
the stop would come were the cells' accuracies those measured (and, as the bound that holds whatever they
are, were one cell at 50%), and divides by the rate. --full measures it instead: the whole run to the target.
Caches are bypassed (a throwaway cache folder), so every grid is computed.

    python bench/time_to_heatmap.py [--target 2] [--sample 20] [--checkpoints A.pt B.pt] [--full] [--quick]

--quick checks that it runs: a 3x3 grid (-8..8 step 8), 300 images, +-10 points, measured.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

from padlens.cli.terminal import fmt_time, progress_line
from padlens.core.checkpoint import FLAGSHIP, shipped_dir
from padlens.core.data import DatasetError, load_split
from padlens.core.device import native_bf16, pick_device
from padlens.core.grid_cache import GridRequest
from padlens.core.jobs import run_job
from padlens.core.session import load_model
from padlens.core.translation import GridSpec, first_chunk_images, images_to_precision


def machine(device: torch.device) -> str:
    cpu = torch.backends.cpu.get_cpu_capability()
    native = "yes" if native_bf16(device) else "no (bf16 would be emulated: auto runs fp32)"
    return (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
            f"{torch.__version__}, {torch.get_num_threads()} threads, device {device}\n"
            f"CPU capability: {cpu}; native bf16: {native}")


def time_one(path, data, spec: GridSpec, images: int, target: float, precision: str, device) -> None:
    """Runs one checkpoint's grid to the target and prints its time against the full grids' estimates."""
    loaded = load_model(path, device)
    req = GridRequest(loaded, data, spec, "affine", images, precision=precision, target_halfwidth=target / 100)
    shifts = len(spec.dxs) * len(spec.dys)
    print(f"\n{loaded.name}: up to {req.images} images x {shifts} shifts, {req.precision}"
          f"{', batch norm folded' if req.folded else ''}", flush=True)
    t = time.perf_counter()

    def on_progress(ev) -> None:
        progress_line(ev.done / max(ev.total, 1), f"{ev.message}, {fmt_time(time.perf_counter() - t)} so far")
    result = run_job(req.job(), on_progress=on_progress)
    seconds = time.perf_counter() - t
    sys.stderr.write("\n")
    widest = 100 * float(result.accuracy_halfwidth.max())
    per_image = seconds / max(result.images, 1)
    reached = result.info.get("precision_reached") or result.info.get("precision_not_reached") or \
        f"every cell within ±{widest:.1f} points after all {result.images} images"
    print(f"  {reached}\n  time: {fmt_time(seconds)} ({seconds:.1f} s; {result.images / seconds:.2f} images/s with "
          f"all {shifts} shifts each; widest cell ±{widest:.2f} points)")
    for n in sorted({min(1000, req.images), req.images}):
        print(f"  full {n}-image grid at this rate: about {fmt_time(per_image * n)} "
              f"({per_image * n / seconds:.1f}x the time to ±{target:g} points)")


def project_one(path, data, spec: GridSpec, sample: int, target: float, precision: str, device) -> None:
    """Runs one checkpoint's grid on `sample` images and prints the projected time to the target."""
    loaded = load_model(path, device)
    req = GridRequest(loaded, data, spec, "affine", sample, precision=precision)
    print(f"\n{loaded.name}: {req.images} images x {len(spec.dxs) * len(spec.dys)} shifts measured, {req.precision}"
          f"{', batch norm folded' if req.folded else ''}", flush=True)
    t = time.perf_counter()
    result = run_job(req.job(), on_progress=lambda ev: progress_line(
        ev.done / max(ev.total, 1), f"{ev.message}, {fmt_time(time.perf_counter() - t)} so far"))
    seconds = time.perf_counter() - t
    sys.stderr.write("\n")
    rate = result.images / seconds
    first = first_chunk_images(len(spec.dxs) * len(spec.dys))
    print(f"  measured: {seconds:.1f} s, {rate:.3f} images/s with all their shifts; {load()}")
    for what, acc in ((f"at the cell accuracies of these {result.images} images", result.accuracy),
                      ("bound, one cell at 50%", np.array([0.5]))):
        n = images_to_precision(acc, target / 100, len(data), first)
        print(f"  PROJECTED to ±{target:g} points ({what}): " + (
            f"{n:,} images, about {fmt_time(n / rate)}" if n else f"not within all {len(data):,} images"))
    print(f"  PROJECTED full 1,000-image grid: about {fmt_time(1000 / rate)}; all {len(data):,} images: about "
          f"{fmt_time(len(data) / rate)}")


def load() -> str:
    return "load average " + " / ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1/5/15 min)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", help=f"default: the shipped {FLAGSHIP} and vgg_zeros.pt")
    p.add_argument("--data", help="data root (default: $PADLENS_DATA)")
    p.add_argument("--target", type=float, default=2.0, help="half-width in accuracy points (default 2)")
    p.add_argument("--images", type=int, default=0, help="most images to use, class-balanced (default 0: all)")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    p.add_argument("--sample", type=int, default=20, help="images measured for the projection (default 20)")
    p.add_argument("--full", action="store_true", help="measure the whole run to the target instead (hours)")
    p.add_argument("--quick", action="store_true", help="a 3x3 grid, 300 images, ±10 points: checks that it runs")
    a = p.parse_args(argv)
    spec, images, target = (GridSpec.square(-8, 8, 8), 300, 10.0) if a.quick else (GridSpec(), a.images, a.target)
    device = pick_device(a.device)
    print(machine(device) + f"\n{load()}")
    try:
        data = load_split(a.data, "test")
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    jpeg = " (the lossy JPEG copy: not the original CIFAR-10's accuracies)" if "JPEG" in data.source else ""
    print(f"data: {data.source}{jpeg}\ngrid: dx, dy {spec.x_min}..{spec.x_max} step {spec.step}, "
          f"{len(spec.dxs) * len(spec.dys)} shifts (affine); target ±{target:g} points (95% Wilson interval)")
    paths = a.checkpoints or [shipped_dir() / FLAGSHIP, shipped_dir() / "vgg_zeros.pt"]
    cache = tempfile.mkdtemp(prefix="padlens-bench-")
    os.environ["XDG_CACHE_HOME"] = cache   # every grid computed, none read from (or left in) the user's cache
    try:
        for path in paths:
            if a.full or a.quick:
                time_one(path, data, spec, images, target, a.precision, device)
            else:
                project_one(path, data, spec, a.sample, target, a.precision, device)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
