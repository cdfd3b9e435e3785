"""Durations as people read them, the forward passes a grid will run, and the quick timing behind estimates."""
import pytest
import torch
from torch import nn

from padlens.core.jobs import run_job
from padlens.core.timing import fmt_duration, known_rate, measure_rate, rate_key
from padlens.core.translation import GridSpec, grid_cost, translation_grid
from tests.tiny import NORM


@pytest.mark.parametrize("seconds, text", [
    (0.42, "0.4 s"), (9.9, "9.9 s"), (45.4, "45 s"), (200, "3 min 20 s"), (25 * 60 + 10, "25 min"),
    (12395, "3 h 27 min"), (23769, "6 h 36 min"), (-3, "0.0 s"), (float("inf"), "unknown")])
def test_durations_read_as_hours_minutes_or_seconds(seconds, text):
    assert fmt_duration(seconds) == text


def test_the_terminal_writes_times_the_same_way():
    from padlens.cli.terminal import fmt_time
    assert fmt_time(12395) == fmt_duration(12395) == "3 h 27 min", "not 206:35"


class Counting(nn.Module):
    """Counts the rows that go through the model, as the grid sends them, and the calls of two rows (a lone
    row goes through twice: translation_grid's guard against a torch.compile recompile)."""
    def __init__(self, model):
        super().__init__()
        self.model, self.rows, self.calls = model, 0, 0

    def forward(self, x):
        self.rows += len(x)
        self.calls += len(x) == 2
        return self.model(x)


@pytest.mark.parametrize("spec, mode, images", [
    (GridSpec(-32, 32, -32, 32, 16), "affine", 23),    # shifts out of frame: their blank input runs once
    (GridSpec(-8, 8, -8, 8, 4), "roll", 12),           # no repeats within a frame
    (GridSpec(-64, 64, 0, 0, 32), "roll", 11),         # rolls by whole widths repeat: they run once
    (GridSpec(0, 4, -4, 0, 2), "affine-mean", 3),
])
def test_grid_cost_is_the_forward_passes_the_grid_runs(tiny_model, spec, mode, images):
    """Counted, not assumed: a model that counts its rows, before the first heatmap and in all (a call of two
    rows may be one lone row sent twice)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(images) % 10
    counting = Counting(tiny_model)
    first = []
    from padlens.core.jobs import Partial
    job = translation_grid(counting, x, y, NORM, spec, mode, batch_images=7)
    while True:
        try:
            ev = next(job)
        except StopIteration:
            break
        if isinstance(ev, Partial) and not first:
            first.append((counting.rows, counting.calls))
    cost = grid_cost(spec, mode, images)
    assert cost.rows <= counting.rows <= cost.rows + counting.calls
    assert cost.first_rows <= first[0][0] <= cost.first_rows + first[0][1]
    assert cost.first_rows < cost.rows or images <= 10


def test_a_rate_is_measured_once_and_remembered(tiny_model):
    key = rate_key("tiny-test", torch.device("cpu"), "fp32", 32)
    assert known_rate(key) is None
    rate = run_job(measure_rate(tiny_model, NORM, torch.device("cpu"), "fp32", 32, 16, key, seconds=0.05))
    assert rate > 0 and known_rate(key) == rate
    other = rate_key("tiny-test", torch.device("cpu"), "fp32", 64)
    assert known_rate(other) is None, "another input size is another rate"


def test_a_stopped_timing_remembers_nothing(tiny_model):
    key = rate_key("tiny-stopped", torch.device("cpu"), "fp32", 32)
    assert run_job(measure_rate(tiny_model, NORM, torch.device("cpu"), "fp32", 32, 16, key,
                                should_stop=lambda: True)) is None
    assert known_rate(key) is None
