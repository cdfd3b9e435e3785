"""The feature grid, clicked the way a user clicks: a real mouse click on a channel's tile in the mosaic view
selects and enlarges that channel; a click on a gap changes nothing."""
import numpy as np
import pytest
from PyQt6.QtCore import QPointF, Qt

from padlens.gui.feature_grid import GAP, FeatureGrid
from padlens.gui.style import configure_pyqtgraph

C, H, W = 10, 5, 7        # 3 x 4 tiles, the last row part empty; non-square maps


@pytest.fixture
def grid(qtbot):
    configure_pyqtgraph()     # as the main window does before its first plot
    g = FeatureGrid()
    qtbot.addWidget(g)
    g.resize(1000, 700)
    g.show()
    qtbot.waitExposed(g)
    maps = np.random.default_rng(0).normal(size=(C, H, W)).astype(np.float32)
    g.set_maps(maps, "conv")
    qtbot.wait(50)            # let the view take its size and range
    return g


def viewport_point(g: FeatureGrid, y: float, x: float):
    """Where mosaic pixel (y, x) is on screen: image -> view -> scene -> the view widget's viewport."""
    vb = g.grid_view
    scene = vb.mapViewToScene(vb.mapFromItemToView(g.grid_image, QPointF(x, y)))
    p = g.grid_widget.mapFromScene(scene)
    assert g.grid_widget.viewport().rect().contains(p), f"pixel ({y}, {x}) is off screen at {p}"
    return p


def click(qtbot, g: FeatureGrid, y: float, x: float) -> None:
    qtbot.mouseClick(g.grid_widget.viewport(), Qt.MouseButton.LeftButton, pos=viewport_point(g, y, x))


@pytest.mark.parametrize("channel, ty, tx", [(6, 2, 3), (9, 0, 0), (3, H - 1, W - 1), (4, 0, W - 1)])
def test_clicking_a_tile_selects_and_enlarges_its_channel(grid, qtbot, channel, ty, tx):
    r, q = divmod(channel, grid.cols)
    assert (grid.rows, grid.cols) == (3, 4) and grid.selected == 0
    with qtbot.waitSignal(grid.channelSelected, timeout=2000) as sig:
        click(qtbot, grid, r * (H + GAP) + ty + 0.5, q * (W + GAP) + tx + 0.5)   # the middle of pixel (ty, tx)
    assert sig.args == [channel] and grid.selected == channel
    np.testing.assert_array_equal(grid.big_image.image, grid.maps[channel])
    assert grid.big_plot.titleLabel.text == f"channel {channel}"
    rect = grid.highlight.rect()      # the red frame moved onto the clicked tile
    assert rect.contains(QPointF(q * (W + GAP) + tx + 0.5, r * (H + GAP) + ty + 0.5))


def test_clicks_on_a_gap_or_the_empty_tail_select_nothing(grid, qtbot):
    grid.show_channel(2)
    seen = []
    grid.channelSelected.connect(seen.append)
    for y, x in [(H + 0.5, 1.5),                          # the gap row under the first tile row
                 (1.5, W + 0.5),                          # the gap column right of the first tile
                 (2 * (H + GAP) + 1.5, 3 * (W + GAP) + 1.5)]:   # where channel 11 would be
        click(qtbot, grid, y, x)
    qtbot.wait(20)
    assert seen == [] and grid.selected == 2 and grid.big_plot.titleLabel.text == "channel 2"
