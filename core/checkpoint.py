"""Checkpoint files: a state dict plus the metadata that makes it meaningful, loadable with weights_only.

Every way a file can be wrong (not there, not a torch file, not ours, another architecture, missing or
extra keys) becomes a CheckpointError whose message names the problem.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path

import torch
from torch import nn

from padlens.core.data import Normalization
from padlens.core.files import atomic_save
from padlens.core.model import ModelConfig, build_model

FORMAT = "padlens-checkpoint"
VERSION = 1


def shipped_dir() -> Path:
    """Where the shipped checkpoints lie: $PADLENS_CHECKPOINTS when set, else the package's own
    (padlens.checkpoints: the repository's checkpoints/ in an editable install, package data in a wheel)."""
    env = os.environ.get("PADLENS_CHECKPOINTS")
    return Path(env).expanduser() if env else Path(__file__).resolve().parent.parent / "checkpoints"


class CheckpointError(RuntimeError):
    pass


def save_checkpoint(path, model: nn.Module, config: ModelConfig, norm: Normalization, recipe: dict,
                    metrics: dict) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_save({"format": FORMAT, "version": VERSION, "state_dict": state, "model_config": config.to_dict(),
                 "normalization": norm.to_dict(), "recipe": recipe, "metrics": metrics,
                 "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}, path)


def load_weights_file(path, what: str = "checkpoint file"):
    """torch.load(path, weights_only=True) with every failure a CheckpointError that names it: no such file,
    a folder, no permission, empty, damaged (truncated), unsafe (Python objects beyond tensors) or not a torch
    file at all. Never suggests weights_only=False: PadLens loads weights only."""
    path = Path(path).expanduser()
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.pt*"))[:5]
        raise CheckpointError(f"{path} is a folder, not a {what}; choose the .pt file itself"
                              + (f" (it holds {', '.join(inside)})." if inside else "."))
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what}.")
    head = b""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if not head:
                raise CheckpointError(f"{path} is empty (0 bytes), not a {what}: an interrupted copy or download? "
                                      "Copy it again.")
            f.seek(0)
            return torch.load(f, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except PermissionError:
        raise CheckpointError(f"{path} cannot be read: permission denied. Make it readable (chmod u+r) or copy "
                              "it somewhere you may read.") from None
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a damaged or foreign file
        text = str(e)
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if unsafe:
            why = (f"it holds Python objects besides tensors ({unsafe.group(1)}), which could run code when loaded; "
                   "PadLens loads weights only (torch.load with weights_only=True) and refuses such files. Save "
                   "plain tensors: torch.save(model.state_dict(), path)")
        elif head == b"PK\x03\x04":   # torch.save's zip format, but the archive does not read
            why = "it is damaged (a truncated or partly copied torch file); copy or save it again"
        else:
            why = (f"it is not a file written by torch.save ({type(e).__name__}); PadLens loads weights only, "
                   "saved with torch.save")
        raise CheckpointError(f"{path} is not a {what} PadLens can read: {why}.") from None


def read_checkpoint(path) -> dict:
    path = Path(path)
    ckpt = load_weights_file(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a PadLens checkpoint (no '{FORMAT}' marker); a bare state dict "
                              "of your own model opens through File > Open custom model.")
    for key in ("state_dict", "model_config", "normalization"):
        if key not in ckpt:
            raise CheckpointError(f"{path} lacks its '{key}' entry; the file is incomplete.")
    return ckpt


def load_state(model: nn.Module, state: dict, what: str, mismatch_hint: str = "") -> None:
    """Load weights strictly, turning key or shape mismatches, whole-number weights and NaN or infinite
    values into one readable message (mismatch_hint follows 'does not fit the model')."""
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{what} is not a state dict: {not_tensors[:5]} hold no tensors.")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if extra:
        problems.append(f"unexpected keys {extra[:5]}{' ...' if len(extra) > 5 else ''}")
    if wrong:
        problems.append(f"shape mismatches {wrong[:3]}{' ...' if len(wrong) > 3 else ''}")
    if problems:
        raise CheckpointError(f"{what} does not fit the model{mismatch_hint}: " + "; ".join(problems) + ".")
    not_float = [f"{k} ({str(state[k].dtype).removeprefix('torch.')})" for k in own
                 if own[k].is_floating_point() and not state[k].is_floating_point()]
    if not_float:   # load_state_dict would round-trip them into floats: weights that lost everything
        more = f" and {len(not_float) - 3} more" if len(not_float) > 3 else ""
        raise CheckpointError(f"{what} holds whole numbers where the model has float weights: "
                              f"{', '.join(not_float[:3])}{more}. Use the weights as trained (float32, bfloat16 or "
                              "float16), not a converted copy.")
    check_finite(state, what)
    model.load_state_dict(state)


def check_finite(tensors: dict, what: str) -> None:
    """Refuse weights holding NaN or infinity (a diverged training run, a damaged file): every number the
    model gives would be meaningless, and accuracies computed from them look plausible."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{what} holds NaN or infinite weights in {', '.join(bad[:3])}"
                              f"{' ...' if len(bad) > 3 else ''} "
                              f"({len(bad)} of {len(tensors)} tensors): the training diverged or the file was "
                              "damaged. Use weights saved before that.")


def load_checkpoint(path) -> tuple[nn.Sequential, dict]:
    """Build the model a checkpoint describes and load its weights; returns (model in eval mode, metadata)."""
    ckpt = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(ckpt["model_config"])
        model = build_model(config)
        Normalization.from_dict(ckpt["normalization"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path} has an invalid model config or normalization: {e}") from None
    load_state(model, ckpt["state_dict"], str(path), " (another architecture?)")
    model.eval()
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    meta["path"] = str(path)
    return model, meta


# the shipped padding variants, vgg_<mode>.pt (symmetric = replicate for 3x3 kernels with padding 1: not shipped)
SHIPPED_MODES = ("zeros", "reflect", "replicate", "circular", "partial")
FLAGSHIP = "vgg_zeros_distilled.pt"   # the most accurate model: what the app and the commands open by default


def padding_variants() -> list[Path]:
    """The shipped padding comparison: one model per mode, all of one architecture (and recipe and seed, but
    partial: a fine-tune of the zero-padded one), zero padding first (the baseline every fix is compared with)."""
    return [p for p in (shipped_dir() / f"vgg_{m}.pt" for m in SHIPPED_MODES) if p.is_file()]


def default_checkpoint() -> Path:
    """The flagship (most accurate) checkpoint, else the zero-padded variant."""
    found = [p for p in [shipped_dir() / FLAGSHIP, *padding_variants()] if p.is_file()]
    if not found:
        where = "$PADLENS_CHECKPOINTS" if os.environ.get("PADLENS_CHECKPOINTS") else "the installed package"
        raise CheckpointError(f"No shipped checkpoint in {shipped_dir()} ({where}); point PADLENS_CHECKPOINTS at a "
                              "folder holding vgg_zeros_distilled.pt or vgg_zeros.pt, pass --checkpoint, or train "
                              "one with `padlens train`.")
    return found[0]


GENERIC_STEMS = ("model", "checkpoint", "best", "last", "final")   # file names shared by every run


def checkpoint_labels(paths) -> list[str]:
    """Short unique names for checkpoints (the report's folders, the GUI's comparison rows).

    The file stem, or the folder name when the stem is one every run shares (runs/<name>/model.pt ->
    <name>); names still equal get their parent folder in front, and identical paths a -2, -3 suffix.
    """
    paths = [Path(p).absolute() for p in paths]
    generic = [p.stem.lower() in GENERIC_STEMS and bool(p.parent.name) for p in paths]
    names = [p.parent.name if g else p.stem for p, g in zip(paths, generic)]
    above = [(p.parent.parent if g else p.parent).name for p, g in zip(paths, generic)]
    names = [f"{a}/{n}" if names.count(n) > 1 else n for n, a in zip(names, above)]
    return [f"{n}-{names[:i].count(n) + 1}" if n in names[:i] else n for i, n in enumerate(names)]
