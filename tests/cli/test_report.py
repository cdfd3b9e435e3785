"""`padlens report` on the command line: argument wiring and Ctrl-C (the job itself: tests/core/test_report.py)."""
import argparse
import json

from padlens.cli.report import add_report_parser


def test_argparse_wiring(report_run, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(report_run.tmp / "cache2"))
    parser = argparse.ArgumentParser(prog="padlens")
    add_report_parser(parser.add_subparsers(dest="command"))
    out = report_run.tmp / "cli"
    a = parser.parse_args(["report", "--checkpoints", str(report_run.ckpts[1]), "--out", str(out), "--data", str(report_run.data),
                           "--device", "cpu", "--images", "10", "--range", "-2", "2", "--step", "2",
                           "--mean-images", "10", "--eval-images", "20", "--precision", "fp32", "--modes", "roll",
                           "--no-figures"])
    assert a.images == 10 and a.range == [-2, 2] and a.modes == ["roll"]
    assert a.func(a) == 0
    assert "report.md" in capsys.readouterr().out
    doc = json.loads((out / "report.json").read_text())
    s = doc["settings"]
    assert (s["grid_images"], s["mean_images"], s["eval_images"], s["eval_subset"]) == (10, 10, 20, "class-balanced")
    assert s["grid"] == {"x_min": -2, "x_max": 2, "y_min": -2, "y_max": 2, "step": 2}
    assert list(doc["checkpoints"][0]["grids"]) == ["roll"]
    d = parser.parse_args(["report", "--checkpoints", "a.pt", "b.pt", "--out", "o"])
    assert (d.images, d.range, d.step, d.mean_images, d.precision, d.modes, d.input_size) == (
        500, [-16, 16], 4, 500, "auto", ["affine", "affine-mean", "roll"], 32)


def test_ctrl_c_on_the_command_line_reports_what_is_finished(report_run, monkeypatch, capsys):
    import os
    import signal

    import padlens.cli.report
    monkeypatch.setenv("XDG_CACHE_HOME", str(report_run.tmp / "cache3"))
    parser = argparse.ArgumentParser(prog="padlens")
    add_report_parser(parser.add_subparsers(dest="command"))
    sent = []

    def progress_line(frac, text):
        if text.split(" left")[0].endswith(": done") and not sent:
            sent.append(os.kill(os.getpid(), signal.SIGINT))   # as if the user pressed Ctrl-C here
    monkeypatch.setattr(padlens.cli.report, "progress_line", progress_line)
    out = report_run.tmp / "ctrl-c"
    a = parser.parse_args(["report", "--checkpoints", *map(str, report_run.ckpts), "--out", str(out), "--data",
                           str(report_run.data), "--device", "cpu", "--images", "10", "--range", "-2", "2", "--step", "2",
                           "--mean-images", "10", "--eval-images", "20", "--precision", "fp32", "--modes", "roll",
                           "--no-figures"])
    assert a.func(a) == 130 and sent, "an interrupted report exits 130, as every interrupted command"
    doc = json.loads((out / "report.json").read_text())
    assert doc["settings"]["interrupted"] is True and len(doc["checkpoints"]) == 1 < len(report_run.ckpts)
    assert "**Interrupted: only the checkpoints listed below were finished.**" in (out / "report.md").read_text()
    err = capsys.readouterr().err
    assert "stopping after the current step" in err
    assert "interrupted; the report is partial, marked so in it: 1 of 2 model(s) finished" in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # the handler is put back


def test_a_bad_out_is_refused_before_any_measurement(report_run, tmp_path, monkeypatch, capsys):
    from padlens.cli.main import main
    monkeypatch.setattr("padlens.cli.report.report", lambda *a, **k: __import__("pytest").fail("measured"))
    (tmp_path / "FILE").write_text("x")
    for out, message in ((tmp_path / "FILE" / "out", "FILE is a file, so no folder can be made inside it"),
                         (tmp_path / "FILE", "FILE is a file, not a folder")):
        assert main(["report", "--checkpoints", str(report_run.ckpts[0]), "--out", str(out),
                     "--data", str(report_run.data)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("padlens: error: --out ") and message in err and "Traceback" not in err


def test_a_write_that_fails_mid_report_says_what_is_kept(report_run, tmp_path, monkeypatch, capsys):
    """A full disk while the report writes: one message, and the grids finished are in the cache."""
    from padlens.cli.main import main
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def disk_full(path, text):
        raise OSError(28, "No space left on device", str(path))
    monkeypatch.setattr("padlens.core.report.atomic_text", disk_full)   # report.json, after every measurement
    rc = main(["report", "--checkpoints", str(report_run.ckpts[0]), "--out", str(tmp_path / "r"), "--data",
               str(report_run.data), "--device", "cpu", "--images", "10", "--range", "-2", "2", "--step", "2",
               "--mean-images", "10", "--eval-images", "20", "--precision", "fp32", "--modes", "roll",
               "--worst-case-images", "0", "--no-figures"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and "No space left on device" in err
    assert f"writing the report into {tmp_path / 'r'} failed" in err and "finished translation grids are cached" in err
    assert len(list((tmp_path / "cache" / "padlens" / "translation").glob("*.npz"))) == 1


def test_a_damaged_cache_file_is_named_and_computed_again(report_run, tmp_path, monkeypatch, capsys):
    from padlens.cli.main import main
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = ["report", "--checkpoints", str(report_run.ckpts[0]), "--data", str(report_run.data), "--device", "cpu",
            "--images", "10", "--range", "-2", "2", "--step", "2", "--mean-images", "10", "--eval-images", "20",
            "--precision", "fp32", "--modes", "roll", "--worst-case-images", "0", "--no-figures"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    cached, = (tmp_path / "cache" / "padlens" / "translation").glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:100])   # truncated: BadZipFile broke the report for good
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert f"note: discarded the unreadable (BadZipFile) cached grid {cached.name}; computing it again" in \
        capsys.readouterr().err
    assert json.loads((tmp_path / "b" / "report.json").read_text())["checkpoints"][0]["grids"]["roll"]["from_cache"] is False
    assert cached.is_file()


def test_the_report_draws_the_apps_figures(report_run, tmp_path, monkeypatch, capsys):
    """Without --no-figures every figure report.md links is the app's own (gui, drawn offscreen): a 300 dpi PNG
    with an SVG beside it, saying what it shows; none is missing."""
    import re

    from padlens.cli.main import main
    from tests.figure_checks import assert_paper_figure
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "r"
    assert main(["report", "--checkpoints", str(report_run.ckpts[0]), "--out", str(out), "--data",
                 str(report_run.data), "--device", "cpu", "--images", "10", "--range", "-4", "4", "--step", "4",
                 "--mean-images", "10", "--eval-images", "20", "--precision", "fp32", "--modes", "roll"]) == 0
    md = (out / "report.md").read_text()
    assert "not drawn" not in md
    links = re.findall(r"\]\(([^)]+\.png)\)", md)
    names = {p.rsplit("/", 1)[-1] for p in links}
    assert {"maps_blank_normalized.png", "maps_blank_pixel.png", "maps_dataset_mean.png", "mean_filters.png",
            "translation_heatmaps.png", "coverage.png", "equivariance.png", "blindspots.png", "channels.png"} <= names
    for link in links:
        png = out / link
        assert_paper_figure(png, png.with_suffix(".svg"), "tiny_zeros", min_width=500)
