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
                           "--no-qt-figures"])
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
                           "--no-qt-figures"])
    assert a.func(a) == 0 and sent
    doc = json.loads((out / "report.json").read_text())
    assert doc["settings"]["interrupted"] is True and len(doc["checkpoints"]) == 1 < len(report_run.ckpts)
    assert "stopping after the current step" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # the handler is put back
