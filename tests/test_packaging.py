"""The wheel: one top-level package, padlens, with every module and the shipped checkpoints; installed without
the repository (not editable) it lists the layers and evaluates the flagship from its own files.

About a minute; deselect with -m "not packaging". The installed copy runs under `python -S` with a sys.path of
its folder and the venv's site-packages: the editable install's finder (a .pth in site-packages, run by the
site module) would otherwise fill in from the repository whatever the wheel lacked.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
try:
    import tomllib
except ImportError:   # Python 3.10
    import tomli as tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS = PYPROJECT["tool"]["setuptools"]["package-dir"]

pytestmark = pytest.mark.packaging


def run(args: list, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(args, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"{args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel as pip builds it (in an isolated environment with the setuptools pyproject asks for) from a
    copy of what the build reads (pyproject, readme, the mapped folders): no build/ or egg-info lands in the
    working tree, and no stale build/lib from an earlier build ships."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in ("pyproject.toml", PYPROJECT["project"]["readme"]):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, src / name)
    for folder in PACKAGE_DIRS.values():
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(tmp / "dist")], cwd=tmp)
    wheels = list((tmp / "dist").glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def site(wheel) -> Path:
    """The wheel installed (not editable) into a folder of its own."""
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(wheel.parent.parent / "site"),
         str(wheel)], cwd=wheel.parent.parent)
    return wheel.parent.parent / "site"


def isolated(site: Path) -> dict:
    """Environment for `python -S`: the installed copy, then the venv's packages (torch, Qt), not the editable
    finder; the package's own checkpoints, not $PADLENS_CHECKPOINTS."""
    libs = dict.fromkeys([str(site), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {k: v for k, v in os.environ.items() if k not in ("PADLENS_CHECKPOINTS", "PYTHONPATH")}
    return {**env, "PYTHONPATH": os.pathsep.join(libs)}


def test_the_wheel_holds_padlens_only_with_every_module_and_checkpoint(wheel, record_property):
    with zipfile.ZipFile(wheel) as z:
        infos = {i.filename: i for i in z.infolist()}
    top = {name.split("/")[0] for name in infos}
    assert "padlens" in top and all(t == "padlens" or re.fullmatch(r"padlens-[^/]+\.dist-info", t) for t in top), top
    assert len(top) == 2, top
    for package, folder in PACKAGE_DIRS.items():
        inside = package.replace(".", "/")
        shipped = {n[len(inside) + 1:] for n in infos if n.startswith(inside + "/")}
        wanted = {p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*")
                  if p.suffix in (".py", ".pt") and "__pycache__" not in p.parts}
        assert shipped == wanted, f"{inside}: missing {wanted - shipped}, extra {shipped - wanted}"
    checkpoints = sorted((ROOT / "checkpoints").glob("*.pt"))
    assert checkpoints, "no shipped checkpoint in the repository"
    for pt in checkpoints:
        assert infos[f"padlens/checkpoints/{pt.name}"].file_size == pt.stat().st_size, pt.name
    size = wheel.stat().st_size
    record_property("wheel_bytes", size)
    print(f"{wheel.name}: {size / 2**20:.1f} MiB")


def test_the_installed_wheel_runs_from_its_own_files(site):
    probe = ("import json, sys, padlens, padlens.core, padlens.gui, padlens.cli, padlens.checkpoints as c;"
             "print(json.dumps({'files': [padlens.core.__file__, padlens.gui.__file__, padlens.cli.__file__],"
             "'paths': list(padlens.__path__) + list(c.__path__),"
             "'finders': [getattr(f, '__name__', type(f).__name__) for f in sys.meta_path]}))")
    env, cwd = isolated(site), site.parent
    seen = json.loads(run([sys.executable, "-S", "-c", probe], cwd, env).stdout)
    for f in seen["files"] + seen["paths"]:
        assert Path(f).resolve().is_relative_to(site.resolve()), f"{f} is not from the installed copy {site}"
    assert "_EditableFinder" not in seen["finders"], seen["finders"]
    layers = run([sys.executable, "-S", "-m", "padlens.cli", "layers"], cwd, env).stdout

    from padlens.core.checkpoint import FLAGSHIP, load_checkpoint
    from padlens.core.layers import describe_layers, format_layers
    model, _ = load_checkpoint(ROOT / "checkpoints" / FLAGSHIP)
    assert layers.strip() == format_layers(describe_layers(model)).strip(), "not the flagship's layers"


def test_the_installed_wheel_evaluates_the_flagship(site, data_root):
    out = run([sys.executable, "-S", "-m", "padlens.cli", "eval", "--limit", "100", "--data", str(data_root),
               "--device", "cpu", "--json"], site.parent, isolated(site)).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert Path(result["checkpoint"]).resolve().is_relative_to((site / "padlens" / "checkpoints").resolve()), result
    assert result["images"] == 100 and result["accuracy"] > 0.5, f"far above chance (0.1) expected: {result}"
