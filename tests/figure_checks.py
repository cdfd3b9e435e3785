"""Checks of a figure file written by the app's export (gui.export): what a paper needs of it."""
from pathlib import Path

from PyQt6.QtGui import QImage


def assert_paper_figure(png: Path, svg: Path | None = None, *texts: str, min_width: int = 1000) -> QImage:
    """png: a 300 dpi raster at least min_width wide with something drawn on it; svg (when given): a vector file
    that says every one of texts (its title, caption or labels)."""
    img = QImage(str(png))
    assert not img.isNull(), f"{png} is no image"
    assert round(img.dotsPerMeterX() * 0.0254) == 300 and img.width() >= min_width, (img.width(), png)
    small = img.scaled(64, 64)
    dark = sum(QImage.pixelColor(small, x, y).lightness() < 200 for x in range(64) for y in range(64))
    assert dark > 64 * 64 // 50, f"{png} is nearly blank"
    if svg is not None:
        text = Path(svg).read_text(encoding="utf-8")
        assert text.lstrip().startswith("<?xml") and "<svg" in text
        for t in texts:
            assert t in text, f"{t!r} not in {svg}"
    return img
