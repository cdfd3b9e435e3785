"""Benchmark of the translation grid: the plain notebook loop against the fast path, step by step.

All variants evaluate the same images under the same shifts in one run:

  loop               Python loop over shifts; each shift runs torchvision's affine on the images and a
                     DataLoader (batch 256) over a TensorDataset of them; fp32, channels-first, BN unfused
  batched            many shifted copies per forward pass (fp32, channels-first, unfused)
  + channels_last    the same in channels_last memory format
  + bf16             bf16 autocast
  + BN folded        batch norm folded into the convolutions (core.inference.fold_batchnorm)
  + slice shifts     integer shifts copied as slices (core.shifts.shifted_copies, bit-identical to affine)
  translation_grid   core.translation.translation_grid as the app and CLI run it: the above, plus batches
                     of 128 rows that cut through shift boundaries (small batches stay in the CPU caches)
                     and one forward pass for shifts that leave only fill; also the time to its first
                     complete (progressive) heatmap
  + compile          the same with torch.compile (inductor freezing, dynamic batch size; --compile)

For each it prints images/s (one image under one shift = one image), the speed-up over the loop, and how
far its per-shift accuracies are from the loop's: fp32 variants must match exactly (the exit status is 1
if one does not), bf16 ones report their largest difference.

    python bench/translation.py [--images 200] [--range -8 8] [--step 2] [--threads N] [--compile]
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path


import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from padlens.core.checkpoint import CheckpointError, default_checkpoint, load_checkpoint  # noqa: E402
from padlens.core.data import DatasetError, Normalization, load_split, resolve_data_root, stratified_subset  # noqa: E402
from padlens.core.device import autocast, bf16_supported, pick_device  # noqa: E402
from padlens.core.inference import compile_for_inference, fold_batchnorm  # noqa: E402
from padlens.core.jobs import run_job  # noqa: E402
from padlens.core.model import ModelConfig, build_model  # noqa: E402
from padlens.core.shifts import SHIFT_MODES, affine_shift, shifted_copies  # noqa: E402
from padlens.core.translation import GridSpec, translation_grid  # noqa: E402

from padlens.core.custom_model import CIFAR10_NORMALIZATION as CIFAR_NORM  # noqa: E402


def load_model(path: str | None):
    """(model, normalization, description); a random default model when no checkpoint exists yet."""
    if path:
        model, meta = load_checkpoint(path)
        return model, Normalization.from_dict(meta["normalization"]), f"checkpoint {path}"
    try:
        path = default_checkpoint()
    except CheckpointError:
        torch.manual_seed(0)
        model = build_model(ModelConfig()).eval()
        return model, CIFAR_NORM, "NO CHECKPOINT FOUND: a randomly initialised default model (timings still valid)"
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


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="default: the flagship checkpoint, else a random default model")
    p.add_argument("--data", help="data root (default: $PADLENS_DATA); random images when there is none")
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--range", type=int, nargs=2, default=[-8, 8], metavar=("LO", "HI"))
    p.add_argument("--step", type=int, default=2)
    p.add_argument("--mode", default="affine", choices=list(SHIFT_MODES))
    p.add_argument("--threads", type=int, help="CPU threads (default: $PADLENS_THREADS, else all cores)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the fastest variant")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    device = pick_device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    spec = GridSpec.square(a.range[0], a.range[1], a.step)
    shifts = [(int(dx), int(dy)) for dy in spec.dys for dx in spec.dxs]
    model, norm, model_desc = load_model(a.checkpoint)
    images, labels, data_desc = load_images(a.data, a.images, a.seed)
    n = len(images) * len(shifts)
    print(f"model: {model_desc}\ndata: {data_desc}\n{len(images)} images x {len(shifts)} shifts ({a.mode}) "
          f"= {n} evaluations; device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}"
          f"{'' if device.type != 'cpu' else f', native bf16: {bf16_supported(device)}'}", flush=True)

    plain = copy.deepcopy(model).to(device=device, memory_format=torch.contiguous_format).eval()
    cl = copy.deepcopy(model).to(device=device, memory_format=torch.channels_last).eval()   # same weights
    rows: list[tuple[str, float, list[int], str]] = []

    def timed(name, fn, precision, warm=None):
        if warm is not None:        # warm-up on a small batch: allocator, oneDNN primitives, compilation
            t = time.perf_counter()
            warm()
            sync(device)
            warm_s = time.perf_counter() - t
        t = time.perf_counter()
        correct = fn()
        sync(device)
        seconds = time.perf_counter() - t
        rows.append((name, seconds, correct, precision))
        note = f" (+{warm_s:.1f} s warm-up/compile, not counted)" if warm is not None and warm_s > 1 else ""
        print(f"  {name:<22} {seconds:8.2f} s{note}", flush=True)

    few = images[:8], labels[:8]
    one = shifts[:1]
    print("timing:", flush=True)
    timed("loop", lambda: loop_correct(plain, images, labels, norm, shifts, a.mode, device), "fp32",
          lambda: loop_correct(plain, *few, norm, one, a.mode, device))
    timed("batched", lambda: batched_correct(plain, images, labels, norm, shifts, a.mode, device, False, "fp32"),
          "fp32", lambda: batched_correct(plain, *few, norm, one, a.mode, device, False, "fp32"))
    timed("+ channels_last", lambda: batched_correct(cl, images, labels, norm, shifts, a.mode, device, True, "fp32"),
          "fp32", lambda: batched_correct(cl, *few, norm, one, a.mode, device, True, "fp32"))
    timed("+ bf16", lambda: batched_correct(cl, images, labels, norm, shifts, a.mode, device, True, "bf16"),
          "bf16", lambda: batched_correct(cl, *few, norm, one, a.mode, device, True, "bf16"))
    fold_free = fold_batchnorm(model).to(device=device, memory_format=torch.channels_last)
    timed("+ BN folded", lambda: batched_correct(fold_free, images, labels, norm, shifts, a.mode, device, True,
                                                 "bf16"),
          "bf16", lambda: batched_correct(fold_free, *few, norm, one, a.mode, device, True, "bf16"))
    timed("+ slice shifts", lambda: batched_correct(fold_free, images, labels, norm, shifts, a.mode, device, True,
                                                    "bf16", slices=True),
          "bf16", lambda: batched_correct(fold_free, *few, norm, one, a.mode, device, True, "bf16", slices=True))

    first: dict[int, tuple[float, int]] = {}   # per model: seconds to the first complete heatmap, its images

    def core_grid(model, precision="bf16"):
        t = time.perf_counter()

        def on_partial(r):
            first.setdefault(id(model), (time.perf_counter() - t, r.images))
        r = run_job(translation_grid(model, images, labels, norm, spec, a.mode, device, precision,
                                     fill_color=norm.mean), on_partial=on_partial)   # the loop's fill
        return [int(r.correct[r.cell(dx, dy)]) for dx, dy in shifts]

    def warm_grid(model, precision="bf16"):
        run_job(translation_grid(model, *few, norm, GridSpec.square(0, 0, 1), a.mode, device, precision,
                                 fill_color=norm.mean))

    # the app's code path in exact fp32 (unfolded: folding changes rounding) must match the loop image for image
    timed("translation_grid fp32", lambda: core_grid(cl, "fp32"), "fp32", lambda: warm_grid(cl, "fp32"))
    timed("translation_grid", lambda: core_grid(fold_free), "bf16", lambda: warm_grid(fold_free))
    if a.compile:
        try:
            compiled = compile_for_inference(fold_free)
            timed("+ compile", lambda: core_grid(compiled), "bf16", lambda: warm_grid(compiled))
        except Exception as e:  # noqa: BLE001 - no compiler, unsupported platform ...
            print(f"  + compile               failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")

    base_s, base = rows[0][1], rows[0][2]
    print(f"\n{'variant':<22} {'images/s':>10} {'vs loop':>8}  accuracy per shift vs loop")
    ok = True
    for name, seconds, correct, precision in rows:
        diff = max(abs(c - b) for c, b in zip(correct, base)) / len(images)
        if precision == "fp32":
            same = correct == base
            ok &= same
            verdict = "identical" if same else f"MISMATCH (max {100 * diff:.2f} points)"
        else:   # the bound: bf16 accuracy within 0.5 points of fp32 (over the grid)
            mean = sum(c - b for c, b in zip(correct, base)) / (len(base) * len(images))
            ok &= abs(mean) <= 0.005
            verdict = (f"bf16: mean difference {100 * mean:+.2f} points{'' if abs(mean) <= 0.005 else ' (OVER 0.5)'}, "
                       f"max on one shift {100 * diff:.2f}")
        print(f"{name:<22} {n / seconds:10.0f} {base_s / seconds:7.1f}x  {verdict}")
    if id(fold_free) in first:
        s, k = first[id(fold_free)]
        print(f"\ntranslation_grid: first complete heatmap after {s:.2f} s ({k} images per cell; the loop has "
              f"one only at the end, after {base_s:.1f} s)")
    at0 = f", at (0, 0) {100 * base[shifts.index((0, 0))] / len(images):.2f}%" if (0, 0) in shifts else ""
    print(f"\nloop accuracy: mean over shifts {100 * sum(base) / (len(base) * len(images)):.2f}%{at0}")
    if not ok:
        print("ERROR: an fp32 variant disagrees with the loop, or a bf16 one is more than 0.5 points off",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
