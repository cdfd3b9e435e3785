"""Atomic file writes: a reader (or a crash) never sees half a file, and two processes never collide."""
from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Callable

import torch


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """write(tmp) into a temp file beside path, then rename it over path in one step.

    The temp name keeps path's suffix (writers pick the format from it) and carries the process id,
    so the app and a command line decoding or exporting the same file at once do not collide."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        write(tmp)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise OSError(f"nothing was written to {path}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """torch.save, atomically."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_csv(path: str | os.PathLike, rows) -> Path:
    """Rows of cells (the header first) as CSV, atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
    return atomic_write(path, write)


def file_identity(path) -> str:
    """Content hash of a checkpoint (first MiBs and size), stable across copies and renames."""
    p = Path(path)
    h = hashlib.sha1()
    with open(p, "rb") as f:
        h.update(f.read(4 << 20))
    return f"{h.hexdigest()}-{p.stat().st_size}"
