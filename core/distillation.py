"""Knowledge distillation (Hinton et al. 2015): train toward an ensemble's predicted probabilities.

An ensemble of finished models is more accurate than any one of them; its soft predictions carry
which wrong classes look alike, and a single model trained on them gets part of that accuracy without
the ensemble's cost at inference. The teachers' probabilities are computed once per training image and
its mirror image (the two views a crop of at most a few pixels mostly keeps), not per augmented batch,
so distillation adds minutes, not a teacher forward pass per step.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from padlens.core.checkpoint import CheckpointError, load_checkpoint
from padlens.core.data import Normalization
from padlens.core.device import prepare_model
from padlens.core.evaluate import logits_of
from padlens.core.jobs import Job, Progress, never


def teacher_probabilities(paths: list[str | Path], images: torch.Tensor, device: torch.device,
                          precision: str = "bf16", should_stop: Callable[[], bool] = never) -> Job:
    """Mean softmax of the teachers for every image (view 0) and its horizontal mirror (view 1):
    a float32 tensor (n, 2, classes). Returns None when stopped."""
    total = 2 * len(paths)
    out = None
    for k, path in enumerate(paths):
        model, meta = load_checkpoint(path)
        if meta["model_config"].get("padding_mode") != "zeros":
            raise CheckpointError(f"teacher {path} is {meta['model_config'].get('padding_mode')}-padded; "
                                  "zero-padded teachers only, so no other padding's behaviour is distilled "
                                  "into a model whose padding is under study.")
        model = prepare_model(model, device)
        norm = Normalization.from_dict(meta["normalization"])
        for view in (0, 1):
            if should_stop():
                return None
            x = images if view == 0 else images.flip(-1)
            p = logits_of(model, x, norm, device, precision).softmax(1).cpu()
            if out is None:
                out = torch.zeros(len(images), 2, p.shape[1])
            if p.shape[1] != out.shape[2]:
                raise CheckpointError(f"teacher {path} predicts {p.shape[1]} classes, not {out.shape[2]}.")
            out[:, view] += p / len(paths)
            yield Progress(2 * k + view + 1, total, f"teacher {Path(path).name}")
    return out


def soft_targets(teacher: torch.Tensor, labels: torch.Tensor, weight: float, smoothing: float) -> torch.Tensor:
    """weight x the teachers' probabilities + (1 - weight) x the label-smoothed one-hot labels."""
    classes = teacher.shape[1]
    hard = torch.full_like(teacher, smoothing / classes)
    hard.scatter_(1, labels[:, None], 1 - smoothing + smoothing / classes)
    return weight * teacher + (1 - weight) * hard
