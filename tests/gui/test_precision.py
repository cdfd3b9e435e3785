"""The app says which precision its grids run in and why: the status bar (what auto picks here), the
Precision box's tooltip, and the heatmap's caption of a grid run in the fast fp32 mode."""
from PyQt6.QtCore import Qt

from padlens.core.device import PRECISION_CHOICES, describe_precision, resolve_precision


def test_status_bar_tooltip_and_caption_say_the_precision(window, qtbot):
    w = window
    device = next(w.explorer.loaded.model.parameters()).device
    auto = describe_precision(resolve_precision("auto", device), device)
    assert w.precision_label.text() == f"{device} | grids: {auto}"
    t = w.translation
    assert [t.precision.itemText(i) for i in range(t.precision.count())] == list(PRECISION_CHOICES)
    assert f"auto: here {auto}" in t.precision.toolTip() and "fp32-fast:" in t.precision.toolTip()
    t.lo.setValue(-4)
    t.hi.setValue(4)
    t.step.setValue(4)
    t.count.setValue(10)
    t.precision.setCurrentText("fp32-fast")
    qtbot.mouseClick(t.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not t.runner.running, timeout=30000)
    why = describe_precision("fp32-fast", device)
    assert t.result.info["precision"] == "fp32-fast" and t.result.info["fused"] is True
    assert why in t.figure.title.text
