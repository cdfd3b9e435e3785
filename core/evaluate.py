"""The assignment's evaluate: top-1 accuracy and mean cross-entropy of a model on a set of images."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from padlens.core.data import Normalization
from padlens.core.device import autocast


@dataclass(frozen=True)
class EvalResult:
    accuracy: float   # fraction in [0, 1]
    loss: float       # mean cross-entropy
    count: int


def logits_of(model: nn.Module, images: torch.Tensor, norm: Normalization, device: torch.device,
              precision: str = "fp32", batch_size: int = 1000) -> torch.Tensor:
    """Float32 logits for uint8 images, batched, in eval and inference mode on `device` (model already there).

    Eval mode matters: in train mode batch norm would use (and update its statistics from) test batches.
    """
    out = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast(device, precision):
            for i in range(0, len(images), batch_size):
                x = norm.apply(images[i:i + batch_size].to(device)).contiguous(memory_format=torch.channels_last)
                out.append(model(x).float())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0)


def check_finite_outputs(logits: torch.Tensor, precision: str = "fp32") -> None:
    """Refuse outputs holding NaN or infinity: argmax would still pick a class and the accuracy would look
    like a measurement. Raises ValueError saying how many inputs and what to try."""
    bad = int((~torch.isfinite(logits)).any(1).sum()) if logits.numel() else 0
    if bad:
        low = precision in ("bf16", "fp16")
        raise ValueError(f"the model outputs NaN or infinity for {bad} of {len(logits)} inputs"
                         + (f" in {precision}" if low else "") + ", so no accuracy or loss can be measured. "
                         + ("Run it in fp32 (--precision fp32), which does not overflow; if that fails too, "
                            if low else "")
                         + "check its weights and forward (a division by zero, a log of 0, a diverged training run).")


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, norm: Normalization,
             device: torch.device, precision: str = "fp32", batch_size: int = 1000) -> EvalResult:
    logits = logits_of(model, images, norm, device, precision, batch_size)
    check_finite_outputs(logits, precision)
    labels = labels.to(logits.device)
    acc = (logits.argmax(1) == labels).float().mean().item()
    loss = F.cross_entropy(logits, labels).item()
    return EvalResult(acc, loss, len(labels))
