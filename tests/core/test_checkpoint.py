import pytest
import torch

from padlens.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from padlens.core.data import Normalization
from padlens.core.model import ModelConfig
from tests.conftest import TINY

NORM = Normalization((0.5, 0.4, 0.3), (0.2, 0.2, 0.2))


def _save(path, model, cfg=TINY):
    save_checkpoint(path, model, cfg, NORM, {"epochs": 1}, {"test_accuracy": 0.5})


def test_round_trip_keeps_weights_and_metadata(tmp_path, tiny_model):
    _save(tmp_path / "m.pt", tiny_model)
    raw = torch.load(tmp_path / "m.pt", weights_only=True)   # plain types only
    assert raw["model_config"]["widths"] == [8, 16, 16]
    model, meta = load_checkpoint(tmp_path / "m.pt")
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), tiny_model(x))
    assert meta["normalization"]["mean"] == [0.5, 0.4, 0.3] and meta["metrics"]["test_accuracy"] == 0.5
    assert not list(tmp_path.glob(".*partial*")), "no temp file left behind"


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_file(tmp_path, tiny_model):
    _save(tmp_path / "m.pt", tiny_model)
    data = (tmp_path / "m.pt").read_bytes()
    for cut in (len(data) // 2, len(data) // 5, 1000):   # torch says OSError, RuntimeError ...: all one message
        (tmp_path / "m.pt").write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=r"m\.pt is not a checkpoint file PadLens can read: it is damaged "
                           r"\(a truncated or partly copied torch file\); copy or save it again"):
            load_checkpoint(tmp_path / "m.pt")


def test_bare_state_dict_is_not_ours(tmp_path, tiny_model):
    torch.save(tiny_model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="not a PadLens checkpoint"):
        load_checkpoint(tmp_path / "sd.pt")


def test_other_architecture_names_the_shape_mismatch(tmp_path, tiny_model):
    _save(tmp_path / "m.pt", tiny_model, cfg=ModelConfig(widths=(8, 16, 32), stem_width=6))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_checkpoint(tmp_path / "m.pt")


@pytest.mark.parametrize("change, message", [("drop", "missing keys"), ("add", "unexpected keys"),
                                             ("number", "hold no tensors")])
def test_missing_or_extra_keys(tmp_path, tiny_model, change, message):
    _save(tmp_path / "m.pt", tiny_model)
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    if change == "drop":
        ckpt["state_dict"].pop("1.0.weight")
    elif change == "number":   # weights_only loads plain numbers too; they are no weights
        ckpt["state_dict"]["1.0.weight"] = 3
    else:
        ckpt["state_dict"]["9.9.weight"] = torch.zeros(1)
    torch.save(ckpt, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "m.pt")


def test_invalid_config(tmp_path, tiny_model):
    _save(tmp_path / "m.pt", tiny_model)
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    ckpt["model_config"]["padding_mode"] = "mirror"
    torch.save(ckpt, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="invalid model config"):
        load_checkpoint(tmp_path / "m.pt")


class Unsafe:
    """Unpickling it would call print: code that runs on load."""
    def __reduce__(self):
        return (print, ("this ran on load",))


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\), not a checkpoint file: an interrupted copy"),
    (lambda p: p.write_bytes(bytes(range(256)) * 20), r"is not a checkpoint file PadLens can read: it is not a file "
                                                       r"written by torch.save"),
    (lambda p: torch.save({"x": Unsafe()}, p), r"holds Python objects besides tensors \(print\), which could "
                                               r"run code when loaded; PadLens loads weights only"),
    (lambda p: (p.mkdir(), torch.save({}, p / "inside.pt")), r"is a folder, not a checkpoint file; choose the .pt file "
                                                             r"itself \(it holds inside.pt\)"),
])
def test_files_that_are_no_checkpoint_say_what_they_are(tmp_path, make, message):
    """Never 'corrupt' for all of them, never torch's advice to set weights_only=False, never an IndexError."""
    path = tmp_path / "c.pt"
    make(path)
    with pytest.raises(CheckpointError, match=message) as e:
        load_checkpoint(path)
    assert "weights_only=False" not in str(e.value) and "likely succeed" not in str(e.value)


def test_a_file_without_read_permission_is_not_called_corrupt(tmp_path, tiny_model, monkeypatch):
    _save(tmp_path / "m.pt", tiny_model)
    real_open = open

    def no_permission(file, *a, **k):   # chmod 000 does not stop root, who runs these tests here
        if str(file).endswith("m.pt"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)
    monkeypatch.setattr("builtins.open", no_permission)
    with pytest.raises(CheckpointError, match=r"m\.pt cannot be read: permission denied. Make it readable"):
        load_checkpoint(tmp_path / "m.pt")


@pytest.mark.parametrize("spoil, message", [
    (lambda t: t.fill_(float("nan")), r"holds NaN or infinite weights in 0\.0\.weight.*the training diverged"),
    (lambda t: t.fill_(float("inf")), r"holds NaN or infinite weights in 0\.0\.weight"),
    (lambda t: t.to(torch.int64), r"holds whole numbers where the model has float weights: 0\.0\.weight \(int64\)"),
])
def test_weights_that_give_no_real_answer_are_refused(tmp_path, tiny_model, spoil, message):
    """NaN weights gave 'accuracy: 1.0, loss: nan'; int64 ones loaded and gave accuracy 0.0."""
    _save(tmp_path / "m.pt", tiny_model)
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    first = next(iter(ckpt["state_dict"]))
    ckpt["state_dict"][first] = spoil(ckpt["state_dict"][first].clone())
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "bad.pt")
