"""The padding-aware channels panel worked as a user works it: it ranks on its own, a click on a mosaic cell picks
its table row, the dataset mean ranks again and earlier settings come back from memory, Ablate shows accuracy,
border bias and the grid difference, Cancel stops it mid-way, and the exports write files (the save dialogs
answered by the test)."""
import csv

import numpy as np
import pytest
import torch
from PyQt6.QtCore import QPointF, QSettings, Qt
from PyQt6.QtGui import QImage

from padlens.core.data import Dataset
from padlens.core.mosaic import grid_shape
from padlens.core.session import load_model
from padlens.core.stats import wilson
from padlens.gui.style import configure_pyqtgraph

CPU = torch.device("cpu")


@pytest.fixture
def jpeg_data(fake_data):
    return Dataset(fake_data.images, fake_data.labels, "CIFAR-10 JPEG test (ImageFolder /fake)")


@pytest.fixture
def panel(qtbot, tmp_path, jpeg_data, tiny_checkpoint, cache_home):
    from padlens.gui.channels_panel import ChannelsPanel
    configure_pyqtgraph()   # as the main window does before its first plot
    p = ChannelsPanel(QSettings(str(tmp_path / "ch.ini"), QSettings.Format.IniFormat), CPU)
    qtbot.addWidget(p)
    p.set_model(load_model(tiny_checkpoint, CPU), 32)
    p.set_data(jpeg_data)
    p.precision.setCurrentText("fp32")
    p.resize(1500, 950)
    p.show()
    qtbot.waitExposed(p)
    qtbot.waitUntil(lambda: p.layer() is not None and not p.runner.running, timeout=30000)
    yield p
    p.cancel()
    qtbot.waitUntil(lambda: not p.runner.running, timeout=30000)


def ablate(qtbot, panel, k=2, images=20, grid=4):
    panel.k.setValue(k)
    panel.images.setValue(images)
    panel.grid_images.setValue(grid)
    qtbot.mouseClick(panel.ablate_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.runner.running, timeout=60000)
    return panel.ablation()


def test_it_ranks_on_its_own_and_a_click_on_a_cell_picks_the_channel(qtbot, panel):
    lc = panel.layer()
    assert panel.layer_box.currentText() == "model[3][4]  Conv2d  16x4x4"   # the last convolution
    assert "model[1][1]  MaxPool2d  8x16x16" in [panel.layer_box.itemText(i) for i in range(panel.layer_box.count())]
    assert panel.status.text() == "Ranked on the blank input: model[3][4] Conv2d 16x4x4. Ablate zeroes the top 4."
    assert panel.table.rowCount() == 16
    assert [int(panel.table.item(r, 1).text()) for r in range(16)] == list(lc.ranking)
    assert panel.table.item(0, 2).text() == f"{lc.score[lc.ranking[0]]:+.3f}"
    from padlens.gui.channels_panel import GAP
    rows, cols = grid_shape(8)
    image = panel.mosaic.image.image
    h, w, _, _ = panel.mosaic.cell
    assert image.shape == (rows * (h + GAP) - GAP, cols * (w + GAP) - GAP, 3) and image.dtype == np.uint8
    assert [t.text() for t in panel.mosaic.labels][:2] == [f"{c}: {lc.score[c]:+.2f}" for c in lc.top(2)]
    qtbot.wait(100)   # the figure fits its panels once laid out
    r, q = divmod(4, cols)   # the fifth cell
    vb = panel.mosaic.plot.vb
    scene = vb.mapViewToScene(vb.mapFromItemToView(panel.mosaic.image, QPointF(q * (w + GAP) + w / 2,
                                                                               r * (h + GAP) + h / 2)))
    qtbot.mouseClick(panel.mosaic.viewport(), Qt.MouseButton.LeftButton, pos=panel.mosaic.mapFromScene(scene))
    qtbot.waitUntil(lambda: panel.table.currentRow() == 4)
    assert panel.table.item(4, 1).text() == str(lc.top(5)[4])


def test_the_dataset_mean_ranks_again_and_earlier_settings_come_from_memory(qtbot, panel, monkeypatch):
    blank = panel.layer()
    panel.mean_images.setValue(20)
    panel.input_box.setCurrentIndex(panel.input_box.findData("mean"))
    qtbot.waitUntil(lambda: panel.layer() is not None and not panel.runner.running, timeout=30000)
    mean = panel.layer()
    assert mean is not blank and panel.scan().info["mean_images"] == 20
    assert panel.status.text().startswith("Ranked on the mean input (20 images)")
    assert "20 test images of CIFAR-10 (lossy JPEG copy)" in panel.mosaic.title.text
    import padlens.gui.channels_panel as cp
    monkeypatch.setattr(cp, "scan_job", lambda *a, **k: pytest.fail("ranked again"))
    panel.input_box.setCurrentIndex(panel.input_box.findData("blank"))
    assert panel.layer() is blank and not panel.runner.running
    panel.layer_box.setCurrentIndex(panel.layer_box.findText("model[2][6]  GELU  16x8x8"))
    assert panel.layer().name == "model[2][6]" and panel.table.rowCount() == 16


def test_the_border_bias_table_shows_its_headers_whole_before_an_ablation(qtbot, panel):
    """Empty, it kept Qt's default column widths: "border bias before" read "order bias befor" behind a scroll
    bar at 1280x720."""
    t = panel.bias_table
    assert t.rowCount() == 0
    widths = [t.columnWidth(c) for c in range(t.columnCount())]
    assert all(w >= t.horizontalHeader().sectionSizeHint(c) for c, w in enumerate(widths))
    assert t.viewport().width() >= sum(widths) and t.horizontalScrollBar().maximum() == 0


def test_ablate_shows_accuracy_border_bias_and_the_grid_difference(qtbot, panel):
    a = ablate(qtbot, panel)
    assert a.complete and a.channels == panel.layer().top(2) and a.evaluated == 20
    assert panel.status.text().startswith("Done in") and "the top 2 of model[3][4] zeroed, accuracy on 20" in \
        panel.status.text()
    lo, hi = wilson(a.correct[0], 20)
    text = panel.result_text.text()
    assert f"before {100 * a.accuracy[0]:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]" in text and "Newcombe" in text
    assert f"predictions changed: {a.changed} of 20" in text
    assert panel.bias_table.rowCount() == len(a.bias_layers)
    row = a.bias_layers.index("model[3][4]")
    assert panel.bias_table.item(row, 0).font().bold()
    assert panel.bias_table.item(row, 2).text() == f"{a.bias_after[row]:.3f}"
    np.testing.assert_array_equal(panel.ablation_figure.images[2].image, a.grid_difference)
    assert a.grids[0].images == a.grids[1].images == 4
    first = a
    panel.k.setValue(3)
    assert panel.ablation() is None and panel.ablate_btn.text() == "Ablate top 3"
    panel.k.setValue(2)   # back: from memory
    assert panel.ablation() is first and panel.status.text().startswith("Done")


def test_cancel_mid_ablation_keeps_the_images_finished(qtbot, panel, monkeypatch):
    import padlens.core.channels as ch
    monkeypatch.setattr(ch, "grid_batch", lambda device, precision: 2)   # many small steps: time to press Cancel
    g = torch.Generator().manual_seed(1)
    big = Dataset(torch.randint(0, 256, (3000, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(3000) % 10,
                  "fake test split")
    panel.set_data(big)
    panel.images.setValue(3000)
    qtbot.mouseClick(panel.ablate_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "accuracy before and after" in panel.message, timeout=30000)
    assert panel.status.text().startswith("Ablating: accuracy before and after:")
    qtbot.mouseClick(panel.cancel_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.runner.running, timeout=30000)
    a = panel.ablation()
    assert 0 < a.evaluated < 3000 and not a.complete and a.grids == (None, None)
    assert panel.status.text() == f"Cancelled: accuracy on {a.evaluated} of 3000 images, no grid after."
    assert panel.ablate_btn.isEnabled() and not panel.cancel_btn.isEnabled()


def test_exports_write_the_figures_and_the_data(qtbot, panel, save_as, tmp_path):
    a = ablate(qtbot, panel)
    png, svg, pdf = tmp_path / "mosaic.png", tmp_path / "ablation.svg", tmp_path / "ablation.pdf"
    save_as(png, svg, pdf, tmp_path / "ch.csv", tmp_path / "ch.npz")
    for button in (panel.export_btn, panel.export_ablation_btn, panel.export_ablation_btn, panel.save_btn,
                   panel.save_btn):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    img = QImage(str(png))
    assert img.width() > 300 and img.height() > 200 and round(img.dotsPerMeterX() * 0.0254) == 300
    assert svg.read_text().rstrip().endswith("</svg>") and "channels" in svg.read_text()
    assert pdf.read_bytes()[:4] == b"%PDF"
    assert "Model tiny (padding zeros); layer model[3][4] (Conv2d)" in panel.mosaic.caption
    rows = list(csv.reader((tmp_path / "ch.csv").open()))
    assert rows[0][:3] == ["input", "layer", "type"] and len(rows) > 16
    ab = list(csv.reader((tmp_path / "ch_ablation.csv").open()))
    assert ab[1][0] == "accuracy" and ab[1][-1] == "20"
    with np.load(tmp_path / "ch.npz") as d:
        assert list(d["ablation/channels"]) == a.channels and d["blank/model[3][4]/maps"].shape == (16, 4, 4)


def test_a_hidden_panel_ranks_only_once_shown(qtbot, tmp_path, tiny_checkpoint, cache_home):
    from padlens.gui.channels_panel import ChannelsPanel
    configure_pyqtgraph()
    p = ChannelsPanel(QSettings(str(tmp_path / "hidden.ini"), QSettings.Format.IniFormat), CPU)
    qtbot.addWidget(p)
    p.set_model(load_model(tiny_checkpoint, CPU), 32)
    assert not p.runner.running and p.status.text() == "Not ranked for these settings yet: Rank computes it."
    p.input_box.setCurrentIndex(p.input_box.findData("mean"))
    assert p.status.text().startswith("Needs the CIFAR-10 test split") and not p.rank_btn.isEnabled()
    p.input_box.setCurrentIndex(p.input_box.findData("blank"))
    p.show()
    qtbot.waitUntil(lambda: p.layer() is not None and not p.runner.running, timeout=30000)
    assert p.status.text().endswith("Ablating needs the CIFAR-10 test split.") and not p.ablate_btn.isEnabled()


def test_the_command_line_writes_the_panels_figures_offscreen(qtbot, panel, tmp_path):
    """write_channel_figures, behind `padlens channels --out` and the report: the mosaic and the ablation's
    grids as the panel draws them, at 300 dpi and as SVG."""
    from padlens.gui.channels_panel import write_channel_figures
    from tests.figure_checks import assert_paper_figure
    a = ablate(qtbot, panel)
    lc = panel.layer()
    written = write_channel_figures(panel.scan(), "blank", lc.path, 4, "tiny", "zeros", tmp_path, a)
    assert [p.name for p in written] == ["channels.png", "channels.svg", "channels_ablation.png",
                                         "channels_ablation.svg"]
    assert_paper_figure(*written[:2], "the top 4 channels of", "layer model[3][4] (Conv2d)", min_width=600)
    assert_paper_figure(*written[2:], "zeroed", "after - before")
    assert [p.name for p in write_channel_figures(panel.scan(), "blank", lc.path, 4, "tiny", "zeros", tmp_path,
                                                  stem="alone")] == ["alone.png", "alone.svg"], "no ablation: no grids"
