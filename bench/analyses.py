"""How long the default runs of `padlens coverage`, `equivariance`, `blindspots` and `channels` take here.

Each command runs as a user runs it, in a fresh process with its defaults (start-up, model and data loading
included), on the 96-320-320 checkpoint; the issue asks for under a minute each on a 2-core CPU. The load
average is printed before and after: other work on the machine slows both down. So is the CPU time each
command used (user + system): on an idle machine with N cores its wall time is about CPU time / N, less
where parts of it run on one thread (start-up, loading).

    python bench/analyses.py [--checkpoint checkpoints/vgg_zeros.pt] [--data DIR] [--device cpu] [--budget 60]

Exit status 1 when a command fails or takes longer than --budget seconds.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load() -> str:
    return "load average " + " / ".join(f"{v:.2f}" for v in os.getloadavg()) + f" (1/5/15 min) on {os.cpu_count()} CPUs"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "vgg_zeros.pt"))
    p.add_argument("--data", default=os.environ.get("PADLENS_DATA"), help="default: $PADLENS_DATA")
    p.add_argument("--device", default="cpu")
    p.add_argument("--budget", type=float, default=60.0, help="seconds each default run may take (default 60)")
    a = p.parse_args()
    print(load(), flush=True)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"coverage": ["coverage"],
                "equivariance": ["equivariance", *(["--data", a.data] if a.data else [])],
                "blindspots": ["blindspots", *(["--data", a.data] if a.data else [])],
                "channels": ["channels", *(["--data", a.data] if a.data else [])]}
        for name, args in runs.items():
            cmd = [sys.executable, "-m", "padlens.cli", *args, "--checkpoint", a.checkpoint, "--device", a.device,
                   "--out", str(Path(tmp) / name)]
            t, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(cmd, capture_output=True, text=True)
            seconds = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            ok = done.returncode == 0 and seconds <= a.budget
            status |= not ok
            print(f"padlens {name} (defaults): {seconds:.1f} s, exit {done.returncode}, "
                  f"{'within' if ok else 'NOT within'} {a.budget:.0f} s; CPU time {cpu:.1f} s "
                  f"({cpu / os.cpu_count():.1f} s per core); {load()}", flush=True)
            if done.returncode:
                print(done.stderr[-2000:], file=sys.stderr)
            else:
                head = [line for line in done.stdout.splitlines()
                        if line.startswith(("time:", "32x32", "33x33", "images per position:"))]
                print("  " + "\n  ".join(head))
    return status


if __name__ == "__main__":
    sys.exit(main())
