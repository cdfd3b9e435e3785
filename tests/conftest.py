import os
from pathlib import Path

import pytest
import torch

from core.model import ModelConfig, build_model

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
    from core.data import load_split
    return load_split(data_root, "test")


TINY = ModelConfig(widths=(8, 16, 16), stem_width=6)


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    m = build_model(TINY)
    for mod in m.modules():   # non-trivial statistics so folding and comparisons mean something
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.bias.data.uniform_(-0.5, 0.5)
    return m.eval()


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
    from core.checkpoint import save_checkpoint
    from core.data import Normalization
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, tiny_model, TINY, Normalization((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)),
                    {"crop_pad": 4}, {"test_accuracy": 0.1, "test_images": 10, "test_data": "none"})
    return path


@pytest.fixture
def fake_data():
    """A small in-memory test split with every class."""
    from core.data import Dataset
    g = torch.Generator().manual_seed(0)
    return Dataset(torch.randint(0, 256, (60, 3, 32, 32), generator=g, dtype=torch.uint8),
                   torch.arange(60) % 10, "fake test split")


@pytest.fixture
def window(qtbot, tiny_checkpoint, fake_data, tmp_path, cache_home):
    """The main window on the tiny checkpoint, with the fake test split in place of a data set, and
    settings of its own (one test's remembered input size must not leak into the next)."""
    from PyQt6.QtCore import QSettings

    from gui.main_window import MainWindow
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
    worker = sys.modules.get("gui.worker")
    if worker is None or worker.live_jobs() == 0:
        return
    ended = worker.wait_for_jobs(30000)
    pytest.fail(f"{request.node.name} left a job thread running after its widgets closed "
                f"({'it ended once cancelled' if ended else 'it did not end within 30 s of cancel'})")
