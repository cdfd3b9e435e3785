import pickle

import numpy as np
import pytest
import torch
from torchvision.io import write_png

from padlens.core.data import CLASSES, DatasetError, Normalization, load_split, read_image_file, resolve_data_root


def _fake_batches(root, n=20):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": list(rng.integers(0, 10, n))}, f)
    return folder


def test_pickled_batches(tmp_path):
    folder = _fake_batches(tmp_path)
    test = load_split(tmp_path, "test")
    assert test.images.shape == (20, 3, 32, 32) and test.images.dtype == torch.uint8
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f)
    np.testing.assert_array_equal(test.images[3].numpy().reshape(-1), raw["data"][3])
    assert test.labels.tolist() == [int(v) for v in raw["labels"]]
    assert len(load_split(folder, "train")) == 100     # root may be the batches folder itself


def test_corrupt_batch_is_named(tmp_path):
    folder = _fake_batches(tmp_path)
    (folder / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="data_batch_3"):
        load_split(tmp_path, "train")


def test_image_folder_with_any_image_size(tmp_path, cache_home):
    for label, cls in enumerate(CLASSES[:3]):
        d = tmp_path / "test" / cls
        d.mkdir(parents=True)
        for k in range(2):
            size = 32 if k == 0 else 48
            write_png(torch.full((3, size, size), 20 * label + k, dtype=torch.uint8), str(d / f"{k}.png"))
    ds = load_split(tmp_path, "test")
    assert ds.images.shape == (6, 3, 32, 32)
    assert ds.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.images[2, 0, 5, 5].item() == 20
    assert ds.images[3, 0, 5, 5].item() == 21       # resized 48x48 image keeps its value
    assert list((cache_home / "padlens" / "decoded").glob("*.pt")), "decoded tree is cached"
    again = load_split(tmp_path / "test", "test")   # a bare class-folder tree works too
    torch.testing.assert_close(again.images, ds.images)


def test_missing_data_says_where_and_how(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_split(tmp_path / "empty", "test")
    msg = str(e.value)
    assert str(tmp_path / "empty") in msg and "padlens download" in msg and "PADLENS_DATA" in msg


def test_unreadable_image_file(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="Cannot read image"):
        read_image_file(tmp_path / "x.png")


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("PADLENS_DATA", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_data_root(None) == tmp_path / "env"
    monkeypatch.delenv("PADLENS_DATA")
    assert resolve_data_root(None).name == "data"


def test_normalization_round_trip():
    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    norm = Normalization.of(x)
    z = norm.apply(x)
    torch.testing.assert_close(z.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std((0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    assert Normalization.from_dict(norm.to_dict()) == norm
    torch.testing.assert_close(norm.to_pixels(z[0]), x[0], atol=1, rtol=0)   # back to the same pixels


def test_decoding_a_folder_reports_progress_and_stops_without_a_cache(tmp_path, cache_home, monkeypatch):
    import padlens.core.data
    from padlens.core.jobs import Progress, run_job
    monkeypatch.setattr(padlens.core.data, "DECODE_CHUNK", 2)
    for label, cls in enumerate(CLASSES[:3]):
        d = tmp_path / "test" / cls
        d.mkdir(parents=True)
        for k in range(2):
            write_png(torch.full((3, 32, 32), 20 * label + k, dtype=torch.uint8), str(d / f"{k}.png"))
    calls = []
    assert run_job(padlens.core.data.load_split_job(tmp_path, "test", lambda: len(calls) >= 2),
                   on_progress=calls.append) is None
    assert not (cache_home / "padlens" / "decoded").exists()
    events = []
    out = run_job(padlens.core.data.load_splits_job(tmp_path), on_progress=events.append)
    assert set(out) == {"test"} and len(out["test"]) == 6      # no train split is fine
    assert [(e.done, e.total) for e in events] == [(0, 6), (2, 6), (4, 6)]
    assert all(isinstance(e, Progress) and "test" in e.message for e in events)


def test_fingerprint_follows_content_and_mean_colour_is_exact():
    """Grid caches key on the fingerprint: a folder whose images were replaced must not hit old grids."""
    from padlens.core.data import Dataset
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=gen)
    labels = torch.arange(20) % 10
    a, b = Dataset(images, labels, "x"), Dataset(images.clone(), labels.clone(), "y")
    changed = images.clone()
    changed[3, 1, 2, 2] ^= 1
    assert a.fingerprint == b.fingerprint != Dataset(changed, labels, "x").fingerprint
    assert a.fingerprint != Dataset(images, labels.roll(1), "x").fingerprint
    want = images.double().mean((0, 2, 3)) / 255
    assert torch.allclose(torch.tensor(a.mean_color, dtype=torch.float64), want, atol=1e-12)


def test_a_label_outside_cifar10_is_named(tmp_path):
    folder = _fake_batches(tmp_path)
    with open(folder / "test_batch", "rb") as f:
        entry = pickle.load(f)
    entry["labels"][7] = 99
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(entry, f)
    with pytest.raises(DatasetError, match=r"test_batch has 1 label\(s\) outside CIFAR-10's 0-9 \(label 99 at image 7\)"):
        load_split(tmp_path, "test")


def _png_folders(root, names, per_class=2):
    for cls in names:
        d = root / "test" / cls
        d.mkdir(parents=True)
        for k in range(per_class):
            write_png(torch.full((3, 32, 32), k, dtype=torch.uint8), str(d / f"{k}.png"))


def test_class_folders_with_other_names_list_the_expected_ones(tmp_path, cache_home):
    _png_folders(tmp_path / "a", ["plane", "car"])
    with pytest.raises(DatasetError) as e:
        load_split(tmp_path / "a", "test")
    msg = str(e.value)
    assert "has folders named car, plane, not CIFAR-10's class names" in msg
    assert "must be named airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck" in msg
    _png_folders(tmp_path / "b", ["plane", "bird"])   # one right name: the wrong one would be left out silently
    with pytest.raises(DatasetError, match=r"has folders that are no CIFAR-10 class: plane\. Rename them"):
        load_split(tmp_path / "b", "test")


def test_an_empty_class_folder_is_refused_not_skipped(tmp_path, cache_home):
    _png_folders(tmp_path, ["airplane", "bird"])
    (tmp_path / "test" / "cat").mkdir()
    with pytest.raises(DatasetError, match=r"the class folder\(s\) cat hold no images.*remove the empty folders"):
        load_split(tmp_path, "test")
    (tmp_path / "test" / "cat").rmdir()
    assert load_split(tmp_path, "test").labels.tolist() == [0, 0, 2, 2], "a subset of the classes is fine"


def test_a_negative_number_of_images_is_refused_not_sliced_from_the_end():
    from padlens.core.data import stratified_subset
    labels = torch.arange(50) % 10
    assert len(stratified_subset(labels, 0)) == 50 and len(stratified_subset(labels, 5)) == 5
    with pytest.raises(ValueError, match="-1 images: give a number of images, or 0 for all"):
        stratified_subset(labels, -1)
