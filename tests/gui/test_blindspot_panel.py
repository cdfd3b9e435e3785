"""The blind-spot panel worked as a user works it: settings, Start, hover, Cancel, the in-memory cache, a padding
variant beside the current model, Export figure and Save data (the save dialogs answered by the test)."""
import csv

import numpy as np
import pytest
import torch
from PyQt6.QtCore import QPointF, QSettings, Qt
from PyQt6.QtGui import QImage
from PyQt6.QtWidgets import QFileDialog, QMessageBox

from padlens.core.checkpoint import save_checkpoint
from padlens.core.data import Dataset
from padlens.core.session import load_model
from padlens.core.stats import wilson
from tests.tiny import NORM, tiny

CPU = torch.device("cpu")


@pytest.fixture
def jpeg_data(fake_data):
    return Dataset(fake_data.images, fake_data.labels, "CIFAR-10 JPEG test (ImageFolder /fake)")


def make_panel(qtbot, tmp_path, data, checkpoint):
    from padlens.gui.blindspot_panel import BlindspotPanel
    panel = BlindspotPanel(QSettings(str(tmp_path / "bs.ini"), QSettings.Format.IniFormat), CPU)
    qtbot.addWidget(panel)
    panel.set_model(load_model(checkpoint, CPU), 32)
    panel.set_data(data)
    panel.precision.setCurrentText("fp32")
    panel.resize(1400, 800)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


@pytest.fixture
def panel(qtbot, tmp_path, jpeg_data, tiny_checkpoint):
    p = make_panel(qtbot, tmp_path, jpeg_data, tiny_checkpoint)
    yield p
    p.cancel()
    qtbot.waitUntil(lambda: not p.runner.running, timeout=30000)


def run(qtbot, panel, patch=16, stride=8, images=10):
    panel.patch.setValue(patch)
    panel.stride.setValue(stride)
    panel.count.setValue(images)
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.runner.running, timeout=60000)
    return panel.shown()[0][1]


def hover(qtbot, panel, metric, x, y):
    fig = panel.figure
    qtbot.wait(200)   # the panels refit once Qt has laid out the window
    plot = fig.plots[metric][0]
    qtbot.mouseMove(fig.viewport(), fig.mapFromScene(plot.vb.mapViewToScene(QPointF(x, y))))


def test_start_computes_the_maps_and_the_hover_read_out_reads_them(qtbot, panel):
    assert panel.status.text().startswith("Not computed")
    r = run(qtbot, panel)
    assert r is not None and r.images == 10 and list(r.xs) == [0, 8, 16]
    assert panel.status.text().startswith("Done in") and "10 images per model" in panel.status.text()
    np.testing.assert_array_equal(panel.figure.images["accuracy"][0].image, r.accuracy)
    hover(qtbot, panel, "accuracy", 16, 8)   # x right, y down: column 2, row 1
    qtbot.waitUntil(lambda: "x=16, y=8" in panel.readout.text())
    i, j = r.cell(16, 8)
    assert (i, j) == (1, 2)
    lo, hi = wilson(r.correct[i, j], r.count[i, j])
    text = panel.readout.text()
    assert text.startswith("Patch top-left at x=16, y=8 (centre 24, 16): tiny (zeros): ")
    assert (f"p {r.probability[i, j]:.3f}, accuracy {100 * r.accuracy[i, j]:.1f}% (95% CI {100 * lo:.1f}-"
            f"{100 * hi:.1f}%, 10 images)") in text
    caption = panel.figure.caption
    for part in ("Model tiny (padding zeros)", "scaled to 16x16 px", "every 8 px", "blank (zeros in pixel space",
                 "the lossy JPEG copy of CIFAR-10", "10 images"):
        assert part in caption, caption


def test_cancel_mid_way_keeps_whole_images_and_says_how_many(qtbot, panel):
    panel.patch.setValue(8)
    panel.stride.setValue(1)   # 625 positions: ten forward passes per image
    panel.count.setValue(60)
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.shown()[0][1] is not None, timeout=60000)
    assert panel.status.text().startswith("Computing: tiny (1 of 1), images")
    qtbot.mouseClick(panel.cancel_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.runner.running, timeout=30000)
    r = panel.shown()[0][1]
    k = r.images
    assert 0 < k < 60 and (r.count == k).all() and r.full_count == k
    assert panel.status.text() == f"Cancelled after {k} of 60 images (tiny)."
    assert f"so far {k} of the 60 images" in panel.figure.title.text
    assert panel.start_btn.isEnabled() and not panel.cancel_btn.isEnabled()


def test_earlier_settings_come_back_from_memory(qtbot, panel, monkeypatch):
    first = run(qtbot, panel)
    panel.stride.setValue(4)
    assert panel.shown()[0][1] is None and panel.status.text().startswith("Not computed")
    assert panel.figure.plots["accuracy"][0].titleLabel.text.endswith("not computed</span>")
    run(qtbot, panel, stride=4)
    import padlens.gui.blindspot_panel as bp
    monkeypatch.setattr(bp, "blindspot_job", lambda *a, **k: pytest.fail("computed again"))
    panel.stride.setValue(8)
    assert panel.shown()[0][1] is first
    assert panel.status.text() == "Done: 10 images per model (kept from an earlier run)."
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)   # nothing left to compute: no job
    assert not panel.runner.running and panel.status.text().startswith("Done")


def test_a_padding_variant_is_computed_beside_the_current_model(qtbot, tmp_path, jpeg_data, tiny_checkpoint,
                                                                monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    model, cfg = tiny("reflect")
    save_checkpoint(shipped / "vgg_reflect.pt", model, cfg, NORM, {"crop_pad": 4}, {"test_accuracy": 0.1})
    monkeypatch.setenv("PADLENS_CHECKPOINTS", str(shipped))
    panel = make_panel(qtbot, tmp_path, jpeg_data, tiny_checkpoint)
    box = next(iter(panel.variants.values()))
    assert box.text() == "vgg_reflect (reflect padding)"
    box.setChecked(True)
    run(qtbot, panel, images=4)
    (e0, r0), (e1, r1) = panel.shown()
    assert (e0.name, e1.name, e1.padding) == ("tiny", "vgg_reflect", "reflect") and r0.images == r1.images == 4
    assert r1.info["padding"] == "reflect" and not np.array_equal(r0.probability, r1.probability)
    np.testing.assert_array_equal(panel.figure.images["probability"][1].image, r1.probability)
    assert "models tiny (zeros padding), vgg_reflect (reflect padding)" in panel.figure.caption
    hover(qtbot, panel, "probability", 0, 0)
    qtbot.waitUntil(lambda: "x=0, y=0" in panel.readout.text())
    assert f"vgg_reflect (reflect): p {r1.probability[0, 0]:.3f}" in panel.readout.text()


def test_export_figure_and_save_data_write_files(qtbot, panel, tmp_path, monkeypatch):
    r = run(qtbot, panel)
    answers = iter([tmp_path / "maps.png", tmp_path / "maps.svg", tmp_path / "maps.pdf", tmp_path / "maps.csv",
                    tmp_path / "maps.npz"])
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(next(answers)), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    for _ in range(3):
        qtbot.mouseClick(panel.export_fig_btn, Qt.MouseButton.LeftButton)
    img = QImage(str(tmp_path / "maps.png"))
    assert img.width() > 1000 and img.height() > 500 and round(img.dotsPerMeterX() * 0.0254) == 300
    assert "PadLens blind spots" in (tmp_path / "maps.svg").read_text()
    assert (tmp_path / "maps.pdf").read_bytes()[:4] == b"%PDF"
    for _ in range(2):
        qtbot.mouseClick(panel.save_btn, Qt.MouseButton.LeftButton)
    rows = list(csv.reader((tmp_path / "maps.csv").open()))
    assert len(rows) == 1 + 9 and rows[1][:3] == ["tiny", "0", "0"] and float(rows[1][7]) == r.accuracy[0, 0]
    with np.load(tmp_path / "maps.npz") as d:
        np.testing.assert_array_equal(d["probability"], r.probability)


def test_more_images_than_the_split_holds_runs_them_all_and_says_done(qtbot, panel):
    r = run(qtbot, panel, stride=16, images=500)   # the fake split holds 60
    assert r.images == 60 and panel.status.text().startswith("Done in") and "60 images per model" in panel.status.text()


def test_the_command_line_writes_the_panels_figure_offscreen(qtbot, panel, tmp_path):
    """write_blindspot_figures, behind `padlens blindspots --out` and the report: the panel's own figure, at
    300 dpi and as SVG, its caption from the result's settings."""
    from padlens.gui.blindspot_panel import write_blindspot_figures
    from tests.figure_checks import assert_paper_figure
    r = run(qtbot, panel)
    written = write_blindspot_figures([("tiny", "zeros", r)], tmp_path, "tiny: blind spots")
    assert [p.name for p in written] == ["blindspots.png", "blindspots.svg"]
    assert_paper_figure(*written, "tiny: blind spots", "scaled to 16x16 px", "every 8 px", "lossy JPEG copy")
