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
