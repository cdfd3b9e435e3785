"""core/device.py: the device (CUDA, else MPS, else the CPU), the one precision rule and its words, and the
fast fp32 mode (batch norm folded, within 0.1 points of exact fp32; exact fp32 untouched). Device and
precision are passed explicitly, so the GPU code paths run here on the CPU."""
import numpy as np
import pytest
import torch
from torch import nn

import padlens.core.device as device_mod
from padlens.core.device import (PRECISIONS, autocast, cpu_threads, describe_precision, pick_device,
                                 resolve_precision)
from padlens.core.grid_cache import GridRequest
from padlens.core.inference import fast_model, folds, grid_batch
from padlens.core.jobs import run_job
from padlens.core.session import load_model
from padlens.core.translation import GridSpec, translation_grid
from tests.tiny import NORM

CPU = torch.device("cpu")


def has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Pretend the CPU has (True) or lacks (False) native bf16."""
    return lambda native: monkeypatch.setattr(device_mod, "cpu_native_bf16", lambda: native)


def test_auto_is_native_bf16_else_fp32_fast_on_the_cpu(bf16_cpu):
    bf16_cpu(True)
    assert resolve_precision("auto", CPU) == "bf16" and resolve_precision(None, CPU) == "bf16"
    bf16_cpu(False)
    assert resolve_precision("auto", CPU) == "fp32-fast"
    assert [resolve_precision(p, CPU) for p in ("bf16", "fp32-fast", "fp32")] == ["bf16", "fp32-fast", "fp32"]


@pytest.mark.parametrize("native, want", [(True, "bf16"), (False, "fp16")])
def test_auto_on_a_cuda_gpu_is_bf16_where_native_else_fp16(monkeypatch, native, want):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native)
    assert resolve_precision("auto", torch.device("cuda")) == want


def test_auto_on_mps_is_fp32_fast():
    assert resolve_precision("auto", torch.device("mps")) == "fp32-fast"


@pytest.mark.parametrize("bad, words", [("fp8", "one of auto, bf16, fp16, fp32-fast, fp32"),
                                        ("fp16", "fp16 runs on a GPU")])
def test_bad_precision_names_the_choices(bad, words):
    with pytest.raises(ValueError, match=words):
        resolve_precision(bad, CPU)


def test_the_words_say_which_precision_ran_and_why(bf16_cpu):
    cap = torch.backends.cpu.get_cpu_capability()
    bf16_cpu(False)
    assert describe_precision("fp32-fast", CPU) == f"fp32-fast ({cap} CPU, no native bf16)"
    assert describe_precision("bf16", CPU) == f"bf16 (emulated on this {cap} CPU: slower than fp32)"
    assert describe_precision("fp32", CPU) == f"fp32 (exact; {cap} CPU)"
    bf16_cpu(True)
    assert describe_precision("bf16", CPU) == f"bf16 (native on this {cap} CPU)"


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32-fast", None), ("fp32", None)])
def test_autocast_only_for_the_half_precisions(precision, dtype):
    with autocast(CPU, precision):
        assert torch.is_autocast_enabled("cpu") == (dtype is not None)
        if dtype is not None:
            assert torch.get_autocast_dtype("cpu") == dtype


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_autocast_fp16_on_a_gpu_device_type():
    """The fp16 context is made for the device's type (here only built, there is no GPU to run it)."""
    ctx = autocast(torch.device("cuda"), "fp16")
    assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == torch.float16


def test_auto_device_is_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "mps_available", lambda: True)
    assert pick_device("auto").type == "mps" and pick_device(None).type == "mps"
    monkeypatch.setattr(device_mod, "mps_available", lambda: False)
    assert pick_device("auto") == CPU


@pytest.mark.skipif(device_mod.mps_available(), reason="this machine has MPS")
def test_mps_where_absent_is_a_clear_error():
    with pytest.raises(ValueError, match="no Apple GPU.*--device cpu"):
        pick_device("mps")


@pytest.mark.parametrize("name, words", [("meta", "holds shapes but no numbers. Use auto, cpu"),
                                         ("xla", "not one PadLens computes on"), ("gpu0", "unknown device")])
def test_devices_that_cannot_compute_are_refused(name, words):
    with pytest.raises(ValueError, match=words):
        pick_device(name)


def test_threads_from_the_environment(monkeypatch):
    monkeypatch.setenv("PADLENS_THREADS", "1")
    assert cpu_threads() == 1
    monkeypatch.setenv("PADLENS_THREADS", "two")
    with pytest.raises(ValueError, match="PADLENS_THREADS='two'.*1 or more"):
        cpu_threads()


def test_fp32_fast_folds_and_exact_fp32_does_not(tiny_model):
    assert folds("fp32-fast") and folds("bf16") and not folds("fp32") and not folds("fp32-fast", fold=False)
    assert not has_bn(fast_model(tiny_model, CPU, "fp32-fast")) and has_bn(fast_model(tiny_model, CPU, "fp32"))
    x = NORM.apply(torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8))
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():   # exact fp32 runs the model as it is: the same bits
        assert torch.equal(fast_model(tiny_model, CPU, "fp32")(x),
                           tiny_model.to(memory_format=torch.channels_last)(x))
    assert grid_batch(CPU, "fp32-fast") < grid_batch(CPU, "bf16") < grid_batch(torch.device("cuda"), "bf16")


def test_fp32_fast_within_a_tenth_of_a_point_of_exact_fp32_on_every_cell(tiny_model):
    """1,000 images: one flipped prediction in a cell is 0.1 points."""
    gen = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (1000,), generator=gen)
    spec = GridSpec(-5, 5, -5, 0, 5)   # -5 and 5 change the pooling phase, where rounding matters most
    grids = {p: run_job(translation_grid(fast_model(tiny_model, CPU, p), images, labels, NORM, spec, device=CPU,
                                         precision=p, batch_images=1000)) for p in ("fp32", "fp32-fast")}
    diff = np.abs(grids["fp32-fast"].accuracy - grids["fp32"].accuracy)
    assert diff.max() <= 0.001, diff
    assert not np.array_equal(grids["fp32-fast"].loss_sum, grids["fp32"].loss_sum), "folding changed nothing"
    assert 0.05 < grids["fp32"].accuracy.mean() < 0.95


def test_each_precision_has_its_own_cache_entry_and_says_why(tiny_checkpoint, fake_data, cache_home):
    loaded = load_model(tiny_checkpoint, CPU)
    reqs = {p: GridRequest(loaded, fake_data, GridSpec.square(-4, 4, 4), "affine", 20, 0, p)
            for p in PRECISIONS if p != "fp16"}   # fp16 is for GPUs
    assert len({r.key for r in reqs.values()}) == len(reqs)
    auto = GridRequest(loaded, fake_data, GridSpec.square(-4, 4, 4), "affine", 20, 0, "auto")
    assert auto.key == reqs[resolve_precision("auto", CPU)].key
    info = reqs["fp32-fast"].info()
    assert info["precision_text"] == describe_precision("fp32-fast", CPU) and info["fused"] is True
    assert info["precision_text"] in info["title"]
