from dataclasses import replace

import torch

import pytest

from padlens.core.checkpoint import CheckpointError, load_checkpoint
from padlens.core.data import Dataset
from padlens.core.train import Recipe, augment, cutout, lr_factor, train
from padlens.core.model import ModelConfig
from tests.conftest import TINY


def _toy(n, seed):
    """Learnable toy data: each class is a noisy image of its own color."""
    g = torch.Generator().manual_seed(seed)
    colors = torch.tensor([[40 + 20 * k, 200 - 15 * k, (70 * k) % 220] for k in range(10)])
    labels = torch.arange(n) % 10
    x = colors[labels][:, :, None, None] + torch.randint(0, 25, (n, 3, 32, 32), generator=g)
    return Dataset(x.to(torch.uint8), labels, "toy")


def test_augment_crops_and_flips_whole_batches():
    img = torch.arange(32 * 32, dtype=torch.int32).view(1, 1, 32, 32).expand(4, 3, 32, 32)
    padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
    out, flipped = augment(padded, torch.arange(8).remainder(4), 4, True, torch.Generator().manual_seed(1))
    assert out.shape == (8, 3, 32, 32) and 0 < flipped.sum() < 8
    for k in range(8):   # every crop is a shifted window of the padded image, mirrored where flipped says
        window = [padded[k % 4, 0, y:y + 32, x:x + 32] for y in range(9) for x in range(9)]
        assert any(torch.equal(out[k, 0], w.flip(-1) if flipped[k] else w) for w in window)


def test_cutout_zeroes_one_square_per_image_inside_the_frame():
    x = torch.ones(64, 3, 32, 32)
    out = cutout(x, 12, torch.Generator().manual_seed(0))
    zero = out == 0
    assert torch.equal(zero.all(1), zero.any(1))              # same square in every channel
    per_image = zero[:, 0]
    assert (per_image.sum((1, 2)) == 144).all()               # never clipped by the border
    rows, cols = per_image.any(2), per_image.any(1)
    assert (rows.sum(1) == 12).all() and (cols.sum(1) == 12).all()   # a 12x12 square, not scattered
    assert len({tuple(torch.nonzero(r)[0].tolist() + torch.nonzero(c)[0].tolist())
                for r, c in zip(rows, cols)}) > 10               # placed at random
    assert torch.equal(cutout(x, 0, torch.Generator()), x)


def test_lr_schedule_shape():
    assert lr_factor(0, 100, 0.2) == 0.2
    assert abs(lr_factor(20, 100, 0.2) - 1.0) < 1e-9
    assert abs(lr_factor(100, 100, 0.2) - 0.07) < 1e-9
    assert lr_factor(0, 100, 0.0, 0.0) == 1.0 and lr_factor(100, 100, 0.0, 0.0) == 0.0   # a second cycle

def test_train_resumes_and_learns(tmp_path):
    train_set, test_set = _toy(400, 0), _toy(200, 1)
    recipe = Recipe(epochs=3, batch_size=50, precision="fp32")
    stop_after = {"n": 0}

    def stop():   # interrupt in the middle of epoch 2
        stop_after["n"] += 1
        return stop_after["n"] > 12
    events = list(train(train_set, test_set, tmp_path, TINY, recipe, should_stop=stop))
    assert [e.epoch for e in events if e.kind == "epoch"] == [1]
    assert (tmp_path / "state.pt").is_file() and not (tmp_path / "model.pt").exists()
    events = list(train(train_set, test_set, tmp_path, TINY, recipe))
    assert [e.epoch for e in events if e.kind == "epoch"] == [2, 3], "resumed after the saved epoch"
    model, meta = load_checkpoint(tmp_path / "model.pt")
    assert [h["epoch"] for h in meta["metrics"]["history"]] == [1, 2, 3]
    assert meta["metrics"]["test_accuracy"] > 0.3, "learns the toy task well above 10% chance"
    assert meta["recipe"]["epochs"] == 3 and meta["model_config"]["widths"] == [8, 16, 16]
    list(train(train_set, test_set, tmp_path / "straight", TINY, recipe))
    straight, _ = load_checkpoint(tmp_path / "straight" / "model.pt")
    for (k, a), b in zip(model.state_dict().items(), straight.state_dict().values()):
        torch.testing.assert_close(a, b, msg=f"resumed run differs from an uninterrupted one at {k}")


def test_second_cycle_starts_from_the_init_weights_and_records_them(tmp_path):
    train_set, test_set = _toy(200, 0), _toy(100, 1)
    first = Recipe(epochs=1, batch_size=50, precision="fp32")
    list(train(train_set, test_set, tmp_path / "first", TINY, first))
    init = tmp_path / "first" / "model.pt"
    start, start_meta = load_checkpoint(init)
    second = Recipe(epochs=1, batch_size=50, precision="fp32", seed=5, lr=1e-6, warmup=0.0, final_lr=0.0,
                    init=str(init))
    list(train(train_set, test_set, tmp_path / "second", TINY, second))
    after, meta = load_checkpoint(tmp_path / "second" / "model.pt")
    # a fresh start with the same seed and learning rate lands far away; the second cycle stays close
    list(train(train_set, test_set, tmp_path / "fresh", TINY, Recipe(epochs=1, batch_size=50, precision="fp32",
                                                                       seed=5, lr=1e-6)))
    fresh, _ = load_checkpoint(tmp_path / "fresh" / "model.pt")
    w0, w1, wf = (m[1][0].weight for m in (start, after, fresh))
    assert (w1 - w0).norm() < 0.05 * w0.norm() < (wf - w0).norm()
    assert meta["metrics"]["init"]["path"] == str(init)
    assert meta["metrics"]["init"]["training_seconds"] == start_meta["metrics"]["training_seconds"]
    assert meta["normalization"] == start_meta["normalization"]
    with pytest.raises(CheckpointError, match="pass the same --widths"):
        list(train(train_set, test_set, tmp_path / "other", ModelConfig(widths=(8, 16, 32), stem_width=6), second))
    # another padding mode starts from the same weights (how vgg_partial.pt was fine-tuned from vgg_zeros.pt)
    list(train(train_set, test_set, tmp_path / "partial", replace(TINY, padding_mode="partial"), second))
    moved, moved_meta = load_checkpoint(tmp_path / "partial" / "model.pt")
    assert moved_meta["model_config"]["padding_mode"] == "partial"
    assert (moved[1][0].weight - w0).norm() < 0.05 * w0.norm()


def test_distillation_targets_come_from_the_zero_padded_teachers_per_view(tmp_path):
    from padlens.core.distillation import soft_targets, teacher_probabilities
    from padlens.core.jobs import run_job
    train_set, test_set = _toy(400, 0), _toy(200, 1)
    list(train(train_set, test_set, tmp_path / "t", TINY, Recipe(epochs=3, batch_size=50, precision="fp32")))
    teacher = tmp_path / "t" / "model.pt"
    probs = run_job(teacher_probabilities([teacher, teacher], train_set.images[:20], torch.device("cpu"), "fp32"))
    model, meta = load_checkpoint(teacher)
    from padlens.core.data import Normalization
    from padlens.core.evaluate import logits_of
    norm = Normalization.from_dict(meta["normalization"])
    mirrored = logits_of(model, train_set.images[:20].flip(-1), norm, torch.device("cpu")).softmax(1)
    torch.testing.assert_close(probs[:, 1], mirrored)
    assert probs.shape == (20, 2, 10) and torch.allclose(probs.sum(2), torch.ones(20, 2))
    soft = soft_targets(probs[:, 0], train_set.labels[:20], 0.7, 0.2)
    torch.testing.assert_close(soft.sum(1), torch.ones(20))
    hard = soft_targets(probs[:, 0], train_set.labels[:20], 0.0, 0.2)
    assert torch.allclose(hard.max(1).values, torch.full((20,), 0.82)) and torch.equal(hard.argmax(1),
                                                                                      train_set.labels[:20])
    reflect = tmp_path / "r"
    list(train(train_set, None, reflect, ModelConfig(widths=(8, 16, 16), stem_width=6, padding_mode="reflect"),
               Recipe(epochs=1, batch_size=50, precision="fp32")))
    with pytest.raises(CheckpointError, match="zero-padded teachers only"):
        run_job(teacher_probabilities([reflect / "model.pt"], train_set.images[:4], torch.device("cpu")))
    recipe = Recipe(epochs=3, batch_size=50, precision="fp32", teachers=(str(teacher),))
    events = list(train(train_set, test_set, tmp_path / "student", TINY, recipe))
    assert [e.kind for e in events][:2] == ["teachers", "teachers"] and (tmp_path / "student" / "teachers.pt").is_file()
    _, student = load_checkpoint(tmp_path / "student" / "model.pt")
    assert list(student["recipe"]["teachers"]) == [str(teacher)]
    kept = torch.load(tmp_path / "student" / "teachers.pt", weights_only=True)
    assert kept["teachers"] == [str(teacher)] and kept["probabilities"].shape == (len(train_set), 2, 10)
    plain, _ = load_checkpoint(tmp_path / "t" / "model.pt")   # same seed and recipe, no teachers
    distilled, _ = load_checkpoint(tmp_path / "student" / "model.pt")
    assert not torch.allclose(plain[1][0].weight, distilled[1][0].weight), "the teachers' targets were used"


def test_training_follows_the_precision_rule_and_a_resume_names_the_precision(tmp_path, monkeypatch):
    """auto trains in fp32 on a CPU without native bf16 (fp32-fast has nothing to fold while learning) and
    records it; resuming in another precision says which one the run used."""
    monkeypatch.setattr("padlens.core.device.cpu_native_bf16", lambda: False)
    train_set = _toy(100, 0)
    list(train(train_set, None, tmp_path / "run", TINY, Recipe(epochs=1, batch_size=50)))
    _, meta = load_checkpoint(tmp_path / "run" / "model.pt")
    assert meta["recipe"]["precision"] == "auto" and meta["metrics"]["train_precision"] == "fp32"
    with pytest.raises(RuntimeError, match="trained in precision 'auto'; resume it with --precision auto"):
        list(train(train_set, None, tmp_path / "run", TINY, Recipe(epochs=1, batch_size=50, precision="bf16")))
