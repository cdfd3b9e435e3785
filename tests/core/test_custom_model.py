import sys
import textwrap

import pytest
import torch
from torch import nn

from padlens.core.custom_model import (CIFAR10_NORMALIZATION, CustomModelError, describe, import_file,
                               load_custom_model)
from padlens.core.data import Normalization

GOOD = """
import torch
from torch import nn

def build(classes=10):
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes)),
    )

NOT_A_FUNCTION = 3

def returns_int():
    return 3

def raises():
    raise RuntimeError("out of coffee")

class Net(nn.Module):   # not a Sequential, and uses .view, which fails on channels_last
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 32 * 32, 5)

    def forward(self, x):
        return self.fc(self.conv(x).view(x.shape[0], -1))

def net():
    return Net()

class Plain(Net):       # not a Sequential either, but fine with channels_last
    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))

def for_28():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 10))

def no_flatten():
    return nn.Sequential(nn.Conv2d(3, 10, 3), nn.AdaptiveAvgPool2d(1))

def tuple_out():
    class T(nn.Module):
        def forward(self, x):
            return x.mean((2, 3)), x
    return T()
"""

BROKEN = """
import torch
from torch import nn

class Div0(nn.Module):
    def forward(self, x):
        return x / 0

def inf_out():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10), Div0())

def nan_weights():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    model[1].weight.data[0, 0] = float("nan")
    return model

def interrupted():
    raise KeyboardInterrupt
"""


def write(tmp_path, text, name="my_model.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def trained_original(path):
    """The model as the file builds it, with non-default weights and BN statistics, and its state dict."""
    model = import_file(path).build()
    torch.manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model[0][1].running_mean.uniform_(-1, 1)
        model[0][1].running_var.uniform_(0.5, 2)
    return model.eval()


@pytest.mark.parametrize("wrapped", [False, True])
def test_good_model_loads_with_its_weights(tmp_path, wrapped):
    path = write(tmp_path, GOOD)
    original = trained_original(path)
    state = original.state_dict()
    torch.save({"state_dict": state, "epoch": 3} if wrapped else state, tmp_path / "w.pt")
    loaded = load_custom_model(path, "build", tmp_path / "w.pt")
    assert not loaded.training
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = original(x)
        got = loaded(x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    untrained = load_custom_model(path, "build")
    with torch.no_grad():
        assert not torch.allclose(untrained(x), want), "without weights the model keeps its own init"


@pytest.mark.parametrize("wrap", [
    lambda sd: {"module." + k: v for k, v in sd.items()},                          # nn.DataParallel
    lambda sd: {"_orig_mod." + k: v for k, v in sd.items()},                       # torch.compile
    lambda sd: {"epoch": 3, "model_state_dict": sd, "optimizer_state_dict": {}},   # a training checkpoint
    lambda sd: {"state_dict": {"model." + k: v for k, v in sd.items()}},           # Lightning
], ids=["dataparallel", "compiled", "training-checkpoint", "lightning"])
def test_wrapped_weights_are_accepted(tmp_path, wrap):
    path = write(tmp_path, GOOD)
    original = trained_original(path)
    torch.save(wrap(original.state_dict()), tmp_path / "w.pt")
    loaded = load_custom_model(path, "build", tmp_path / "w.pt")
    torch.testing.assert_close(loaded[1][2].weight, original[1][2].weight)


def test_same_file_name_in_two_folders_and_edits_are_reread(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write(tmp_path / "a", GOOD, "model.py")
    b = write(tmp_path / "b", GOOD.replace("def build(classes=10)", "def build(classes=7)"), "model.py")
    assert load_custom_model(a, "build")[1][2].out_features == 10
    assert load_custom_model(b, "build")[1][2].out_features == 7
    a.write_text(GOOD.replace("def build(classes=10)", "def build(classes=3)"))
    assert load_custom_model(a, "build")[1][2].out_features == 3


def test_sibling_modules_can_be_imported(tmp_path):
    write(tmp_path, "from torch import nn\nWIDTH = 6\n", "helpers_for_padlens_test.py")
    path = write(tmp_path, """
        from torch import nn
        from helpers_for_padlens_test import WIDTH
        def build():
            return nn.Sequential(nn.Conv2d(3, WIDTH, 3), nn.AdaptiveMaxPool2d(1), nn.Flatten())
    """)
    assert describe(load_custom_model(path, "build")).num_classes == 6


@pytest.mark.parametrize("text, function, match", [
    (GOOD, "missing", r"has no function 'missing'\. It defines: Net, Plain, build, for_28, net, no_flatten, "),
    (GOOD, "NOT_A_FUNCTION", r"'NOT_A_FUNCTION' in .* is a int, not a function"),
    (GOOD, "returns_int", r"returns_int\(\) in .* returned int, not a torch\.nn\.Module"),
    (GOOD, "raises", r"Calling raises\(\) from .* failed with RuntimeError: out of coffee"),
    (GOOD, "for_28", r"does not accept .*\[1, 3, 32, 32\].*32x32x3"),
    (GOOD, "no_flatten", r"returns shape \[1, 10, 1, 1\].*\[1, K\] logits.*nn\.Flatten\(\)"),
    (GOOD, "tuple_out", r"returns tuple, not a tensor of logits"),
    (GOOD, "net", r"fails on a channels_last batch.*RuntimeError: view size .*instead\. "
                  r"Use \.reshape\(\) or \.flatten\(\)"),
    (GOOD, "not a name", r"'not a name' is not a function name"),
    ("def build(:\n    pass\n", "build", r"syntax error at line 1.*python my_model\.py"),
    ("import no_such_module_for_padlens\n", "build",
     r"Importing .* failed with ModuleNotFoundError: No module named 'no_such_module_for_padlens'\. Install"),
    ("x = 1 / 0\n", "build", r"failed with ZeroDivisionError: division by zero\. Fix the file"),
    ("import sys\nsys.exit(2)\n", "build", r"SystemExit.*if __name__ == '__main__'"),
    ("raise KeyboardInterrupt\n", "build", r"Importing .* failed with KeyboardInterrupt\. Keep script code under"),
    (BROKEN, "interrupted", r"Calling interrupted\(\) from .* failed with KeyboardInterrupt"),
    (BROKEN, "inf_out", r"outputs NaN or infinity for a zero \[1, 3, 32, 32\] batch.*a division by zero"),
    (BROKEN, "nan_weights", r"holds NaN or infinite weights in 1\.weight"),
])
def test_each_problem_names_itself(tmp_path, text, function, match):
    path = write(tmp_path, text)
    modules, sys_path = set(sys.modules), list(sys.path)
    with pytest.raises(CustomModelError, match=match):
        load_custom_model(path, function)
    assert sys.path == sys_path
    if "Importing" in match or "syntax" in match:   # a file that did not import leaves no module behind
        assert not [m for m in set(sys.modules) - modules if m.startswith("padlens_custom_")]


def test_missing_and_wrong_files(tmp_path):
    with pytest.raises(CustomModelError, match=r"nope\.py: no such file"):
        load_custom_model(tmp_path / "nope.py", "build")
    txt = write(tmp_path, GOOD, "model.txt")
    with pytest.raises(CustomModelError, match="not a Python source file"):
        load_custom_model(txt, "build")
    path = write(tmp_path, GOOD)
    with pytest.raises(CustomModelError, match=r"w\.pt: no such weights file"):
        load_custom_model(path, "build", tmp_path / "w.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CustomModelError, match=r"junk.pt is not a weights file PadLens can read: it is not a file "
                       r"written by torch.save.*Or open the model without a weights file"):
        load_custom_model(path, "build", tmp_path / "junk.pt")
    torch.save(nn.Linear(2, 2), tmp_path / "whole.pt")              # a pickled module, not a state dict
    with pytest.raises(CustomModelError, match=r"holds Python objects besides tensors \(torch.nn.modules.linear.Linear\), "
                       r"which could run code.*loads weights only.*torch.save\(model.state_dict\(\), path\)") as e:
        load_custom_model(path, "build", tmp_path / "whole.pt")
    assert "weights_only=False" not in str(e.value) and "likely succeed" not in str(e.value)
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    with pytest.raises(CustomModelError, match="does not hold a state dict"):
        load_custom_model(path, "build", tmp_path / "meta.pt")


def test_weights_that_do_not_fit(tmp_path):
    path = write(tmp_path, GOOD)
    state = trained_original(path).state_dict()
    state["1.2.weight"] = torch.zeros(7, 4)
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(CustomModelError, match=r"does not fit.*shape mismatches.*1\.2\.weight \(7, 4\) vs "
                                               r"\(10, 4\).*same layers, same sizes"):
        load_custom_model(path, "build", tmp_path / "other.pt")
    del state["1.2.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "keys.pt")
    with pytest.raises(CustomModelError, match=r"missing keys \['1\.2\.weight'\]; unexpected keys \['extra"):
        load_custom_model(path, "build", tmp_path / "keys.pt")


def test_describe(tmp_path):
    path = write(tmp_path, GOOD)
    info = describe(load_custom_model(path, "build"))
    assert (info.num_layers, info.num_convs, info.num_classes) == (9, 1, 10)
    assert info.num_params == 3 * 4 * 9 + 4 + 4 + 4 + 4 * 10 + 10
    assert info.summary.startswith("nested nn.Sequential, by index: 9 layers (1 convolutions)")
    other = describe(import_file(path).Plain())
    assert (other.num_layers, other.num_convs, other.num_classes) == (2, 1, 5)
    assert other.summary.startswith("Plain, by attribute and index: 2 layers")


def test_cifar10_normalization():
    assert isinstance(CIFAR10_NORMALIZATION, Normalization)
    assert CIFAR10_NORMALIZATION.mean == (0.4914, 0.4822, 0.4465)
    assert CIFAR10_NORMALIZATION.std == (0.2470, 0.2435, 0.2616)


def test_cache_identity_covers_code_function_and_weights(tmp_path, tiny_checkpoint):
    """Grids are cached under it: the same weights under edited code or another function are another model."""
    from padlens.core.files import file_identity
    from padlens.core.session import load_custom, load_model
    py = tmp_path / "mine.py"
    py.write_text(GOOD + "\ndef build_again():\n    return build()\n")
    torch.save(load_custom_model(py, "build").state_dict(), tmp_path / "w.pt")
    ids = {load_custom(py, fn, tmp_path / "w.pt", torch.device("cpu")).cache_id for fn in ("build", "build_again")}
    assert len(ids) == 2 and None not in ids
    before = load_custom(py, "build", tmp_path / "w.pt", torch.device("cpu")).cache_id
    py.write_text(GOOD.replace("padding=1", "padding=1, padding_mode='reflect'"))
    assert load_custom(py, "build", tmp_path / "w.pt", torch.device("cpu")).cache_id != before
    assert load_custom(py, "build", None, torch.device("cpu")).cache_id is None     # random init: never cached
    assert load_model(tiny_checkpoint, torch.device("cpu")).cache_id == file_identity(tiny_checkpoint)


def test_outputs_beyond_the_cifar10_classes_get_names():
    from padlens.core.session import Explorer, LoadedModel
    lm = LoadedModel(nn.Linear(2, 12), CIFAR10_NORMALIZATION, "wide head")
    assert lm.class_name(3) == "cat" and lm.class_name(11) == "output 11"
    top = Explorer(lm).top_predictions(torch.arange(12.0))
    assert [name for name, _ in top] == ["output 11", "output 10", "truck"]


RESIDUAL = """
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.block = Block()
        self.head = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(8),
                                  nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        return self.head(self.block(x))

def build():
    return Net()
"""


def test_translation_grid_of_an_own_residual_model(tmp_path):
    """The grid works on a model that is not ours (a skip connection in forward()): exact fp32 equals
    the shifts computed one by one, and the folded bf16 path runs every cell."""
    from padlens.core.inference import fast_model
    from padlens.core.jobs import run_job
    from padlens.core.shifts import shift
    from padlens.core.translation import GridSpec, translation_grid
    model = load_custom_model(write(tmp_path, RESIDUAL), "build")
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.arange(20) % 10
    norm, spec, cpu = CIFAR10_NORMALIZATION, GridSpec.square(-4, 4, 4), torch.device("cpu")
    exact = run_job(translation_grid(fast_model(model, cpu, "fp32"), images, labels, norm, spec, precision="fp32"))
    with torch.no_grad():
        for r, dy in enumerate(spec.dys):
            for c, dx in enumerate(spec.dxs):
                pred = model(norm.apply(shift(images, int(dx), int(dy)))).argmax(1)
                assert exact.correct[r, c] == (pred == labels).sum().item(), (dx, dy)
    fast = run_job(translation_grid(fast_model(model, cpu, "bf16"), images, labels, norm, spec, precision="bf16"))
    assert (fast.count == 20).all() and torch.isfinite(torch.from_numpy(fast.loss)).all()


def test_loading_names_each_step_and_stops_between_them(tmp_path):
    """The app runs the load as a job off its window's thread: Progress says which step a stuck model is in."""
    from padlens.core.custom_model import load_custom_model_job
    from padlens.core.jobs import run_job
    path = write(tmp_path, GOOD)
    torch.save(import_file(path).build().state_dict(), tmp_path / "w.pt")
    steps = []
    model = run_job(load_custom_model_job(path, "build", tmp_path / "w.pt"), on_progress=steps.append)
    assert isinstance(model, nn.Module)
    assert [s.message for s in steps] == ["importing my_model.py", "calling build() from my_model.py",
                                          "loading the weights w.pt", "checking a forward pass on a [1, 3, 32, 32] batch"]
    assert [(s.done, s.total) for s in steps] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    job = load_custom_model_job(path, "build", should_stop=lambda: True)
    assert run_job(job) is None, "stopped after the import, before the builder runs"
