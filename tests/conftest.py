import gc
import os
from pathlib import Path

import pytest
import torch

from tests.tiny import NORM, tiny

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The CIFAR-10 data set from PADLENS_DATA; skipped without it, but a failure in CI."""
    root = os.environ.get("PADLENS_DATA")
    if root and Path(root).is_dir():
        return Path(root)
    msg = (f"CIFAR-10 not found (PADLENS_DATA={root!r}); set PADLENS_DATA=../shared/datasets/cifar10-jpeg "
           "or to a folder holding cifar-10-batches-py to enable the data-set tests")
    if os.environ.get("PADLENS_REQUIRE_DATA"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def test_split(data_root):
    from padlens.core.data import load_split
    return load_split(data_root, "test")


TINY = tiny()[1]
EMULATED_BF16 = "bf16 is emulated on this CPU (no AVX-512 BF16/AMX): 4x slower than fp32 here"


def pytest_collection_modifyitems(config, items):
    """Tests marked native_bf16 time or compare bf16 on real models: where it is emulated they would only
    be slow, so they are skipped with the reason."""
    from padlens.core.device import cpu_native_bf16
    if cpu_native_bf16():
        return
    for item in items:
        if "native_bf16" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=EMULATED_BF16))


@pytest.fixture
def tiny_model():
    return tiny()[0]


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


# Qt settings and result caches go to a throwaway folder, never the user's
import tempfile as _tempfile  # noqa: E402

_ISOLATED = _tempfile.mkdtemp(prefix="padlens-tests-")
os.environ["XDG_CONFIG_HOME"] = os.path.join(_ISOLATED, "config")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def tiny_checkpoint(tmp_path, tiny_model):
    from padlens.core.checkpoint import save_checkpoint
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, tiny_model, TINY, NORM, {"crop_pad": 4}, {"test_accuracy": 0.1, "test_images": 10, "test_data": "none"})
    return path


@pytest.fixture
def fake_data():
    """A small in-memory test split with every class."""
    from padlens.core.data import Dataset
    g = torch.Generator().manual_seed(0)
    return Dataset(torch.randint(0, 256, (60, 3, 32, 32), generator=g, dtype=torch.uint8),
                   torch.arange(60) % 10, "fake test split")


@pytest.fixture
def window(qtbot, tiny_checkpoint, fake_data, tmp_path, cache_home):
    """The main window on the tiny checkpoint, with the fake test split in place of a data set, and
    settings of its own (one test's remembered input size must not leak into the next)."""
    from PyQt6.QtCore import QSettings

    from padlens.gui.main_window import MainWindow
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "config"))
    w = MainWindow(str(tiny_checkpoint), str(tmp_path / "no-data"))
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.data_label.text() == "no data set", timeout=10000)   # the start-up load failed
    w.set_datasets({"test": fake_data})
    return w


@pytest.fixture(autouse=True)
def no_job_outlives_its_test(request):
    """A job thread still running after a test's widgets closed would abort the process at exit."""
    yield
    import sys
    worker = sys.modules.get("padlens.gui.worker")
    if worker is None or worker.live_jobs() == 0:
        return
    ended = worker.wait_for_jobs(30000)
    pytest.fail(f"{request.node.name} left a job thread running after its widgets closed "
                f"({'it ended once cancelled' if ended else 'it did not end within 30 s of cancel'})")


@pytest.fixture(autouse=True)
def no_collection_inside_a_paint(request):
    """As in the app (gui/app.py collect_between_events): no automatic cycle collection while a Qt test runs,
    where one firing inside a paint would free a widget being drawn (a segfault in CI); one collection after
    its widgets closed instead."""
    if "qapp" not in request.fixturenames:
        yield
        return
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    gc.collect()
    if was_enabled:
        gc.enable()


@pytest.fixture(scope="session")
def report_run(tmp_path_factory):
    """Two tiny checkpoints, 40 PNGs in a folder named like the JPEG copy, one report run (core and cli tests)."""
    import dataclasses
    import json
    import types

    from torchvision.io import write_png

    from padlens.core.checkpoint import save_checkpoint
    from padlens.core.data import CLASSES
    from padlens.core.jobs import run_job
    from padlens.core.report import FigureWriters, report
    from padlens.core.translation import GridSpec
    tmp = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp / "cache"))
        ckpts = []
        for mode in ("zeros", "reflect"):
            model, cfg = tiny(mode)
            path = tmp / f"tiny_{mode}.pt"
            save_checkpoint(path, model, cfg, NORM, {"crop_pad": 4}, {"test_accuracy": 0.1})
            ckpts.append(path)
        gen = torch.Generator().manual_seed(0)
        data = tmp / "cifar10-jpeg"
        for cls in CLASSES:
            d = data / "test" / cls
            d.mkdir(parents=True)
            for k in range(4):
                write_png(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=gen), str(d / f"{k}.png"))
        calls = []   # the Qt figures are tested with the GUI and the command line; here the calls of the writers
        events = []

        def writer(name):
            return lambda *args: calls.append((name, args)) or [tmp / f"{name}_{len(calls)}.png"]
        figures = FigureWriters(*(writer(f.name) for f in dataclasses.fields(FigureWriters)))
        md = run_job(report(ckpts, tmp / "out", data, "cpu", images=20, grid=GridSpec(-4, 4, -4, 4, 4),
                            mean_images=20, precision="fp32", worst_case_images=12,
                            worst_case_grid=GridSpec(-2, 2, -2, 2, 1), progress=events.append, figures=figures))
        doc = json.loads((tmp / "out" / "report.json").read_text())
        yield types.SimpleNamespace(tmp=tmp, ckpts=ckpts, data=data, md=md, doc=doc, events=events, calls=calls,
                                    out=tmp / "out")
