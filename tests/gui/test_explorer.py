"""The feature-map explorer, headless: inputs, layer tree, grid, dataset mean, exports, closing."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PyQt6.QtGui import QImage
from PyQt6.QtWidgets import QMessageBox
from torchvision.io import write_png

from padlens.core.activations import blank_input, mean_activations
from padlens.core.jobs import run_job


@pytest.fixture(autouse=True)
def always_yes(monkeypatch):
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)


def _layer(w, name):
    return next(i for i in w.explorer.layers if i.name == name)


def test_each_input_kind_gives_activations_of_the_right_shapes(window, tmp_path):
    w = window
    conv = _layer(w, "model[2][0]")
    w.inputs.set_kind("dataset")
    w.inputs.index_spin.setValue(7)
    assert w.result.label == "test image 7" and w.result.acts[conv.path].shape == conv.output_shape
    assert "true:" in w.inputs.caption.text() and "predicted" in w.inputs.caption.text()
    w.inputs.set_kind("blank")
    for button in w.inputs.blank_group.buttons():
        button.setChecked(True)
        kind = button.property("kind")
        expected = blank_input(kind, w.explorer.loaded.norm)
        torch.testing.assert_close(w.result.input_image, expected[0])
        assert w.result.acts[conv.path].shape == conv.output_shape
    write_png(torch.full((3, 40, 50), 128, dtype=torch.uint8), str(tmp_path / "own.png"))
    w.inputs.file_path = str(tmp_path / "own.png")
    w.inputs.set_kind("file")
    w.inputs.emit_choice()
    assert w.result.label == "own.png" and w.result.acts[conv.path].shape == conv.output_shape


def test_clicking_tree_nodes_shows_the_channel_count(window):
    w = window
    w.inputs.set_kind("blank")
    for name in ("model[0][0]", "model[1][4]", "model[3][6]", "model[4][2]"):
        info = _layer(w, name)
        w.tree.setCurrentItem(w.tree.items[info.path])
        channels = info.output_shape[0] if len(info.output_shape) == 3 else 1
        assert w.grid.maps.shape[0] == channels
        assert f"{channels} channel" in w.grid.info.text()


def test_grid_click_enlarges_that_channel(window):
    w = window
    w.inputs.set_kind("blank")
    w.tree.select(_layer(w, "model[1][4]").path)
    w.grid.show_channel(5)
    np.testing.assert_array_equal(w.grid.big_image.image, w.grid.maps[5])


def test_dataset_mean_cancels_and_equals_a_direct_computation(window, qtbot, fake_data):
    """Over a class-balanced subset (an ImageFolder split is sorted by class, its first N one class),
    on a private copy of the model, so forward passes the GUI runs meanwhile do not mix in."""
    from padlens.core.data import Dataset, stratified_subset
    w = window
    order = torch.argsort(fake_data.labels, stable=True)
    w.set_datasets({"test": Dataset(fake_data.images[order], fake_data.labels[order], "sorted by class")})
    w.inputs.set_kind("mean")
    w.compute_mean("test", 20)
    w.inputs.set_kind("blank")   # a GUI forward pass on the shared model while the mean runs
    qtbot.waitUntil(lambda: not w.mean_runner.running, timeout=20000)
    subset = fake_data.images[order][stratified_subset(fake_data.labels[order], 20)]
    assert sorted(fake_data.labels[order][stratified_subset(fake_data.labels[order], 20)].tolist()) == \
        sorted(list(range(10)) * 2)
    want, n = run_job(mean_activations(w.explorer.loaded.model, subset, w.explorer.loaded.norm))
    assert n == 20 and "20" in w.result.label
    for path, act in want.items():
        torch.testing.assert_close(w.result.acts[path], act, atol=1e-5, rtol=1e-4)
    # cancel: the worker stops early and reports fewer images
    stops = iter([False, True])
    partial = run_job(mean_activations(w.explorer.loaded.model, fake_data.images, w.explorer.loaded.norm,
                                       batch_size=10, should_stop=lambda: next(stops, True)))
    assert partial[1] == 10
    w.compute_mean("test", 60)
    w.mean_runner.cancel()
    qtbot.waitUntil(lambda: not w.mean_runner.running, timeout=20000)
    assert w.inputs.mean_btn.isEnabled()


def test_a_dataset_mean_of_another_input_size_or_model_never_shows(window, qtbot, tiny_checkpoint):
    """The mean is computed on request only: after a change its maps go, and the panel says so."""
    w = window
    conv = _layer(w, "model[1][0]").path
    w.inputs.set_kind("mean")
    w.compute_mean("test", 20)
    qtbot.waitUntil(lambda: not w.mean_runner.running, timeout=20000)
    assert w.result.label == "mean over 20 test images" and w.grid.maps is not None
    for change in (lambda: w.set_input_size(40), lambda: w.open_checkpoint(str(tiny_checkpoint))):
        change()
        assert w.result is None and w.grid.maps is None, "no maps of the old model or size on show"
        assert "press Compute" in w.inputs.mean_status.text() and "press Compute" in w.grid.info.text()
        assert "mean over" not in w.grid.grid_title.text and w.inputs.thumb.pixmap().isNull()
        assert w.inputs.thumb.text() == "no input" and w.grid.readout.text() == " "
        assert w.grid.mean_bar.levels() == (0, 1) and w.grid.big_bar.levels() == (0, 1)
        w.compute_mean("test", 20)
        qtbot.waitUntil(lambda: not w.mean_runner.running, timeout=20000)
        assert w.result.acts[conv].shape[-1] == w.explorer.input_size
    w.set_input_size(32)


def test_every_export_writes_a_readable_file(window, tmp_path):
    w = window
    w.inputs.set_kind("blank")
    w.tree.select(_layer(w, "model[2][4]").path)
    from padlens.gui.export import write_figure, write_npy
    png = write_figure(w.grid.grid_widget.scene(), tmp_path / "grid.png")
    assert not QImage(str(png)).isNull() and QImage(str(png)).width() > 100
    svg = write_figure(w.grid.side_widget.scene(), tmp_path / "map.svg")
    assert ET.parse(svg).getroot().tag.endswith("svg")
    npy = write_npy(w.result.acts[(2, 4)].numpy(), tmp_path / "acts.npy")
    assert np.load(npy).shape == w.result.acts[(2, 4)].shape
    written = w.export_all_layers(str(tmp_path / "all"))
    assert len(written) == len(w.result.acts)
    assert (tmp_path / "all" / "model[2][4]_Conv2d.png").is_file()
    assert all(not QImage(str(p)).isNull() for p in written)
    assert not list((tmp_path / "all").glob(".*partial*")), "no half-written files"


def test_failed_export_leaves_no_file(tmp_path):
    from padlens.core.files import atomic_write

    def broken(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "x.png", broken)
    assert list(tmp_path.iterdir()) == []


def test_opening_another_model_while_the_mean_runs_cancels_without_waiting(qtbot, window, tiny_checkpoint):
    w = window
    w.inputs.set_kind("mean")
    w.compute_mean("test", 60)
    w.open_checkpoint(str(tiny_checkpoint))
    assert w.mean_runner.running and w.mean_runner.worker.cancel_requested, "cancelled, not waited for"
    qtbot.waitUntil(lambda: not w.mean_runner.running, timeout=20000)
    assert w.result is None and "Discarded" in w.inputs.mean_status.text()
    assert w.inputs.mean_btn.isEnabled()


def test_closing_while_the_mean_runs(qtbot, window):
    w = window
    w.compute_mean("test", 60)
    w.close()
    assert not w.mean_runner.running


def _png_tree(root, per_class=2, classes=3):
    from padlens.core.data import CLASSES
    for label, cls in enumerate(CLASSES[:classes]):
        d = root / "test" / cls
        d.mkdir(parents=True)
        for k in range(per_class):
            write_png(torch.full((3, 32, 32), 20 * label + k, dtype=torch.uint8), str(d / f"{k}.png"))
    return root


def test_loading_a_data_set_shows_progress_then_the_images(window, qtbot, tmp_path, monkeypatch):
    import padlens.core.data
    monkeypatch.setattr(padlens.core.data, "DECODE_CHUNK", 2)
    root = _png_tree(tmp_path / "pngs")
    seen = []
    show = window.inputs.set_loading
    monkeypatch.setattr(window.inputs, "set_loading", lambda text: (seen.append(text), show(text)))
    window.load_data(root)
    assert window.inputs.download_btn.isHidden() and window.inputs.data_controls.isHidden()   # no download offer
    qtbot.waitUntil(lambda: not window.data_runner.running, timeout=10000)
    assert any("of 6" in t for t in seen)
    assert len(window.datasets["test"]) == 6 and "ImageFolder" in window.data_label.text()
    assert not window.inputs.data_controls.isHidden() and window.inputs.download_btn.isHidden()


def test_closing_while_the_data_set_decodes(window, qtbot, tmp_path, monkeypatch):
    """Decoding checks for cancel between chunks: the window closes at once and no thread is left."""
    import time

    import padlens.core.data
    from padlens.gui.worker import live_jobs
    monkeypatch.setattr(padlens.core.data, "DECODE_CHUNK", 1)
    read = padlens.core.data.read_image_file
    monkeypatch.setattr(padlens.core.data, "read_image_file", lambda p: (time.sleep(0.2), read(p))[1])
    root = _png_tree(tmp_path / "pngs", per_class=10, classes=5)      # 50 images: 10 s to decode
    window.load_data(root)
    qtbot.waitUntil(lambda: "decoding" in window.data_label.text(), timeout=5000)
    t = time.perf_counter()
    window.close()
    assert time.perf_counter() - t < 2.0 and live_jobs() == 0 and not window.data_runner.running
