"""CIFAR-10 as in-memory uint8 tensors, from torchvision's pickled batches or an ImageFolder tree.

Both sources give (images uint8 [N,3,32,32], labels int64 [N]). Decoded ImageFolder trees are cached
as one tensor file, because decoding 60,000 JPEGs takes seconds every time otherwise.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from padlens.core.files import atomic_save
from padlens.core.jobs import Job, Progress, never, run_job

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
BATCHES_DIR = "cifar-10-batches-py"


class DatasetError(RuntimeError):
    """The data set is missing or malformed; the message says where we looked and what to do."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "padlens"


def resolve_data_root(arg: str | os.PathLike | None = None) -> Path:
    """--data flag, else $PADLENS_DATA, else the default cache folder; absolute, so that what a data set's
    source and a saved setting name is the folder actually read, from wherever it is read back."""
    if arg:
        return Path(os.path.abspath(Path(arg).expanduser()))
    if os.environ.get("PADLENS_DATA"):
        return Path(os.path.abspath(Path(os.environ["PADLENS_DATA"]).expanduser()))
    return cache_dir() / "data"


def how_to_get(root: Path) -> str:
    return (f"Get CIFAR-10 with `padlens download --data {root}` (needs internet), or point --data or "
            f"PADLENS_DATA at a folder holding {BATCHES_DIR}/ or an ImageFolder tree "
            f"(train/<class>/*.jpg, test/<class>/*.jpg).")


@dataclass(frozen=True)
class Dataset:
    images: torch.Tensor   # uint8 [N, 3, 32, 32]
    labels: torch.Tensor   # int64 [N]
    source: str            # human description, e.g. "CIFAR-10 test (ImageFolder /path)"

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the content, so caches keyed on it notice a folder whose images were replaced."""
        h = hashlib.sha1(self.images.contiguous().numpy())
        h.update(self.labels.contiguous().numpy())
        return h.hexdigest()[:20]

    @cached_property
    def mean_color(self) -> tuple[float, float, float]:
        """The mean RGB in [0, 1]: the fill of the affine-mean shift, whatever model is evaluated."""
        return mean_color(self.images)


def mean_color(images: torch.Tensor) -> tuple[float, float, float]:
    """Mean RGB of uint8 images [N,3,H,W], in [0, 1]."""
    n = images.numel() // images.shape[1]
    return tuple(float(c) / (255 * n) for c in images.sum((0, 2, 3), dtype=torch.int64))


def _is_image_folder(path: Path) -> bool:
    return path.is_dir() and any((path / c).is_dir() for c in CLASSES)


def find_source(root: Path, split: str) -> tuple[str, Path]:
    """Where a split lives: ("batches", dir) or ("folder", dir). Raises DatasetError with advice."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    for cand in (root / BATCHES_DIR, root):
        if (cand / "test_batch").is_file() or (cand / "data_batch_1").is_file():
            return "batches", cand
    if _is_image_folder(root / split):
        return "folder", root / split
    if _is_image_folder(root):
        return "folder", root
    named = next((f"{d} has folders named {', '.join(others[:5])}{' ...' if len(others) > 5 else ''}, not "
                  "CIFAR-10's class names. " for d in (root / split, root) if (others := _other_folders(d))), "")
    raise DatasetError(f"No CIFAR-10 {split} split found under {root} (looked for {root / BATCHES_DIR}/, "
                       f"{root / split}/<class>/ and {root}/<class>/). " + named + how_to_get(root)
                       + f" The class folders must be named {', '.join(CLASSES)}.")


def _other_folders(path: Path) -> list[str]:
    """Subfolders of path that are no CIFAR-10 class (hidden and _-prefixed ones aside)."""
    if not path.is_dir():
        return []
    return sorted(d.name for d in path.iterdir() if d.is_dir() and d.name not in CLASSES and d.name[0] not in "._")


def _load_batches(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    xs, ys = [], []
    for name in names:
        path = folder / name
        try:
            with open(path, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64))
        except FileNotFoundError:
            raise DatasetError(f"{path} is missing: the {BATCHES_DIR} folder is incomplete. "
                               + how_to_get(folder.parent)) from None
        except Exception as e:  # noqa: BLE001 - any unpickling failure means a corrupt file
            raise DatasetError(f"{path} is not a readable CIFAR-10 batch ({e}). Delete the folder and "
                               "download it again.") from None
        if len(xs[-1]) != len(ys[-1]):
            raise DatasetError(f"{path} holds {len(xs[-1])} images but {len(ys[-1])} labels.")
        bad = np.flatnonzero((ys[-1] < 0) | (ys[-1] >= len(CLASSES)))
        if len(bad):
            raise DatasetError(f"{path} has {len(bad)} label(s) outside CIFAR-10's 0-{len(CLASSES) - 1} (label "
                               f"{ys[-1][bad[0]]} at image {bad[0]}): not a CIFAR-10 batch, or a damaged one. "
                               "Delete the folder and download it again.")
    return np.concatenate(xs), np.concatenate(ys)


def to_cifar_tensor(img: torch.Tensor) -> torch.Tensor:
    """Any uint8 [C,H,W] image as 3x32x32 RGB (grey expanded, alpha dropped, antialiased resize)."""
    from torchvision.transforms.v2 import functional as TF
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    img = img[:3]
    if img.shape[-2:] != (32, 32):
        img = TF.resize(img, [32, 32], antialias=True)
    return img.contiguous()


def read_image_file(path: str | os.PathLike) -> torch.Tensor:
    """One image file as uint8 [3,32,32]; the only place image files are decoded."""
    from torchvision.io import ImageReadMode, decode_image
    try:
        data = torch.frombuffer(bytearray(Path(path).read_bytes()), dtype=torch.uint8)
        img = decode_image(data, mode=ImageReadMode.RGB)
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"Cannot read image {path}: {e}") from None
    return to_cifar_tensor(img)


def _folder_files(folder: Path) -> list[tuple[Path, int]]:
    """(image file, label) of every class folder present (a subset of the classes is fine). A class folder
    without images, or a folder that is no class, is refused: its images would be silently left out."""
    others = _other_folders(folder)
    if others:
        raise DatasetError(f"{folder} has folders that are no CIFAR-10 class: {', '.join(others[:5])}"
                           f"{' ...' if len(others) > 5 else ''}. Rename them to the class names "
                           f"({', '.join(CLASSES)}) or move them out.")
    files, empty = [], []
    for label, cls in enumerate(CLASSES):
        d = folder / cls
        if d.is_dir():
            found = [(p, label) for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
            files += found
            empty += [cls] if not found else []
    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    if not files:
        raise DatasetError(f"{folder} has class folders but no images in them ({suffixes}).")
    if empty:
        raise DatasetError(f"{folder}: the class folder(s) {', '.join(empty)} hold no images ({suffixes}); "
                           "copy their images in, or remove the empty folders to use the other classes only.")
    return files


DECODE_CHUNK = 2000


def _load_folder(folder: Path, should_stop: Callable[[], bool] = never) -> Job:
    """Job: decode an ImageFolder tree (cached after the first time); returns (images, labels), or None
    when stopped, leaving no cache file behind."""
    files = _folder_files(folder)
    stamp = f"{folder.resolve()}|{len(files)}|{max(p.stat().st_mtime_ns for p, _ in files)}"
    cached = cache_dir() / "decoded" / (hashlib.sha1(stamp.encode()).hexdigest()[:16] + ".pt")
    if cached.is_file():
        try:
            d = torch.load(cached, weights_only=True)
            return d["images"], d["labels"]
        except Exception:  # noqa: BLE001 - a broken cache is rebuilt
            cached.unlink(missing_ok=True)
    images = []
    for start in range(0, len(files), DECODE_CHUNK):
        if should_stop():
            return None
        yield Progress(start, len(files), f"decoding {folder.name} images (first time only)")
        images += [read_image_file(p) for p, _ in files[start:start + DECODE_CHUNK]]
    images = torch.stack(images)
    labels = torch.tensor([y for _, y in files], dtype=torch.int64)
    atomic_save({"images": images, "labels": labels}, cached)
    return images, labels


def load_split_job(root: str | os.PathLike | None, split: str, should_stop: Callable[[], bool] = never) -> Job:
    """Job: one split from whichever source `root` holds (see resolve_data_root); None when stopped."""
    root = resolve_data_root(root)
    kind, where = find_source(root, split)
    if kind == "batches":
        x, y = _load_batches(where, split)
        return Dataset(torch.from_numpy(x), torch.from_numpy(y), f"CIFAR-10 {split} ({where})")
    loaded = yield from _load_folder(where, should_stop)
    if loaded is None:
        return None
    jpeg = " JPEG" if "jpeg" in str(where).lower() or "jpg" in str(where).lower() else ""
    return Dataset(*loaded, f"CIFAR-10{jpeg} {split} (ImageFolder {where})")


def load_split(root: str | os.PathLike | None, split: str) -> Dataset:
    """Load one split (blocking); see load_split_job for the cancellable form."""
    return run_job(load_split_job(root, split))


def load_splits_job(root: str | os.PathLike | None, should_stop: Callable[[], bool] = never) -> Job:
    """Job: the test split first (what most views need), then train; a missing train split is fine.
    Returns {"test": ..., ["train": ...]}, or None when stopped."""
    datasets = {}
    for split in ("test", "train"):
        try:
            ds = yield from load_split_job(root, split, should_stop)
        except DatasetError:
            if split == "test":
                raise
            continue
        if ds is None:
            return None
        datasets[split] = ds
    return datasets


def download(root: str | os.PathLike | None, progress=None) -> Path:
    """Fetch the original CIFAR-10 through torchvision into root; returns the batches folder."""
    from torchvision.datasets import CIFAR10
    root = resolve_data_root(root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        CIFAR10(str(root), train=True, download=True)
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"Downloading CIFAR-10 into {root} failed: {e}. Check the internet connection, "
                           "or copy cifar-10-batches-py there by hand.") from None
    return root / BATCHES_DIR


@dataclass(frozen=True)
class Normalization:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def of(cls, images: torch.Tensor) -> "Normalization":
        x = images.float().div_(255)
        return cls(tuple(x.mean((0, 2, 3)).tolist()), tuple(x.std((0, 2, 3)).tolist()))

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [0,1] float pixels -> normalized float."""
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized float -> uint8 pixels (clamped): what a normalized input looks like."""
        mean = torch.tensor(self.mean, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(-1, 1, 1)
        return ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        return cls(tuple(d["mean"]), tuple(d["std"]))


CIFAR_TAR_BYTES = 170_498_071


def download_job(root: str | os.PathLike | None, should_stop=lambda: False):
    """Job: download in a background thread, yielding Progress from the archive's size on disk.

    torchvision's download cannot be interrupted; a stop only stops the reporting.
    """
    import threading
    import time as _time

    root = resolve_data_root(root)
    outcome: dict = {}

    def work():
        try:
            outcome["path"] = download(root)
        except DatasetError as e:
            outcome["error"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    archive = root / "cifar-10-python.tar.gz"
    while t.is_alive() and not should_stop():
        size = archive.stat().st_size if archive.exists() else 0
        yield Progress(min(size, CIFAR_TAR_BYTES), CIFAR_TAR_BYTES, f"{size / 1e6:.0f} of 170 MB")
        _time.sleep(0.3)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("path")


def stratified_subset(labels: torch.Tensor, n: int | None, seed: int = 0) -> torch.Tensor:
    """n indices balanced over classes, seeded, ordered so every prefix is balanced too (round-robin);
    n 0 or None: all of them. A negative n is refused, not sliced from the end."""
    if n is not None and n < 0:
        raise ValueError(f"{n} images: give a number of images, or 0 for all of them")
    gen = torch.Generator().manual_seed(seed)
    classes = labels.unique()
    per_class = [torch.nonzero(labels == c).flatten() for c in classes]
    per_class = [idx[torch.randperm(len(idx), generator=gen)] for idx in per_class]
    longest = max(len(p) for p in per_class)
    order = torch.stack([torch.cat([p, p.new_full((longest - len(p),), -1)]) for p in per_class], 1).flatten()
    order = order[order >= 0]
    return order if not n or n >= len(order) else order[:n]
