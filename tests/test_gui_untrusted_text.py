"""A model's card, name and labels are anyone's text (a model shared by a colleague): the app shows them as text.

A card's n had reached the card dialog's HTML unescaped (a fake "verified" heading, a local image, a link that
showed /etc/passwd in the dialog, every table after it hidden); a refused model's label had turned the warnings
label into HTML (a green "All models verified and safe", the next refusal hidden); a card figure of 400 digits had
stopped the card dialog with an OverflowError.
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
from PySide6 import QtGui  # noqa: E402
from PySide6.QtCore import QByteArray, QEvent, QPoint, QSize, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QHelpEvent, QImage, QPixmap, QTextDocument  # noqa: E402
from PySide6.QtWidgets import QCheckBox, QLabel, QMessageBox, QStatusBar, QTextBrowser, QWidget  # noqa: E402

from inference.errors import BiasMirrorError  # noqa: E402
from inference.models import read_card  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from training.export import write_card  # noqa: E402

SHIPPED = REPO / "resources" / "models" / "resnet10_unbalanced.onnx"  # a card with real per-group metrics
# what the reviewer's cards held: a heading, an image from disk, a link, and a comment left open to hide the rest
HOSTILE = ('<h2 style="color:green">Independently verified: no group gap</h2><img src="file:///tmp/x.png" '
           'width=120><a href="file:///etc/passwd">signature</a><!--')
BANNER = '<h2 style="color:#4caf50">&#10004; All models verified and safe</h2><!--'


def carded(source: Path, path: Path, **fields) -> Path:
    """A copy of ``source`` whose card has ``fields`` in place of its own."""
    shutil.copy(source, path)
    write_card(path, replace(read_card(path), **fields))
    return path


def dialog_model(path: Path, warning: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(card=read_card(path), path=path, provider="CPU", name=path.stem,
                           info=SimpleNamespace(warning=warning))


def page(html_text: str) -> QTextDocument:
    document = QTextDocument()
    document.setHtml(html_text)
    return document


def links_and_images(document: QTextDocument) -> list[str]:
    """The anchors and images Qt made of ``document``'s HTML."""
    found = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            if fmt.isAnchor() or fmt.isImageFormat():
                found.append(it.fragment().text())
            it += 1
        block = block.next()
    return found


def shown_as(text: str) -> str:
    """What a tooltip (or a label of Qt::AutoText) shows of ``text``: Qt reads it as HTML where it guesses so."""
    return page(text).toPlainText() if QtGui.Qt.mightBeRichText(text) else text


# --- 1. the card dialog --------------------------------------------------------------------
def _hostile_metrics() -> dict:
    metrics = read_card(SHIPPED).metrics
    grouping = next(iter(metrics["by"]))
    group = next(iter(metrics["by"][grouping]))
    by = {**metrics["by"], grouping: {**metrics["by"][grouping],
                                      group: {**metrics["by"][grouping][group], "n": HOSTILE}}}
    return {**metrics, "overall": {**metrics["overall"], "n": HOSTILE}, "by": by}


def test_a_cards_n_is_shown_as_text_and_hides_no_table(tmp_path, tiny_models, qtbot):
    """n went into its cell as written: the dialog showed the heading, the image and the link, and `<!--` hid
    every table below. n is read as the card's Markdown reads it (a whole number, else "?" and a warning that
    quotes it as text)."""
    from gui.model_panel import CardDialog, card_html

    metrics = read_card(SHIPPED).metrics
    good = carded(tiny_models["classifier"], tmp_path / "good.onnx", metrics=metrics)
    bad = carded(tiny_models["classifier"], tmp_path / "bad.onnx", metrics=_hostile_metrics())
    shown = page(card_html(dialog_model(bad)))
    assert links_and_images(shown) == []
    assert "<h2" not in card_html(dialog_model(bad)) and "<!--" not in card_html(dialog_model(bad))
    text = shown.toPlainText()
    assert "Warning: its card's metrics.overall.n is '<h2 style=" in text
    expected = page(card_html(dialog_model(good))).toPlainText()
    assert text.count("By ") == expected.count("By ") > 1 and "[95% CI]; * small group" in text  # nothing hidden
    dialog = CardDialog(dialog_model(bad))  # as the Card button opens it
    qtbot.addWidget(dialog)
    assert links_and_images(dialog.findChild(QTextBrowser).document()) == []


def test_every_card_text_in_the_card_dialog_is_shown_as_written(tmp_path, tiny_models):
    """Not n alone: each place a card's words reach the page (names, keys, groups, values, nested records) shows
    them as text."""
    from gui.model_panel import card_html

    metrics = read_card(SHIPPED).metrics
    grouping = next(iter(metrics["by"]))
    hostile = {**metrics, "overall": {**metrics["overall"], "n": HOSTILE},
               "by": {**metrics["by"], HOSTILE: {HOSTILE: {"n": 3, "accuracy": {"value": 0.5, "lo": 0.1, "hi": 0.9}}}},
               "gaps": {**metrics["gaps"], grouping: {HOSTILE: HOSTILE}},
               HOSTILE: {HOSTILE: {HOSTILE: HOSTILE, "x": [HOSTILE, {HOSTILE: 1}]}}}
    training = {HOSTILE: HOSTILE, "nested": {HOSTILE: [HOSTILE, 1]},
                "composition": {"by": [HOSTILE], "achieved": {HOSTILE: HOSTILE}, "left_out_no_label": HOSTILE}}
    path = carded(tiny_models["classifier"], tmp_path / "everywhere.onnx", name=HOSTILE, method=HOSTILE,
                  training=training, metrics=hostile)
    html_text = card_html(dialog_model(path, warning=HOSTILE))
    shown = page(html_text)
    assert links_and_images(shown) == [] and "<!--" not in html_text and "<h2" not in html_text
    text = shown.toPlainText()
    assert text.count(HOSTILE) >= 12, text
    for where in ("Method: ", "Warning: ", "By ", "cells over "):
        assert f"{where}{HOSTILE}" in text, where
    assert "[95% CI]; * small group" in text and "Other" in text  # nothing hidden after any of them


def test_the_card_dialog_follows_no_link_and_loads_no_file(tmp_path, tiny_models, qtbot):
    """A QTextBrowser follows a link clicked (file:///etc/passwd shown in the dialog) and loads <img src="file:…">
    from disk: the card's page does neither, whatever reaches it."""
    from gui.model_panel import CardDialog

    picture = tmp_path / "local.png"
    image = QImage(7, 5, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.green)
    assert image.save(str(picture))
    dialog = CardDialog(dialog_model(tiny_models["classifier"]))
    qtbot.addWidget(dialog)
    view = dialog.findChild(QTextBrowser)
    assert not view.openLinks() and not view.openExternalLinks()
    url = QUrl.fromLocalFile(str(picture))
    view.setHtml(f'<p>x</p><img src="{url.toString()}"><img src="{picture}">')  # as if escaping had missed one
    dialog.show()
    qtbot.waitExposed(dialog)
    for name in (url, QUrl(str(picture))):
        loaded = view.document().resource(QTextDocument.ResourceType.ImageResource, name)
        if isinstance(loaded, QByteArray):
            loaded = QImage.fromData(loaded)
        size = loaded.size() if isinstance(loaded, (QImage, QPixmap)) else None
        assert size != QSize(7, 5), name  # the picture on disk, read


# --- 3. a figure too large for a float -----------------------------------------------------
@pytest.mark.parametrize("where", ["calibration", "overall"])
def test_a_card_figure_of_400_digits_opens_the_dialog_with_a_warning(tmp_path, tiny_models, qtbot, where):
    """metrics.calibration {"value": 10**400, …}, valid JSON, had raised OverflowError formatting it as a float:
    the Card button did nothing. Read as card_number reads it: no number (inf), a dash and a warning."""
    from gui.model_panel import CardDialog

    metrics = read_card(SHIPPED).metrics
    huge = {"value": 10 ** 400, "lo": 0, "hi": 1}
    changed = ({**metrics, "calibration": huge} if where == "calibration" else
               {**metrics, "overall": {**metrics["overall"], "accuracy": huge, "n": 10 ** 400}})
    path = carded(tiny_models["classifier"], tmp_path / "huge.onnx", metrics=changed)
    dialog = CardDialog(dialog_model(path))
    qtbot.addWidget(dialog)
    text = dialog.findChild(QTextBrowser).toPlainText()
    field = "metrics.calibration" if where == "calibration" else "metrics.overall.accuracy"
    wanted = "a number" if where == "calibration" else "a number from 0 to 1"  # an accuracy is a proportion
    assert f"Warning: its card's {field}.value is 1000" in text and f"not {wanted}: ignored" in text
    if where == "overall":
        assert "Warning: its card's metrics.overall.n is 1000" in text


# --- 2. labels, tooltips and message boxes -------------------------------------------------
@pytest.fixture
def hostile_folder(tmp_path, tiny_models) -> Path:
    """A models folder: a good classifier, two refused (one of the reviewer's labels, one of other words)."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_models["classifier"], folder / "a_good.onnx")
    carded(tiny_models["classifier"], folder / "b_banner.onnx", labels=[BANNER, "male"])
    carded(tiny_models["classifier"], folder / "c_smile.onnx", labels=["smile", "neutral"])
    return folder


def test_a_refused_models_labels_do_not_turn_the_warnings_into_html(qtbot, hostile_folder):
    from gui.model_panel import ModelPanel
    from inference.defaults import load_folder

    seen = load_folder(hostile_folder)
    panel = ModelPanel(seen.classifiers, seen.filters, seen.errors, models_dir=hostile_folder / BANNER)
    qtbot.addWidget(panel)
    for label in (panel.warnings, panel.banner):
        assert label.textFormat() == Qt.TextFormat.PlainText
    text = panel.warnings.text()
    assert BANNER in text and "b_banner.onnx" in text and "c_smile.onnx" in text  # each refusal, whole


def test_a_models_name_and_card_show_as_text_in_its_row_and_the_filter_list(qtbot, tmp_path, tiny_models):
    from gui.model_panel import ModelPanel
    from inference.models import load_model

    cls = load_model(carded(tiny_models["classifier"], tmp_path / "c.onnx", name=HOSTILE, method=HOSTILE))
    filt = load_model(carded(tiny_models["darken"], tmp_path / "f.onnx", name=HOSTILE, method=HOSTILE))
    filt.info = replace(filt.info, warning=HOSTILE)  # as a provider's fallback says it, quoting the model
    panel = ModelPanel([cls], [filt], [])
    qtbot.addWidget(panel)
    [box] = panel.cls_box.findChildren(QCheckBox)
    assert shown_as(box.toolTip()).startswith(f"{HOSTILE}\n{cls.path}\n")
    tip = panel.filter_combo.itemData(1, Qt.ItemDataRole.ToolTipRole)
    assert HOSTILE in shown_as(tip) and links_and_images(page(tip)) == []
    badge = next(w for w in panel.findChildren(QLabel) if w.text().endswith("⚠"))  # the filter's: it warns
    assert shown_as(badge.toolTip()) == HOSTILE


def _boxes(monkeypatch) -> list[tuple[Qt.TextFormat, str]]:
    """The message boxes shown, each as (its text format, its text), none left open: QMessageBox.warning and
    .information show theirs as Qt::AutoText."""
    shown: list[tuple[Qt.TextFormat, str]] = []

    def static(parent, title, text, *more):
        shown.append((Qt.TextFormat.AutoText, text))

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(static))
    monkeypatch.setattr(QMessageBox, "information", staticmethod(static))
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append((box.textFormat(), box.text())))
    return shown


def test_a_refused_models_message_box_shows_its_labels_as_text(qtbot, monkeypatch, hostile_folder, tmp_path):
    from gui.model_panel import ModelPanel

    shown = _boxes(monkeypatch)
    panel = ModelPanel([], [], [])
    qtbot.addWidget(panel)
    assert not panel.load_classifier_file(hostile_folder / "b_banner.onnx")
    named = tmp_path / f"{HOSTILE.replace('/', '_')}.onnx"  # a file's name is anyone's text too
    named.write_bytes(b"not a model")
    assert not panel.load_filter_file(named)
    assert [fmt for fmt, _ in shown] == [Qt.TextFormat.PlainText] * 2
    assert BANNER in shown[0][1] and named.name in shown[1][1]


def test_a_source_that_cannot_open_is_said_as_text(qtbot, monkeypatch):
    """The window's "Cannot open source" box and the page in the view's place quote the source and the error."""
    from gui.main_window import MainWindow
    from gui.source_message import SourceMessage

    shown = _boxes(monkeypatch)
    window = QWidget()  # the window's part that _take_up uses, while another source plays
    qtbot.addWidget(window)
    bar = QStatusBar()
    window.statusBar, window.capture, window.source_name, window.log_path = (
        lambda: bar, SimpleNamespace(isRunning=lambda: True), HOSTILE, None)
    assert not MainWindow._take_up(window, HOSTILE, None, BiasMirrorError("cannot be read", HOSTILE))
    assert shown == [(Qt.TextFormat.PlainText, shown[0][1])] and shown[0][1].count(HOSTILE) == 2
    message = SourceMessage(lambda: None, lambda: None, lambda: None)
    qtbot.addWidget(message)
    assert message.message.textFormat() == Qt.TextFormat.PlainText


def test_the_status_bar_shows_names_and_warnings_as_text(qtbot, monkeypatch):
    from PySide6.QtWidgets import QToolTip

    from gui.status_line import StatusLine

    bar = QStatusBar()
    qtbot.addWidget(bar)
    status = StatusLine(bar)
    path = f"/{HOSTILE}/" + "x" * 300
    status.show_source(path)
    models = [SimpleNamespace(name=HOSTILE, provider="CPU")]
    status.show_models(models, [HOSTILE, f"{HOSTILE} again"], 0)
    assert all(w.textFormat() == Qt.TextFormat.PlainText
               for w in (status.source, status.fps, status.providers, status.rec, status.warn))
    assert shown_as(status.source.toolTip()) == path
    assert shown_as(status.providers.toolTip()) == f"{HOSTILE}: CPU"
    assert shown_as(status.warn.toolTip()) == f"{HOSTILE}\n{HOSTILE} again"
    tips: list[str] = []
    monkeypatch.setattr(QToolTip, "showText", lambda pos, text, *more: tips.append(text))
    status.warn.setToolTip("")  # its own tooltip: the text the bar has no room for
    status.warn.resize(40, status.warn.height())
    status.warn.event(QHelpEvent(QEvent.Type.ToolTip, QPoint(1, 1), QPoint(1, 1)))
    assert tips and shown_as(tips[0]) == status.warn.text()
