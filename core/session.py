"""What the explorer holds: one model with its metadata, the data set, and cached activations.

Free of Qt (the napari way): the GUI only asks it for things and draws them. Data flows one way:
input -> one forward pass -> every layer's output cached by layer path -> views.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from padlens.core.activations import Activations, blank_input, capture, resize_input
from padlens.core.checkpoint import load_checkpoint
from padlens.core.data import CLASSES, Normalization
from padlens.core.device import pick_device, prepare_model, resolve_precision
from padlens.core.files import file_identity
from padlens.core.jobs import Job, never, run_job
from padlens.core.layers import LayerInfo, describe_layers
from padlens.core.spatial_bias import check_input_size


@dataclass
class LoadedModel:
    model: nn.Module
    norm: Normalization
    name: str
    meta: dict = field(default_factory=dict)
    classes: tuple[str, ...] = CLASSES
    cache_id: str | None = None   # what its results are cached under: its files' content; None: never cached

    def class_name(self, i: int) -> str:
        """Name of output i; a user's model may have more outputs than CIFAR-10 has classes."""
        i = int(i)
        return self.classes[i] if 0 <= i < len(self.classes) else f"output {i}"

    @property
    def padding_mode(self) -> str:
        modes = sorted({getattr(m, "padding_mode", "zeros") for m in self.model.modules()
                        if isinstance(m, nn.Conv2d)})
        return "/".join(modes) or "none"

    @property
    def accuracy_text(self) -> str:
        m = self.meta.get("metrics", {})
        if m.get("test_accuracy") is None:
            return "accuracy unknown"
        # the data set by name, not the folder the training machine read it from
        data = str(m.get("test_data", "?")).split(" (")[0].replace(" JPEG", " (lossy JPEG copy)")
        return f"{100 * m['test_accuracy']:.2f}% on {m.get('test_images', '?')} images of {data}"


def load_model(path: str | Path, device: torch.device | None = None) -> LoadedModel:
    model, meta = load_checkpoint(path)
    device = device or pick_device()
    return LoadedModel(prepare_model(model, device), Normalization.from_dict(meta["normalization"]),
                       Path(path).stem, meta, cache_id=file_identity(path))


def load_custom_job(py_file, function: str, weights=None, device: torch.device | None = None,
                    normalization: str = "cifar10", should_stop: Callable[[], bool] = never) -> Job:
    """Job: a user's own model (see core.custom_model), fed inputs normalized as it was trained
    (core.custom_model.NORMALIZATIONS); Progress names each step (import, build, weights, a checking
    forward pass), so the app can run it off its window's thread and say where a stuck model hangs.
    Returns the LoadedModel, or None when stopped between steps."""
    from padlens.core.custom_model import NORMALIZATIONS, CustomModelError, describe, load_custom_model_job
    if normalization not in NORMALIZATIONS:
        raise CustomModelError(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")
    what, norm = NORMALIZATIONS[normalization]
    model = yield from load_custom_model_job(py_file, function, weights, should_stop)
    if model is None:
        return None
    info = describe(model)
    name = f"{Path(py_file).stem}.{function}"
    meta = {"path": str(weights or py_file), "custom": True, "summary": f"{info.summary} Inputs: {what}.",
            "normalization": norm.to_dict(), "normalization_name": normalization}
    # the code, the function, the weights and the input scaling together make the model's answers;
    # without weights it is a fresh random init every time, nothing to cache
    cache_id = (f"{file_identity(py_file)}:{function}:{file_identity(weights)}:{normalization}" if weights
                else None)
    return LoadedModel(prepare_model(model, device or pick_device()), norm, name, meta, cache_id=cache_id)


def load_custom(py_file, function: str, weights=None, device: torch.device | None = None,
                normalization: str = "cifar10") -> LoadedModel:
    """load_custom_job, blocking (the command line)."""
    return run_job(load_custom_job(py_file, function, weights, device, normalization))


@dataclass
class Result:
    """One input's pass: every layer's output, the logits (None for a dataset mean), the input shown."""
    acts: Activations
    logits: torch.Tensor | None
    input_image: torch.Tensor   # normalized [3,H,W] as fed to the network
    label: str


class Explorer:
    def __init__(self, loaded: LoadedModel, device: torch.device | None = None, precision: str = "fp32"):
        self.device = device or next(loaded.model.parameters()).device
        self.loaded = loaded
        self.precision = resolve_precision(precision, self.device)
        self.input_size = 32
        self._layers: list[LayerInfo] | None = None

    @property
    def layers(self) -> list[LayerInfo]:
        if self._layers is None:
            self._layers = describe_layers(self.loaded.model, (3, self.input_size, self.input_size))
        return self._layers

    def set_input_size(self, size: int) -> None:
        """Resize inputs to size x size before the network; a size the model cannot take (too small for
        its padding and pooling, or a fixed-size Linear after Flatten) is refused with check_input_size's
        ValueError and the current size stays."""
        if size == self.input_size:
            return
        try:
            check_input_size(self.loaded.model, size)
        except ValueError as e:
            raise ValueError(f"{self.loaded.name}: {e}; it stays at {self.input_size}x{self.input_size}.") from None
        self.input_size, self._layers = size, describe_layers(self.loaded.model, (3, size, size))

    def prepare(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8/float [3,32,32] pixels -> normalized [1,3,S,S] at the chosen input size."""
        return resize_input(self.loaded.norm.apply(pixels[None]), self.input_size)

    def run(self, x: torch.Tensor, label: str) -> Result:
        acts, logits = capture(self.loaded.model.eval(), x, self.device, self.precision)
        return Result(acts, logits, x[0], label)

    def run_pixels(self, pixels: torch.Tensor, label: str) -> Result:
        return self.run(self.prepare(pixels), label)

    def run_blank(self, kind: str) -> Result:
        x = blank_input(kind, self.loaded.norm, self.input_size)
        return self.run(x, f"blank ({'normalized zeros' if kind == 'normalized' else 'black image'})")

    def top_predictions(self, logits: torch.Tensor, k: int = 3) -> list[tuple[str, float]]:
        p = logits.float().softmax(0)
        vals, idx = p.topk(min(k, len(p)))
        return [(self.loaded.class_name(i), v) for v, i in zip(vals.tolist(), idx.tolist())]
