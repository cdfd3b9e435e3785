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
    (tmp_path / "m.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
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
