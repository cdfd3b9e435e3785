"""Fast CIFAR-10 training on a CPU (or GPU), airbench style, as a generator of progress events.

The whole split stays in memory as uint8; augmentation (random crop with zero padding, horizontal
flip, cutout) runs on whole batches with tensor ops. A run may start from a finished one's weights
(--init) and learn from teachers' predictions (core.distillation). Every epoch the run folder gets a
resumable state, so an interrupted run continues where it stopped.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from padlens.core.checkpoint import CheckpointError, load_checkpoint, load_state, save_checkpoint
from padlens.core.data import Dataset, Normalization
from padlens.core.device import autocast, prepare_model, resolve_precision
from padlens.core.distillation import soft_targets, teacher_probabilities
from padlens.core.evaluate import evaluate
from padlens.core.files import atomic_save
from padlens.core.jobs import forward
from padlens.core.model import ModelConfig, build_model, init_whitening


@dataclass(frozen=True)
class Recipe:
    epochs: int = 18
    batch_size: int = 512
    lr: float = 11.5               # per 1024 examples, airbench's scale
    momentum: float = 0.85
    weight_decay: float = 0.0153   # decoupled from the learning rate
    bias_scaler: float = 64.0      # batch-norm biases learn this much faster
    label_smoothing: float = 0.2
    crop_pad: int = 4              # random-crop translation range in pixels (black fill)
    flip: bool = True
    cutout: int = 0                # side of a random square set to the mean colour; 0 = off
    warmup: float = 0.23           # fraction of steps
    final_lr: float = 0.07         # the schedule's end as a fraction of its peak (airbench: 0.07)
    init: str = ""                 # checkpoint whose weights start the run: a second cycle of a finished one
    teachers: tuple[str, ...] = ()  # checkpoints whose mean predictions the run distills (core.distillation)
    distill: float = 0.7           # weight of the teachers' probabilities in the targets, when there are teachers
    seed: int = 0
    precision: str = "auto"        # core.device's rule: native bf16, else fp16 on a CUDA GPU, else fp32


@dataclass(frozen=True)
class TrainEvent:
    kind: str          # "teachers" (their predictions being computed), "step" or "epoch"
    epoch: int         # 1-based epoch in progress / just finished
    step: int          # global step done
    total_steps: int
    loss: float
    train_accuracy: float
    elapsed: float     # seconds of training in this and earlier sessions
    eta: float
    test_accuracy: float | None = None
    test_loss: float | None = None


def augment(images_padded: torch.Tensor, idx: torch.Tensor, pad: int, flip: bool, gen: torch.Generator):
    """Random crops of 32x32 from zero-padded images plus random flips, for one batch, no Python loop.

    Returns the batch and which images were mirrored."""
    n, dev = len(idx), images_padded.device   # random numbers from the CPU generator, indexing on the data's device
    size = images_padded.shape[-1] - 2 * pad
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(dev)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(dev)
    ar = torch.arange(size, device=dev)
    rows = (oy[:, None] + ar)[:, :, None]
    cols = (ox[:, None] + ar)[:, None, :]
    flipped = torch.zeros(n, dtype=torch.bool, device=dev)
    if flip:
        flipped = (torch.rand(n, generator=gen) < 0.5).to(dev)
        cols = torch.where(flipped[:, None, None], cols.flip(-1), cols)
    batch = images_padded[idx.to(dev)]
    return batch[torch.arange(n, device=dev)[:, None, None], :, rows, cols].permute(0, 3, 1, 2), flipped


def cutout(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Zero one random size x size square per normalized image (= the mean colour), fully inside the frame.

    Regularizes long runs (airbench96 uses 12 with 40 epochs); whole batch by broadcasting, no loop."""
    if size <= 0:
        return x
    n, _, h, w = x.shape
    top = torch.randint(0, h - size + 1, (n,), generator=gen).to(x.device)
    left = torch.randint(0, w - size + 1, (n,), generator=gen).to(x.device)
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    rows = (ys[None] >= top[:, None]) & (ys[None] < top[:, None] + size)
    cols = (xs[None] >= left[:, None]) & (xs[None] < left[:, None] + size)
    return x.masked_fill((rows[:, :, None] & cols[:, None, :])[:, None], 0)


def lr_factor(step: int, total: int, warmup: float, final: float = 0.07) -> float:
    """Airbench's triangle: 0.2 -> 1 over the warmup, then down to `final` (0.07 in airbench)."""
    w = int(total * warmup)
    if step < w:
        return 0.2 + 0.8 * step / w
    return 1.0 - (1.0 - final) * (step - w) / max(1, total - w)


def training_precision(precision: str, device: torch.device) -> str:
    """core.device's rule for training: fp32-fast is plain fp32 here, there is no batch norm to fold while
    it learns. "auto" stays in the saved recipe, so a run resumes on another machine."""
    precision = resolve_precision(precision, device)
    return "fp32" if precision == "fp32-fast" else precision


def make_optimizer(model: nn.Module, r: Recipe) -> torch.optim.SGD:
    kilostep = 1024 * (1 + 1 / (1 - r.momentum))
    lr = r.lr / kilostep
    wd = r.weight_decay * r.batch_size / kilostep
    norm_biases = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim == 1]
    others = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim != 1]
    lr_b = lr * r.bias_scaler
    groups = [dict(params=norm_biases, lr=lr_b, weight_decay=wd / lr_b, initial_lr=lr_b),
              dict(params=others, lr=lr, weight_decay=wd / lr, initial_lr=lr)]
    return torch.optim.SGD(groups, momentum=r.momentum, nesterov=True)


def train(train_set: Dataset, test_set: Dataset | None, run_dir: str | Path, config: ModelConfig = ModelConfig(),
          recipe: Recipe = Recipe(), device: torch.device = torch.device("cpu"),
          should_stop: Callable[[], bool] = lambda: False, report_every: int = 5) -> Iterator[TrainEvent]:
    """Train (or resume) into run_dir; yields TrainEvents; writes run_dir/model.pt when done."""
    precision = training_precision(recipe.precision, device)
    run_dir = Path(run_dir)
    state_path = run_dir / "state.pt"
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    norm = Normalization.of(train_set.images)
    model = build_model(config)
    init_whitening(model, norm.apply(train_set.images[:5000]))
    init_meta = None
    if recipe.init:   # restart from a finished run's weights (SGDR-style second cycle), its normalization too
        init_model, init_meta = load_checkpoint(recipe.init)
        # the padding may change (the weights fit every mode: how a partial-padded model starts from a zero-padded one)
        if replace(ModelConfig.from_dict(init_meta["model_config"]), padding_mode=config.padding_mode) != config:
            raise CheckpointError(f"--init {recipe.init} is a {init_meta['model_config']} model, not the "
                                  f"{config.to_dict()} asked for; pass the same --widths and --activation.")
        model.load_state_dict(init_model.state_dict())
        norm = Normalization.from_dict(init_meta["normalization"])
    model = prepare_model(model, device)
    opt = make_optimizer(model, recipe)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")   # fp16 gradients would underflow
    ema = {k: v.clone() for k, v in model.state_dict().items()}
    steps_per_epoch = len(train_set) // recipe.batch_size
    total = recipe.epochs * steps_per_epoch
    start_epoch, elapsed, history = 0, 0.0, []
    if state_path.is_file():
        s = torch.load(state_path, map_location="cpu", weights_only=True)
        saved = Recipe(**{**s["recipe"], "teachers": tuple(s["recipe"].get("teachers", ()))})
        if saved != recipe and recipe == Recipe(**{**asdict(saved), "precision": recipe.precision}):
            raise RuntimeError(f"{state_path} belongs to a run trained in precision {saved.precision!r}; "
                               f"resume it with --precision {saved.precision}, or use a new --run folder.")
        if saved != recipe or s["model_config"] != config.to_dict():
            raise RuntimeError(f"{state_path} belongs to a run with another recipe or model; "
                               "use a new --run folder or the same settings.")
        load_state(model, s["model"], str(state_path))
        opt.load_state_dict(s["optimizer"])
        ema = {k: v.to(device) for k, v in s["ema"].items()}
        gen.set_state(s["generator"])
        torch.set_rng_state(s["torch_rng"])
        start_epoch, elapsed, history = s["epoch"], s["elapsed"], s["history"]
        norm = Normalization.from_dict(s["normalization"])
    targets = None
    if recipe.teachers:   # once per run, kept in the run folder so a resumed run does not redo it
        target_path = run_dir / "teachers.pt"
        kept = torch.load(target_path, map_location="cpu", weights_only=True) if target_path.is_file() else {}
        if kept.get("teachers") == list(recipe.teachers) and len(kept["probabilities"]) == len(train_set):
            targets = kept["probabilities"]
        else:
            job = teacher_probabilities(list(recipe.teachers), train_set.images, device, precision,
                                        should_stop)
            targets = yield from forward(job, lambda p: TrainEvent("teachers", 0, p.done, p.total, 0.0, 0.0,
                                                                   elapsed, 0.0))
            if targets is None:
                return
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_save({"teachers": list(recipe.teachers), "probabilities": targets}, target_path)
        targets = targets.to(device)
    # the whole split lives on the device (airbench); black border, like RandomCrop(padding=4)
    padded = F.pad(train_set.images.to(device), (recipe.crop_pad,) * 4)
    labels = train_set.labels.to(device)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing, reduction="sum")
    ema_schedule = 0.95 ** 5 * (torch.arange(total + 1) / total) ** 3
    step = start_epoch * steps_per_epoch
    session_t0, session_step = time.perf_counter(), step
    for epoch in range(start_epoch, recipe.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(train_set), generator=gen)
        run_loss, run_correct, run_n = 0.0, 0, 0
        for b in range(steps_per_epoch):
            if should_stop():
                return
            idx = perm[b * recipe.batch_size:(b + 1) * recipe.batch_size]
            x, flipped = augment(padded, idx, recipe.crop_pad, recipe.flip, gen)
            x = cutout(norm.apply(x.to(device)), recipe.cutout, gen).contiguous(memory_format=torch.channels_last)
            y = labels[idx.to(device)]
            f = lr_factor(step, total, recipe.warmup, recipe.final_lr)
            for g in opt.param_groups:
                g["lr"] = g["initial_lr"] * f
            with autocast(device, precision):
                out = model(x)
                if targets is None:
                    loss = loss_fn(out.float(), y)
                else:   # the teachers' view of this image or its mirror, mixed with the smoothed label
                    soft = soft_targets(targets[idx.to(device), flipped.long()], y, recipe.distill,
                                        recipe.label_smoothing)
                    loss = F.cross_entropy(out.float(), soft, reduction="sum")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
            if step % 5 == 0 or step == total:   # lookahead: pull weights toward a slow average
                decay = 1.0 if step == total else ema_schedule[step].item()
                with torch.no_grad():
                    for k, v in model.state_dict().items():
                        if v.dtype.is_floating_point:
                            ema[k].lerp_(v, 1 - decay)
                            v.copy_(ema[k])
            run_loss += loss.item()
            run_correct += (out.argmax(1) == y).sum().item()
            run_n += len(y)
            if step % report_every == 0:
                rate = (time.perf_counter() - session_t0) / (step - session_step)
                yield TrainEvent("step", epoch + 1, step, total, run_loss / run_n, run_correct / run_n,
                                 elapsed + time.perf_counter() - t0, rate * (total - step))
        elapsed += time.perf_counter() - t0
        test = evaluate(model, test_set.images, test_set.labels, norm, device, precision) if test_set else None
        history.append({"epoch": epoch + 1, "loss": run_loss / run_n, "train_accuracy": run_correct / run_n,
                        "test_accuracy": test.accuracy if test else None, "elapsed": elapsed})
        atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "ema": ema,
                     "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "epoch": epoch + 1,
                     "elapsed": elapsed, "history": history, "recipe": asdict(recipe),
                     "model_config": config.to_dict(), "normalization": norm.to_dict()}, state_path)
        yield TrainEvent("epoch", epoch + 1, step, total, run_loss / run_n, run_correct / run_n, elapsed,
                         elapsed / (epoch + 1) * (recipe.epochs - epoch - 1),
                         test.accuracy if test else None, test.loss if test else None)
    model.eval()
    final = evaluate(model, test_set.images, test_set.labels, norm, device, "fp32") if test_set else None
    metrics = {"training_seconds": round(elapsed, 1), "history": history,
               "device": str(device), "train_data": train_set.source, "train_precision": precision}
    if final:
        metrics.update(test_accuracy=final.accuracy, test_loss=final.loss, test_data=test_set.source,
                       test_images=final.count, test_precision="fp32")
    if init_meta:   # the time and accuracy of the run this one continued, so the total cost stays on record
        m = init_meta.get("metrics", {})
        metrics["init"] = {"path": recipe.init, "training_seconds": m.get("training_seconds"),
                           "test_accuracy": m.get("test_accuracy"), "recipe": init_meta.get("recipe")}
    save_checkpoint(run_dir / "model.pt", model, config, norm, asdict(recipe), metrics)
