"""core/evaluate.py: outputs holding NaN or infinity are refused wherever a model is measured, not turned into
an accuracy (argmax still picks a class, so the number looked like a measurement)."""
import pytest
import torch
from torch import nn

from padlens.core.evaluate import evaluate
from padlens.core.jobs import run_job
from padlens.core.translation import GridSpec, translation_grid
from tests.tiny import NORM


class NanOnBright(nn.Module):
    """Finite logits, except NaN for images brighter than the middle grey: broken on some inputs only."""
    def forward(self, x):
        logits = x.mean((2, 3)).repeat(1, 4)[:, :10]
        bright = x.mean((1, 2, 3)) > 0
        return torch.where(bright[:, None], torch.full_like(logits, float("nan")), logits)


def images(levels):
    return torch.stack([torch.full((3, 32, 32), v, dtype=torch.uint8) for v in levels])


def test_evaluate_refuses_nan_outputs():
    model = NanOnBright()
    ok = evaluate(model, images([0, 10, 20]), torch.tensor([0, 1, 2]), NORM, torch.device("cpu"))
    assert ok.count == 3 and 0 <= ok.accuracy <= 1
    with pytest.raises(ValueError, match=r"outputs NaN or infinity for 2 of 4 inputs, so no accuracy or loss can be "
                                         r"measured.*a division by zero"):
        evaluate(model, images([0, 250, 10, 255]), torch.tensor([0, 1, 2, 3]), NORM, torch.device("cpu"))


def test_the_translation_grid_refuses_nan_outputs():
    job = translation_grid(NanOnBright(), images([250] * 10), torch.arange(10), NORM, GridSpec(-2, 2, -2, 2, 2))
    with pytest.raises(ValueError, match=r"outputs NaN or infinity for \d+ of \d+ inputs"):
        run_job(job)
