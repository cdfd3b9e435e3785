"""Benchmark of the translation grid on this machine: the plain notebook loop against the app's path, step by
step, each as a share of the machine's own matrix-multiply peak measured in the same run.

It first prints the hardware: the CPU capability (or the GPU), whether bf16 runs natively, and the fp32
(and, where native, bf16 or fp16) matrix-multiply peak. Then every variant evaluates the same images under
the same shifts:

  loop               Python loop over shifts; each shift runs torchvision's affine on the images and a
                     DataLoader (batch 256) over a TensorDataset of them; fp32, channels-first, BN unfused
  batched            many shifted copies per forward pass (fp32, channels-first, unfused)
  + channels_last    the same in channels_last memory format
  + BN folded        batch norm folded into the convolutions (core.inference.fold_batchnorm), fp32
  + slice shifts     integer shifts copied as slices (core.shifts.shifted_copies, bit-identical to affine)
  + bf16 / fp16      autocast, only where the device runs it natively; emulated bf16 rows are left out
  grid fp32          core.translation.translation_grid in exact fp32 (batch norm as trained), the app's
                     `--precision fp32`
  grid <auto>        the app's default path here: the model and batch size the grid cache runs for
                     precision auto (fp32-fast where bf16 is not native), and its time to the first heatmap
  + compile          the same through torch.compile (--compile), with its compile time and break-even point

Then the app's default path once per batch size on the first images (the sizes that fit the caches), and
per variant: images/s (one image under one shift), speed against the loop, share of peak (multiply-adds per
image from forward hooks on Conv2d and Linear x images/s / the measured peak) and how its per-shift
accuracies compare with the loop's. Exact fp32 variants must match the loop exactly, fast fp32 ones within
0.1 points on every shift, bf16/fp16 ones within 0.5 points on average; the exit status is 1 otherwise.

    python bench/translation.py [--checkpoint PATH] [--images N] [--range -8 8] [--y-range LO HI] [--step 4]
                                [--device cpu|cuda|auto] [--threads N] [--compile] [--quick]

The defaults (100 images x 25 shifts, half of which change the pooling phase) finish in under 5 minutes on a
2-core AVX2 CPU with the flagship checkpoint; --quick (20 images x 9 shifts) only checks that everything
runs. The grid computes each image's unshifted prediction once more (its consistency), a share of the work
that shrinks with the number of shifts: 4% here, 0.1% on the app's default 33x33 grid. The 500-image check
of fast fp32 on a shipped checkpoint is a data test (tests/core/test_shipped.py).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from padlens.core.checkpoint import CheckpointError, default_checkpoint, load_checkpoint
from padlens.core.custom_model import CIFAR10_NORMALIZATION as CIFAR_NORM
from padlens.core.data import DatasetError, Normalization, load_split, resolve_data_root, stratified_subset
from padlens.core.device import autocast, describe_precision, hardware, native_bf16, pick_device, resolve_precision
from padlens.core.inference import compile_for_inference, fast_model, fold_batchnorm, grid_batch
from padlens.core.jobs import run_job
from padlens.core.model import ModelConfig, build_model
from padlens.core.shifts import SHIFT_MODES, affine_shift, shifted_copies
from padlens.core.translation import GridSpec, translation_grid

HALF_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def load_model(path: str | None):
    """(model, normalization, description); a random default model when no checkpoint exists yet."""
    if not path:
        try:
            path = str(default_checkpoint())
        except CheckpointError:
            torch.manual_seed(0)
            return (build_model(ModelConfig()).eval(), CIFAR_NORM,
                    "NO CHECKPOINT FOUND: a randomly initialised default model (timings still valid)")
    model, meta = load_checkpoint(path)
    return model, Normalization.from_dict(meta["normalization"]), f"checkpoint {path}"


def load_images(data: str | None, n: int, seed: int):
    """(images, labels, description): a stratified test subset, or random images when there is no data."""
    try:
        test = load_split(data, "test")
    except DatasetError:
        gen = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
        return images, torch.arange(n) % 10, f"NO DATA SET under {resolve_data_root(data)}: {n} random images"
    idx = stratified_subset(test.labels, n, seed)
    return test.images[idx], test.labels[idx], f"{len(idx)} images of {test.source}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def matmul_peak(device: torch.device, dtype: torch.dtype, seconds: float = 1.0) -> float:
    """Multiply-adds per second of large matrix products, measured now: the better of torch.mm (BLAS: MKL on
    x86, which is slow on some AMD CPUs) and the same product as a 1x1 convolution (oneDNN or cuDNN, the
    libraries the model's convolutions run in), each the best of repeats over about `seconds`."""
    n = 2048 if device.type == "cpu" else 8192
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device=device, dtype=dtype) for _ in range(2))
    side, c = (64, 512) if device.type == "cpu" else (128, 2048)   # rows: side^2 pixels, c x c weights
    x = torch.randn(1, c, side, side, generator=gen).to(device=device, dtype=dtype,
                                                          memory_format=torch.channels_last)
    w = torch.randn(c, c, 1, 1, generator=gen).to(device=device, dtype=dtype, memory_format=torch.channels_last)
    rates = []
    for product, macs in ((lambda: torch.mm(a, b), n ** 3), (lambda: F.conv2d(x, w), side * side * c * c)):
        with torch.inference_mode():
            product()
            sync(device)
            best, end = float("inf"), time.perf_counter() + seconds
            while time.perf_counter() < end:
                t = time.perf_counter()
                product()
                sync(device)
                best = min(best, time.perf_counter() - t)
        rates.append(macs / best)
    return max(rates)


def macs_per_image(model: nn.Module, size: int = 32) -> int:
    """Multiply-adds of one forward pass, counted by forward hooks on every Conv2d and Linear."""
    total = [0]

    def count(m, inp, out):
        per_output = (m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1] if isinstance(m, nn.Conv2d)
                      else m.in_features)
        total[0] += out[0].numel() * per_output

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [m.register_forward_hook(count) for m in layers]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def notebook_shift(images, dx, dy, mode, norm):
    """The shift as a notebook writes it: torchvision's affine (or torch.roll), one shift at a time."""
    if mode == "roll":
        return torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
    fill = [round(255 * c) for c in norm.mean] if mode == "affine-mean" else 0.0
    return affine_shift(images, dx, dy, fill)


def loop_correct(model, images, labels, norm, shifts, mode, device):
    """The notebook way: per shift a TensorDataset of shifted images and a DataLoader over it."""
    correct = []
    with torch.no_grad():
        for dx, dy in shifts:
            loader = DataLoader(TensorDataset(notebook_shift(images, dx, dy, mode, norm), labels), batch_size=256)
            right = 0
            for x, y in loader:
                logits = model(norm.apply(x).to(device))
                right += (logits.argmax(1).cpu() == y).sum().item()
            correct.append(right)
    return correct


def batched_correct(model, images, labels, norm, shifts, mode, device, channels_last, precision,
                    slices=False, batch_images=1024):
    """Many shifted copies of the images in one forward pass."""
    images, labels = images.to(device), labels.to(device)
    correct = []
    for lo in range(0, len(images), batch_images):
        x0, y0 = images[lo:lo + batch_images], labels[lo:lo + batch_images]
        per = max(1, batch_images // len(x0))
        part = []
        for g in range(0, len(shifts), per):
            group = shifts[g:g + per]
            x = norm.apply(shifted_copies(x0, group, mode, norm.mean) if slices else
                           torch.cat([notebook_shift(x0, dx, dy, mode, norm) for dx, dy in group]))
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), autocast(device, precision):
                pred = model(x).float().argmax(1).view(len(group), len(x0))
            part += (pred == y0).sum(1).tolist()
        correct = part if not correct else [a + b for a, b in zip(correct, part)]
    return correct


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="default: the flagship checkpoint, else a random default model")
    p.add_argument("--data", help="data root (default: $PADLENS_DATA); random images when there is none")
    p.add_argument("--images", type=int, help="test images (default 100 on a CPU, 2000 on a GPU to fill its batches)")
    p.add_argument("--range", type=int, nargs=2, default=[-8, 8], metavar=("LO", "HI"), help="dx (and dy) range")
    p.add_argument("--y-range", type=int, nargs=2, metavar=("LO", "HI"), help="dy range when it differs")
    p.add_argument("--step", type=int, default=4)
    p.add_argument("--mode", default="affine", choices=list(SHIFT_MODES))
    p.add_argument("--threads", type=int, help="CPU threads (default: $PADLENS_THREADS, else all cores)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps, auto")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the app's default path")
    p.add_argument("--quick", action="store_true", help="20 images x 9 shifts: check that it runs, not how fast")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        device = pick_device(a.device)
    except ValueError as e:
        p.error(str(e))
    if a.threads:
        torch.set_num_threads(a.threads)
    n_images = 20 if a.quick else a.images or (100 if device.type == "cpu" else 2000)
    x_range, y_range = ([-4, 4], [-4, 4]) if a.quick else (a.range, a.y_range or a.range)
    spec = GridSpec(x_range[0], x_range[1], y_range[0], y_range[1], 4 if a.quick else a.step)
    shifts = [(int(dx), int(dy)) for dy in spec.dys for dx in spec.dxs]
    model, norm, model_desc = load_model(a.checkpoint)
    images, labels, data_desc = load_images(a.data, n_images, a.seed)
    n = len(images) * len(shifts)
    auto = resolve_precision("auto", device)
    half = auto if auto in HALF_DTYPES else None   # a half precision only where the device runs it natively

    cpu_words = f"CPU capability {torch.backends.cpu.get_cpu_capability()}, " if device.type == "cpu" else ""
    print(f"model: {model_desc}\ndata: {data_desc}\n{len(images)} images x {len(shifts)} shifts ({a.mode}) "
          f"= {n} evaluations\ndevice {device} ({hardware(device)}): {cpu_words}native bf16: "
          f"{'yes' if native_bf16(device) else 'no'}; {torch.get_num_threads()} threads; torch {torch.__version__}\n"
          f"precision auto here: {describe_precision(auto, device)}", flush=True)
    peaks = {"fp32": matmul_peak(device, torch.float32)}
    if half:
        peaks[half] = matmul_peak(device, HALF_DTYPES[half])
    print("matrix-multiply peak, measured now (best of torch.mm and a 1x1 convolution): "
          + ", ".join(f"{k} {v / 1e9:.0f} GMAC/s" for k, v in peaks.items()), flush=True)
    if not half:
        print(f"bf16 rows left out: bf16 is emulated on this {hardware(device)} (no native bf16 units), "
              "slower than fp32 (about 4x on a 2-core AVX2 CPU)")
    macs = macs_per_image(model)

    plain = copy.deepcopy(model).to(device=device, memory_format=torch.contiguous_format).eval()
    cl = copy.deepcopy(model).to(device=device, memory_format=torch.channels_last).eval()   # same weights
    folded = fold_batchnorm(model).to(device=device, memory_format=torch.channels_last)
    app = fast_model(model, device, auto)                      # what GridRequest runs for precision auto
    batch = grid_batch(device, auto)
    rows: list[tuple[str, float, list[int], str]] = []         # (name, seconds, correct per shift, kind)

    def timed(name, fn, kind, warm=None):
        """kind: 'exact' (must equal the loop), 'fast' (within 0.1 points per shift) or a half precision."""
        warm_s = 0.0
        if warm is not None:        # warm-up on a small batch: allocator, oneDNN primitives, compilation
            t = time.perf_counter()
            warm()
            sync(device)
            warm_s = time.perf_counter() - t
        t = time.perf_counter()
        correct = fn()
        sync(device)
        seconds = time.perf_counter() - t
        rows.append((name, seconds, correct, kind))
        note = f" (+{warm_s:.1f} s warm-up/compile, not counted)" if warm_s > 1 else ""
        print(f"  {name:<24} {seconds:8.2f} s{note}", flush=True)
        return seconds, warm_s

    few = images[:8], labels[:8]
    one = shifts[:1]

    def batched(name, m, cl_, precision, kind, slices=False):
        timed(name, lambda: batched_correct(m, images, labels, norm, shifts, a.mode, device, cl_, precision, slices),
              kind, lambda: batched_correct(m, *few, norm, one, a.mode, device, cl_, precision, slices))

    first: dict[int, tuple[float, int]] = {}   # per model: seconds to the first complete heatmap, its images

    def grid(m, precision, batch_images=batch, imgs=images, labs=labels):
        t = time.perf_counter()

        def on_partial(r):
            first.setdefault(id(m), (time.perf_counter() - t, r.images))
        r = run_job(translation_grid(m, imgs, labs, norm, spec, a.mode, device, precision, batch_images=batch_images,
                                     fill_color=norm.mean), on_partial=on_partial)   # the loop's fill
        return [int(r.correct[r.cell(dx, dy)]) for dx, dy in shifts]

    def warm_grid(m, precision):
        run_job(translation_grid(m, *few, norm, GridSpec.square(0, 0, 1), a.mode, device, precision,
                                 fill_color=norm.mean))

    print("timing:", flush=True)
    timed("loop", lambda: loop_correct(plain, images, labels, norm, shifts, a.mode, device), "exact",
          lambda: loop_correct(plain, *few, norm, one, a.mode, device))
    batched("batched", plain, False, "fp32", "exact")
    batched("+ channels_last", cl, True, "fp32", "exact")
    batched("+ BN folded", folded, True, "fp32", "fast")
    batched("+ slice shifts", folded, True, "fp32", "fast", slices=True)
    if half:
        batched(f"+ {half}", folded, True, half, half, slices=True)
    exact_app = fast_model(model, device, "fp32")
    timed("grid fp32", lambda: grid(exact_app, "fp32"), "exact", lambda: warm_grid(exact_app, "fp32"))
    app_name = f"grid {auto} (app)"
    app_s, _ = timed(app_name, lambda: grid(app, auto), "fast" if auto == "fp32-fast" else auto,
                     lambda: warm_grid(app, auto))
    compiled_row = None
    if a.compile:
        try:
            compiled = compile_for_inference(app)
            s, warm_s = timed("+ compile", lambda: grid(compiled, auto), "fast" if auto == "fp32-fast" else auto,
                              lambda: warm_grid(compiled, auto))
            compiled_row = (s, warm_s)
        except Exception as e:  # noqa: BLE001 - no compiler, unsupported platform ...
            print(f"  + compile                failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")

    sizes = (32, 64, 128, 256, 512) if device.type == "cpu" else (1024, 2048, 4096, 8192)
    some = min(len(images), 20) if device.type == "cpu" else len(images)
    print(f"\nbatch size of the app's default path ({some} images x {len(shifts)} shifts each; the app uses {batch}):")
    for size in sizes:
        t = time.perf_counter()
        grid(app, auto, size, images[:some], labels[:some])
        sync(device)
        print(f"  {size:5d} rows: {some * len(shifts) / (time.perf_counter() - t):8.0f} images/s", flush=True)

    base_s, base = rows[0][1], rows[0][2]
    print(f"\n{macs / 1e6:.0f} M multiply-adds per image; share of peak = multiply-adds x images/s / peak")
    print(f"{'variant':<24} {'images/s':>9} {'vs loop':>8} {'of peak':>8}  accuracy per shift vs loop")
    ok = True
    for name, seconds, correct, kind in rows:
        rate = n / seconds
        diff = max(abs(c - b) for c, b in zip(correct, base)) / len(images)
        if kind == "exact":
            good = correct == base
            verdict = "identical" if good else f"MISMATCH (max {100 * diff:.2f} points)"
        elif kind == "fast":
            good = diff <= 0.001
            verdict = f"fast fp32: max {100 * diff:.2f} points on one shift" + ("" if good else " (OVER 0.1)")
        else:
            mean = sum(c - b for c, b in zip(correct, base)) / (len(base) * len(images))
            good = abs(mean) <= 0.005
            verdict = (f"{kind}: mean difference {100 * mean:+.2f} points{'' if good else ' (OVER 0.5)'}, "
                       f"max on one shift {100 * diff:.2f}")
        ok &= good
        share = macs * rate / peaks.get(kind, peaks["fp32"])
        print(f"{name:<24} {rate:9.0f} {base_s / seconds:7.2f}x {100 * share:7.0f}%  {verdict}")
    if id(app) in first:
        s, cell_images = first[id(app)]
        print(f"\n{app_name}: first complete heatmap after {s:.2f} s ({cell_images} images per cell; the loop has "
              f"one only at the end, after {base_s:.1f} s)")
    if compiled_row:
        s, warm_s = compiled_row
        if s < app_s:
            pays = warm_s / (1 / (n / s) - 1 / (n / app_s))
            print(f"+ compile: {warm_s:.0f} s to compile, then {app_s / s:.2f}x the eager path: it pays off after "
                  f"about {pays:,.0f} evaluations (the default 33x33 grid on 1,000 images is 1,089,000)")
        else:
            print(f"+ compile: {warm_s:.0f} s to compile and no faster than the eager path here: it never pays off")
    print(f"\nthe app's default grid path ({auto}) runs at {base_s / app_s:.2f}x the notebook loop in this run "
          "(target on a 2-core AVX2 CPU: >= 2.0x)")
    at0 = f", at (0, 0) {100 * base[shifts.index((0, 0))] / len(images):.2f}%" if (0, 0) in shifts else ""
    print(f"loop accuracy: mean over shifts {100 * sum(base) / (len(base) * len(images)):.2f}%{at0}")
    if not ok:
        print("ERROR: an exact fp32 variant disagrees with the loop, a fast fp32 one by more than 0.1 points on a "
              "shift, or a bf16/fp16 one by more than 0.5 points on average", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
