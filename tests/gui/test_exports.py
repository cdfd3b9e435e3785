"""Exported figures, written the way a user writes them (menu entry or button, the save dialog answered by the
test) and read back: a 300 dpi PNG with no white border wider than its margin, an SVG and a PDF that open,
a caption naming model, padding, layer, input and data set, no selection frame, colour-bar labels inside
the figure, and a mosaic embedded in the SVG at print resolution."""
import base64
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QImage

from padlens.core.data import Dataset
from padlens.gui.export import MARGIN, PNG_DPI, SCREEN_DPI, figure_rect
from padlens.gui.style import UNIT_RANGE
from tests.gui.grids import run_small_grid

RED = (230, 0, 0)   # the mosaic's selection frame


def trigger(w, text: str) -> None:
    acts = {a.text().replace("&", ""): a for top in w.menuBar().actions() for a in top.menu().actions()}
    acts[text].trigger()


def pixels(path) -> np.ndarray:
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    row = img.bytesPerLine()
    return np.frombuffer(img.constBits().asstring(row * img.height()), np.uint8).reshape(img.height(), row)[
        :, :3 * img.width()].reshape(img.height(), img.width(), 3)


def svg_text(path) -> str:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return " ".join(t for t in root.itertext())


def has(rgb: np.ndarray, color) -> bool:
    return bool((np.abs(rgb.astype(int) - color).max(-1) <= 10).any())


@pytest.fixture
def jpeg_window(window):
    """The window with the fake split named like the shared JPEG copy, a blank input and a conv layer."""
    w = window
    test = w.datasets["test"]
    w.set_datasets({"test": Dataset(test.images, test.labels, "CIFAR-10 JPEG test (ImageFolder /fake)")})
    w.inputs.set_kind("blank")
    w.tree.select((1, 0))
    w.show()
    w.resize(1400, 900)
    return w


def test_feature_grid_exports_at_300_dpi_trimmed_captioned_without_the_selection(jpeg_window, qtbot, tmp_path,
                                                                                save_as):
    w = jpeg_window
    qtbot.wait(200)
    w.grid.show_channel(3)
    shot = w.grid.grid_widget.grab().toImage()
    shot.save(str(tmp_path / "screen.png"))
    assert has(pixels(tmp_path / "screen.png"), RED), "the selection frame shows on screen"
    save_as(tmp_path / "grid.png", tmp_path / "grid.svg", tmp_path / "grid.pdf")
    for _ in range(3):
        trigger(w, "Export feature grid (PNG/SVG/PDF)...")
    png = QImage(str(tmp_path / "grid.png"))
    assert round(png.dotsPerMeterX() * 0.0254) == PNG_DPI
    rect = figure_rect(w.grid.grid_widget.scene())
    assert png.width() == pytest.approx(rect.width() * PNG_DPI / SCREEN_DPI, abs=2)
    rgb = pixels(tmp_path / "grid.png")
    assert not has(rgb, RED), "the selection frame is a screen aid, not part of the figure"
    ink = np.nonzero((rgb < 250).any(-1))
    border = MARGIN * PNG_DPI / SCREEN_DPI + 3
    assert ink[1].min() <= border and ink[1].max() >= rgb.shape[1] - 1 - border, "white space left or right"
    assert ink[0].min() <= border, "white space on top"
    text = svg_text(tmp_path / "grid.svg")
    for part in (w.explorer.loaded.name, "padding zeros", "layer model[1][0] Conv2d", "blank"):
        assert part in text, f"{part!r} missing from the caption: {text[:300]}"
    assert (tmp_path / "grid.pdf").read_bytes().startswith(b"%PDF")


def test_the_svg_mosaic_is_embedded_at_print_resolution(jpeg_window, qtbot, tmp_path, save_as):
    w = jpeg_window
    qtbot.wait(200)
    save_as(tmp_path / "grid.svg")
    trigger(w, "Export feature grid (PNG/SVG/PDF)...")
    svg = (tmp_path / "grid.svg").read_text()
    shown = w.grid.grid_image.sceneBoundingRect().width()
    widths = []
    for data in re.findall(r'xlink:href="data:image/png;base64,([^"]+)"', svg):
        img = QImage.fromData(base64.b64decode(data))
        widths.append(img.width())
    assert widths and max(widths) >= shown * PNG_DPI / SCREEN_DPI * 0.95, (widths, shown)
    assert w.grid.grid_image.image.shape == w.grid.mosaic_image().shape, "the window's mosaic is left as it was"


def test_dataset_figures_say_lossy_jpeg_copy_and_the_image_count(jpeg_window, qtbot, tmp_path, save_as):
    w, t = jpeg_window, jpeg_window.translation
    w.tabs.setCurrentIndex(1)
    run_small_grid(qtbot, t, timeout=60000)
    save_as(tmp_path / "heat.svg", tmp_path / "heat.png")
    qtbot.mouseClick(t.export_fig_btn, Qt.MouseButton.LeftButton)
    text = svg_text(tmp_path / "heat.svg")
    assert "lossy JPEG copy" in text and "20 images" in text and "padding zeros" in text, text[:400]
    qtbot.mouseClick(t.export_fig_btn, Qt.MouseButton.LeftButton)
    rgb = pixels(tmp_path / "heat.png")
    assert (rgb < 250).any(-1).any(0).mean() > 0.9, "the heatmaps export with white columns to the side"


def test_accuracy_colour_bars_show_the_data_range_or_0_to_1_and_say_which(jpeg_window, qtbot):
    w, t = jpeg_window, jpeg_window.translation
    w.tabs.setCurrentIndex(1)
    run_small_grid(qtbot, t, timeout=60000)
    acc = t.result.accuracy
    bar, plot = t.figure.bars["accuracy"], t.figure.plots["accuracy"]
    lo, hi = bar.levels()
    assert lo <= np.nanmin(acc) and hi >= np.nanmax(acc) and hi - lo < 1, "the data's range, not 0 to 1"
    assert "data range" in plot.titleLabel.text
    t.range_box.setCurrentText(UNIT_RANGE)
    assert bar.levels() == pytest.approx((0.0, 1.0)) and UNIT_RANGE in plot.titleLabel.text


def test_colour_bar_labels_lie_inside_the_enlarged_map_export(jpeg_window, qtbot, tmp_path, save_as):
    w = jpeg_window
    w.resize(1280, 720)
    qtbot.wait(300)
    side = w.grid.side_widget
    rect = figure_rect(side.scene())
    view = side.mapToScene(side.viewport().rect()).boundingRect()
    for bar in (w.grid.mean_bar, w.grid.big_bar):
        axis = bar.axis.sceneBoundingRect()
        assert rect.contains(axis) and view.adjusted(-1, -1, 1, 1).contains(axis), (axis, rect, view)
        texts = [t for _, vs in bar.axis.tickValues(*sorted(bar.axis.range), 200) for t in vs]
        assert texts, "the colour bar has tick labels"
    save_as(tmp_path / "map.png")
    trigger(w, "Export enlarged map (PNG/SVG/PDF)...")
    assert QImage(str(tmp_path / "map.png")).width() > 0


def test_a_constant_channel_mean_says_constant_instead_of_stretching_float_noise(qtbot):
    from padlens.gui.feature_grid import FeatureGrid
    from padlens.gui.style import configure_pyqtgraph
    configure_pyqtgraph()
    g = FeatureGrid()
    qtbot.addWidget(g)
    rng = np.random.default_rng(0)
    maps = (0.25 + 1e-8 * rng.normal(size=(4, 6, 6))).astype(np.float32)
    g.set_maps(maps, "constant layer")
    assert "constant" in g.mean_plot.titleLabel.text
    lo, hi = g.mean_bar.levels()
    assert hi - lo > 1e3 * np.ptp(maps.mean(0)), "the noise is not stretched over the colour scale"
    maps[:, 0, :] += 1.0   # a real border
    g.set_maps(maps, "border layer")
    assert "constant" not in g.mean_plot.titleLabel.text
    assert g.mean_bar.levels() == pytest.approx((maps.mean(0).min(), maps.mean(0).max()), rel=1e-5)


def test_mosaic_defaults_to_per_map_scale_with_channel_numbers(jpeg_window):
    w = jpeg_window
    assert w.grid.scale_box.currentText() == "per map"
    ticks = w.grid.grid_plot.getAxis("left")._tickLevels[0]
    assert ticks[0][1] == "0" and all(int(t) % w.grid.cols == 0 for _, t in ticks)


def test_spatial_bias_heading_and_side_plots_name_the_layers(jpeg_window):
    f = jpeg_window.bias.filters
    assert "mean 3x3 filter" in f.grid_title.text and "(3, 3)" not in f.grid_title.text
    f.show_channel(1)
    assert f.big_plot.titleLabel.text == f.names[1] and f.names[1].startswith("model[")


def test_compare_defaults_hold_the_flagship_and_its_layers_compare_with_the_variants():
    import torch

    from padlens.core.checkpoint import FLAGSHIP
    from padlens.core.comparison import common_layers
    from padlens.core.layers import describe_layers
    from padlens.core.session import load_model
    from padlens.gui.comparison import default_checkpoints
    paths = default_checkpoints()
    assert paths and paths[0].endswith(FLAGSHIP) and len(paths) <= 4
    infos = [describe_layers(load_model(p, torch.device("cpu")).model, (3, 32, 32)) for p in paths[:2]]
    shared = common_layers(infos)
    assert any(i.type == "Conv2d" and i.output_shape[1:] == (16, 16) for i in shared), \
        "the flagship is wider: its maps compare by size, not by channel count"
