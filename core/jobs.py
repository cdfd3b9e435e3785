"""The protocol of long jobs: plain generators that yield Progress and Partial and return the result.

A job takes a `should_stop` callable and, when it turns true, returns what it has so far. The GUI's
worker drives such a generator off the GUI thread; scripts and tests call `run_job`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generator


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    message: str = ""


@dataclass(frozen=True)
class Partial:
    value: Any


Job = Generator[Any, None, Any]


def never() -> bool:
    return False


def run_job(job: Job, on_progress: Callable[[Progress], None] | None = None,
            on_partial: Callable[[Any], None] | None = None) -> Any:
    """Drive a job to its end in the calling thread and return its result."""
    while True:
        try:
            ev = next(job)
        except StopIteration as stop:
            return stop.value
        if isinstance(ev, Progress) and on_progress:
            on_progress(ev)
        elif isinstance(ev, Partial) and on_partial:
            on_partial(ev.value)


def forward(job: Job, transform: Callable[[Progress], Any]) -> Job:
    """Run a sub-job inside a larger generator: yield transform(progress) for each of its Progress
    events, drop its other events, and return the sub-job's result."""
    while True:
        try:
            ev = next(job)
        except StopIteration as stop:
            return stop.value
        if isinstance(ev, Progress):
            yield transform(ev)


def relay(job: Job, offset: int, total: int, label: str,
          on_progress: Callable[[Progress], None] | None = None) -> Job:
    """Run a sub-job inside a larger one: re-yield its progress shifted by offset on the larger scale
    (label prefixed), drop its other events, and return the sub-job's result."""
    def shifted(ev: Progress) -> Progress:
        ev = Progress(min(offset + ev.done, total), total, f"{label}: {ev.message}")
        if on_progress is not None:
            on_progress(ev)
        return ev
    return (yield from forward(job, shifted))
