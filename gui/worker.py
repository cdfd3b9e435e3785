"""Run a core job (a generator) off the GUI thread: the one worker object every long task goes through.

Signals, in the order a view sees them: progress and partial while it runs, then exactly one of
result / error / cancelled, and always `finished` last.
"""
from __future__ import annotations

import atexit
import threading
import traceback
from typing import Callable

from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot

from padlens.core.jobs import Partial, Progress


class JobWorker(QObject):
    progress = pyqtSignal(int, int, str)
    partial = pyqtSignal(object)
    result = pyqtSignal(object)
    error = pyqtSignal(str)
    cancelled = pyqtSignal(object)     # whatever the job returned when stopped (may be partial)
    finished = pyqtSignal()

    def __init__(self, make_job: Callable[[Callable[[], bool]], object]):
        """make_job(should_stop) -> generator; built in the worker thread so setup work is off the GUI too."""
        super().__init__()
        self._make_job = make_job
        self._stop = threading.Event()

    def cancel(self) -> None:
        self._stop.set()

    @property
    def cancel_requested(self) -> bool:
        return self._stop.is_set()

    @pyqtSlot()
    def run(self) -> None:
        try:
            job = self._make_job(self._stop.is_set)
            value = None
            while True:
                try:
                    ev = next(job)
                except StopIteration as stop:
                    value = stop.value
                    break
                if isinstance(ev, Progress):
                    self.progress.emit(ev.done, ev.total, ev.message)
                elif isinstance(ev, Partial):
                    self.partial.emit(ev.value)
            (self.cancelled if self._stop.is_set() else self.result).emit(value)
        except Exception as e:  # noqa: BLE001 - every failure reaches the view as a message
            self.error.emit(f"{type(e).__name__}: {e}" if str(e) else traceback.format_exc(limit=3))
        finally:
            self.finished.emit()


_live: dict[QThread, "JobWorker"] = {}   # every started thread until it has ended, whoever owns the runner
_abandoned: dict[QThread, "JobWorker"] = {}   # given up on (JobRunner.abandon): kept alive, never waited for


def live_jobs() -> int:
    """How many job threads are still running (a window that closed left them cancelled)."""
    return sum(t.isRunning() for t in list(_live))


def wait_for_jobs(timeout_ms: int = 30000) -> bool:
    """Cancel every job still running and wait for them; True when all (but the abandoned) have ended.

    Runs at interpreter exit too: Qt aborts the process when a QThread object is destroyed while its
    thread runs, which is what happens to a job that outlived its window's bounded wait. Abandoned jobs
    (stuck in code that never returns) are not waited for: the process ends without them."""
    for thread, worker in list(_live.items()):
        worker.cancel()
        if thread in _abandoned:
            continue
        if not thread.wait(timeout_ms):
            return False
        _live.pop(thread, None)
    return True


atexit.register(wait_for_jobs)


class JobRunner(QObject):
    """Owns at most one running JobWorker and its QThread; `stop()` cancels and waits a bounded time.

    `idle` fires once the thread is gone and `running` is False again, so a view can start the next
    thing then (in `finished` handlers the runner still counts as running)."""

    idle = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.thread: QThread | None = None
        self.worker: JobWorker | None = None
        self._callbacks: dict = {}

    @property
    def running(self) -> bool:
        """True from start until the job's finished handlers have run in the GUI thread."""
        return self.thread is not None

    def start(self, make_job, on_progress=None, on_partial=None, on_result=None, on_error=None,
              on_cancelled=None, on_finished=None) -> JobWorker:
        """Run make_job(should_stop) in a new thread; the on_* callbacks run in the GUI thread."""
        if self.running:
            raise RuntimeError("a job is already running")
        self._callbacks = dict(progress=on_progress, partial=on_partial, result=on_result, error=on_error,
                               cancelled=on_cancelled, finished=on_finished)
        thread, worker = QThread(), JobWorker(make_job)
        worker.moveToThread(thread)
        # bound slots of this GUI-thread object: Qt queues the calls into the GUI thread
        worker.progress.connect(self._progress)
        worker.partial.connect(self._partial)
        worker.result.connect(self._result)
        worker.error.connect(self._error)
        worker.cancelled.connect(self._cancelled)
        worker.finished.connect(self._finished)
        # direct: quit() is thread-safe, and a queued call would wait for the GUI thread (deadlock in stop())
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.started.connect(worker.run)
        thread.finished.connect(self._cleanup)
        self.thread, self.worker = thread, worker
        _live[thread] = worker
        thread.finished.connect(lambda: _live.pop(thread, None), Qt.ConnectionType.DirectConnection)
        thread.start()
        return worker

    def _call(self, name, *args) -> None:
        cb = self._callbacks.get(name)
        if cb is not None:
            cb(*args)

    @pyqtSlot(int, int, str)
    def _progress(self, done, total, msg):
        self._call("progress", done, total, msg)

    @pyqtSlot(object)
    def _partial(self, value):
        self._call("partial", value)

    @pyqtSlot(object)
    def _result(self, value):
        self._call("result", value)

    @pyqtSlot(str)
    def _error(self, msg):
        self._call("error", msg)

    @pyqtSlot(object)
    def _cancelled(self, value):
        self._call("cancelled", value)

    @pyqtSlot()
    def _finished(self):
        self._call("finished")

    def _cleanup(self) -> None:
        if self.thread is not None and not self.thread.isRunning():
            self.thread.deleteLater()
            self.worker.deleteLater()
            self.thread = self.worker = None
            self.idle.emit()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def abandon(self) -> None:
        """Give up on a job stuck in a step that never returns (an own model's import or forward pass:
        Python cannot stop a thread): cancel it, drop its late signals, never wait for it (not at exit
        either) and free the runner for the next job at once. The thread runs on until the step ends."""
        if self.thread is None:
            return
        thread, worker = self.thread, self.worker
        worker.cancel()
        _abandoned[thread] = worker   # a reference for good: a QThread destroyed while it runs aborts Qt
        for signal, slot in ((worker.progress, self._progress), (worker.partial, self._partial),
                             (worker.result, self._result), (worker.error, self._error),
                             (worker.cancelled, self._cancelled), (worker.finished, self._finished),
                             (thread.finished, self._cleanup)):
            signal.disconnect(slot)
        self.thread = self.worker = None
        self._callbacks = {}
        self.idle.emit()

    def stop(self, timeout_ms: int = 5000) -> bool:
        """Cancel and wait up to timeout_ms; True when the thread has ended."""
        if self.thread is None:
            return True
        self.cancel()
        ended = self.thread.wait(timeout_ms)
        if ended:
            self._cleanup()
        return ended
