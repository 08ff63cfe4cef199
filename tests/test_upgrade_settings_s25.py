"""App settings saved by an older install, read by a newer one in another folder (an upgrade review, 2026-12): the
shipped filter had been saved by its path too, and a new install reopened the old install's filter from there and
ran it, its own default unselected and nothing said. A model of the models folder is saved by name; a path in
another copy's models folder is not opened, and the models panel says so."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402

from gui import model_choices  # noqa: E402
from gui import settings as st  # noqa: E402
from tests import test_app  # noqa: E402

make_window, models = test_app.make_window, test_app.models  # its fixtures, used by name


def _old_install(tmp_path: Path, source: Path, name: str) -> Path:
    """``source`` copied into the models folder of another copy of Bias Mirror, as ``name``."""
    folder = tmp_path / "old_copy" / "resources" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, folder / name))


def _saved(tmp_path: Path, **values) -> None:
    """Settings as an older app left them, in the file the window reads (make_window's)."""
    qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    for key, value in values.items():
        st.put(qs, key, value)
    qs.sync()


def _read(tmp_path: Path, key: str, default: object = "") -> object:
    return st.get(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat), key, default)


def test_a_filter_of_the_models_folder_is_saved_by_name_and_one_from_a_file_with_its_path(
        qtbot, make_window, tmp_path, tiny_models, monkeypatch):
    """The shipped filter's path had been saved, and a later install elsewhere reopened the old one's by it."""
    monkeypatch.setattr(model_choices, "MODELS_DIR", tiny_models["darken"].parent, raising=False)
    w = make_window(None)
    w.models.set_filter(w.models.filters[1])
    assert (_read(tmp_path, "filter"), _read(tmp_path, "filter_path")) == ("identity", "")
    mine = Path(shutil.copy(tiny_models["darken"], tmp_path / "my_filter.onnx"))
    assert w.models.load_filter_file(mine)
    assert _read(tmp_path, "filter_path") == str(mine)


def test_an_old_installs_default_filter_saved_by_its_path_is_not_reopened(qtbot, make_window, tmp_path,
                                                                          tiny_models):
    """Old settings name the old install's default filter (renamed since, so no filter loaded has its name) and its
    path: the old file had been opened and run, this copy's default unselected, the warnings empty."""
    old = _old_install(tmp_path, tiny_models["identity"], "engineer_filter.onnx")
    _saved(tmp_path, filter="engineer-filter-cpu", filter_path=str(old), no_filter=False)
    w = make_window(None)
    assert [f.name for f in w.models.filters] == ["darken", "identity"]
    assert w.models.active_filter() is w.models.filters[0]
    note = (f"the last session's filter 'engineer-filter-cpu' is a model of another copy of Bias Mirror ({old}), "
            "not opened: this copy's default filter 'darken' runs instead")
    assert note in w.models.warning_lines()
    w.shutdown()
    again = make_window(None)  # said once: the old choice is let go
    assert note not in again.models.warning_lines() and again.models.active_filter().name == "darken"


def test_a_classifier_saved_from_an_old_installs_models_folder_is_not_reopened(qtbot, make_window, tmp_path,
                                                                               tiny_models):
    """classifier_files reopens the classifiers added from a file; one of another copy's models folder is that
    copy's default, not this one's. The on/off state and CAM model kept by file only match models loaded: an old
    install's paths there open nothing."""
    old = _old_install(tmp_path, tiny_models["classifier2"], "resnet10_balanced.onnx")
    mine = Path(shutil.copy(tiny_models["classifier2"], tmp_path / "mine.onnx"))
    _saved(tmp_path, classifier_files=[str(old), str(mine)], checked_classifier_files=[str(old), str(mine)],
           cam_model_file=str(old))
    w = make_window(None, classifiers=("classifier",))
    paths = [Path(c.path) for c in w.models.classifiers]
    assert old not in paths and mine in paths and len(paths) == 2
    assert any(str(old) in line and "another copy of Bias Mirror" in line for line in w.models.warning_lines())
    assert _read(tmp_path, "classifier_files", []) == [str(mine)]
