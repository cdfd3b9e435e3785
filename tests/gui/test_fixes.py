"""Spatial-bias tab, input resizing and a user's own model, headless."""
import torch
from PyQt6.QtWidgets import QMessageBox


MODEL_PY = '''
import torch.nn as nn

def build_model():
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()),
        nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(6, 4, 3, padding=1, padding_mode="reflect"), nn.ReLU()),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)))

def not_a_model():
    return 3

class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(x + self.conv2(self.act(self.conv1(x))))

class ResNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.blocks = nn.ModuleList([Block(4), Block(4)])
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.fc(x.mean((2, 3)))

def resnet_like():
    return ResNetLike()

def fixed_head():
    return nn.Sequential(nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU()),
                         nn.Sequential(nn.Flatten(), nn.Linear(2 * 32 * 32, 10)))

def no_conv():
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))

def mixed_kernels():
    return nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.Conv2d(4, 4, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
'''


def _cell(w, name, col):
    return w.bias.table.item(w.bias.rows[next(i.path for i in w.explorer.layers if i.name == name)], col).text()


def test_bias_table_for_blank_inputs_and_the_dataset_mean(window, qtbot):
    w = window
    assert float(_cell(w, "model[1][0]", 3)) > 0.01, "zero padding: the blank input's border differs"
    assert _cell(w, "model[4][0]", 3) == "n/a"        # 1x1 map: no center
    assert _cell(w, "model[1][5]", 5) == ""
    w.compute_mean("test", 30)
    qtbot.waitUntil(lambda: not w.mean_runner.running, timeout=20000)
    assert float(_cell(w, "model[1][5]", 5)) >= 0
    assert w.bias.filters.maps.shape[1:] == (3, 3) and len(w.bias.filters.maps) == 7
    assert "border bias" in w.grid.info.text()


def test_input_resizing_changes_shapes_and_reports_uneven_padding(window):
    w = window
    w.inputs.set_kind("blank")
    w.set_input_size(36)
    info = next(i for i in w.explorer.layers if i.name == "model[1][0]")
    assert info.output_shape[-1] == 36 and w.result.acts[info.path].shape[-1] == 36
    assert "UNEVEN" in _cell(w, "model[3][1]", 7)     # 9x9 -> 4x4 drops a row and a column
    w.set_input_size(32)
    assert "UNEVEN" not in _cell(w, "model[3][1]", 7)


def test_changing_the_input_size_cancels_a_running_dataset_mean(window, qtbot, monkeypatch):
    """A mean started at 32x32 that ends after a switch to 48 must not fill the 48x48 views."""
    import threading

    import padlens.gui.main_window as mw
    w, release, real = window, threading.Event(), mw.mean_activations

    def held(*args, should_stop, **kwargs):     # deaf to the cancel: the late result must still be dropped
        release.wait(10)
        return (yield from real(*args, **kwargs))
    monkeypatch.setattr(mw, "mean_activations", held)
    w.inputs.set_kind("blank")
    w.compute_mean("test", 30)
    w.set_input_size(48)
    assert w.mean_runner.worker.cancel_requested and "cancelled" in w.statusBar().currentMessage()
    release.set()
    qtbot.waitUntil(lambda: not w.mean_runner.running, timeout=20000)
    conv = next(i.path for i in w.explorer.layers if i.name == "model[1][0]")
    assert w.result.acts[conv].shape[-1] == 48 and w.result.label.startswith("blank")
    assert _cell(w, "model[1][5]", 5) == "" and "Discarded" in w.inputs.mean_status.text()
    w.set_input_size(32)                         # the size is a setting: the next test's window starts from it


def test_the_symmetric_padding_note_shows_for_every_padding_mode(window, tmp_path):
    w = window
    assert w.explorer.loaded.padding_mode == "zeros" and "Symmetric padding equals replicate" in w.bias.note.text()
    (tmp_path / "mine.py").write_text(MODEL_PY)
    assert w.open_custom_model(str(tmp_path / "mine.py"), "build_model", None)     # zeros and reflect
    assert "Symmetric padding equals replicate" in w.bias.note.text()


def test_filters_that_cancel_show_no_asymmetry(window):
    """The whitening stem's +/- filter pairs average to rounding noise: n/a, not a top score."""
    w = window
    stem = w.explorer.loaded.model[0][0].weight
    with torch.no_grad():
        stem.copy_(torch.cat([stem[:3], -stem[:3]]))
    w._layers_changed()
    assert _cell(w, "model[0][0]", 6) == "n/a" and float(_cell(w, "model[1][0]", 6)) > 0


def test_mean_filter_panel_clears_when_the_new_model_has_none_to_show(window, tmp_path):
    w = window
    (tmp_path / "mine.py").write_text(MODEL_PY)
    assert w.bias.filters.maps is not None
    assert w.open_custom_model(str(tmp_path / "mine.py"), "mixed_kernels", None)
    assert w.bias.filters.maps is None and "differ in shape" in w.bias.filters.grid_title.text
    assert w.open_custom_model(str(tmp_path / "mine.py"), "build_model", None)
    assert w.bias.filters.maps.shape == (2, 3, 3) and "2 convolutions" in w.bias.filters.grid_title.text
    assert w.open_custom_model(str(tmp_path / "mine.py"), "no_conv", None)
    assert w.bias.filters.maps is None and "no convolution" in w.bias.filters.grid_title.text
    assert "no convolution" in w.bias.filters.info.text()


def test_own_model_opens_with_its_layer_tree(window, tmp_path, monkeypatch):
    w = window
    (tmp_path / "mine.py").write_text(MODEL_PY)
    assert w.open_custom_model(str(tmp_path / "mine.py"), "build_model", None)
    assert [i.name for i in w.explorer.layers][:3] == ["model[0]", "model[0][0]", "model[0][1]"]
    w.inputs.set_kind("blank")
    w.tree.select((1, 1))
    assert w.grid.maps.shape == (4, 16, 16)
    assert "reflect" in w.model_label.text() and "zeros" in w.model_label.text()
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: warnings.append(a[2]))
    assert not w.open_custom_model(str(tmp_path / "mine.py"), "not_a_model", None)
    assert "not a torch.nn.Module" in warnings[-1]
    torch.save({"0.0.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    assert not w.open_custom_model(str(tmp_path / "mine.py"), "build_model", str(tmp_path / "bad.pt"))
    assert "does not fit" in warnings[-1] or "missing" in warnings[-1]
    assert w.explorer.loaded.name == "mine.build_model", "a refused model leaves the open one in place"


def test_own_model_with_its_own_input_normalization(window, tmp_path, monkeypatch):
    from padlens.core.session import load_custom
    w = window
    (tmp_path / "mine.py").write_text(MODEL_PY)
    torch.save(load_custom(tmp_path / "mine.py", "build_model").model.state_dict(), tmp_path / "w.pt")
    assert w.open_custom_model(str(tmp_path / "mine.py"), "build_model", str(tmp_path / "w.pt"), "unit")
    unit = w.explorer.loaded
    assert unit.norm.mean == (0.0, 0.0, 0.0) and unit.norm.std == (1.0, 1.0, 1.0)
    assert "pixels in [0, 1]" in unit.meta["summary"] and w.settings.value("custom_normalization") == "unit"
    assert w.open_custom_model(str(tmp_path / "mine.py"), "build_model", str(tmp_path / "w.pt"))
    assert w.explorer.loaded.cache_id != unit.cache_id, "grids of differently scaled inputs never share a cache"
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: warnings.append(a[2]))
    assert not w.open_custom_model(str(tmp_path / "mine.py"), "build_model", None, "hsv")
    assert "unknown normalization 'hsv'" in warnings[-1]


def test_own_model_that_is_not_a_sequential_shows_every_layer(window, tmp_path):
    w = window
    (tmp_path / "mine.py").write_text(MODEL_PY)
    assert w.open_custom_model(str(tmp_path / "mine.py"), "resnet_like", None)
    names = [i.name for i in w.explorer.layers]
    assert names[:4] == ["model.stem", "model.blocks", "model.blocks[0]", "model.blocks[0].conv1"]
    w.inputs.set_kind("blank")
    w.tree.select(("blocks", 1))
    assert w.grid.maps.shape == (4, 32, 32)
    assert float(_cell(w, "model.blocks[1].conv2", 3)) >= 0   # the bias table reaches inside the blocks
    assert w.settings.value("layer") == "model.blocks[1]"
    w.tree.select_name("model.stem")
    assert w.tree.selected_path() == ("stem",)


def test_a_model_that_only_takes_32x32_refuses_other_input_sizes(window, tmp_path, monkeypatch):
    w = window
    (tmp_path / "mine.py").write_text(MODEL_PY)
    w.show()
    w.tabs.setCurrentWidget(w.comparison)                   # its checkpoints load when the tab first shows
    w.set_input_size(40)                                    # remembered from the model before
    assert w.comparison.layers[0].output_shape[-1] == 40
    assert w.open_custom_model(str(tmp_path / "mine.py"), "fixed_head", None)
    assert w.explorer.input_size == 32 and "does not run on a 40x40 input" in w.statusBar().currentMessage()
    assert w.comparison.layers[0].output_shape[-1] == 32, "the Compare tab follows the size fallen back to"
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: warnings.append(a[2]))
    w.set_input_size(48)
    assert "does not run on a 48x48 input" in warnings[-1] and w.explorer.input_size == 32
    assert w.explorer.layers[-1].output_shape == (10,)


def test_spatial_bias_and_comparison_exports(window, tmp_path, monkeypatch):
    import csv

    from PyQt6.QtGui import QImage
    w = window
    answers = iter([tmp_path / "bias.csv", tmp_path / "filters.png", tmp_path / "cmp.svg"])
    monkeypatch.setattr("padlens.gui.export.QFileDialog.getSaveFileName", lambda *a, **k: (str(next(answers)), ""))
    assert w.export_table(w.bias.table, "spatial_bias") == tmp_path / "bias.csv"
    rows = list(csv.reader((tmp_path / "bias.csv").open()))
    assert rows[0][0] == "Layer" and len(rows) == 1 + w.bias.table.rowCount()
    assert rows[1 + w.bias.rows[(1, 0)]][0] == "model[1][0]" and float(rows[1 + w.bias.rows[(1, 0)]][3]) > 0.01
    assert not QImage(str(w.export_figure(w.bias.filters.grid_widget, "mean_filters"))).isNull()
    w.comparison.table.setRowCount(0)
    assert w.export_table(w.comparison.table, "comparison") is None and "empty" in w.statusBar().currentMessage()
    assert w.export_figure(w.comparison.heat, "comparison_heatmaps").read_text().lstrip().startswith("<?xml")
