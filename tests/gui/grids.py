"""Running a small translation grid the way a user does, for the GUI tests that need one on screen."""
from PyQt6.QtCore import Qt


def run_small_grid(qtbot, tab, images: int = 20, timeout: int = 60000) -> None:
    """Set the Translation tab (or the Compare tab: the same grid settings) to a 3x3 grid (-4..4 px, step 4)
    of `images` images in exact fp32, click Start (Compute) and wait for the result."""
    tab.lo.setValue(-4)
    tab.hi.setValue(4)
    tab.step.setValue(4)
    tab.count.setValue(images)
    tab.precision.setCurrentText("fp32")
    qtbot.mouseClick(tab.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.runner.running and tab.result is not None, timeout=timeout)
