import os
import resource
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from padlens.core.files import atomic_csv, atomic_save, atomic_text, atomic_write, writable_folder


def test_atomic_save_round_trip_leaves_no_temp(tmp_path):
    atomic_save({"x": torch.arange(3)}, tmp_path / "sub" / "a.pt")
    assert torch.load(tmp_path / "sub" / "a.pt", weights_only=True)["x"].tolist() == [0, 1, 2]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.pt"]


def test_temp_name_is_per_process_and_keeps_the_suffix(tmp_path):
    """Two processes decoding the same data set once collided on one temp name."""
    seen = []
    atomic_write(tmp_path / "cache.npz", lambda tmp: (seen.append(tmp.name), np.savez(tmp, x=np.arange(3))))
    assert str(os.getpid()) in seen[0] and seen[0].endswith(".npz")


def test_a_failed_or_empty_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(OSError, match="nothing was written"):
        atomic_write(path, lambda tmp: None)
    with pytest.raises(ZeroDivisionError):
        atomic_write(path, lambda tmp: (tmp.write_text("new"), 1 / 0))
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@contextmanager
def disk_full_after(nbytes: int):
    """Writes past nbytes fail with EFBIG (RLIMIT_FSIZE; Python ignores SIGXFSZ), as on a nearly full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100 + b"\x00\x00\x00\x00IEND\xaeB`\x82"


@pytest.mark.parametrize("name, whole, cut", [
    ("a.png", PNG, PNG[:60]),
    ("a.svg", b"<svg>" + b" " * 100 + b"</svg>\n", b"<svg>" + b" " * 50),
    ("a.npz", None, None),
])
def test_a_file_written_only_in_part_never_takes_the_final_name(tmp_path, name, whole, cut):
    """A writer that stops early without an error (Qt's QImage.save on a full disk returns False and leaves
    what it wrote) is caught by re-reading the file before the rename; the old file stays."""
    path = tmp_path / name
    if whole is None:   # an NPZ cut in half
        np.savez_compressed(tmp_path / "whole.npz", x=np.random.default_rng(0).random(5000))
        whole = (tmp_path / "whole.npz").read_bytes()
        cut = whole[:len(whole) // 2]
    atomic_write(path, lambda tmp: tmp.write_bytes(whole))
    assert path.read_bytes() == whole
    with pytest.raises(OSError, match=f"{name} was not written completely.*disk full"):
        atomic_write(path, lambda tmp: tmp.write_bytes(cut))
    assert path.read_bytes() == whole and sorted(p.name for p in tmp_path.iterdir() if p.name == name or
                                                 p.name.startswith(".")) == [name]
    with pytest.raises(OSError, match="writer reported a failure"):
        atomic_write(path, lambda tmp: (tmp.write_bytes(whole), False)[1])   # QImage.save's False
    assert path.read_bytes() == whole


def test_text_and_csv_on_a_full_disk_keep_the_old_file(tmp_path):
    path = tmp_path / "t.csv"
    atomic_text(path, "old\n")
    with disk_full_after(4096), pytest.raises(OSError):
        atomic_csv(path, [["x"] * 10] * 2000)
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["t.csv"]
    atomic_csv(path, [["a", "b"], [1, 2]])
    assert path.read_bytes() == b"a,b\r\n1,2\r\n"   # as csv.writer always wrote it


def test_writable_folder_refuses_what_cannot_hold_results(tmp_path, monkeypatch):
    (tmp_path / "FILE").write_text("x")
    with pytest.raises(ValueError, match=r"--out .*FILE/out: .*FILE is a file, so no folder can be made"):
        writable_folder(tmp_path / "FILE" / "out")
    with pytest.raises(ValueError, match=r"--out .*FILE is a file, not a folder"):
        writable_folder(tmp_path / "FILE")
    assert writable_folder(tmp_path / "new" / "out") == tmp_path / "new" / "out"
    assert not (tmp_path / "new").exists(), "the check leaves nothing behind"
    (tmp_path / "there").mkdir()
    writable_folder(tmp_path / "there")
    assert (tmp_path / "there").is_dir() and not list((tmp_path / "there").iterdir())

    def refuse(self, data):   # a read-only folder (tests run as root here, which may write anywhere)
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr("pathlib.Path.write_bytes", refuse)
    with pytest.raises(ValueError, match="cannot be written .Permission denied.; choose a folder you may write"):
        writable_folder(tmp_path / "ro")
