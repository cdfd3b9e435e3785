"""Running a small translation grid the way a user does, for the GUI tests that need one on screen."""
from PyQt6.QtCore import Qt


def small_grid_settings(tab, images: int = 20) -> None:
    """Set the Translation tab (or the Compare tab: the same grid settings) to a 3x3 grid (-4..4 px, step 4)
    of `images` images in exact fp32."""
    tab.lo.setValue(-4)
    tab.hi.setValue(4)
    tab.step.setValue(4)
    tab.count.setValue(images)
    tab.precision.setCurrentText("fp32")


def run_small_grid(qtbot, tab, images: int = 20, timeout: int = 60000) -> None:
    """The small grid's settings, then a click on Start (Compute), waiting for the result."""
    small_grid_settings(tab, images)
    qtbot.mouseClick(tab.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.runner.running and tab.result is not None, timeout=timeout)
