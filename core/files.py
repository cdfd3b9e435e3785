"""Atomic file writes: a reader (or a crash) never sees half a file, and two processes never collide.

Every file PadLens writes (the command line's results, the app's exports, caches, checkpoints) goes
through atomic_write, which re-reads what was written before it takes the final name: a full disk or a
writer that fails quietly (QImage.save returns False) leaves the old file, never a truncated one.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Callable

import torch

PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"   # the empty IEND chunk every PNG ends with


def incomplete(path: Path, size: int | None = None) -> str | None:
    """What is wrong with a file just written, judged by its size when known, else by re-reading it as
    its suffix's format (zip-based .npz/.pt, .png, .svg, .npy, .json); None when it is whole."""
    actual = path.stat().st_size
    if size is not None:
        return None if actual == size else f"only {actual:,} of {size:,} bytes were written"
    suffix = path.suffix.lower()
    try:
        if suffix in (".npz", ".pt", ".pth", ".zip"):
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            return None if bad is None else f"its member {bad} is damaged"
        if suffix == ".png":
            with open(path, "rb") as f:
                head = f.read(8)
                f.seek(max(0, actual - len(PNG_END)))
                tail = f.read()
            return None if head == b"\x89PNG\r\n\x1a\n" and tail == PNG_END else "the PNG stops before its end"
        if suffix == ".svg":
            with open(path, "rb") as f:
                f.seek(max(0, actual - 64))
                tail = f.read()
            return None if tail.rstrip().endswith(b"</svg>") else "the SVG stops before its end"
        if suffix == ".npy":
            import numpy as np
            np.load(path, mmap_mode="r")   # checks the header and that the data is all there
        elif suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        return f"it cannot be read back ({type(e).__name__}: {e})"
    return None


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], size: int | None = None) -> Path:
    """write(tmp) into a temp file beside path, check it is whole (`incomplete`: size bytes when given, else
    re-read), flush it to disk, then rename it over path in one step. A writer returning False (Qt's
    save) counts as failed; any failure raises OSError naming path and leaves what was there before.

    The temp name keeps path's suffix (writers pick the format from it) and carries the process id,
    so the app and a command line decoding or exporting the same file at once do not collide."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        failed = write(tmp) is False
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise OSError(f"nothing was written to {path}" + (" (the writer reported a failure: disk full?)"
                                                               if failed else ""))
        problem = "the writer reported a failure" if failed else incomplete(tmp, size)
        if problem:
            raise OSError(f"{path} was not written completely ({problem}): is the disk full? The file was "
                          "not replaced.")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)   # a full disk that only shows when the data reaches it shows here, before the rename
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """torch.save, atomically."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text, atomically, checked byte for byte by its size."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), size=len(data))


def atomic_csv(path: str | os.PathLike, rows) -> Path:
    """Rows of cells (the header first) as CSV, atomically."""
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return atomic_text(path, buf.getvalue())


def file_identity(path) -> str:
    """Content hash of a checkpoint (first MiBs and size), stable across copies and renames."""
    p = Path(path)
    h = hashlib.sha1()
    with open(p, "rb") as f:
        h.update(f.read(4 << 20))
    return f"{h.hexdigest()}-{p.stat().st_size}"


def writable_folder(folder: str | os.PathLike, option: str = "--out") -> Path:
    """Check, before any work, that results can be written into folder; raises ValueError naming what is in
    the way and the fix, so that no finished computation is lost to a bad path at the end. Folders made
    for the check are removed again (the writers make them): a refused command leaves nothing behind."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {folder} is a file, not a folder; give a folder for the results (it is made "
                         "when missing)")
    above = next((p for p in folder.absolute().parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ValueError(f"{option} {folder}: {above} is a file, so no folder can be made inside it; give "
                         "another folder")
    made = [p for p in [folder, *folder.absolute().parents] if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".padlens-write-test.{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"{option} {folder} cannot be written ({e.strerror or e}); choose a folder you may write "
                         "to, or change its permissions") from None
    finally:
        for p in made:   # deepest first
            try:
                p.rmdir()
            except OSError:
                pass
    return folder
