"""The window is on screen before torch loads (issue 17: 9-17 s to a window), and the wait for the imports
neither freezes it nor loses their errors."""
import os
import subprocess
import sys
import threading
import time

import pytest

from padlens.gui.app import start_window


def test_the_start_up_window_shows_before_torch_is_imported(tmp_path):
    code = ("import sys\nfrom padlens.gui.app import start_window\nw = start_window()\n"
            "print(w.isVisible(), w.windowTitle(), 'torch' in sys.modules)")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["True", "PadLens", "False"]


def test_the_app_collects_cycles_between_events_not_at_any_allocation(tmp_path):
    """A collection inside a paint freed a view being drawn (a segfault in CI): the app turns automatic
    collection off and collects from its event loop, where garbage still goes away."""
    code = ("import gc, weakref\nfrom PyQt6.QtCore import QTimer\nfrom padlens.gui.app import application\n"
            "app = application()\nclass Node: pass\nnodes = [Node() for _ in range(5000)]\n"
            "for a, b in zip(nodes, nodes[1:] + nodes[:1]): a.next = b\n"
            "ref = weakref.ref(nodes[0]); del nodes, a, b\n"
            "print(gc.isenabled(), ref() is not None)\n"
            "QTimer.singleShot(2500, app.quit); app.exec()\nprint(ref() is not None)")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["False", "True", "False"], "off at once, the cycle alive, then collected"


@pytest.fixture
def startup(qapp, tmp_path):
    from PyQt6.QtCore import QSettings
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):   # no saved geometry of the user's
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "config"))
    w = start_window()
    yield w
    w.close()


def test_the_window_keeps_painting_while_the_imports_run(startup):
    """The work runs in another thread; the GUI thread's event loop turns meanwhile (timers fire)."""
    ticks, threads = [], []
    from PyQt6.QtCore import QTimer
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)

    def work():
        threads.append(threading.current_thread())
        time.sleep(0.3)
        return 42
    assert startup.wait_for(work) == 42
    timer.stop()
    assert threads[0] is not threading.main_thread() and len(ticks) >= 5


def test_an_import_that_fails_is_raised_in_the_gui_thread(startup):
    def broken():
        raise ImportError("libtorch_cpu.so: cannot open shared object file")
    with pytest.raises(ImportError, match="libtorch_cpu.so"):
        startup.wait_for(broken)
    assert startup.isVisible()   # the caller decides; the command line prints the message and exits
