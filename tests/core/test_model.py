import subprocess
import sys

import pytest
import torch
from torch import nn

from padlens.core.layers import describe_layers, format_layers, iter_paths, layer_at
from padlens.core.model import ModelConfig, build_model, init_whitening


def test_nested_sequential_levels_and_head():
    cfg = ModelConfig(widths=(16, 32, 32, 64), stem_width=8)
    model = build_model(cfg)
    assert isinstance(model, nn.Sequential) and all(isinstance(level, nn.Sequential) for level in model)
    assert len(model) == 1 + len(cfg.widths) + 1          # stem, one level per width, head
    assert isinstance(model[-1][2], nn.Linear) and model[-1][2].in_features == 64
    assert model[2][0].in_channels == 16 and model[2][0].out_channels == 32


def test_describe_layers_paths_types_and_shapes():
    infos = {i.name: i for i in describe_layers(build_model())}
    assert infos["model[1][0]"].type == "Conv2d"
    assert infos["model[1][0]"].output_shape == (96, 32, 32)
    assert infos["model[1][1]"].output_shape == (96, 16, 16)
    assert infos["model[3][6]"].output_shape == (320, 4, 4)
    assert infos["model[4]"].output_shape == (10,)
    assert "zeros" in infos["model[2][4]"].params and "3x3" in infos["model[2][4]"].params
    assert infos["model[2]"].is_container and not infos["model[2][0]"].is_container
    assert "model[3][4]" in format_layers(list(infos.values()))


def test_describe_layers_restores_training_mode_when_the_forward_fails():
    model = build_model().train()
    with pytest.raises(RuntimeError):
        describe_layers(model, (5, 32, 32))   # the stem takes 3 channels
    assert model.training and all(m.training for m in model.modules())


def test_layers_work_for_any_nested_sequential():
    other = nn.Sequential(nn.Sequential(nn.Conv2d(3, 5, 3, stride=2), nn.ReLU()), nn.Flatten(), nn.LazyLinear(4))
    infos = describe_layers(other)
    assert [i.name for i in infos] == ["model[0]", "model[0][0]", "model[0][1]", "model[1]", "model[2]"]
    assert infos[1].output_shape == (5, 15, 15)
    assert layer_at(other, (0, 1)) is other[0][1]
    assert len(list(iter_paths(other))) == 5


class _Block(nn.Module):
    """A residual block: its own forward, attribute children, a shared ReLU called twice."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.act = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()

    def forward(self, x):
        return self.act(x + self.conv2(self.act(self.conv1(x))))


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = nn.ModuleList([_Block(), _Block()])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x):
        x = self.stem(x)
        for b in self.layer1:
            x = b(x)
        return self.head(x)


def test_layers_work_for_any_module_by_attribute_and_index():
    from padlens.core.activations import capture
    net = _Net().eval()
    infos = {i.name: i for i in describe_layers(net)}
    assert list(infos)[:6] == ["model.stem", "model.layer1", "model.layer1[0]", "model.layer1[0].conv1",
                               "model.layer1[0].conv2", "model.layer1[0].act"]
    assert layer_at(net, ("layer1", 1, "conv2")) is net.layer1[1].conv2
    assert infos["model.layer1[1]"].is_container and infos["model.layer1[1]"].output_shape == (4, 32, 32)
    assert not infos["model.layer1[1].conv2"].is_container
    assert infos["model.layer1"].output_shape == ()          # a ModuleList is never called
    acts, logits = capture(net, torch.randn(1, 3, 32, 32))
    assert acts[("layer1", 0)].shape == (4, 32, 32) and logits.shape == (10,)
    assert ("layer1",) not in acts                             # nothing to capture from a ModuleList
    assert sorted(p for p in acts if p[-1] == "act") == [("layer1", 0, "act"), ("layer1", 1, "act")]


def test_a_module_reused_in_a_sequential_is_listed_and_captured_at_each_place():
    from padlens.core.activations import capture, mean_activations
    from padlens.core.data import Normalization
    from padlens.core.jobs import run_job
    act, pool = nn.ReLU(), nn.MaxPool2d(2)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), act, pool, nn.Conv2d(4, 4, 3, padding=1), act, pool,
                        nn.Flatten(), nn.LazyLinear(10))
    infos = describe_layers(net)
    assert [i.name for i in infos][:6] == [f"model[{k}]" for k in range(6)]
    assert layer_at(net, (3,)) is net[3] and infos[3].type == "Conv2d"
    assert infos[2].output_shape == (4, 16, 16) and infos[5].output_shape == (4, 8, 8), "each place its own call"
    acts, _ = capture(net, torch.randn(1, 3, 32, 32))
    assert acts[(1,)].shape == (4, 32, 32) and acts[(4,)].shape == (4, 16, 16)
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    means, n = run_job(mean_activations(net, images, Normalization((0.5,) * 3, (0.25,) * 3), batch_size=4))
    assert n == 6 and means[(2,)].shape == (4, 16, 16) and means[(5,)].shape == (4, 8, 8)


def test_whitening_stem_decorrelates_patches():
    torch.manual_seed(0)
    model = build_model(ModelConfig(widths=(8, 8, 8), stem_width=54))
    x = torch.randn(64, 3, 16, 16).cumsum(-1) / 4             # strongly correlated neighbours
    init_whitening(model, x)
    w = model[0][0].weight.reshape(54, -1)[:27]
    patches = x.unfold(2, 3, 1).unfold(3, 3, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 27)
    cov = torch.cov((patches @ w.T).T)
    torch.testing.assert_close(cov, torch.diag(torch.diagonal(cov)), atol=2e-2, rtol=0)
    assert not model[0][0].weight.requires_grad


def test_core_never_imports_qt():
    code = ("import sys, pkgutil, importlib, padlens.core\n"
            "for m in pkgutil.iter_modules(padlens.core.__path__): importlib.import_module('padlens.core.' + m.name)\n"
            "bad = [m for m in sys.modules if m.startswith(('PyQt', 'pyqtgraph', 'padlens.gui', 'padlens.cli'))]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
