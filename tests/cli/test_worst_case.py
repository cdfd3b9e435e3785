"""`padlens translate` prints the worst case over shifts from the grid it writes."""
from padlens.core.translation import GridResult
from padlens.core.worst_case import format_worst_case, worst_case
from tests.cli.test_main import _translate, setup  # noqa: F401 - setup is the fixture the test uses


def test_translate_prints_the_worst_case_over_shifts(setup, tmp_path, capsys):  # noqa: F811
    ckpt, data = setup
    assert _translate(ckpt, data, tmp_path / "out", "--step", "2") == 0
    printed = capsys.readouterr().out
    r = GridResult.load_npz(tmp_path / "out" / "translation.npz")
    assert len(r.flip_radius) == 20
    lines = format_worst_case(worst_case(r))
    assert "\n".join(lines) in printed and lines[0].startswith("worst case over shifts (20 images)")
    assert "r=2:" in printed and "r=4:" in printed and "r=1:" not in printed and "lower bounds" in printed


def test_translate_writes_the_worst_case_table_and_figure(setup, tmp_path, capsys):  # noqa: F811
    import csv

    import numpy as np
    ckpt, data = setup
    assert _translate(ckpt, data, tmp_path / "out", "--step", "2") == 0
    out = tmp_path / "out"
    r = GridResult.load_npz(out / "translation.npz")
    w = worst_case(r)
    rows = list(csv.DictReader(open(out / "translation_worst_case.csv")))
    assert [row["radius"] for row in rows] == [str(k) for k in w["radii"]] + ["never"]
    for row, k in zip(rows, w["radii"]):
        flipped = int((np.asarray(r.flip_radius) <= k).sum())
        assert int(row["images_flipped"]) == flipped and int(row["images"]) == 20
        assert abs(float(row["share"]) - flipped / 20) < 1e-6 and row["lower_bound"] == str(int(k > 0))
        assert int(row["smallest_flip_here"]) == int((np.asarray(r.flip_radius) == k).sum())
    assert int(rows[-1]["images_flipped"]) == int(np.isinf(r.flip_radius).sum())
    for ext in (".png", ".svg"):
        assert (out / f"translation_heatmaps_worst_case{ext}").stat().st_size > 1000
    assert "translation_heatmaps_worst_case.svg" in capsys.readouterr().out
