import os

import pytest
import torch

from padlens.core.files import atomic_save, atomic_write


def test_atomic_save_round_trip_leaves_no_temp(tmp_path):
    atomic_save({"x": torch.arange(3)}, tmp_path / "sub" / "a.pt")
    assert torch.load(tmp_path / "sub" / "a.pt", weights_only=True)["x"].tolist() == [0, 1, 2]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.pt"]


def test_temp_name_is_per_process_and_keeps_the_suffix(tmp_path):
    """Two processes decoding the same data set once collided on one temp name."""
    seen = []
    atomic_write(tmp_path / "cache.npz", lambda tmp: (seen.append(tmp.name), tmp.write_bytes(b"1")))
    assert str(os.getpid()) in seen[0] and seen[0].endswith(".npz")


def test_a_failed_or_empty_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(OSError, match="nothing was written"):
        atomic_write(path, lambda tmp: None)
    with pytest.raises(ZeroDivisionError):
        atomic_write(path, lambda tmp: (tmp.write_text("new"), 1 / 0))
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
