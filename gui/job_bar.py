"""The progress bar of a long job, one behaviour for every tab and panel: busy until the first batch says how
far it is, then the share done and the time left at the rate so far (in hours and minutes for long runs), at
the end what happened ("done", "precision reached", "cancelled at 40%"), and nothing at all when no job ran
(a cached result took no time)."""
from __future__ import annotations

import time

from PyQt6.QtWidgets import QProgressBar

from padlens.core.timing import fmt_duration


def eta_text(done: int, total: int, elapsed: float, bounded: bool) -> str:
    """The bar's text: the share done and the time left at the rate so far ('at most' where a precision target
    can stop the job sooner)."""
    if not done:
        return "%p%  starting"
    left = elapsed / done * (total - done)
    return f"%p%  {'at most' if bounded else 'about'} {fmt_duration(left)} left"


class JobBar(QProgressBar):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.t0 = time.perf_counter()
        self.idle()

    def start(self) -> None:
        """A job starts: the clock of its time left starts too; busy until its first progress."""
        self.t0 = time.perf_counter()
        self.setRange(0, 0)

    def progress(self, done: int, total: int, bounded: bool = False) -> None:
        self.setRange(0, max(1, total))
        self.setValue(done)
        self.setFormat(eta_text(done, total, self.elapsed, bounded))

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def idle(self) -> None:
        """No job: no share and no time left."""
        self.setRange(0, 1)
        self.setValue(0)
        self.setFormat("")

    def finish(self, text: str = "done") -> None:
        """Full, saying why it ended (a job stopped early by a precision target is not a stall at some percent)."""
        self.setRange(0, max(1, self.maximum()))
        self.setValue(self.maximum())
        self.setFormat(text)

    def cancelled(self) -> None:
        if self.maximum():
            self.setFormat("cancelled at %p%")
        else:   # before the first batch: no share to show
            self.idle()
