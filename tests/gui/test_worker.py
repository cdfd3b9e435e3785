"""The one worker every long GUI task goes through: signal order, errors, cancel, bounded stop."""
import time

from padlens.core.jobs import Partial, Progress
from padlens.gui.worker import JobRunner, live_jobs, wait_for_jobs


def _counting(n, fail_at=None, step_s=0.0):
    def make(stop):
        for i in range(n):
            if stop():
                return f"stopped at {i}"
            if i == fail_at:
                raise ValueError(f"bad item {i}")
            time.sleep(step_s)
            yield Progress(i + 1, n, "item")
            yield Partial(i)
        return "all done"
    return make


def _record(runner, make):
    seen = []
    runner.start(make, on_progress=lambda d, t, m: seen.append(("progress", d)),
                 on_partial=lambda v: seen.append(("partial", v)),
                 on_result=lambda v: seen.append(("result", v)), on_error=lambda m: seen.append(("error", m)),
                 on_cancelled=lambda v: seen.append(("cancelled", v)), on_finished=lambda: seen.append(("finished",)))
    return seen


def test_events_arrive_in_order_and_finished_is_last(qtbot):
    runner = JobRunner()
    seen = _record(runner, _counting(3))
    qtbot.waitUntil(lambda: not runner.running, timeout=5000)
    assert seen == [("progress", 1), ("partial", 0), ("progress", 2), ("partial", 1), ("progress", 3),
                    ("partial", 2), ("result", "all done"), ("finished",)]


def test_an_error_reaches_the_view_as_a_message(qtbot):
    runner = JobRunner()
    seen = _record(runner, _counting(5, fail_at=2))
    qtbot.waitUntil(lambda: not runner.running, timeout=5000)
    assert ("error", "ValueError: bad item 2") in seen and seen[-1] == ("finished",)
    assert not any(e[0] == "result" for e in seen)


def test_cancel_returns_what_the_job_had(qtbot):
    runner = JobRunner()
    seen = _record(runner, _counting(10_000, step_s=0.001))
    qtbot.waitUntil(lambda: len(seen) > 4, timeout=5000)
    runner.cancel()
    qtbot.waitUntil(lambda: not runner.running, timeout=5000)
    cancelled = [e for e in seen if e[0] == "cancelled"]
    assert len(cancelled) == 1 and cancelled[0][1].startswith("stopped at") and seen[-1] == ("finished",)
    assert runner.start(_counting(1), on_result=lambda v: None)   # the runner is free again
    qtbot.waitUntil(lambda: not runner.running, timeout=5000)


def test_a_job_outliving_the_bounded_stop_is_still_waited_for(qtbot):
    """stop() gives up after its timeout (the window must close); the thread is kept and ended at exit."""
    runner = JobRunner()

    def slow(stop):
        yield Progress(0, 1, "")
        time.sleep(0.5)            # a step that does not look at stop()
        return "late"
    runner.start(slow)
    assert runner.stop(timeout_ms=10) is False
    assert live_jobs() == 1
    assert wait_for_jobs(5000) and live_jobs() == 0
