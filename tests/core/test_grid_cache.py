"""The grid cache protocol (core/grid_cache.py): a damaged file is discarded, named and computed again; an
incomplete grid is never cached nor read back as complete; the command line, the report and the comparison
find one another's grids (one key for the same model, data, grid, mode, images, seed, precision and size)."""
import json
import sys

import numpy as np
import pytest
import torch

import padlens.core.grid_cache as grid_cache
from padlens.cli.main import main
from padlens.core.comparison import comparison_job
from padlens.core.data import load_split
from padlens.core.grid_cache import GridRequest
from padlens.core.jobs import run_job
from padlens.core.report import report
from padlens.core.session import load_model
from padlens.core.translation import GridResult, GridSpec

SPEC = GridSpec(-4, 4, -4, 4, 4)
IMAGES = 20
MODE = "affine"


@pytest.fixture
def request_for(tiny_checkpoint, fake_data, cache_home):
    """A new GridRequest for the same settings each call, as each caller makes its own."""
    loaded = load_model(tiny_checkpoint, torch.device("cpu"))
    return lambda: GridRequest(loaded, fake_data, SPEC, "affine", IMAGES, 0, "fp32")


def damage(path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:len(data) // 2], "empty": b"",
                      "random bytes": np.random.default_rng(0).bytes(len(data))}[how])


@pytest.mark.parametrize("how", ["truncated", "empty", "random bytes"])
def test_a_damaged_cache_file_is_discarded_named_and_computed_again(request_for, how):
    first = request_for()
    computed = run_job(first.job())
    path = first.path
    assert path.is_file() and computed.info["cache"] == f"cached as {path.name}"
    damage(path, how)
    again = request_for()
    assert again.key == first.key and again.cached() is None
    assert not path.exists(), "the damaged file is removed"
    assert len(again.notes) == 1 and path.name in again.notes[0] and "unreadable" in again.notes[0]
    redone = run_job(again.job())
    assert redone.info["cache"] == f"cached as {path.name}"
    reread = request_for().cached()
    assert reread is not None and reread.images == IMAGES
    np.testing.assert_array_equal(reread.correct, computed.correct)
    np.testing.assert_array_equal(reread.loss_sum, computed.loss_sum)


def test_an_incomplete_grid_is_never_cached_nor_read_back(request_for):
    req, stop = request_for(), []
    partial = run_job(req.job(lambda: bool(stop)), on_partial=lambda p: stop.append(1))   # stop after a chunk
    assert 0 < partial.images < IMAGES
    assert partial.info["cache"] == "not cached (incomplete)" and not req.path.exists()
    assert req.save(partial) == "not cached (incomplete)" and not req.path.exists()
    partial.save_npz(req.path)          # one left by an older version, or written by hand
    again = request_for()
    assert again.cached() is None and not req.path.exists()
    assert len(again.notes) == 1 and "incomplete" in again.notes[0] and req.path.name in again.notes[0]


# ---- the callers find one another's grids ------------------------------------------------------------------
def via_cli(ckpts, data, tmp, capsys) -> list[tuple[GridResult | None, bool]]:
    out = []
    for k, ckpt in enumerate(ckpts):
        folder = tmp / f"cli-{k}"
        assert main(["translate", "--checkpoint", str(ckpt), "--data", str(data), "--range", "-4", "4", "--step", "4",
                     "--images", str(IMAGES), "--mode", MODE, "--out", str(folder), "--device", "cpu",
                     "--precision", "fp32"]) == 0
        out.append((GridResult.load_npz(folder / "translation.npz"), "from the cache" in capsys.readouterr().out))
    return out


def via_comparison(ckpts, data, tmp, capsys) -> list[tuple[GridResult | None, bool]]:
    models = [(str(p), p.stem, load_model(p, torch.device("cpu"))) for p in ckpts]
    res = run_job(comparison_job(models, load_split(data, "test"), SPEC, MODE, IMAGES, precision="fp32"))
    assert res["complete"]
    return [(e.grid, e.from_cache) for e in res["entries"]]


def via_report(ckpts, data, tmp, capsys) -> list[tuple[GridResult | None, bool]]:
    """The report keeps no GridResult, only whether each grid came from the cache."""
    run_job(report(ckpts, tmp / "report", data, "cpu", images=IMAGES, grid=SPEC, modes=(MODE,), mean_images=IMAGES,
                   precision="fp32", worst_case_images=0))   # the translation grid alone
    doc = json.loads((tmp / "report" / "report.json").read_text())
    return [(None, c["grids"][MODE]["from_cache"]) for c in doc["checkpoints"]]


CALLERS = {"cli": via_cli, "comparison": via_comparison, "report": via_report}


@pytest.mark.parametrize("first", list(CALLERS))
def test_each_caller_reads_the_grids_another_computed(first, report_run, cache_home, tmp_path, monkeypatch, capsys):
    """On report_run's zero-padded tiny checkpoint and JPEG-named PNG folder, from an empty cache: the first
    caller computes, the others only read (computing fails the test)."""
    monkeypatch.setitem(sys.modules, "padlens.gui.figures", None)   # the CLI's figures need Qt: numbers only
    ckpts, data = report_run.ckpts[:1], report_run.data
    made = CALLERS[first](ckpts, data, tmp_path / first, capsys)
    assert len(made) == len(ckpts) and not any(cached for _, cached in made), "an empty cache has nothing"
    files = sorted((cache_home / "padlens" / "translation").glob("*.npz"))
    assert len(files) == len(ckpts)
    monkeypatch.setattr(grid_cache, "translation_grid", lambda *a, **k: pytest.fail("computed, not read"))
    for name, caller in CALLERS.items():
        if name == first:
            continue
        got = caller(ckpts, data, tmp_path / name, capsys)
        assert len(got) == len(ckpts) and all(cached for _, cached in got), f"{name} missed {first}'s grids"
        for (grid, _), (mine, _) in zip(got, made, strict=True):
            if grid is not None and mine is not None:
                np.testing.assert_array_equal(grid.correct, mine.correct)
                np.testing.assert_array_equal(grid.loss_sum, mine.loss_sum)
    assert sorted((cache_home / "padlens" / "translation").glob("*.npz")) == files, "no other key, no new file"
