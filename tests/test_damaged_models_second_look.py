"""Damaged models, a second look (2026-12-07): a CycleGAN's --classifier giving logits found only after training,
one NaN classifier given twice to `run`, card dialogs stopped by a record lacking a bound or a composition over
numbers, the audit's card line calling an unreadable figure unmeasured, external data files cut short or named by
an absolute path, and cards nested deeper than any card needs. Tiny models changed in place, as
tests/test_damaged_models_run_time.py does."""
from __future__ import annotations

import html
import json
import logging
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inference.card import MAX_CARD_DEPTH, ModelCard
from inference.card_fields import CardNotes
from inference.errors import BiasMirrorError
from inference.models import load_model, read_card
from tests.conftest import make_diverged_classifier, run_main
from tests.test_card_fields_typed import SHIPPED, carded
from tests.test_damaged_models_run_time import changed, refused, softmax_left_out

NOT_A_NUMBER = "test accuracy not shown (its card's figure is not a number)"


# --- 1. train cyclegan: a --classifier giving logits is refused before training -------------------------------------

def test_train_cyclegan_refuses_a_classifier_giving_logits_before_it_trains(tmp_path, tiny_models, capsys,
                                                                           monkeypatch):
    """The classifier was read at the start (its file, its labels), but its probs were checked at its first
    prediction, after the whole run had trained and exported: hours lost to a softmax left out."""
    from training.tasks import cyclegan as cyclegan_task

    from .test_cyclegan import train, write_utk

    def training(*args, **kwargs):
        raise AssertionError("training began with a classifier that gives logits")

    monkeypatch.setattr(cyclegan_task, "run_for_cli", training)
    logits = changed(tiny_models["classifier"], tmp_path / "logits.onnx", softmax_left_out)
    utk = write_utk(tmp_path / "UTKFace", per_cell=14)  # as test_cyclegan: enough for its domains
    assert train(tmp_path / "run", utk, "--n-epochs", "1", "--classifier", str(logits)) == 2
    err = capsys.readouterr().err
    assert f"error: {logits}: classifier " in err and "its probs are not probabilities" in err, err
    assert not (tmp_path / "run" / "filter_A2B.onnx").exists()


# --- 2. run: one classifier file given twice, giving NaN ------------------------------------------------------------

def test_run_names_the_file_of_each_copy_of_a_classifier_given_twice_that_gives_nan(tmp_path, faces_dir, capsys):
    """The two copies (two names, one file) had been collapsed by a map keyed by the file: a KeyError on the
    second name at its first NaN."""
    model = make_diverged_classifier(tmp_path / "diverged.onnx")
    code, stdout, err = run_main(["run", "--source", str(faces_dir), "--out", str(tmp_path / "rows.csv"),
                                  "--classifier", model, "--classifier", model, "--no-filter", "--threads", "1"],
                                 capsys)
    said = stdout + err
    assert code == 0, said
    names = re.findall(r"classifier '([^']+)' gave no finite P\(female\) \(", said)
    assert len(names) == len(set(names)) == 2, said  # each copy by its own name, once
    for name in names:
        assert f"classifier '{name}' gave no finite P(female) ({model}): its p_female cells are left empty" in said


# --- 3. the app's card dialog: a record lacking a bound, a composition over numbers --------------------------------

def dialog_model(path: Path) -> SimpleNamespace:
    """The model a Card button shows, as far as the dialog reads it."""
    return SimpleNamespace(card=read_card(path), path=path, provider="CPU", name=path.stem,
                           info=SimpleNamespace(warning=None))


def test_the_card_dialog_shows_a_card_whose_group_accuracy_lacks_its_upper_bound(tmp_path, tiny_models, qtbot):
    """doctor --cards showed the card; the Card button had raised KeyError 'hi' (one flipped bit in a shipped card
    does it), and the app said "unexpected error" with no dialog. The cell is the one the card's Markdown shows."""
    from PySide6.QtWidgets import QTextBrowser

    from gui.model_panel import CardDialog, card_html
    from inference.doctor import card_section

    metrics = read_card(SHIPPED).metrics
    grouping = next(iter(metrics["by"]))
    group, record = next(iter(metrics["by"][grouping].items()))
    accuracy = {k: v for k, v in record["accuracy"].items() if k != "hi"}
    lacking = {**metrics, "by": {**metrics["by"], grouping: {**metrics["by"][grouping],
                                                             group: {**record, "accuracy": accuracy}}}}
    path = carded(tiny_models["classifier"], tmp_path / "no_hi.onnx", metrics=lacking)

    dialog = CardDialog(dialog_model(path))  # as the Card button opens it
    qtbot.addWidget(dialog)
    assert f"By {grouping}" in dialog.findChild(QTextBrowser).toPlainText()
    cell = group.replace("|", "\\|")  # as the Markdown escapes it
    row = next(line for line in card_section(path).split("\n") if line.startswith(f"| {cell} |"))
    markdown_cell = row.split(" | ")[2]  # | group | n | accuracy [95% CI] | …
    shown = card_html(dialog_model(path))
    assert f"<td>{html.escape(group)}</td><td>{record['n']}</td><td>{markdown_cell}</td>" in shown, markdown_cell


def test_the_card_dialog_shows_a_composition_over_numbers_as_the_markdown_does(tmp_path, tiny_models, qtbot):
    """training.composition.by [1, 2] had raised a TypeError joining it; the Markdown reads it as names (card_names)
    and warns of it. The dialog shows the mix, without a line over it, and says the same warning."""
    from PySide6.QtWidgets import QTextBrowser

    from gui.model_panel import CardDialog, card_html
    from inference.doctor import card_section

    composition = {"mode": "balanced", "by": [1, 2], "achieved": {"female": 10, "male": 10}}
    path = carded(tiny_models["classifier"], tmp_path / "by_numbers.onnx",
                  training={"dataset": "none", "composition": composition})
    dialog = CardDialog(dialog_model(path))
    qtbot.addWidget(dialog)
    said = "its card's training.composition.by is [1, 2], not a list of names: ignored"
    assert f"- WARNING: {said}" in card_section(path)
    assert f"Warning: {said}" in dialog.findChild(QTextBrowser).toPlainText()
    shown = card_html(dialog_model(path))
    assert "<td>female</td><td>10</td>" in shown and "cells over" not in shown


# --- 4. the audit names the file whose card it warns of, and says "not a number", not "not measured" -------------

def test_a_card_summary_says_an_accuracy_that_is_no_number_is_not_a_number(tmp_path, tiny_models):
    metrics = read_card(SHIPPED).metrics
    overall = metrics["overall"]

    def summary(value) -> str:
        accuracy = {**overall["accuracy"], "value": value}
        card = replace(read_card(tiny_models["classifier"]), metrics={**metrics, "overall": {**overall,
                                                                                            "accuracy": accuracy}})
        return card.summary(CardNotes(tmp_path / "model.onnx"))

    assert summary("high").endswith(NOT_A_NUMBER)
    assert summary(None).endswith("test accuracy not measured")  # null: a split without faces


def test_the_audit_names_the_file_whose_card_figure_is_no_number_and_says_so_in_the_report(
        tmp_path, tiny_models, faces_dir, capsys, caplog):
    """The warning had named no file ("a model card's metrics.overall.accuracy.value is 'high'"), and report.json
    said "test accuracy not measured" of a figure the card holds, where its Markdown says it is not a number."""
    metrics = read_card(SHIPPED).metrics
    accuracy = {**metrics["overall"]["accuracy"], "value": "high"}
    word = carded(tiny_models["classifier"], tmp_path / "word.onnx",
                  metrics={**metrics, "overall": {**metrics["overall"], "accuracy": accuracy}})
    out = tmp_path / "audit"
    with caplog.at_level(logging.WARNING):
        code, _, err = run_main(["audit", "--dataset", f"folder:{faces_dir}", "--classifier", str(word),
                                 "--no-filter", "--out", str(out), "--no-html", "--no-progress", "--threads", "1"],
                                capsys)
    assert code == 0, err
    warned = [r.getMessage() for r in caplog.records if "metrics.overall.accuracy.value" in r.getMessage()]
    assert warned and all(m.startswith(f"{word}: its card's ") for m in warned), warned
    (card,) = [c["card"] for c in json.loads((out / "report.json").read_text())["models"]["classifiers"]]
    assert card.endswith(NOT_A_NUMBER), card


# --- 5 and 6. weights in external data files cut short, or named by an absolute path ----------------------------

def bare_model(path: Path, weights: int) -> Path:
    """A model made elsewhere (no card) adding ``weights`` 3×3 float weights to its input in turn, each kept in an
    external data file of its own beside it."""
    rng = np.random.default_rng(0)
    names = [f"w{i}" for i in range(weights)]
    nodes = [helper.make_node("Add", ["x" if i == 0 else f"s{i - 1}", name], ["y" if i == weights - 1 else f"s{i}"])
             for i, name in enumerate(names)]
    graph = helper.make_graph(nodes, "bare", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 3])],
                              [numpy_helper.from_array(rng.random((3, 3), dtype=np.float32), n) for n in names])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=False, size_threshold=0)
    return path


def data_files(model: Path) -> dict[str, Path]:
    """Each weight's external data file, by the weight's name."""
    tensors = onnx.load(str(model), load_external_data=False).graph.initializer
    return {t.name: model.parent / next(e.value for e in t.external_data if e.key == "location") for t in tensors}


def adopt_refused(path: Path) -> str:
    """What `train adopt` refuses ``path`` with, without the file's name it opens with."""
    from training.adopt_read import read_onnx

    with pytest.raises(BiasMirrorError) as err:
        read_onnx(path)
    assert str(err.value).startswith(f"{path}: ")
    return str(err.value)[len(f"{path}: "):]


def test_a_data_file_cut_short_is_named_alone_among_several_by_run_and_by_adopt(tmp_path):
    """Load named every data file the model has (six, for a ResNet saved a file a weight) as "shorter than the model
    says"; adopt called the file "truncated, corrupt or another format" in onnx's words."""
    model = bare_model(tmp_path / "bare.onnx", weights=4)
    files = data_files(model)
    cut = list(files)[len(files) // 2]
    whole = files[cut].read_bytes()
    files[cut].write_bytes(whole[:len(whole) // 2])
    for text in (refused(model), adopt_refused(model)):
        assert text.startswith(f"not a readable ONNX model: its weights are kept in an external data file, "
                               f"{files[cut]}, which is shorter than the model says (weight '{cut}' lies at bytes "), text
        assert f"the file has {len(whole) // 2})" in text and "put the whole file where the model says" in text
        assert not any(str(f) in text for name, f in files.items() if name != cut), text
        assert "corrupt" not in text


def test_a_data_file_named_by_an_absolute_path_is_explained_as_one_outside_the_folder_is(tmp_path):
    """ORT's "Absolute path not allowed for external data location" had been given as "not a readable ONNX model
    (truncated, corrupt or another format)", where the similar ../ case was explained."""
    model = bare_model(tmp_path / "bare.onnx", weights=2)
    m = onnx.load(str(model), load_external_data=False)
    tensor = m.graph.initializer[0]
    entry = next(e for e in tensor.external_data if e.key == "location")
    absolute = (tmp_path / entry.value).resolve()
    entry.value = str(absolute)
    onnx.save(m, str(model))
    for text in (refused(model), adopt_refused(model)):
        assert text.startswith("not a readable ONNX model: its weights are said to be kept in an external data file "
                               f"named by an absolute path, {absolute}, which ONNX Runtime does not read"), text
        assert "put the data file in the model's folder" in text and "corrupt" not in text and ".cc:" not in text


# --- 7. a card nested deeper than any card needs ------------------------------------------------------------------

def nested_card(source: Path, path: Path, depth: int) -> Path:
    """A copy of model ``source`` whose card nests ``depth`` deep: a list nested in its metrics (the card's object
    is the first level, its metrics the second)."""
    deep: list = []
    for _ in range(depth - 3):
        deep = [deep]

    def nest(m: onnx.ModelProto) -> None:
        entry = next(p for p in m.metadata_props if p.key == "model_card")
        card = json.loads(entry.value)
        card["metrics"] = {**card["metrics"], "deep": deep}
        entry.value = json.dumps(card)

    return changed(source, path, nest)


def test_a_card_nested_deeper_than_the_limit_is_refused_naming_its_file(tmp_path, tiny_models, capsys):
    """A card nested 600-990 deep loaded (under Python's recursion limit), then train fp16 (to_json) and doctor
    --cards (strict_json) ended in a RecursionError."""
    at_limit = nested_card(tiny_models["darken"], tmp_path / "at_limit.onnx", MAX_CARD_DEPTH)
    assert load_model(at_limit).card.to_json()  # as deep as a card may be: read, and written again
    deep = nested_card(tiny_models["darken"], tmp_path / "deep.onnx", MAX_CARD_DEPTH + 1)
    text = refused(deep)
    assert text.startswith("the model card is not readable JSON: it is nested too deeply"), text
    with pytest.raises(BiasMirrorError, match="nested too deeply") as err:
        ModelCard.from_json("[" * (MAX_CARD_DEPTH + 1) + "]" * (MAX_CARD_DEPTH + 1), "card.json")
    assert str(err.value).startswith("card.json: ")
    code, _, err_text = run_main(["train", "fp16", str(deep), "--out", str(tmp_path / "fp16.onnx"), "--n", "4",
                                  "--provider", "cpu"], capsys)
    assert code == 2 and f"error: {deep}: the model card is not readable JSON: it is nested too deeply" in err_text
