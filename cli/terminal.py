"""What every command shares at the terminal: progress bars, times and the common options."""
from __future__ import annotations

import argparse
import signal
import sys

from padlens.core.timing import fmt_duration


def progress_line(frac: float, text: str, width: int = 28) -> None:
    """One self-overwriting progress bar on stderr."""
    filled = int(width * min(max(frac, 0.0), 1.0))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * frac:5.1f}% {text}\033[K")
    sys.stderr.flush()


def fmt_time(s: float) -> str:
    """Times at the terminal read as in the window: one format, core.timing's."""
    return fmt_duration(s)


def common_args(p: argparse.ArgumentParser, data: bool = True) -> None:
    if data:
        p.add_argument("--data", help="data root (default: $PADLENS_DATA, else ~/.cache/padlens/data)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:1 ...")


def precision_arg(p: argparse.ArgumentParser, of: str = "") -> None:
    """--precision with core.device's rule, worded once for every command that runs the model fast."""
    from padlens.core.device import PRECISION_CHOICES
    p.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                   help=f"{of}auto (default): bf16 where the hardware has it natively, fp16 on other CUDA GPUs, else "
                        "fp32-fast (batch norm folded, within 0.1 points of fp32); fp32 is exact")


class CtrlC:
    """Ctrl-C once: the job stops after its current step (pass the object as its should_stop) and the command
    saves what is finished; twice: KeyboardInterrupt at once. A context manager; the old handler comes back."""

    def __init__(self, step: str = "the current step"):
        self.step = step
        self.pressed = False

    def __call__(self) -> bool:
        return self.pressed

    def __enter__(self) -> CtrlC:
        self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._old)

    def _handler(self, *_) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
        sys.stderr.write(f"\npadlens: stopping after {self.step}; Ctrl-C again to quit at once\n")
