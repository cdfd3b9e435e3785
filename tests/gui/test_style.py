"""pyqtgraph's global options: set in one place, and in effect where figures are drawn without a window."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VIRIDIS_LOW, VIRIDIS_TOP = (68, 1, 84), (253, 231, 37)   # viridis at 0 and 1: the data range's ends


def test_only_the_style_module_sets_pyqtgraph_options():
    sources = [p for folder in ("core", "gui", "cli") for p in (ROOT / folder).rglob("*.py")]
    setters = sorted(str(p.relative_to(ROOT)) for p in sources
                     if re.search(r"\bsetConfigOptions?\(", p.read_text(encoding="utf-8")))
    assert setters == ["gui/style.py"], "global options set elsewhere depend on which module was imported last"


def _pixels(png: Path) -> np.ndarray:
    from PyQt6.QtGui import QImage
    img = QImage(str(png)).convertToFormat(QImage.Format.Format_RGB888)
    row = img.bytesPerLine()
    return np.frombuffer(img.constBits().asstring(row * img.height()), np.uint8).reshape(img.height(), row)[
        :, :3 * img.width()].reshape(img.height(), img.width(), 3)


def _centre(rgb: np.ndarray, color) -> tuple[float, float]:
    """(x, y) mean position of the pixels of this color: the heatmap cells, which dwarf the color bar's strip."""
    ys, xs = np.nonzero(np.abs(rgb.astype(int) - color).max(-1) <= 3)
    assert xs.size > 1000, f"no heatmap cells of color {color} in the figure"
    return xs.mean(), ys.mean()


def test_command_line_heatmaps_are_drawn_row_major(qapp, tmp_path):
    """A fresh interpreter, as `padlens translate` runs: no window has set any option. The one bright cell
    (dx = +4, dy = -4) must land top right; read column-major it would land bottom left."""
    script = f"""
from padlens.core.translation import GridResult, GridSpec
from padlens.gui.figures import save_heatmap_figures
r = GridResult.empty(GridSpec(-4, 4, -4, 4, 4))
r.count[:], r.correct[:] = 10, 5
r.correct[r.cell(4, -4)] = 10
save_heatmap_figures(r, {str(tmp_path)!r}, "one bright cell")
"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          check=False)   # the assert shows its stderr
    assert done.returncode == 0, done.stderr
    rgb = _pixels(tmp_path / "translation_heatmaps.png")
    accuracy = rgb[:, : rgb.shape[1] // 3]   # the first of the three heatmaps, with its color bar
    (bx, by), (hx, hy) = _centre(accuracy, VIRIDIS_TOP), _centre(accuracy, VIRIDIS_LOW)
    assert bx > hx and by < hy, f"bright cell at ({bx:.0f}, {by:.0f}), the others around ({hx:.0f}, {hy:.0f})"


def _ticks_shown(plot) -> bool:
    left = plot.getAxis("left")
    return left.textPen().color().alpha() > 0 and left.style["tickLength"] != 0


def test_an_empty_image_panel_draws_no_coordinates_until_its_data_arrives(qapp):
    """pyqtgraph's empty frame (-0.5 to 0.5) would read as coordinates; the numbers come with the data and go
    with it, in the room they always had."""
    import pyqtgraph as pg

    from padlens.gui.style import image_panel
    figure = pg.GraphicsLayoutWidget()
    plot, img = image_panel(figure, 0, 0, "panel")
    assert not _ticks_shown(plot)
    img.setImage(np.zeros((4, 4), np.float32))
    assert _ticks_shown(plot)
    img.setImage(levels=(0, 2))   # new levels for the same image: still shown
    assert _ticks_shown(plot)
    img.clear()
    assert not _ticks_shown(plot)


def test_the_translation_heatmaps_show_their_axes_numbers_once_computed(window, qtbot):
    from tests.gui.grids import run_small_grid
    tab = window.translation
    plots = list(tab.figure.plots.values())
    assert not any(_ticks_shown(p) for p in plots)
    run_small_grid(qtbot, tab, images=10)
    assert all(_ticks_shown(p) for p in plots)


def test_hidden_columns_take_no_room_in_a_figure(qapp):
    """Four of five columns hidden: the one left and its colour bar sit together, not at the figure's two ends
    (a grid layout keeps a hidden item's room unless it is folded)."""
    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QApplication

    from padlens.gui.style import PanelFigure, color_bar, image_panel
    fig = PanelFigure()
    fig.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    fig.resize(900, 400)
    fig.show()
    panels = [image_panel(fig, 0, k, f"panel {k}") for k in range(5)]
    bar = color_bar("viridis", label="value")
    bar.setImageItem([img for _, img in panels])
    fig.addItem(bar, row=0, col=5)
    for plot, img in panels:
        img.setImage(np.random.default_rng(0).random((8, 8)).astype(np.float32))
    for plot, _ in panels[1:]:
        plot.setVisible(False)
    fig.set_panels([panels[0][0]], 1, 1, 1.0)
    QApplication.processEvents()
    fig.fit()
    first = panels[0][0].sceneBoundingRect()
    gap = bar.sceneBoundingRect().left() - first.right()
    assert 0 <= gap < 40, f"{gap:.0f} px between the only column and its colour bar"
    assert all(p.sceneBoundingRect().width() == 0 for p, _ in panels[1:])
    for plot, _ in panels[1:]:   # shown again: every column gets its room back
        plot.setVisible(True)
    fig.set_panels([p for p, _ in panels], 5, 1, 1.0)
    QApplication.processEvents()
    fig.fit()
    widths = [p.sceneBoundingRect().width() for p, _ in panels]
    assert min(widths) > 50 and max(widths) - min(widths) < 2, widths
    fig.close()
