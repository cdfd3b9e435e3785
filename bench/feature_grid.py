"""How long does showing a 512-channel layer take? The mosaic FeatureGrid against one ViewBox per map.

Times set_maps plus a full render (grab) of the grid, offscreen, and prints the ratio to the naive
per-channel-ViewBox layout in the same run. Target: under 100 ms for 512 channels.
Run: QT_QPA_PLATFORM=offscreen python bench/feature_grid.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from padlens.core.mosaic import grid_shape  # noqa: E402
from padlens.gui.feature_grid import FeatureGrid  # noqa: E402


def time_it(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--channels", type=int, default=512)
    p.add_argument("--size", type=int, default=8, help="map height and width")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    maps = [rng.standard_normal((a.channels, a.size, a.size)).astype(np.float32) for _ in range(a.repeat + 1)]

    grid = FeatureGrid()
    grid.resize(1400, 900)
    grid.show()
    app.processEvents()
    it = iter(range(10**9))

    def mosaic_show():
        grid.set_maps(maps[next(it) % len(maps)], "bench")
        grid.grid_widget.grab()
    mosaic_show()   # warm-up
    t_mosaic = time_it(mosaic_show, a.repeat)

    naive = pg.GraphicsLayoutWidget()
    naive.resize(1400, 900)
    naive.show()
    rows, cols = grid_shape(a.channels)

    def naive_show():
        naive.clear()
        m = maps[next(it) % len(maps)]
        for k in range(a.channels):
            vb = naive.addViewBox(row=k // cols, col=k % cols, lockAspect=True, enableMouse=False)
            img = pg.ImageItem(m[k])
            vb.addItem(img)
        naive.grab()
    t_naive = time_it(naive_show, max(1, a.repeat // 2))
    print(f"{a.channels} maps of {a.size}x{a.size}, offscreen render included, median of {a.repeat} runs")
    print(f"  mosaic ImageItem (FeatureGrid): {1000 * t_mosaic:8.1f} ms  {'OK' if t_mosaic < 0.1 else 'OVER'} the 100 ms target")
    print(f"  one ViewBox per map (naive):    {1000 * t_naive:8.1f} ms")
    print(f"  speed-up: {t_naive / t_mosaic:.1f}x")


if __name__ == "__main__":
    main()
