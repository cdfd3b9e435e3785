"""Open a user's own CIFAR-10 model: a Python file, a function that builds it, optionally a state dict.

``load_custom_model("my_net.py", "build", "my_net.pt")`` imports the file by path (under a fresh,
unique module name, so two files both called model.py never clash and an edited file is re-read),
calls ``build()`` without arguments, loads the weights and checks that the result takes a
[1, 3, 32, 32] batch and returns [1, K] logits. The file's folder is on sys.path while it is imported
and the function runs, so it may import its sibling modules.

The weights file is read with ``torch.load(weights_only=True)``: a bare state dict
(``torch.save(model.state_dict(), path)``) or a dict holding one under 'state_dict' (also a PadLens
checkpoint). Keys saved from nn.DataParallel ("module." prefix) are accepted.

Every way this can go wrong raises CustomModelError (a ValueError) whose message names the problem
and the fix.

Normalization: PadLens feeds a custom model ``(pixel / 255 - mean) / std``, by default with
``CIFAR10_NORMALIZATION``, the usual per-channel statistics of the CIFAR-10 training set, mean
(0.4914, 0.4822, 0.4465) and std (0.2470, 0.2435, 0.2616). A model trained on other inputs picks one
of ``NORMALIZATIONS`` ([0, 1] pixels, [-1, 1], ImageNet statistics): with the wrong one its maps and
accuracy are quietly wrong.

The layer tree, the activation capture and the per-layer analyses reach every submodule by its path
(core.layers: indices in Sequentials, attribute names elsewhere); ``describe`` summarizes what they see.
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from padlens.core.checkpoint import CheckpointError, check_finite, load_state, load_weights_file
from padlens.core.data import Normalization
from padlens.core.jobs import Job, Progress, never, run_job
from padlens.core.layers import iter_paths

CIFAR10_NORMALIZATION = Normalization(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
NORMALIZATIONS = {   # name: (what the model was trained on, Normalization)
    "cifar10": ("CIFAR-10 statistics (the usual torchvision recipe)", CIFAR10_NORMALIZATION),
    "unit": ("pixels in [0, 1] (ToTensor only)", Normalization(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))),
    "half": ("pixels in [-1, 1] (mean 0.5, std 0.5)", Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))),
    "imagenet": ("ImageNet statistics", Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))),
}
INPUT_SHAPE = (1, 3, 32, 32)


class CustomModelError(ValueError):
    """A custom model could not be opened; the message says why and what to change."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300].rstrip('.')}" if text else type(e).__name__


class _SysPath:
    """Put a folder first on sys.path for the duration of a with block."""

    def __init__(self, folder: Path):
        self.folder = str(folder)

    def __enter__(self):
        sys.path.insert(0, self.folder)

    def __exit__(self, *exc):
        try:
            sys.path.remove(self.folder)
        except ValueError:
            pass


def import_file(py_file) -> object:
    """Import a Python file by path under a unique module name; errors become CustomModelError."""
    path = Path(py_file).expanduser()
    if not path.is_file():
        raise CustomModelError(f"{path}: no such file. Choose the .py file that defines your model.")
    if path.suffix != ".py":
        raise CustomModelError(f"{path} is not a Python source file; choose a file ending in .py.")
    name = f"padlens_custom_{path.stem if path.stem.isidentifier() else 'model'}_{uuid.uuid4().hex[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CustomModelError(f"{path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module      # dataclasses and pickling look the module up here
    try:
        with _SysPath(path.resolve().parent):
            spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[name]
        where = f"line {e.lineno}" + (f", column {e.offset}" if e.offset else "")
        raise CustomModelError(f"{path} has a syntax error at {where}: {e.msg}. Fix the file "
                               f"(`python {path.name}` shows the same error).") from None
    except (Exception, SystemExit, KeyboardInterrupt) as e:  # noqa: BLE001 - whatever the user's file raises
        del sys.modules[name]
        hint = ("Install the missing package into PadLens' Python environment, or put the module next to "
                "the file." if isinstance(e, ImportError) else
                "Keep script code under `if __name__ == '__main__':`." if isinstance(e, (SystemExit, KeyboardInterrupt))
                else "Fix the file so that it imports without error.")
        raise CustomModelError(f"Importing {path} failed with {_first_line(e)}. {hint}") from None
    return module


def _defined_callables(module) -> list[str]:
    return sorted(n for n, v in vars(module).items()
                  if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
                  and getattr(v, "__module__", None) == module.__name__)


def _state_dict_from(state_dict_file) -> dict:
    path = Path(state_dict_file).expanduser()
    try:
        obj = load_weights_file(path, "weights file")
    except CheckpointError as e:
        raise CustomModelError(f"{e} Or open the model without a weights file.") from None
    for key in STATE_KEYS:   # training checkpoints keep the weights beside the optimizer and epoch
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj) or not any(
            isinstance(v, torch.Tensor) for v in obj.values()):
        raise CustomModelError(f"{path} does not hold a state dict (names -> tensors), nor a dict with one "
                               f"under {' / '.join(repr(k) for k in STATE_KEYS)}. Save it with "
                               "torch.save(model.state_dict(), path).")
    return dict(obj)


STATE_KEYS = ("state_dict", "model_state_dict", "model")
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")   # DataParallel, Lightning, torch.compile


def _strip_module_prefix(state: dict, own: dict) -> dict:
    """Keys saved from a wrapper (nn.DataParallel, a Lightning module, torch.compile) carry its prefix;
    drop it when that is what makes them fit."""
    for prefix in WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in own):
            return {k[len(prefix):]: v for k, v in state.items()}
    return state


def check_model(model: nn.Module, what: str = "The model") -> int:
    """Run one zero [1,3,32,32] batch (contiguous and channels_last, as PadLens feeds it) in eval mode.

    Returns the number of classes K of the [1, K] logits; raises CustomModelError otherwise. Leaves the
    model in eval mode.
    """
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    x = torch.zeros(INPUT_SHAPE, device=device)
    try:
        check_finite(model.state_dict(), what)
    except CheckpointError as e:
        raise CustomModelError(str(e)) from None
    model.eval()
    try:
        with torch.inference_mode():
            out = model(x)
    except Exception as e:  # noqa: BLE001 - anything the forward raises
        raise CustomModelError(f"{what} does not accept a CIFAR-10 batch of shape [1, 3, 32, 32] (32x32 pixels, "
                               f"3 color channels): {_first_line(e)}. PadLens shows 32x32x3 images; build the "
                               "network for that input size.") from None
    if not isinstance(out, torch.Tensor):
        raise CustomModelError(f"{what} returns {type(out).__name__}, not a tensor of logits. Make forward "
                               "return the [N, K] class scores only.")
    if out.dim() != 2 or out.shape[0] != 1 or out.shape[1] < 1:
        fix = (" Add nn.Flatten() before the classifier or squeeze the extra dimensions."
               if out.dim() > 2 and out.shape[0] == 1 else "")
        raise CustomModelError(f"{what} returns shape {list(out.shape)} for a [1, 3, 32, 32] batch; PadLens "
                               f"needs [1, K] logits (one score per class).{fix}")
    if not bool(torch.isfinite(out).all()):
        raise CustomModelError(f"{what} outputs NaN or infinity for a zero [1, 3, 32, 32] batch: every accuracy and "
                               "map would be meaningless. Look in forward for a division by zero or a log of 0, "
                               "or load weights that are not broken.")
    try:
        with torch.inference_mode():
            model(x.contiguous(memory_format=torch.channels_last))
    except Exception as e:  # noqa: BLE001
        raise CustomModelError(f"{what} fails on a channels_last batch, which PadLens uses for speed: "
                               f"{_first_line(e)}. Use .reshape() or .flatten() instead of .view() in "
                               "forward.") from None
    return int(out.shape[1])


def load_custom_model_job(py_file, function_name: str, state_dict_file=None,
                          should_stop=never) -> Job:
    """Job: import py_file, call function_name() for an nn.Module, load the weights, check it; returns the
    model in eval mode, or None when stopped between those steps. Yields Progress before each step, so a
    window can say which one a slow or stuck model is in (Python cannot stop a step once it runs).

    See the module docstring for what is accepted; every failure is a CustomModelError.
    """
    path = Path(py_file).expanduser()
    steps = 4 if state_dict_file is not None else 3
    if not isinstance(function_name, str) or not function_name.isidentifier():
        raise CustomModelError(f"{function_name!r} is not a function name; give the name of the function in "
                               f"{path.name} that builds the model, e.g. build_model.")
    yield Progress(0, steps, f"importing {path.name}")
    module = import_file(path)
    fn = getattr(module, function_name, None)
    if fn is None:
        found = _defined_callables(module)
        listing = f"It defines: {', '.join(found)}." if found else "It defines no functions or classes."
        raise CustomModelError(f"{path} has no function {function_name!r}. {listing} Give the name of the "
                               "function that returns the model.")
    if not callable(fn):
        raise CustomModelError(f"{function_name!r} in {path} is a {type(fn).__name__}, not a function. Give "
                               "the name of the function that returns the model.")
    if should_stop():
        return None
    yield Progress(1, steps, f"calling {function_name}() from {path.name}")
    try:
        with _SysPath(path.resolve().parent):
            model = fn()
    except (Exception, SystemExit, KeyboardInterrupt) as e:  # noqa: BLE001 - whatever the user's function raises
        raise CustomModelError(f"Calling {function_name}() from {path} failed with {_first_line(e)}. The "
                               "function must run without arguments and return the model.") from None
    if not isinstance(model, nn.Module):
        raise CustomModelError(f"{function_name}() in {path} returned {type(model).__name__}, not a "
                               "torch.nn.Module. Return the network itself (e.g. `return MyNet()`).")
    if state_dict_file is not None:
        if should_stop():
            return None
        yield Progress(2, steps, f"loading the weights {Path(state_dict_file).name}")
        state = _state_dict_from(state_dict_file)
        state = _strip_module_prefix(state, model.state_dict())
        try:
            load_state(model, state, f"The weights in {Path(state_dict_file).name}")
        except CheckpointError as e:
            raise CustomModelError(f"{e} Use weights saved from the network that {function_name}() "
                                   "builds (same layers, same sizes).") from None
        except RuntimeError as e:   # e.g. a dtype the parameter cannot take
            raise CustomModelError(f"Loading {Path(state_dict_file).name} failed: {_first_line(e)}.") from None
    if should_stop():
        return None
    yield Progress(steps - 1, steps, "checking a forward pass on a [1, 3, 32, 32] batch")
    check_model(model, f"The model from {function_name}()")
    return model.eval()


def load_custom_model(py_file, function_name: str, state_dict_file=None) -> nn.Module:
    """load_custom_model_job, blocking."""
    return run_job(load_custom_model_job(py_file, function_name, state_dict_file))


@dataclass(frozen=True)
class CustomModelInfo:
    num_layers: int                  # submodules, each reachable by its path (core.layers.iter_paths)
    num_convs: int                   # Conv2d layers among them
    num_params: int
    num_classes: int
    summary: str


def describe(model: nn.Module) -> CustomModelInfo:
    """What the layer tree will show of a model, plus its size.

    Runs check_model (one zero batch) for the number of classes, which leaves the model in eval mode.
    """
    paths = list(iter_paths(model))
    num_convs = sum(isinstance(m, nn.Conv2d) for _, m in paths)
    num_classes = check_model(model)
    num_params = sum(p.numel() for p in model.parameters())
    how = ("nested nn.Sequential, by index" if isinstance(model, nn.Sequential)
           else f"{type(model).__name__}, by attribute and index")
    summary = (f"{how}: {len(paths)} layers ({num_convs} convolutions), {num_params:,} parameters, "
               f"{num_classes} classes. Operations written in forward() (F.relu, +) have no layer of their own.")
    return CustomModelInfo(len(paths), num_convs, num_params, num_classes, summary)
