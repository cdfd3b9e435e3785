"""The window at 1280x720, the smallest laptop screen PadLens is made for, each tab the way a user fills it:
no visible control is squeezed below its minimum size (spin boxes into one another), and every figure's
panels, colour bars and their tick labels lie inside the figure's window, not past its right edge."""
import pyqtgraph as pg
import pytest
from PyQt6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QProgressBar, QTableWidget,
                             QWidget)

from padlens.gui.style import PanelFigure
from tests.gui.test_comparison import _checkpoint
from tests.gui.grids import run_small_grid

SIZE = (1280, 720)
CONTROLS = (QAbstractSpinBox, QComboBox, QAbstractButton, QLineEdit, QProgressBar)


def squeezed(page: QWidget) -> list[str]:
    """Visible controls smaller than their minimum size hint, named for the failure message."""
    out = []
    for w in page.findChildren(QWidget):
        inner = isinstance(w.parent(), (QAbstractSpinBox, QComboBox))   # a spin box's own line edit
        if isinstance(w, CONTROLS) and w.isVisible() and not inner:
            hint = w.minimumSizeHint()
            if w.width() < hint.width() or w.height() < hint.height():
                text = getattr(w, "text", lambda: "")() if isinstance(w, QAbstractButton) else ""
                out.append(f"{type(w).__name__} {text!r} {w.width()}x{w.height()} < {hint.width()}x{hint.height()}")
    return out


def outside(fig: pg.GraphicsLayoutWidget) -> list[str]:
    """Plots and colour bars (with their tick labels) of a figure that reach past its view."""
    view = fig.mapToScene(fig.viewport().rect()).boundingRect().adjusted(-1, -1, 1, 1)
    out = []
    for item in fig.scene().items():
        if isinstance(item, (pg.PlotItem, pg.ColorBarItem)) and item.isVisible():
            rect = item.sceneBoundingRect()
            if not view.contains(rect):
                out.append(f"{type(item).__name__} at {rect} outside {view}")
    return out


@pytest.fixture
def small(window, qtbot):
    w = window
    w.show()
    w.resize(*SIZE)
    qtbot.waitExposed(w)
    w.inputs.set_kind("blank")
    w.tree.select((1, 0))
    return w


def settle(qtbot, w) -> None:
    qtbot.wait(300)   # the figures refit once Qt has laid out the tab (a zero timer after the resize)
    assert w.width() <= SIZE[0] and w.height() <= SIZE[1]


def check(w, page) -> None:
    assert squeezed(page) == []
    for fig in page.findChildren(PanelFigure):
        if fig.isVisible():
            assert outside(fig) == []


def test_feature_maps_tab_fits(small, qtbot):
    w = small
    w.tabs.setCurrentIndex(0)
    settle(qtbot, w)
    assert w.grid.maps is not None
    check(w, w.tabs.currentWidget())
    assert w.grid.side_widget.width() >= w.grid.side_widget.minimumWidth() > 0   # the maps beside the mosaic
    header = w.tree.header()   # the layer tree keeps its Output column in view (it was cut off at 1280 wide)
    assert w.tree.headerItem().text(2) == "Output"
    assert header.sectionViewportPosition(2) + header.sectionSize(2) <= w.tree.viewport().width()


def test_translation_tab_fits(small, qtbot):
    w, t = small, small.translation
    w.tabs.setCurrentIndex(1)
    run_small_grid(qtbot, t, timeout=60000)
    settle(qtbot, w)
    check(w, t)
    sizes = {(round(p.vb.width()), round(p.vb.height())) for p in t.figure.plots.values()}
    assert len(sizes) == 1, f"the three heatmaps differ in size: {sizes}"
    worst = t.worst_figure   # under the heatmaps, checked by `check` with them: on screen, drawn, not flattened
    assert worst.isVisible() and worst.share_points and len(worst.never_bar.opts["height"]) == 1
    assert min(p.vb.height() for p in (worst.share_plot, worst.hist_plot)) >= 50


def test_spatial_bias_tab_fits_and_its_table_needs_no_sideways_scrolling(small, qtbot):
    w, b = small, small.bias
    w.tabs.setCurrentIndex(2)
    settle(qtbot, w)
    check(w, b)
    table: QTableWidget = b.table
    assert table.horizontalScrollBar().maximum() == 0, "some columns are out of view"
    assert b.filters.names and b.filters.big_plot.titleLabel.text == b.filters.names[b.filters.selected]


def test_compare_tab_fits(small, qtbot, tmp_path):
    w, c = small, small.comparison
    w.tabs.setCurrentIndex(3)
    assert c.set_checkpoints([_checkpoint(tmp_path / f"{m}.pt", m, k)
                              for k, m in enumerate(("zeros", "reflect", "replicate", "circular"))]) == []
    run_small_grid(qtbot, c, timeout=120000)
    settle(qtbot, w)
    check(w, c)
    # the table shares the height with the figures by splitter: below them it left the heatmaps ~20 px tall
    assert c.split.indexOf(c.table) == 2
    heights = [p.vb.height() for p in c.heat_plots + [c.diff_plot]]
    assert min(heights) >= 50, f"heatmaps too small to read at 1280x720: {heights}"


def test_status_bar_texts_shorten_in_the_middle_and_keep_their_whole_text(small, qtbot):
    w = small
    settle(qtbot, w)
    labels = (w.model_label, w.data_label)
    assert sum(x.width() for x in labels + (w.precision_label,)) <= w.statusBar().width()
    for label in labels:   # each draws what fits its width: both ends, "..." between (it was cut off mid-word)
        shown, whole = label.shown_text(), label.text()
        assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
        assert label.toolTip() in (whole, w.datasets["test"].source) and whole.startswith(shown.split("\u2026")[0])
    w.resize(1800, 720)
    settle_wide = qtbot.waitUntil(lambda: w.model_label.shown_text() == w.model_label.text(), timeout=3000)
    assert settle_wide is None

