"""Which model a command runs on: a PadLens checkpoint (--checkpoint, by default the shipped flagship) or the
user's own (--model-file F.py --model-fn NAME [--weights W.pt] [--input-scale S]), opened exactly as the app's
File > Open custom model opens it (core.session.load_custom), with the same messages when it cannot be."""
from __future__ import annotations

OWN_ONLY = ("model_fn", "weights", "input_scale")   # options that mean nothing without --model-file


def add_model_args(p, checkpoint: bool = True) -> None:
    """Add --checkpoint (unless checkpoint is False: the report names its own --checkpoints) and the own-model
    options to parser p; --checkpoint and --model-file exclude each other."""
    from padlens.core.custom_model import NORMALIZATIONS
    own = p.add_argument_group("model", "a PadLens checkpoint, or your own: a Python file whose function returns "
                               "the nn.Module, as the app's File > Open custom model")
    which = own.add_mutually_exclusive_group() if checkpoint else own
    if checkpoint:
        which.add_argument("--checkpoint", help="a PadLens checkpoint (default: the shipped flagship)")
    which.add_argument("--model-file", metavar="F.py", help="the Python file that defines your model")
    own.add_argument("--model-fn", metavar="NAME", help="the function in --model-file that returns the model "
                     "(required with it; called without arguments)")
    own.add_argument("--weights", metavar="W.pt", help="its state dict, from torch.save(model.state_dict(), W.pt) "
                     "(default: the function's own weights)")
    own.add_argument("--input-scale", choices=list(NORMALIZATIONS),
                     help="how its training inputs were scaled: " + "; ".join(
                         f"{k}: {what}" for k, (what, _) in NORMALIZATIONS.items()) + " (default: cifar10)")


def model_from_args(a, device, own_only: bool = False):
    """The core.session.LoadedModel the options name, on device: the own model, else --checkpoint, else the
    flagship. own_only: None instead of any checkpoint (the report and the app open those themselves).

    Raises ValueError for options that do not go together, CustomModelError (a ValueError) or
    CheckpointError for a file that cannot be opened; each message names the fix.
    """
    from padlens.core.checkpoint import default_checkpoint
    from padlens.core.session import load_custom, load_model
    file = getattr(a, "model_file", None)
    if file is None:
        stray = [f"--{o.replace('_', '-')}" for o in OWN_ONLY if getattr(a, o, None) is not None]
        if stray:
            raise ValueError(f"{', '.join(stray)} describe your own model; add --model-file F.py, the file that "
                             "defines it (or drop them to use a checkpoint)")
        if own_only:
            return None
        return load_model(getattr(a, "checkpoint", None) or default_checkpoint(), device)
    if not a.model_fn:
        raise ValueError(f"--model-file {file} needs --model-fn NAME, the function in it that returns the model")
    return load_custom(file, a.model_fn, a.weights, device, a.input_scale or "cifar10")
