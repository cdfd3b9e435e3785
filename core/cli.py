"""The `padlens` command: no subcommand opens the app; subcommands run the core without a window."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from core.checkpoint import CheckpointError
from core.data import DatasetError


def progress_line(frac: float, text: str, width: int = 28) -> None:
    """One self-overwriting progress bar on stderr."""
    filled = int(width * min(max(frac, 0.0), 1.0))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * frac:5.1f}% {text}\033[K")
    sys.stderr.flush()


def fmt_time(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _common(p: argparse.ArgumentParser, data: bool = True) -> None:
    if data:
        p.add_argument("--data", help="data root (default: $PADLENS_DATA, else ~/.cache/padlens/data)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:1 ...")


def cmd_train(a) -> int:
    from core.data import load_split
    from core.device import pick_device
    from core.model import ModelConfig
    from core.train import Recipe, train
    device = pick_device(a.device)
    config = ModelConfig(widths=tuple(a.widths), padding_mode=a.padding, activation=a.activation)
    recipe = Recipe(epochs=a.epochs, batch_size=a.batch_size, crop_pad=a.crop_pad, seed=a.seed,
                    precision="fp32" if a.fp32 else "bf16")
    train_set, test_set = load_split(a.data, "train"), load_split(a.data, "test")
    print(f"training on {train_set.source}, {len(train_set)} images, device {device}; run folder {a.run}",
          flush=True)
    for ev in train(train_set, test_set, a.run, config, recipe, device):
        if ev.kind == "step":
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
    from core.checkpoint import load_checkpoint
    from core.data import Normalization, load_split
    from core.device import pick_device, prepare_model, resolve_precision
    from core.evaluate import evaluate
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


def cmd_layers(a) -> int:
    from core.checkpoint import load_checkpoint
    from core.layers import describe_layers, format_layers
    model, _ = load_checkpoint(a.checkpoint)
    print(format_layers(describe_layers(model)))
    return 0


def cmd_download(a) -> int:
    from core.data import download
    print(f"CIFAR-10 is in {download(a.data)}")
    return 0


def default_ckpt() -> str:
    from core.checkpoint import default_checkpoint
    try:
        return str(default_checkpoint())
    except CheckpointError:
        return "checkpoints/vgg_zeros.pt"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="padlens", description=__doc__)
    p.add_argument("--checkpoint", help="open the app with this checkpoint")
    sub = p.add_subparsers(dest="command")
    t = sub.add_parser("train", help="train a model (resumable run folder)")
    _common(t)
    t.add_argument("--run", default="runs/zeros", help="run folder; an existing one is resumed")
    t.add_argument("--out", help="also copy the final checkpoint here")
    t.add_argument("--padding", default="zeros", choices=["zeros", "reflect", "replicate", "circular", "symmetric"])
    t.add_argument("--widths", type=int, nargs="+", default=[64, 256, 256])
    t.add_argument("--activation", default="gelu", choices=["gelu", "relu"])
    t.add_argument("--epochs", type=int, default=16)
    t.add_argument("--batch-size", type=int, default=512)
    t.add_argument("--crop-pad", type=int, default=4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--fp32", action="store_true", help="exact fp32 instead of bf16 autocast")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="accuracy and mean cross-entropy on a split or any ImageFolder tree")
    _common(e)
    e.add_argument("--checkpoint", default=None)
    e.add_argument("--split", default="test", choices=["train", "test"])
    e.add_argument("--limit", type=int, default=0, help="only the first N images")
    e.add_argument("--precision", default="fp32", choices=["auto", "bf16", "fp32"])
    e.add_argument("--json", action="store_true", help="one JSON line instead of key: value lines")
    e.set_defaults(func=cmd_eval)
    la = sub.add_parser("layers", help="list every layer with index path, parameters and output shape")
    la.add_argument("--checkpoint", default=None)
    la.set_defaults(func=cmd_layers)
    d = sub.add_parser("download", help="download the original CIFAR-10 with torchvision")
    d.add_argument("--data")
    d.set_defaults(func=cmd_download)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if getattr(a, "checkpoint", "unset") is None:
        a.checkpoint = default_ckpt()
    try:
        if a.command is None:   # the app lives in gui/; imported only here so core never loads Qt
            return importlib.import_module("gui.app").main(a)
        return a.func(a)
    except (CheckpointError, DatasetError, ValueError) as e:
        print(f"padlens: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\npadlens: interrupted; a training run resumes from its last saved epoch", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
