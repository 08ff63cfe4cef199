"""A model card's informational fields typed loosely, as a card written by hand or by another tool types them:
``training.filters.min_age`` "18", a target share "0.33", ``metrics.by`` "x". Every command that reads one goes
on: a numeric string is read as its number, anything else is left out with a warning naming the file and the
field (once), and the rest of what it shows is what the same card without the odd field shows."""
from __future__ import annotations

import html
import json
import logging
import re
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

import main
from inference.card_fields import CardNotes, card_number, card_object, card_records
from inference.models import read_card
from tests.conftest import REPO, make_classifier
from training.export import write_card

SHIPPED = REPO / "resources" / "models" / "resnet10_unbalanced.onnx"  # a card with real per-group metrics


def carded(source: Path, path: Path, training: dict | None = None, metrics: dict | None = None) -> Path:
    """A copy of ``source`` whose card has the ``training`` and ``metrics`` records given (its own elsewhere)."""
    shutil.copy(source, path)
    card = read_card(path)
    write_card(path, replace(card, training=card.training if training is None else training,
                             metrics=card.metrics if metrics is None else metrics))
    return path


def warnings_of(caplog, path: Path, field: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and str(path) in r.getMessage() and f"card's {field} is" in r.getMessage()]


# --- the helper ---------------------------------------------------------------------
def test_a_numeric_string_is_read_as_its_number_and_anything_else_is_warned_of_once(tmp_path, caplog):
    source = tmp_path / "hand-written.onnx"
    notes = CardNotes(source)  # one reading of its card
    with caplog.at_level(logging.WARNING):
        assert card_number(notes, "training.filters.min_age", "18") == card_number(notes, "x", 18) == 18
        assert card_number(notes, "share", " 0.33 ", within=(0, 1)) == pytest.approx(0.33)
        assert card_number(notes, "n", 7.0, whole=True) == 7 and card_number(notes, "lo", None) is None
        for _ in range(2):  # read again in the same reading (one command reading a field twice): said once
            assert card_number(notes, "metrics.by.g.n", "many", whole=True) is None
            assert card_number(notes, "share_female", True, within=(0, 1)) is None  # JSON true is no 1
            assert card_number(notes, "target", 5, within=(0, 1)) is None
            assert card_object(notes, "metrics.by", "x") is None
            assert card_records(notes, "metrics.gaps", {"age": {"best": "a"}, "sex": "x"}) == {"age": {"best": "a"}}
    for field in ("metrics.by.g.n", "share_female", "target", "metrics.by", "metrics.gaps.sex"):
        assert len(warnings_of(caplog, source, field)) == 1, field
    assert len(notes.said) == 5 and CardNotes(tmp_path / "another.onnx").said == []


# --- train evaluate: training.filters.min_age --------------------------------------------
def test_evaluate_reads_a_card_age_bar_given_as_text_and_goes_on_past_one_it_cannot_read(tmp_path, capsys, caplog):
    """`train evaluate` on a card with "min_age": "18" stopped with TypeError: '<' not supported between 'int' and
    'str'. "18" is the bar 18; "eighteen" is warned of (once, though the age bar is read twice: for the faces to
    evaluate and for the faces it was trained on) and the card is taken as one that does not say its ages."""
    from tests.test_cyclegan import write_utk
    from training.evaluate import DEFAULT_MIN_AGE

    data = write_utk(tmp_path / "UTKFace", per_cell=2, ages=(8, 30))  # half the faces are children
    tiny = make_classifier(tmp_path / "tiny.onnx")
    record = {"dataset": "utkface", "dataset_root": str(data), "split": "train (a stable hash of file name)"}

    def evaluate(name: str, filters: dict | None) -> tuple[dict, str]:
        model = carded(tiny, tmp_path / f"{name}.onnx", {**record, **({"filters": filters} if filters else {})})
        out = tmp_path / f"{name}.json"
        with caplog.at_level(logging.WARNING):
            assert main.main(["train", "evaluate", "--model", str(model), "--dataset", f"utkface:{data}",
                              "--split", "train", "--json", str(out)]) == 0
        written = json.loads(out.read_text())
        stdout = capsys.readouterr().out.replace(f"{name}.onnx", "MODEL.onnx")
        # each model's file and sha256 (evaluate JSON 2) name this one: they differ by design
        models = [{k: v for k, v in m.items() if k not in ("file", "sha256")} for m in written["models"].values()]
        return {"models": models, "min_age": written["evaluated"]["min_age"],
                "trained_on": list(written["evaluated"]["faces_trained_on"].values())}, stdout

    as_number, said_as_number = evaluate("number", {"min_age": DEFAULT_MIN_AGE})
    as_text, said_as_text = evaluate("string", {"min_age": str(DEFAULT_MIN_AGE)})  # a name as long: as wide a table
    assert as_text == as_number and said_as_text == said_as_number
    assert as_text["min_age"] == DEFAULT_MIN_AGE and as_text["trained_on"]  # the card's bar, and its faces counted
    assert not [r for r in caplog.records if r.levelno == logging.WARNING and "card's" in r.getMessage()]

    silent, said_silent = evaluate("silent", None)
    unread, said_unread = evaluate("unread", {"min_age": "eighteen"})
    assert unread == silent and said_unread == said_silent  # as a card that does not say its ages
    assert warnings_of(caplog, tmp_path / "unread.onnx", "training.filters.min_age") == [
        f"{tmp_path / 'unread.onnx'}: its card's training.filters.min_age is 'eighteen', not a number: ignored"]


# --- audit: a filter's target marginals -----------------------------------------------------
TARGET = {"marginals": {"gender": {"female": 0.33, "male": 0.67}, "race": {"White": 1.0}}}


def _target(female) -> dict:
    return {"dataset": "none", "domain_b": {**TARGET, "marginals": {**TARGET["marginals"],
                                                                    "gender": {"female": female, "male": 0.67}}}}


def test_the_filter_audit_reads_a_target_share_given_as_text_and_warns_of_one_it_cannot_read(tmp_path, caplog):
    """A filter whose card's target marginals.gender.female is "0.33" stopped the audit with TypeError: unsupported
    operand type(s) for -: 'float' and 'str'."""
    from inference.audit.filter_audit import composition

    rows = [{"d_ita": None, "clf": {"m": {"pred_ref": ref, "pred_f": out}}}
            for ref, out in (("male", "female"), ("male", "male"), ("female", "female"), ("male", "female"))]
    as_number = composition(rows, ["m"], _target(0.33), CardNotes(tmp_path / "number.onnx"))
    assert as_number["target_female_share"] == 0.33 and as_number["predicted_female"]["m"]["crossed_target"] is not None
    with caplog.at_level(logging.WARNING):
        as_text = composition(rows, ["m"], _target("0.33"), CardNotes(tmp_path / "text.onnx"))
        assert as_text["target_female_share"] == 0.33 and as_text["predicted_female"] == as_number["predicted_female"]
        unread = {"word": "a third", "list": [0.33], "bool": True, "beyond": 5}
        for name, female in unread.items():
            path = tmp_path / f"{name}.onnx"
            got = composition(rows, ["m"], _target(female), CardNotes(path))
            assert got["target_female_share"] is None and got["predicted_female"]["m"]["crossed_target"] is None
            assert got["predicted_female"]["m"]["output"] == as_number["predicted_female"]["m"]["output"]
            assert got["target"] == _target(female)["domain_b"]["marginals"]  # the card's record, as written
            assert len(warnings_of(caplog, path, "training.domain_b.marginals.gender.female")) == 1, name
    assert not warnings_of(caplog, tmp_path / "text.onnx", "training.domain_b.marginals.gender.female")


def test_the_audit_command_runs_a_filter_whose_target_share_is_text(tmp_path, tiny_models):
    """The audit as the command runs it: the share "0.33" is the target 0.33, the report as for the number."""
    from tests.test_audit import audit, write_utk

    data = write_utk(tmp_path / "utk")
    reports = {}
    for name, female in (("number", 0.33), ("text", "0.33")):
        filt = carded(tiny_models["darken"], tmp_path / f"{name}.onnx", _target(female))
        rc, reports[name], _ = audit("--dataset", f"utkface:{data}", "--classifier", str(tiny_models["classifier"]),
                                     "--filter", str(filt), "--limit", "16", "--no-html",
                                     "--out", str(tmp_path / name))
        assert rc == 0
    number, text = (reports[k]["filter"]["composition"] for k in ("number", "text"))
    assert text["target_female_share"] == number["target_female_share"] == 0.33
    assert text["predicted_female"] == number["predicted_female"]


# --- the app's card dialog: metrics.by / metrics.gaps ---------------------------------------
def _damaged_metrics() -> tuple[dict, dict]:
    """The shipped card's metrics, and the same with one grouping's table, another's gaps and one group's record
    of no type the dialog reads."""
    metrics = read_card(SHIPPED).metrics
    first, second = list(metrics["by"])[:2]
    group = next(iter(metrics["by"][second]))
    damaged = {**metrics, "by": {**metrics["by"], first: "x", second: {**metrics["by"][second], group: "x"}},
               "gaps": {**metrics["gaps"], second: "x"}}
    return metrics, damaged


@pytest.mark.parametrize("damage", ["by", "gaps", "deep"])
def test_the_card_dialog_shows_a_card_whose_metrics_by_or_gaps_is_text(tmp_path, tiny_models, qtbot, damage):
    """`metrics.by` or `metrics.gaps` a string raised AttributeError in `_group_metrics_html` on the GUI thread:
    the Card button did nothing but put a traceback in the log. The dialog opens, says which field it left out, and
    shows the rest as for the card without it."""
    from PySide6.QtWidgets import QTextBrowser

    from gui.model_panel import CardDialog, card_html

    metrics, deep = _damaged_metrics()
    damaged = {"by": {**metrics, "by": "x"}, "gaps": {**metrics, "gaps": "x"}, "deep": deep}[damage]
    good = carded(tiny_models["classifier"], tmp_path / "good.onnx", metrics=metrics)
    bad = carded(tiny_models["classifier"], tmp_path / "bad.onnx", metrics=damaged)

    def model(path: Path) -> SimpleNamespace:
        return SimpleNamespace(card=read_card(path), path=path, provider="CPU", name=path.stem,
                               info=SimpleNamespace(warning=None))

    dialog = CardDialog(model(bad))  # as the Card button opens it, on the GUI thread
    qtbot.addWidget(dialog)
    shown = card_html(model(bad))
    warned = [html.unescape(w) for w in re.findall(r"Warning:</b> (its card.*?)</p>", shown)]
    assert warned and all(f"Warning: {w}" in dialog.findChild(QTextBrowser).toPlainText() for w in warned)
    assert {"by": ["its card's metrics.by is 'x', not an object: ignored"],
            "gaps": ["its card's metrics.gaps is 'x', not an object: ignored"]}.get(damage, warned) == warned
    good_shown = card_html(model(good)).replace("good.onnx", "bad.onnx")
    overall = good_shown[good_shown.index("<h4>Overall</h4>"):good_shown.index("<h4>By ")]
    assert overall in shown  # the rest, as without the odd field
    if damage == "gaps":  # every table, without its gap lines
        assert [part.split("</table>")[0] for part in shown.split("<h4>By ")[1:]] == \
               [part.split("</table>")[0] for part in good_shown.split("<h4>By ")[1:]]
    if damage == "deep":
        first, second = list(metrics["by"])[:2]
        assert f"<h4>By {first}</h4>" not in shown and f"<h4>By {second}</h4>" in shown
        assert len(warned) == 3  # the table, the group and the gaps, each named


# --- doctor --cards -----------------------------------------------------------------------
def _table(markdown: str, grouping: str) -> list[str] | None:
    """The rows of ``grouping``'s per-group table in a card's Markdown, or None where it has none."""
    lines = markdown.split("\n")
    head = next((i for i, line in enumerate(lines) if line.startswith(f"| {grouping} | n |")), None)
    if head is None:
        return None
    rows = lines[head + 2:]
    return rows[:next((i for i, line in enumerate(rows) if not line.startswith("|")), len(rows))]


def test_doctor_cards_lists_a_model_with_a_malformed_metrics_value_with_a_warning_not_as_unusable(
        tmp_path, tiny_models, monkeypatch, capsys):
    """A malformed metrics value (`by` a string, a figure "x") marked the model UNUSABLE and doctor --cards exited 1,
    though every command runs the model."""
    from inference import doctor

    metrics, deep = _damaged_metrics()
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setattr(doctor, "MODELS_DIR", models)
    good = carded(tiny_models["classifier"], tmp_path / "good.onnx", metrics=metrics)
    carded(tiny_models["classifier"], models / "c_by_text.onnx", metrics={**metrics, "by": "x"})
    carded(tiny_models["classifier"], models / "c_deep.onnx", metrics=deep)
    shifts = {"by_gender_race": {"female|Asian": {"n": 3, "mean_delta_ita": "x"}, "male|Black": "x"}}
    carded(tiny_models["darken"], models / "f_figure_text.onnx", metrics=shifts)
    assert main.main(["doctor", "--cards"]) == 0
    out = capsys.readouterr().out
    assert "UNUSABLE" not in out
    sections = {name: out[out.index(f"`{name}.onnx`"):].split("\n## ")[0]
                for name in ("c_by_text", "c_deep", "f_figure_text")}
    assert "- WARNING: its card's metrics.by is 'x', not an object: ignored" in sections["c_by_text"]
    first, second = list(metrics["by"])[:2]
    group = next(iter(metrics["by"][second]))
    assert f"- WARNING: its card's metrics.by.{first} is 'x', not an object: ignored" in sections["c_deep"]
    assert f"- WARNING: its card's metrics.by.{second}.{group} is 'x', not an object: ignored" in sections["c_deep"]
    figure = sections["f_figure_text"]
    assert "- WARNING: its card's metrics.by_gender_race.female|Asian.mean_delta_ita is 'x', not a number" in figure
    assert "- WARNING: its card's metrics.by_gender_race.male|Black is 'x', not an object: ignored" in figure
    # the rest as the card without the odd fields shows it: its accuracy line, and the rows it could read
    whole = doctor.card_section(good)
    accuracy = next(line for line in whole.split("\n") if line.startswith("Test accuracy"))
    assert accuracy in sections["c_by_text"] and accuracy in sections["c_deep"]
    assert _table(sections["c_by_text"], second) is None and _table(sections["c_deep"], first) is None
    cell = group.replace("|", "\\|")  # as the Markdown escapes it
    assert _table(sections["c_deep"], second) == [row for row in _table(whole, second)
                                                  if not row.startswith(f"| {cell} |")]


# --- what was said is the caller's: one CardNotes per reading of a card ---------------------------------
def test_each_reading_of_a_card_says_its_own_warnings_and_keeps_none_of_another(tmp_path, caplog):
    """What was said had been kept for the process, keyed by file: a second command (or test, or window) reading the
    same file said nothing of it, and listed what an earlier one had said. A reading is a CardNotes its caller
    makes; two readings of one file, or of two files, share nothing."""
    source = tmp_path / "hand-written.onnx"
    first, second = CardNotes(source), CardNotes(source)
    with caplog.at_level(logging.WARNING):
        for notes in (first, first, second):
            assert card_object(notes, "metrics.by", "x") is None
        card_number(first, "metrics.overall.accuracy.value", "high")
    assert len(warnings_of(caplog, source, "metrics.by")) == 2  # once per reading
    assert first.said == ["its card's metrics.by is 'x', not an object: ignored",
                          "its card's metrics.overall.accuracy.value is 'high', not a number: ignored"]
    assert second.said == first.said[:1] and CardNotes(source).said == []


def test_a_card_dialog_shows_the_warnings_of_the_card_as_it_is_now_not_of_an_earlier_render(tmp_path, tiny_models):
    """A dialog opened again on a file whose card was fixed since still listed the warnings of the first render
    (and a render kept them for as long as the app ran). Each render says what it found, and no more."""
    from gui.model_panel import card_html

    metrics = read_card(SHIPPED).metrics
    path = carded(tiny_models["classifier"], tmp_path / "edited.onnx", metrics={**metrics, "by": "x"})

    def shown() -> str:
        return card_html(SimpleNamespace(card=read_card(path), path=path, provider="CPU",
                                         info=SimpleNamespace(warning=None)))

    said = "its card&#x27;s metrics.by is &#x27;x&#x27;, not an object: ignored"
    assert shown().count(said) == 1 and shown().count(said) == 1  # each render lists it, once
    carded(tiny_models["classifier"], path, metrics=metrics)  # the card fixed, at the same path
    assert "Warning:" not in shown()


def test_doctor_cards_says_the_warnings_of_each_card_as_it_is_at_each_run(tmp_path, tiny_models, monkeypatch,
                                                                           capsys, caplog):
    """doctor --cards run again in one process (the app's window, a test run) logged nothing of a card it had
    warned of, and listed under a card fixed since the warnings of the card as it was. Each run is a reading of
    each card: it warns of what it finds, and lists that alone."""
    from inference import doctor

    metrics = read_card(SHIPPED).metrics
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setattr(doctor, "MODELS_DIR", models)
    odd = carded(tiny_models["classifier"], models / "odd.onnx", metrics={**metrics, "by": "x"})
    said = "its card's metrics.by is 'x', not an object: ignored"
    outs = []
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert main.main(["doctor", "--cards"]) == 0
            outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and f"- WARNING: {said}" in outs[0]
    assert len(warnings_of(caplog, odd, "metrics.by")) == 2  # once in each run
    carded(tiny_models["classifier"], odd, metrics=metrics)  # fixed, at the same path
    assert main.main(["doctor", "--cards"]) == 0
    assert "WARNING" not in capsys.readouterr().out


def test_the_audit_names_the_filter_whose_target_share_it_cannot_read(tmp_path, tiny_models, caplog):
    """The audit's warning of a target share of no type it reads named no file: "a model card's
    training.domain_b.marginals.gender.female is …". It names the filter's."""
    from tests.test_audit import audit, write_utk

    data = write_utk(tmp_path / "utk")
    filt = carded(tiny_models["darken"], tmp_path / "thirds.onnx", _target("a third"))
    with caplog.at_level(logging.WARNING):
        rc, report, _ = audit("--dataset", f"utkface:{data}", "--classifier", str(tiny_models["classifier"]),
                              "--filter", str(filt), "--limit", "16", "--no-html", "--out", str(tmp_path / "out"))
    assert rc == 0 and report["filter"]["composition"]["target_female_share"] is None
    field = "training.domain_b.marginals.gender.female"
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and field in r.getMessage()]
    assert said == [f"{filt.name}: its card's {field} is 'a third', not a number from 0 to 1: ignored"]


# --- train classifier --distill-from: a teacher's recorded accuracy -----------------------------------------
@pytest.mark.parametrize("overall, recorded", [({"accuracy": {"value": 0.97}}, 0.97),
                                               ({"accuracy": {"value": "0.97"}}, 0.97),
                                               ({"accuracy": {"value": "high"}}, None),
                                               ("x", None), ({"accuracy": "x"}, None)])
def test_a_teachers_recorded_accuracy_is_read_as_the_markdown_reads_it(tmp_path, overall, recorded, caplog):
    """`train classifier --distill-from` a model whose card's metrics.overall is "x" stopped with AttributeError:
    'str' object has no attribute 'get'. The teacher is used; its accuracy, recorded on the student's card, is read
    as the card's Markdown reads it: "0.97" is 0.97, a word is none (warned, naming the teacher)."""
    from inference.runtime import RuntimeConfig
    from training.data.teachers import open_teachers

    teacher = carded(make_classifier(tmp_path / "plain.onnx", dataset="utkface"), tmp_path / "teacher.onnx",
                     metrics={"overall": overall})
    with caplog.at_level(logging.WARNING):
        (opened, _model), = open_teachers([str(teacher)], "utkface", str(tmp_path), RuntimeConfig(provider="cpu"))
    assert opened.test_accuracy == (None if recorded is None else pytest.approx(recorded))
    warned = 1 if overall == {"accuracy": {"value": "high"}} else 0
    assert len(warnings_of(caplog, teacher, "metrics.overall.accuracy.value")) == warned


# --- train compare: the age bar of a reused variant ---------------------------------------------------------
def test_compare_reads_a_reused_variants_age_bar_and_names_the_card_it_cannot_read(tmp_path, tiny_utk, capsys):
    """`train compare` tests both variants on faces of the ages they were trained on, read from the unbalanced
    variant's card: read raw, a card edited since to "min_age": "eighteen" reached the age comparisons as text.
    "18" is the bar 18, as the number; "eighteen" stops the comparison naming the file and the field."""
    cmp = tmp_path / "cmp"
    base = ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "1",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(cmp), "--threads", "1"]
    assert main.main(base) == 0
    compared = json.loads((cmp / "comparison.json").read_text())
    model = cmp / "unbalanced" / "model.onnx"
    training = read_card(model).training
    bar = training["filters"]["min_age"]

    def with_bar(value) -> None:  # the card edited in place, as by hand
        write_card(model, replace(read_card(model), training={**training, "filters": {**training["filters"],
                                                                                       "min_age": value}}))

    with_bar(str(bar))
    capsys.readouterr()
    assert main.main(base) == 0
    again = json.loads((cmp / "comparison.json").read_text())
    assert again["models"] == compared["models"]  # the same faces, the same figures
    with_bar("eighteen")
    assert main.main(base) == 2
    err = capsys.readouterr().err
    assert f"{model}: its card's training.filters.min_age is 'eighteen', not a number" in err
    assert "train compare needs it" in err


# --- the card's one-line summary --------------------------------------------------------------------------------
def test_the_summary_reads_an_accuracy_given_as_text_as_the_markdown_does(tmp_path, tiny_models):
    """summary() showed an accuracy of "0.97" as "not measured", while the Markdown beneath it read 0.97."""
    from inference.card_markdown import card_markdown

    accuracy = {"value": 0.97, "lo": 0.95, "hi": 0.98, "n": 100}
    as_number, as_text = (read_card(carded(tiny_models["classifier"], tmp_path / f"{name}.onnx",
                                           metrics={"overall": {"accuracy": {**accuracy, "value": value}}}))
                          for name, value in (("number", accuracy["value"]), ("text", str(accuracy["value"]))))
    assert as_text.summary() == as_number.summary() and "not measured" not in as_text.summary()
    accuracy_line = next(line for line in card_markdown(as_number, "c.onnx", 0.1).split("\n")
                         if line.startswith("Test accuracy"))
    assert accuracy_line in card_markdown(as_text, "c.onnx", 0.1)
