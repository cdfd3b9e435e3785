"""Every long job's bar reads the same: long times in hours (the Compare tab's "305:42" was 5 hours), the end
says what happened, and no job shows no time."""
from padlens.gui.job_bar import JobBar


def test_the_bar_says_how_long_and_how_it_ended(qtbot):
    bar = JobBar()
    qtbot.addWidget(bar)
    assert bar.format() == "" and bar.value() == 0
    bar.start()
    assert bar.maximum() == 0   # busy until the first progress
    bar.t0 -= 12.6              # 12.6 s for the first 1 of 1,000 steps: hours to go
    bar.progress(1, 1000)
    assert bar.format().startswith("%p%  about 3 h") and bar.value() == 1
    bar.progress(1, 1000, bounded=True)
    assert "at most" in bar.format()
    bar.cancelled()
    assert bar.format() == "cancelled at %p%"
    bar.finish("precision reached")
    assert bar.format() == "precision reached" and bar.value() == bar.maximum()
    bar.start()
    bar.cancelled()             # before any progress: nothing to show
    assert bar.format() == "" and bar.maximum() == 1
