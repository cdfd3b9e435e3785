"""Every menu entry and shortcut of the main window, triggered as a user does (QAction.trigger(), key presses),
with the file dialogs answered by the test: each test checks what the entry is for (a file written and read
back, a model or data set opened, a tab shown, a setting changed)."""
import csv
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QImage
from PyQt6.QtWidgets import QFileDialog, QInputDialog, QMessageBox
from torchvision.io import write_png

from padlens.core.translation import GridResult
from tests.gui.grids import run_small_grid

TESTED = {   # each entry below has a test of its effect here; a new entry fails test_every_menu_entry_is_tested
    "Open checkpoint...", "Open custom model...", "Open data folder...", "Open image...",
    "Export feature grid (PNG/SVG/PDF)...", "Export enlarged map (PNG/SVG/PDF)...", "Export activations (.npy)...",
    "Export all layers...", "Export translation heatmaps (PNG/SVG/PDF)...", "Export translation numbers (CSV/NPZ)...",
    "Export spatial-bias table (CSV)...", "Export mean filters (PNG/SVG/PDF)...",
    "Export comparison heatmaps (PNG/SVG/PDF)...", "Export comparison maps (PNG/SVG/PDF)...",
    "Export comparison table (CSV)...", "Quit",
    "Feature maps", "Translation", "Spatial bias", "Compare checkpoints", "Analyses", "Input size...", "Reset layout",
    "About PadLens",
}


def actions(w) -> dict:
    """The window's menu entries by their text (without the & of the mnemonic)."""
    return {a.text().replace("&", ""): a for top in w.menuBar().actions() for a in top.menu().actions()
            if not a.isSeparator()}


def trigger(w, text: str) -> None:
    actions(w)[text].trigger()


@pytest.fixture
def save_as(monkeypatch):
    """save_as(path, ...): the save dialogs answer these paths, in turn."""
    def answer(*paths):
        it = iter(paths)
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(next(it)), ""))
    return answer


@pytest.fixture(autouse=True)
def replace_files(monkeypatch):
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)


def _active(w, qtbot):
    """The window shown and active: shortcuts reach only the active window. Keys then go to its QWindow, as a
    keyboard's do (through Qt's shortcut map)."""
    from PyQt6.QtWidgets import QApplication
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    return w.windowHandle()


def _layer(w, name):
    return next(i for i in w.explorer.layers if i.name == name)


def _show_blank_layer(w, name="model[2][0]"):
    w.inputs.set_kind("blank")
    w.tree.select(_layer(w, name).path)
    return _layer(w, name)


def test_every_menu_entry_is_tested(window):
    assert set(actions(window)) == TESTED


def test_shortcuts_are_unique_and_each_reaches_its_entry(window, qtbot, monkeypatch):
    """Pressing the keys fires the entries (dialogs cancelled, so nothing else happens; Quit last)."""
    w = window
    for name in ("getOpenFileName", "getSaveFileName"):
        monkeypatch.setattr(QFileDialog, name, lambda *a, **k: ("", ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: "")
    monkeypatch.setattr(QInputDialog, "getInt", lambda *a, **k: (0, False))
    monkeypatch.setattr(QMessageBox, "about", lambda *a: None)
    keyed = {t: a for t, a in actions(w).items() if not a.shortcut().isEmpty()}
    keys = [a.shortcut().toString() for a in keyed.values()]
    assert len(keys) == len(set(keys)), f"a shortcut used twice does nothing in Qt: {sorted(keys)}"
    keyboard = _active(w, qtbot)
    fired = []
    for text, act in sorted(keyed.items(), key=lambda kv: kv[0] == "Quit"):
        act.triggered.connect(lambda _=False, t=text: fired.append(t))
        combo = act.shortcut()[0]
        qtbot.keyClick(keyboard, combo.key(), combo.keyboardModifiers())
        assert fired[-1:] == [text], f"{act.shortcut().toString()} did not reach {text!r}"
    assert not w.isVisible(), "Ctrl+Q closed the window"


def test_page_keys_and_ctrl_r_step_through_the_data_set(window, qtbot):
    w = window
    w.inputs.set_kind("dataset")
    keyboard = _active(w, qtbot)
    w.inputs.index_spin.setValue(5)
    qtbot.keyClick(keyboard, Qt.Key.Key_PageDown)
    assert w.inputs.index_spin.value() == 6 and w.result.label == "test image 6"
    qtbot.keyClick(keyboard, Qt.Key.Key_PageUp)
    qtbot.keyClick(keyboard, Qt.Key.Key_PageUp)
    assert w.result.label == "test image 4"
    seen = set()
    for _ in range(20):
        qtbot.keyClick(keyboard, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
        seen.add(w.inputs.index_spin.value())
    assert len(seen) > 3, "Ctrl+R picks random images"


def test_open_checkpoint(window, tmp_path, monkeypatch):
    from padlens.core.checkpoint import save_checkpoint
    from tests.tiny import NORM, tiny
    model, cfg = tiny("reflect")
    save_checkpoint(tmp_path / "reflect.pt", model, cfg, NORM, {"crop_pad": 4}, {"test_accuracy": 0.2})
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "reflect.pt"), ""))
    trigger(window, "Open checkpoint...")
    assert window.explorer.loaded.padding_mode == "reflect" and "reflect" in window.model_label.text()
    assert window.settings.value("checkpoint") == str(tmp_path / "reflect.pt")


def test_open_custom_model(window, qtbot, tmp_path, monkeypatch):
    from tests.gui.test_fixes import MODEL_PY
    (tmp_path / "mine.py").write_text(MODEL_PY)
    files = iter([(str(tmp_path / "mine.py"), ""), ("", "")])   # the code, then no weights (its own init)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: next(files))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("build_model", True))
    monkeypatch.setattr(QInputDialog, "getItem",
                        lambda parent, title, label, items, current, editable: (items[current], True))
    trigger(window, "Open custom model...")
    qtbot.waitUntil(lambda: window.explorer.loaded.name == "mine.build_model", timeout=20000)
    assert window.tree.topLevelItemCount() == 3 and window.grid.maps is not None, "its layers and maps show"


def test_open_data_folder(window, qtbot, tmp_path, monkeypatch):
    from padlens.core.data import CLASSES
    for label, cls in enumerate(CLASSES[:3]):
        (tmp_path / "pngs" / "test" / cls).mkdir(parents=True)
        for k in range(2):
            write_png(torch.full((3, 32, 32), 20 * label + k, dtype=torch.uint8),
                      str(tmp_path / "pngs" / "test" / cls / f"{k}.png"))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path / "pngs"))
    trigger(window, "Open data folder...")
    qtbot.waitUntil(lambda: not window.data_runner.running, timeout=20000)
    assert len(window.datasets["test"]) == 6
    assert str(tmp_path / "pngs" / "test") in window.data_label.text(), "the folder actually read"
    assert window.settings.value("data_root") == str(tmp_path / "pngs")


def test_open_image(window, tmp_path, monkeypatch):
    write_png(torch.full((3, 40, 50), 128, dtype=torch.uint8), str(tmp_path / "own.png"))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "own.png"), ""))
    trigger(window, "Open image...")
    assert window.inputs.kind == "file" and window.result.label == "own.png" and window.grid.maps is not None


def test_export_feature_grid_and_enlarged_map(window, tmp_path, save_as):
    _show_blank_layer(window)
    save_as(tmp_path / "grid.png", tmp_path / "map.svg")
    trigger(window, "Export feature grid (PNG/SVG/PDF)...")
    trigger(window, "Export enlarged map (PNG/SVG/PDF)...")
    assert QImage(str(tmp_path / "grid.png")).width() > 100
    assert ET.parse(tmp_path / "map.svg").getroot().tag.endswith("svg")


def test_export_activations(window, tmp_path, save_as):
    info = _show_blank_layer(window)
    save_as(tmp_path / "acts.npy")
    trigger(window, "Export activations (.npy)...")
    np.testing.assert_array_equal(np.load(tmp_path / "acts.npy"), window.result.acts[info.path].numpy())


def test_export_all_layers_from_the_menu_and_its_shortcut(window, tmp_path, monkeypatch):
    """The bug of issue 17: the entry's `checked` flag reached the folder parameter."""
    _show_blank_layer(window)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path / "all"))
    (tmp_path / "all").mkdir()
    trigger(window, "Export all layers...")
    written = sorted((tmp_path / "all").glob("*.png"))
    assert len(written) == len(window.result.acts) and all(not QImage(str(p)).isNull() for p in written)
    assert "wrote" in window.statusBar().currentMessage()


def test_export_translation_heatmaps_and_numbers(window, qtbot, tmp_path, save_as):
    w, t = window, window.translation
    save_as(tmp_path / "never.png")
    trigger(w, "Export translation heatmaps (PNG/SVG/PDF)...")
    assert "Nothing to export yet" in w.statusBar().currentMessage() and not (tmp_path / "never.png").exists()
    run_small_grid(qtbot, t, timeout=30000)
    save_as(tmp_path / "heat.png", tmp_path / "heat.svg", tmp_path / "grid.csv", tmp_path / "grid.npz")
    trigger(w, "Export translation heatmaps (PNG/SVG/PDF)...")
    trigger(w, "Export translation heatmaps (PNG/SVG/PDF)...")
    trigger(w, "Export translation numbers (CSV/NPZ)...")
    trigger(w, "Export translation numbers (CSV/NPZ)...")
    assert QImage(str(tmp_path / "heat.png")).width() > 100
    assert ET.parse(tmp_path / "heat.svg").getroot().tag.endswith("svg")
    rows = list(csv.DictReader((tmp_path / "grid.csv").open()))
    assert len(rows) == 9 and {int(r["images"]) for r in rows} == {20}
    np.testing.assert_array_equal(GridResult.load_npz(tmp_path / "grid.npz").correct, t.result.correct)
    assert str(tmp_path / "grid.npz") in w.statusBar().currentMessage()


def test_export_spatial_bias_table_and_mean_filters(window, tmp_path, save_as):
    w = window
    save_as(tmp_path / "bias.csv", tmp_path / "filters.png")
    trigger(w, "Export spatial-bias table (CSV)...")
    trigger(w, "Export mean filters (PNG/SVG/PDF)...")
    rows = list(csv.reader((tmp_path / "bias.csv").open()))
    assert rows[0][0] == "Layer" and len(rows) == 1 + w.bias.table.rowCount() > 1
    assert not QImage(str(tmp_path / "filters.png")).isNull()


def test_export_comparison_heatmaps_maps_and_table(window, qtbot, tmp_path, save_as):
    from tests.gui.test_comparison import _checkpoint
    w, c = window, window.comparison
    w.show()
    trigger(w, "Compare checkpoints")
    assert c.set_checkpoints([_checkpoint(tmp_path / "z.pt", "zeros", 0),
                              _checkpoint(tmp_path / "c.pt", "circular", 1)]) == []
    run_small_grid(qtbot, c)
    save_as(tmp_path / "cmp_heat.png", tmp_path / "cmp_maps.svg", tmp_path / "cmp.csv")
    trigger(w, "Export comparison heatmaps (PNG/SVG/PDF)...")
    trigger(w, "Export comparison maps (PNG/SVG/PDF)...")
    trigger(w, "Export comparison table (CSV)...")
    assert QImage(str(tmp_path / "cmp_heat.png")).width() > 100
    assert ET.parse(tmp_path / "cmp_maps.svg").getroot().tag.endswith("svg")
    from padlens.gui.comparison import COLUMNS
    rows = list(csv.reader((tmp_path / "cmp.csv").open()))
    assert rows[0] == [name for name, _ in COLUMNS] and len(rows) == 1 + 2, "a row per checkpoint"


def test_view_entries_show_their_tabs(window):
    w = window
    for text, tab in (("Translation", w.translation), ("Spatial bias", w.bias), ("Compare checkpoints", w.comparison),
                      ("Analyses", w.analyses), ("Feature maps", w.feature_split)):
        trigger(w, text)
        assert w.tabs.currentWidget() is tab


def test_input_size(window, monkeypatch):
    w = window
    _show_blank_layer(w)
    monkeypatch.setattr(QInputDialog, "getInt", lambda *a, **k: (40, True))
    trigger(w, "Input size...")
    assert w.explorer.input_size == 40 and int(w.settings.value("input_size")) == 40
    assert w.result.input_image.shape[-1] == 40 and "40x40" in w.statusBar().currentMessage()
    w.set_input_size(32)


def test_reset_layout_brings_back_a_collapsed_pane(window):
    w = window
    w.feature_split.setSizes([0, 1000])
    trigger(w, "Reset layout")
    assert w.feature_split.sizes()[0] > 100


def test_about(window, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.append((title, text)))
    trigger(window, "About PadLens")
    assert shown and shown[0][0] == "About PadLens" and "Mind the Pad" in shown[0][1]
    assert f"Ctrl+1..{window.tabs.count()} tabs" in shown[0][1], "every tab's shortcut named"


def test_ctrl_return_starts_the_translation_grid(window, qtbot):
    from tests.gui.grids import small_grid_settings
    w = window
    trigger(w, "Translation")
    t = w.translation
    small_grid_settings(t, images=10)
    assert t.result is None
    qtbot.keyClick(_active(w, qtbot), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not t.runner.running and t.result is not None, timeout=60000)
    assert t.result.images == 10 and list(t.result.dxs) == [-4, 0, 4]


def test_quit_closes_and_remembers_the_settings(window, qtbot):
    w = window
    w.show()
    trigger(w, "Translation")
    trigger(w, "Quit")
    assert not w.isVisible() and int(w.settings.value("tab")) == 1
