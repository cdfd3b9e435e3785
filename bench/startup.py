"""Time to a window: a fresh `python -c` starts the app as the `padlens` command does (offscreen) and reports,
counted from the moment it was spawned, when the first window was painted (the start-up window, before torch
loads), when the main window was (usable: menus, tabs, the layer tree to come) and when the first feature maps
were painted. One run warms the disk caches, then --runs more are timed; the medians are printed,
as wall time and as the child's CPU time (what the wall time would be on an idle machine: other work on a
shared 2-core machine stretches the wall time, not the CPU time). The baseline, timed in the same runs: a
fresh interpreter that only imports torch, the floor of a main window that needs it; the ratio says what
PadLens adds on top.

    python bench/startup.py [--runs 3] [--data DIR] [--checkpoint PATH]

Without --data the window opens as on a first launch without a data set (the blank tensor's maps); each run
has settings of its own (a throwaway config folder), so none starts on a tab or model an earlier run left.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, os, sys, time
from PyQt6.QtCore import QEvent, QObject, QTimer
from padlens.gui.app import application
marks = {}
app = application()

class Watch(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and obj.isWidgetType():
            win = obj.window()
            marks.setdefault("window", (time.time(), time.process_time()))   # the start-up window
            if type(win).__name__ == "MainWindow":
                marks.setdefault("usable", (time.time(), time.process_time()))
                if win.grid.maps is not None and win.grid.isAncestorOf(obj):
                    marks.setdefault("maps", (time.time(), time.process_time()))
                    QTimer.singleShot(0, app.quit)
        return False

watch = Watch()
app.installEventFilter(watch)
QTimer.singleShot(60000, app.quit)
from padlens.cli.main import main   # as the `padlens` command starts: the window, then torch, then the main window
argv = ["--data", sys.argv[2]] + (["--checkpoint", sys.argv[1]] if sys.argv[1] else [])
main(argv)
print(json.dumps(marks), flush=True)
os._exit(0)   # the timing is out; PyQt's teardown order at exit is not what is measured
"""

STAGES = ("window", "usable", "maps")


def run_once(checkpoint: str, data: str, config: str) -> dict[str, tuple[float, float]]:
    """(wall seconds since the spawn, CPU seconds of the child) at each stage it reached."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=config)
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, checkpoint, data], env=env, capture_output=True, text=True,
                         check=True)
    marks = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: (marks[k][0] - t0, marks[k][1]) for k in STAGES if k in marks}


def torch_floor() -> tuple[float, float]:
    """The baseline: (wall, CPU) seconds of a fresh interpreter that only imports torch, which the main window
    needs and no lazy loading in PadLens can shorten."""
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", "import time, torch; print(time.process_time())"],
                         capture_output=True, text=True, check=True)
    return time.time() - t0, float(out.stdout.split()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data", default="", help="data root (default: none, the first launch without a data set)")
    p.add_argument("--checkpoint", default="", help="checkpoint (default: the shipped flagship)")
    a = p.parse_args(argv)
    import torch

    from padlens.core.device import native_bf16
    cpu = torch.device("cpu")
    print(f"CPU: {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores, native bf16: "
          f"{'yes' if native_bf16(cpu) else 'no'}; torch {torch.__version__}; Qt offscreen")
    data = a.data or os.path.join(tempfile.gettempdir(), "padlens-bench-no-data")
    times = []
    for k in range(a.runs + 1):
        with tempfile.TemporaryDirectory(prefix="padlens-startup-") as config:
            t = run_once(a.checkpoint, data, config)
        t["import torch"] = torch_floor()   # in the same run, so a busier moment stretches both
        label = "warm-up" if k == 0 else f"run {k}"
        print(f"{label:>8}: " + ", ".join(f"{s} {t[s][0]:.2f} s (CPU {t[s][1]:.2f} s)" for s in t), flush=True)
        if k:
            times.append(t)
    for s in (*STAGES, "import torch"):
        got = [t[s] for t in times if s in t]
        if got:
            print(f"median {s}: {statistics.median(g[0] for g in got):.2f} s wall, "
                  f"{statistics.median(g[1] for g in got):.2f} s CPU, over {len(got)} runs")
    usable = [t["usable"][0] / t["import torch"][0] for t in times if "usable" in t]
    if usable:
        print(f"usable main window / bare `import torch`: {statistics.median(usable):.2f}x (median of the runs' ratios)")
    missing = [s for s in ("window", "usable", "maps") if any(s not in t for t in times)]
    if missing:
        print(f"never reached within 60 s in some runs: {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
