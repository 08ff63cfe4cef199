"""Choosing models: several classifiers at once, one filter (or none), each model's card one click away.

A model the user picks from a file is loaded here, in the GUI thread, before
anything changes: a bad file gives a dialog naming the file and the problem,
and the models already in use stay in use.
"""
from __future__ import annotations

import html
import json
import logging
from itertools import islice
from pathlib import Path
from typing import Any

from PySide6 import QtGui
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QImage, QTextDocument
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QGroupBox,
                               QHBoxLayout, QLabel, QMessageBox, QPushButton, QTextBrowser, QToolButton, QVBoxLayout,
                               QWidget)

from inference.card_fields import (PROPORTION, CardNotes, card_count, card_interval, card_names, card_object,
                                   card_records)
from inference.card_markdown import MAX_NESTED_CHARS, MAX_RECORDS_CHARS
from inference.errors import BiasMirrorError
from inference.models import Classifier, Filter, OnnxModel, load_model, loaded_from, name_uniquely
from inference.runtime import RuntimeConfig
from inference.strict_json import measured
from inference.untrusted_text import elided as _elided

from .log_file import IN_THE_LOG, where_details_are
from .settings import file_key

log = logging.getLogger(__name__)
PROVIDER_STYLE = {"CPU": "#9e9e9e", "CUDA": "#76b900", "TensorRT": "#2e7d32"}
NAME_CHARS = 28  # a model's name shown in a row or a note (the shipped ones whole); the whole name is in its tooltip
COMBO_CHARS = 16  # a combo of names is this wide whatever its longest name; its list shows them whole


def elided(text: str, limit: int = NAME_CHARS) -> str:
    """``untrusted_text.elided`` at a model name's width unless told: a long model name in a checkbox or a note had
    widened the side panel and the window past the screen."""
    return _elided(text, limit)


def plain_tip(text: str) -> str:
    """``text`` as a tooltip shows it, as written, lines and all. A tooltip is read as HTML where its first line
    looks like some (Qt::mightBeRichText), and a model's name, a card's summary or a file's name is anyone's text:
    such a text is escaped, and is text whatever it holds. Any other is left as it is: Qt word-wraps a rich-text
    tooltip, and every tooltip escaped had become a narrow column (a classifier's path broken at each '/')."""
    if not text or not QtGui.Qt.mightBeRichText(text):
        return text
    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>"


def plain_label(label: QLabel) -> QLabel:
    """``label``, its text shown as written: a label guesses HTML from its first line, and a refused model's label
    '<h2>✔ All models verified and safe</h2><!--' had shown as a green heading, the next model's refusal hidden."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def tell_plainly(parent: QWidget | None, title: str, text: str,
                 icon: QMessageBox.Icon = QMessageBox.Icon.Warning) -> None:
    """A message box of ``text`` as written: QMessageBox.warning guesses HTML as a label does (``plain_label``), and
    a message naming a model, a file or a card's words is anyone's text."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.exec()


def card_button_name(model_name: str) -> str:
    """What a screen reader says of a "Card" button: which model's card it opens (a row of them read "Card" alike)."""
    return f"Card of {model_name}"


def narrow_combo(combo: QComboBox) -> QComboBox:
    """Keeps ``combo`` from widening to its longest item (a long filter name had set the window's minimum width)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(COMBO_CHARS)
    return combo


# --- the card dialog ------------------------------------------------------------------
NOT_MEASURED = "–"  # as the card's Markdown (docs/models.md, doctor --cards) shows a figure not measured
NOT_A_COUNT = "?"  # as the card's Markdown shows a group's n that is no whole number
INTERVAL_KEYS = ("value", "lo", "hi")
# The most rows a table of the card (or lines of an object's "key: value") the dialog shows: a card of 58,000 fields,
# within its size cap, had kept the modal dialog laying out its table for 6 s. A card written here has some 30.
MAX_ROWS = 500


class Markup(str):
    """Text this module made HTML, whatever of the card is in it escaped. A card is anyone's text: its n had gone
    into a cell as written, and '<h2>…verified…</h2><img src="file:…"><!--' showed a heading, a local image and
    a link, and hid every table after it. So a cell, a heading or a page part takes a Markup as is and escapes
    any other text (``_html``): nothing of the card reaches the page unescaped by someone forgetting to."""


def _html(text: Any) -> Markup:
    return text if isinstance(text, Markup) else Markup(html.escape(str(text)))


def _interval_text(value: int | float | None, lo: int | float | None, hi: int | float | None) -> str:
    """A figure and its 95% CI, each a number or None (not measured), as the card's Markdown writes an accuracy:
    "0.947 [0.889, 0.975]", a dash for a bound not measured; a dash alone where the figure was not. Only figures
    ``card_number`` read: a card's whole number of 400 digits, formatted as a float, had raised OverflowError and
    the dialog never opened."""
    if not measured(value):
        return NOT_MEASURED
    lo, hi = (f"{x:.3f}" if measured(x) else NOT_MEASURED for x in (lo, hi))
    return f"{value:.3f} [{lo}, {hi}]"


def _interval_cell(notes: CardNotes, field: str, record: Any, within: tuple[float, float] | None = None) -> str:
    """A metrics table's cell: the record at ``field`` ({"value","lo","hi","n"}) read as the card's Markdown reads
    it (``card_fields``: "0.97" is 0.97; what is no number, or no object, a dash and a warning in ``notes``; so too a
    figure outside ``within``, an accuracy of 1.7, and a value outside its own interval). Read by key, not indexed:
    a record lacking "hi" (one flipped bit in a shipped card) had stopped the dialog with a KeyError, where doctor
    --cards showed the card."""
    figures = card_object(notes, field, record) or {}
    return _interval_text(*card_interval(notes, field, figures, within=within))


def _count_cell(notes: CardNotes, field: str, value: Any) -> str:
    """A group's n, read as the card's Markdown reads it (a whole number of at least 0; "?" and a warning where it
    is not: -4 had been shown as given)."""
    n = card_count(notes, field, value)
    return NOT_A_COUNT if n is None else str(n)


def _cut(text: str, limit: int = MAX_NESTED_CHARS) -> str:
    """At most ``limit`` characters of ``text``, as the card's Markdown cuts a value: a list of 1,200 texts of 9,000
    characters had been one cell of 10.8 MB, and the modal dialog took 97 s to open."""
    return text if len(text) <= limit else text[:limit] + "…"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _fmt(v: Any, notes: CardNotes, field: str) -> Markup:
    """``v``, the card's value at ``field``, as a cell shows it; what is said of it goes into ``notes``."""
    if isinstance(v, dict) and "value" in v and "lo" in v:  # {"value","lo","hi","n"}
        figures = [v.get(k) for k in INTERVAL_KEYS]
        if all(x is None or _is_number(x) for x in figures):  # else shown as written, below
            return _html(_interval_cell(notes, field, v))
    if not measured(v):
        return _html(NOT_MEASURED)
    if isinstance(v, float):
        return _html(f"{v:.4g}")
    if isinstance(v, dict):
        return _dict_html(v, notes, field)
    if isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v):
        return _html(_cut(", ".join(str(x) for x in v[:MAX_NESTED_CHARS + 1])))  # each at least a character and ", "
    if isinstance(v, list):
        # as written ("×", not an escape); as long as the Markdown shows records (a card's amendments) in words
        return _html(_cut(json.dumps(v, default=str, ensure_ascii=False), MAX_RECORDS_CHARS))
    return _html(v)


def _flat(v: Any) -> bool:
    return not isinstance(v, (dict, list)) or (isinstance(v, dict) and "value" in v and "lo" in v)


def _dict_html(v: dict, notes: CardNotes, field: str) -> Markup:
    """A card's dict readably: per-group figures ({group: {figure: value}}) as a table of a row a group and a column
    a figure, figures alone as "key: value" lines, else a row a key. Shown as JSON, the per-group shifts were one
    run of braces and quotes."""
    rows = list(v.values())
    if all(_flat(x) for x in rows):
        lines = [f"{_html(k)}: {_fmt(x, notes, f'{field}.{k}')}" for k, x in islice(v.items(), MAX_ROWS)]
        return Markup("<br>".join(lines + ([_more(len(v))] if len(v) > MAX_ROWS else [])))
    if all(isinstance(r, dict) and r and all(_flat(x) for x in r.values()) and not _flat(r) for r in rows):
        cols = list(dict.fromkeys(c for r in rows for c in r))
        return _table([[k, *[_fmt(r.get(c, ""), notes, f"{field}.{k}.{c}") for c in cols]] for k, r in v.items()],
                      ["group", *cols])
    return _table([[k, _fmt(x, notes, f"{field}.{k}")] for k, x in v.items()])


def _more(count: int) -> str:
    return f"… and {count - MAX_ROWS:,} more, not shown"


def _table(rows: list[list[Any]], head: list[Any] | None = None) -> Markup:
    """A table of ``rows`` under ``head``, its first MAX_ROWS; each cell is escaped unless it is Markup (``_html``)."""
    h = "<tr>" + "".join(f"<th align='left'>{_html(c)}</th>" for c in head) + "</tr>" if head else ""
    shown = rows[:MAX_ROWS] + ([[_more(len(rows))]] if len(rows) > MAX_ROWS else [])
    body = "".join("<tr>" + "".join(f"<td>{_html(c)}</td>" for c in r) + "</tr>" for r in shown)
    return Markup(f"<table cellspacing='0' cellpadding='3' border='1'>{h}{body}</table>")


def _composition_html(comp: dict, notes: CardNotes | None = None) -> Markup:
    """``notes``: the reading of the card this is part of; its ``by`` is read as the card's Markdown reads it
    (``card_names``): ``[1, 2]`` there had stopped the dialog with a TypeError."""
    notes = CardNotes() if notes is None else notes
    field = "training.composition"
    maps = {k: v for k, v in comp.items() if isinstance(v, dict) and v}
    cells = sorted({c for m in maps.values() for c in m})
    if not cells:
        return Markup(f"<p>{_fmt(comp, notes, field)}</p>")
    rows = [[c, *[_fmt(maps[k].get(c, ""), notes, f"{field}.{k}.{c}") for k in maps]] for c in cells]
    by = card_names(notes, f"{field}.by", comp.get("by"))
    left_out = comp.get("left_out_no_label")
    return Markup((f"<p>cells over {_html(' × '.join(by))}</p>" if by else "")
                  + _table(rows, ["cell", *maps])
                  + (f"<p>{_fmt(left_out, notes, f'{field}.left_out_no_label')} face(s) left out of the mix for "
                     "want of a label</p>" if left_out else ""))


def _group_metrics_html(metrics: dict, notes: CardNotes) -> Markup:
    """The card's per-group metrics as tables. ``metrics.by`` / ``gaps`` read type-checked (``card_fields``): a
    string there had raised an AttributeError on the GUI thread and the dialog never opened; what is of no type
    this reads is left out, and said in ``notes`` (shown by ``card_html``)."""
    out: list[str] = []
    overall = metrics.get("overall")
    cols = ["accuracy", "fpr", "fnr", "mean_p_female"]
    if isinstance(overall, dict):
        out.append("<h4>Overall</h4>" + _table([[_count_cell(notes, "metrics.overall.n", overall.get("n")),
                                                 *[_interval_cell(notes, f"metrics.overall.{c}", overall.get(c),
                                                                  PROPORTION) for c in cols]]], ["n", *cols]))
    gaps = card_records(notes, "metrics.gaps", metrics.get("gaps"))
    for grouping, groups in card_records(notes, "metrics.by", metrics.get("by")).items():
        where = f"metrics.by.{grouping}"
        groups = card_records(notes, where, groups)
        rows = [[f"{g}{' *' if m.get('small') else ''}", _count_cell(notes, f"{where}.{g}.n", m.get("n")),
                 *[_interval_cell(notes, f"{where}.{g}.{c}", m.get(c), PROPORTION) for c in cols]]
                for g, m in groups.items()]
        out.append(f"<h4>By {_html(grouping)}</h4>" + _table(rows, ["group", "n", *cols]))
        gap = gaps.get(grouping)
        if gap:
            out.append("<p>gap: " + ", ".join(f"{_html(k)} {_fmt(v, notes, f'metrics.gaps.{grouping}.{k}')}"
                                              for k, v in gap.items()) + "</p>")
    if out:
        out.append("<p>[95% CI]; * small group (wide interval). FPR: annotated male called female; FNR: the reverse.</p>")
    rest = {k: v for k, v in metrics.items() if k not in ("overall", "by", "gaps")}
    if rest:
        out.append("<h4>Other</h4>" + _table([[k, _fmt(v, notes, f"metrics.{k}")] for k, v in rest.items()],
                                             ["metric", "value"]))
    return Markup("".join(out) or "<p>No metrics in this card.</p>")


def _card_warnings_html(notes: CardNotes) -> Markup:
    """What this render found the card holding of no type it is read as (``CardNotes.said``), shown as the dialog
    shows a fallback provider: a warning in the log file alone went unseen."""
    return Markup("".join(f"<p><b style='color:#c77700'>Warning:</b> {_html(w)}</p>" for w in notes.said))


def card_html(model: OnnxModel) -> Markup:
    """The card dialog's page. One render is one reading of the card (``CardNotes``): it lists what it found of no
    type it reads, and no more (a render kept nothing of an earlier one's)."""
    card = model.card
    notes = CardNotes(model.path)
    parts = [f"<h3>{_html(card.name)}</h3><p>{_html(card.summary(notes))}</p>",
             f"<p><b>File:</b> {_html(model.path)}<br><b>Runs on:</b> {_html(model.provider)}"]
    if model.info.warning:
        parts.append(f"<br><b style='color:#c77700'>Warning:</b> {_html(model.info.warning)}")
    parts.append("</p>")
    if card.method:
        parts.append(f"<p><b>Method:</b> {_html(card.method)}</p>")
    training = dict(card.training)
    comp = training.pop("composition", None)
    if training:
        parts.append("<h4>Training data</h4>" + _table([[Markup(f"<b>{_html(k)}</b>"), _fmt(v, notes, f"training.{k}")]
                                                         for k, v in training.items()]))
    if isinstance(comp, dict):
        parts.append("<h4>Composition</h4>" + _composition_html(comp, notes))
    elif comp is not None:  # not a mix this reads: shown as written, as any other training field
        parts.append("<h4>Composition</h4>" + f"<p>{_fmt(comp, notes, 'training.composition')}</p>")
    metrics = "<h4>Per-group metrics</h4>" + _group_metrics_html(card.metrics or {}, notes)
    return Markup("".join([*parts, _card_warnings_html(notes), metrics]))  # the warnings once the metrics are read


class InertPage(QTextDocument):
    """A page that loads nothing from disk or the network: an <img src="file:…"> had shown a local image in a
    card's page. Its text is escaped (``_html``); this is for what escaping ever misses. Refused, an image must
    still be an image: Qt reads the file itself where the document gives none."""

    def loadResource(self, kind: int, name: QUrl) -> Any:  # noqa: N802
        if kind == QTextDocument.ResourceType.ImageResource.value:
            blank = QImage(1, 1, QImage.Format.Format_ARGB32)
            blank.fill(Qt.GlobalColor.transparent)
            return blank
        return b""


class CardView(QTextBrowser):
    """The card's page (``InertPage``), which follows no link: one to file:///etc/passwd, clicked, a QTextBrowser
    shows in place."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDocument(InertPage(self))
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)


class CardDialog(QDialog):
    def __init__(self, model: OnnxModel, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Model card: {model.name}")
        self.resize(760, 640)
        lay = QVBoxLayout(self)
        view = CardView()
        view.setHtml(card_html(model))
        lay.addWidget(view)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)


def provider_badge(model: OnnxModel) -> QLabel:
    text = model.provider + (" ⚠" if model.info.warning else "")
    badge = plain_label(QLabel(text))
    colour = PROVIDER_STYLE.get(model.provider, "#9e9e9e")
    badge.setStyleSheet(f"QLabel {{ background: {colour}; color: black; border-radius: 3px; padding: 0 4px; }}")
    badge.setToolTip(plain_tip(model.info.warning or f"runs on {model.provider}"))
    return badge


# --- the panel ------------------------------------------------------------------------
def checked_at_start(classifiers: list[Classifier], enabled: list[str] | None,
                     disabled: list[str] | None) -> dict[str, bool]:
    """Each classifier's name: whether the panel starts with it checked, given the names saved checked and unchecked.
    The settings' record of what a window started with reads the same rule here, not a copy of it."""
    # a saved choice naming none of these (a session run with --classifier, a stale settings file) had left
    # every default unchecked: it applies only where it names one of them
    chosen = set(enabled or ()) & {c.name for c in classifiers}
    # the ones unchecked, saved apart: "all unchecked" had read back as the empty list of a stale file, all on
    off = set(disabled or ())
    return {c.name: c.name in chosen if chosen else c.name not in off for c in classifiers}


def filter_at_start(filters: list[Filter], filter_name: str | None) -> Filter | None:
    """The filter the panel starts with: the one named, the first where ``filter_name`` is "" (no preference), none
    where it is None or names none of them."""
    if filter_name:
        return next((f for f in filters if f.name == filter_name), None)
    return filters[0] if filter_name == "" and filters else None


class ModelPanel(QWidget):
    """Emits ``models_changed`` when the active classifiers or the filter change, and ``filter_picked`` when the user
    picks a filter (not "none") in the list or from a file."""

    models_changed = Signal()
    filter_picked = Signal()  # picking one is asking for it: the window switches the filter on
    FROM_FILE = "From file…"

    def __init__(self, classifiers: list[Classifier], filters: list[Filter], errors: list[str],
                 runtime: RuntimeConfig = RuntimeConfig(), enabled: list[str] | None = None,
                 filter_name: str | None = "", models_dir: Path | None = None, disabled: list[str] | None = None,
                 parent=None):
        super().__init__(parent)
        self.runtime, self.models_dir = runtime, models_dir
        self.log_path: Path | None = None  # the app's log file, named where a message points to it
        self.classifiers: list[Classifier] = list(classifiers)
        self.filters: list[Filter] = list(filters)
        self.load_errors = list(errors)
        self._enabled = checked_at_start(self.classifiers, enabled, disabled)
        self._filter: Filter | None = filter_at_start(self.filters, filter_name)

        lay = QVBoxLayout(self)
        self.banner = plain_label(QLabel())  # it names the models folder
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("QLabel { background: #5d4037; color: white; padding: 6px; border-radius: 4px; }")
        lay.addWidget(self.banner)

        self.cls_box = QGroupBox("Classifiers (all checked run on every face)")
        self.cls_layout = QVBoxLayout(self.cls_box)
        self._rows: dict[str, tuple[QCheckBox, QToolButton]] = {}  # a classifier's name: its row's check box, "Card"
        lay.addWidget(self.cls_box)
        self._make_rows()  # before the controls below them: Tab follows the order widgets are made in
        self.add_button = QPushButton("Add classifier from file…")
        self.add_button.clicked.connect(self._ask_classifier)
        lay.addWidget(self.add_button)

        fbox = QGroupBox("Filter")
        flay = QHBoxLayout(fbox)
        self.filter_combo = narrow_combo(QComboBox())
        self.filter_combo.activated.connect(self._filter_chosen)
        flay.addWidget(self.filter_combo, 1)
        self.filter_badge_holder = QHBoxLayout()
        flay.addLayout(self.filter_badge_holder)
        self.filter_card_button = QToolButton()
        self.filter_card_button.setText("Card")
        self.filter_card_button.clicked.connect(lambda: self._filter and self.show_card(self._filter))
        flay.addWidget(self.filter_card_button)
        lay.addWidget(fbox)

        self.warnings = plain_label(QLabel())
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("QLabel { color: #ffb74d; }")
        lay.addWidget(self.warnings)
        lay.addStretch(1)
        self._rebuild_filter()
        self._show_notes()

    # --- state ---------------------------------------------------------------------
    def active_classifiers(self) -> list[Classifier]:
        return [c for c in self.classifiers if self._enabled.get(c.name, True)]

    def active_filter(self) -> Filter | None:
        return self._filter

    def enabled_names(self) -> list[str]:
        return [c.name for c in self.active_classifiers()]

    def enabled_files(self) -> list[str]:
        """The checked classifiers' files (``settings.file_key``): what their state is saved under."""
        return [file_key(c.path) for c in self.active_classifiers()]

    def disabled_files(self) -> list[str]:
        return [file_key(c.path) for c in self.classifiers if not self._enabled.get(c.name, True)]

    def set_enabled(self, name: str, on: bool) -> None:
        self._enabled[name] = on
        self._rebuild()
        self.models_changed.emit()

    def set_filter(self, filt: Filter | None) -> None:
        self._filter = filt
        self._rebuild()
        self.models_changed.emit()

    def warning_lines(self) -> list[str]:
        models = [*self.classifiers, *self.filters]
        return [f"{m.name}: {m.info.warning}" for m in models if m.info.warning] + self.load_errors

    # --- loading from a file (the code path of "From file…" / "Add classifier…") -------------
    def _load(self, path: str | Path, kind: str) -> OnnxModel | None:
        try:
            model = load_model(path, kind, self.runtime)
            if isinstance(model, Classifier):  # the app shows P(female): another classifier's plots stayed empty
                model.require_gender("a classifier for the app")
        except BiasMirrorError as exc:
            tell_plainly(self, "Cannot load model",
                         f"The model was not loaded:\n\n{exc}\n\nThe previous models stay active.")
            return None
        except Exception as exc:  # noqa: BLE001 — never a traceback in a dialog
            log.exception("loading %s failed", path)
            tell_plainly(self, "Cannot load model", where_details_are(
                f"{path}: could not be loaded: {type(exc).__name__} {IN_THE_LOG}.\n\nThe previous models stay active.",
                self.log_path))
            return None
        if model.info.warning:
            tell_plainly(self, "Model runs on a fallback provider", f"{model.name}: {model.info.warning}",
                         QMessageBox.Icon.Information)
        return model

    def load_classifier_file(self, path: str | Path) -> bool:
        model = loaded_from(self.classifiers, path)
        if model is None:
            model = self._load(path, "classifier")
            if model is None:
                return False
            name_uniquely([model], [c.name for c in self.classifiers])
            self.classifiers = [*self.classifiers, model]  # type: ignore[list-item]
        self._enabled[model.name] = True
        self._rebuild()
        self.models_changed.emit()
        return True

    def load_filter_file(self, path: str | Path) -> bool:
        model = loaded_from(self.filters, path)
        if model is None:
            model = self._load(path, "filter")
            if model is None:
                self._rebuild()  # the combo goes back to the filter in use
                return False
            name_uniquely([model], [f.name for f in self.filters])
            self.filters = [*self.filters, model]  # type: ignore[list-item]
        self.set_filter(model)  # type: ignore[arg-type]
        return True

    def _start_dir(self) -> str:
        return str(self.models_dir) if self.models_dir and self.models_dir.is_dir() else ""

    def _ask_classifier(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a classifier", self._start_dir(), "ONNX models (*.onnx)")
        if path:
            self.load_classifier_file(path)

    def ask_filter_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a filter", self._start_dir(), "ONNX models (*.onnx)")
        if path:
            if self.load_filter_file(path):
                self.filter_picked.emit()
        else:
            self._rebuild()

    def _filter_chosen(self, index: int) -> None:
        text = self.filter_combo.itemText(index)
        if text == self.FROM_FILE:
            self.ask_filter_file()
        elif index == 0:
            self.set_filter(None)
        else:
            self.set_filter(self.filters[index - 1])
            self.filter_picked.emit()

    def show_card(self, model: OnnxModel) -> None:
        CardDialog(model, self).exec()

    # --- widgets ---------------------------------------------------------------------
    def _rebuild(self) -> None:
        self._rebuild_rows()
        self._rebuild_filter()
        self._show_notes()

    def _rebuild_rows(self) -> None:
        """The classifiers' rows made again. The control of a row that had the focus gives it to the same model's
        new one: ticking a classifier had left the focus nowhere, the keyboard's user lost in the window."""
        focused = self._focused_row_control()
        self._make_rows()
        self._tab_in_screen_order()
        if focused is not None and focused[0] in self._rows:
            # the app's own move: the new control is as the old was, clicked or reached with the keyboard (Space
            # on a clicked one pauses, on one reached with Tab ticks it)
            self._rows[focused[0]][focused[1]].setFocus(Qt.FocusReason.OtherFocusReason)

    def _focused_row_control(self) -> tuple[str, int] | None:
        """The model and the index in its row (``_rows``) of the control that has the focus; None if none has it."""
        focus = QApplication.focusWidget()
        return next(((name, controls.index(focus)) for name, controls in self._rows.items() if focus in controls),
                    None)

    def _make_rows(self) -> None:
        self._clear_rows()
        self._rows = {model.name: self._add_row(model) for model in self.classifiers}
        if not self.classifiers:
            none = QLabel("none loaded")
            none.setStyleSheet("QLabel { color: #9e9e9e; }")
            self.cls_layout.addWidget(none)

    def _clear_rows(self) -> None:
        while self.cls_layout.count():
            item = self.cls_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
            elif item.layout():
                lay = item.layout()
                while lay.count():
                    w = lay.takeAt(0).widget()
                    if w:
                        w.deleteLater()
        self._rows = {}

    def _add_row(self, model: Classifier) -> tuple[QCheckBox, QToolButton]:
        row = QWidget()
        rl = QHBoxLayout(row)
        rl.setContentsMargins(0, 0, 0, 0)
        box = QCheckBox(elided(model.name))
        box.setChecked(self._enabled.get(model.name, True))
        # tells apart models of one card name
        box.setToolTip(plain_tip(f"{model.name}\n{model.path}\n{model.card.summary(CardNotes(model.path))}"))
        box.setAccessibleName(model.name)  # whole: the box shows it elided
        box.toggled.connect(lambda on, n=model.name: self.set_enabled(n, on))
        rl.addWidget(box, 1)
        rl.addWidget(provider_badge(model))
        card = QToolButton()
        card.setText("Card")
        card.setToolTip("show this model's card: training data, composition, per-group metrics")
        card.setAccessibleName(card_button_name(model.name))
        card.clicked.connect(lambda _=False, m=model: self.show_card(m))
        rl.addWidget(card)
        self.cls_layout.addWidget(row)
        return box, card

    def _tab_in_screen_order(self) -> None:
        """Tab goes down the panel as it shows, rows made again included: made after the controls below them, they
        had come after them, and after the whole side panel once the window was built (a window's new widgets
        come last). Made into the order after the control before the panel's first one, where there is one: Qt
        orders Tab only after a control that takes the focus."""
        chain = [*(c for controls in self._rows.values() for c in controls), self.add_button, self.filter_combo,
                 self.filter_card_button]
        before = self._tab_stop_before(self.add_button, set(chain))
        for first, second in zip([before, *chain], chain):
            if first is not None:
                QWidget.setTabOrder(first, second)

    def _tab_stop_before(self, widget: QWidget, chain: set[QWidget]) -> QWidget | None:
        """The control Tab reaches before the panel's first one, ``widget``: one outside this panel's ``chain`` and
        the rows (old ones wait for their deletion); None where there is none (the panel alone, as in a test: Tab
        goes round it in order, where it starts does not show)."""
        w = widget.previousInFocusChain()
        while w is not widget:
            if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w not in chain and not self.cls_box.isAncestorOf(w):
                return w
            w = w.previousInFocusChain()
        return None

    def _rebuild_filter(self) -> None:
        self.filter_combo.blockSignals(True)
        self.filter_combo.clear()
        self.filter_combo.addItem("none")
        for f in self.filters:
            self.filter_combo.addItem(f.name)
            tooltip = plain_tip(f.card.summary(CardNotes(f.path)))
            self.filter_combo.setItemData(self.filter_combo.count() - 1, tooltip, 3)  # tooltip role
        self.filter_combo.addItem(self.FROM_FILE)
        idx = 0 if self._filter is None else 1 + next((i for i, f in enumerate(self.filters) if f is self._filter), -1)
        self.filter_combo.setCurrentIndex(max(0, idx))
        self.filter_combo.blockSignals(False)
        while self.filter_badge_holder.count():
            w = self.filter_badge_holder.takeAt(0).widget()
            if w:
                w.deleteLater()
        if self._filter is not None:
            self.filter_badge_holder.addWidget(provider_badge(self._filter))
        self.filter_card_button.setEnabled(self._filter is not None)
        self.filter_card_button.setAccessibleName(card_button_name(self._filter.name if self._filter else "no filter"))

    def _show_notes(self) -> None:
        """The banner (no classifier loaded, or none checked) and the models' warnings."""
        if not self.classifiers:
            where = f" ({self.models_dir})" if self.models_dir else ""
            self.banner.setText("No classifier loaded: the models folder has none yet" + where +
                                ". Faces and skin tone are still measured. Add one with “Add classifier from file…”.")
            self.banner.show()
        elif not self.active_classifiers():
            self.banner.setText("All classifiers are unchecked: only skin tone is measured.")
            self.banner.show()
        else:
            self.banner.hide()
        lines = self.warning_lines()
        self.warnings.setText("\n".join(f"⚠ {line}" for line in lines))
        self.warnings.setVisible(bool(lines))
