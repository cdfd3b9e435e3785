"""What every command shares at the terminal: progress bars, times and the common options."""
from __future__ import annotations

import argparse
import sys


def progress_line(frac: float, text: str, width: int = 28) -> None:
    """One self-overwriting progress bar on stderr."""
    filled = int(width * min(max(frac, 0.0), 1.0))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * frac:5.1f}% {text}\033[K")
    sys.stderr.flush()


def fmt_time(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def common_args(p: argparse.ArgumentParser, data: bool = True) -> None:
    if data:
        p.add_argument("--data", help="data root (default: $PADLENS_DATA, else ~/.cache/padlens/data)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:1 ...")
