"""The Translation tab shows the worst case over shifts under the heatmaps, from the grid it computed."""
import numpy as np
from PyQt6.QtCore import Qt

from padlens.core.worst_case import format_worst_case, worst_case


def test_the_worst_case_over_shifts_shows_under_the_heatmaps(window, qtbot):
    t = window.translation
    t.lo.setValue(-2)
    t.hi.setValue(2)
    t.step.setValue(1)
    t.count.setValue(20)
    t.precision.setCurrentText("fp32")
    qtbot.mouseClick(t.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not t.runner.running, timeout=60000)
    r = t.result
    assert len(r.flip_radius) == r.images == 20
    text = t.worst.text()
    assert text == "\n".join(format_worst_case(worst_case(r))) and "worst case over shifts (20 images)" in text
    flipped = worst_case(r)["flipped"]
    assert flipped[0] >= (r.count - r.consistent)[1:4, 1:4].max() and "lower bounds" not in text
    # a grid cached before the per-image record existed is computed again, not shown without it
    path = t.request().path
    old = dict(np.load(path))
    del old["flip_radius"]
    np.savez(path, **old)
    t.mode.setCurrentText("roll")
    t.mode.setCurrentText("affine")
    assert t.result is None and t.worst.text() == "" and not path.exists()
