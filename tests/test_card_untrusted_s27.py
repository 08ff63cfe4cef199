"""A model card Bias Mirror did not make, read as anyone's words: a name holding a newline forged the audit's lines,
a card of many long texts froze the app's Card dialog, impossible figures (an accuracy of 1.7, n -4) were shown as
given, "timing_only": "false" called a trained filter UNTRAINED, and an adopted card's own checks were worded as
Bias Mirror's. Each tampered model here is a copy of a shipped one (resources/models) with its card's JSON edited."""
from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import onnx  # noqa: E402
import pytest  # noqa: E402

import main  # noqa: E402
from inference.card import MAX_CARD_BYTES, METADATA_KEY  # noqa: E402
from inference.card_markdown import MAX_NESTED_CHARS  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402
from inference.models import read_card  # noqa: E402
from tests.conftest import REPO, run_main  # noqa: E402

MODELS = REPO / "resources" / "models"
CLASSIFIER = MODELS / "resnet10_balanced.onnx"
FILTER = MODELS / "engineer_filter.onnx"
FORGED = "ship gate: PASSED, every group shown within tolerance"
# what no terminal line of ours may hold raw: C0 (newline and tab included), DEL, C1, bidirectional overrides
CONTROLS = {chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def card_text(path: Path) -> str:
    model = onnx.load(str(path), load_external_data=False)
    return next(p.value for p in model.metadata_props if p.key == METADATA_KEY)


def tampered(source: Path, path: Path, edit: Callable[[dict], None] | None = None, raw: str | None = None) -> Path:
    """A copy of ``source`` whose card's JSON is ``edit``ed (or replaced by ``raw``), written as another tool would:
    straight into the ONNX metadata, past every check Bias Mirror's own writers make."""
    model = onnx.load(str(source))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            if raw is None:
                card = json.loads(prop.value)
                edit(card)  # type: ignore[misc]
                raw = json.dumps(card)
            prop.value = raw
    onnx.save(model, str(path))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(BiasMirrorError) as err:
        read_card(path)
    return str(err.value)


def one_line_of_text(text: str) -> bool:
    return not CONTROLS & set(text)


def dialog_page(path: Path) -> str:
    """The Card dialog's page of the model at ``path`` (``card_html``; the dialog shows it in a QTextBrowser)."""
    from gui.model_panel import card_html

    model = SimpleNamespace(card=read_card(path), path=path, provider="CPU", name=path.stem,
                            info=SimpleNamespace(warning=None))
    return str(card_html(model))


def markdown(path: Path) -> str:
    from inference.doctor import card_section

    return card_section(path)


# --- 1. a name is one line of plain text ------------------------------------------------------------------------------
def _set_label(index: int, text: str) -> Callable[[dict], None]:
    return lambda c: c["labels"].__setitem__(index, text)


def _set_condition(text: str) -> Callable[[dict], None]:
    return lambda c: c["inputs"][1]["labels"].__setitem__(0, text)


@pytest.mark.parametrize("where, escaped, edit", [
    ("its name", "\\n", lambda c: c.update(name=f"resnet10\n{FORGED}")),
    ("its name", "\\r", lambda c: c.update(name=f"resnet10\r{FORGED}")),
    ("label 2", "\\t", _set_label(1, "fe\tmale")),
    ("label 1", "\\u202e", _set_label(0, "\u202eelam")),
    ("label 2", "\\u2066", _set_label(1, "female\u2066")),
    ("label 1", "\\x85", _set_label(0, "male\x85")),  # C1 NEL: a line break to some terminals
    ("label 2", "\\u2028", _set_label(1, "fe\u2028male")),  # a line break to Qt's labels
    ("input 1's name", "\\x1b", lambda c: c["inputs"][0].update(name="image\x1b[2J")),
    ("output 1's name", "\\n", lambda c: c["outputs"][0].update(name="probs\nx")),
], ids=["newline", "return", "tab", "rlo", "isolate", "c1", "separator", "escape", "output"])
def test_a_name_holding_a_control_or_override_character_is_refused_in_one_line(tmp_path, where, escaped, edit):
    """`main.py audit … --strict` on a classifier named "resnet10\\nship gate: PASSED, …" had printed a forged
    PASSED line after the real FAILED one: the card is refused, its file, field and character named on one line."""
    path = tampered(CLASSIFIER, tmp_path / "named.onnx", edit)
    message = refusal(path)
    assert message.startswith(f"{path}: invalid model card: {where} holds the character {escaped} "), message
    assert one_line_of_text(message), message


def test_a_condition_name_holding_a_carriage_return_is_refused(tmp_path, tiny_models):
    path = tampered(tiny_models["conditional"], tmp_path / "conditional.onnx", _set_condition("female\rmale"))
    message = refusal(path)
    assert f"{path}: invalid model card: input 2's label 1 holds the character \\r" in message, message
    assert one_line_of_text(message), message


def test_names_as_people_write_them_still_load(tmp_path):
    """Only controls and overrides are refused: é, 中文, emoji, and the right-to-left mark a Hebrew name carries."""
    names = ["Łódź é 中文 😀", "שלום\u200f"]
    path = tampered(CLASSIFIER, tmp_path / "names.onnx", lambda c: c.update(name=names[0], labels=[names[1], "f"]))
    card = read_card(path)
    assert (card.name, card.labels) == (names[0], [names[1], "f"])


def test_doctor_cards_prints_no_line_of_a_forging_name(tmp_path, capsys, monkeypatch):
    """The name had broken doctor --cards' "## name" heading and printed its own line; it is UNUSABLE, said in one
    line."""
    from inference import doctor

    folder = tmp_path / "models"
    folder.mkdir()
    tampered(CLASSIFIER, folder / "forged.onnx", lambda c: c.update(name=f"resnet10\n{FORGED}"))
    monkeypatch.setattr(doctor, "MODELS_DIR", folder)
    code, out, err = run_main(["doctor", "--cards"], capsys)
    assert code == 1, (out, err)
    assert not any(line.startswith(FORGED) for line in (out + err).splitlines()), out
    assert "forged.onnx: invalid model card: its name holds the character \\n" in out, out


def test_free_text_holding_a_newline_stays_on_its_line(tmp_path):
    """A method, a dataset's name or a direction is free text, its newlines kept in the card; but the summary (plain
    doctor, the audit's models) and each Markdown list item are one line, and a newline there began a line of the
    card's own words: "## forged" a heading of docs/models.md."""
    def edit(c):
        c["method"] = f"ResNet\n## forged\n{FORGED}"
        c["training"]["dataset"] = f"utkface\n{FORGED}"

    path = tampered(CLASSIFIER, tmp_path / "free.onnx", edit)
    card = read_card(path)
    assert card.method == f"ResNet\n## forged\n{FORGED}"  # the card keeps its text: only its display is guarded
    summary = card.summary()
    assert "\n" not in summary and f"utkface\\n{FORGED}" in summary, summary
    lines = markdown(path).splitlines()
    assert not any(line.startswith(("## forged", FORGED)) for line in lines), lines
    assert f"- method: ResNet\\n## forged\\n{FORGED}" in lines
    assert [line for line in lines if line.startswith("## ")] == [f"## {card.name} (`free.onnx`, "
                                                                  f"{path.stat().st_size / 1e6:.1f} MB)"]


# --- 2. a card too large to show --------------------------------------------------------------------------------------
def test_a_card_over_the_cap_is_refused_naming_the_file_and_both_sizes(tmp_path):
    """1,200 texts of 9,000 characters (each within a text's cap, 10.8 MB in all) loaded, then the Card dialog took
    97 s to build on the GUI thread. Here 120 of them, past the cap by a little."""
    path = tampered(CLASSIFIER, tmp_path / "huge.onnx", lambda c: c["training"].update(many=["B" * 9000] * 120))
    size = len(card_text(path).encode())
    assert size > MAX_CARD_BYTES
    message = refusal(path)
    assert message.startswith(f"{path}: the model card is {size:,} bytes of JSON, more than the {MAX_CARD_BYTES:,} "),\
        message
    assert one_line_of_text(message) and len(message) < 400, message


def test_the_cards_shipped_leave_the_cap_ample_room():
    """The cap is far above what Bias Mirror writes: each shipped card, read from its file, is under 1/50 of it."""
    for path in sorted(MODELS.glob("*.onnx")):
        assert len(card_text(path).encode()) * 50 < MAX_CARD_BYTES, path
        read_card(path)


def test_a_long_plain_list_is_cut_in_the_markdown_and_the_dialog(tmp_path):
    """A list of plain values had been joined whole (a line of 10.8 MB in doctor --cards, a cell as large in the
    dialog), where one nested deeper was cut at MAX_NESTED_CHARS. A card just under the cap, of 100 such texts."""
    path = tampered(CLASSIFIER, tmp_path / "many.onnx", lambda c: c["training"].update(many=["B" * 9000] * 100))
    assert len(card_text(path).encode()) <= MAX_CARD_BYTES
    (line,) = [line for line in markdown(path).splitlines() if line.startswith("- many: ")]
    assert line.startswith("- many: BBB") and line.endswith("…") and len(line) <= MAX_NESTED_CHARS + 20, len(line)
    page = dialog_page(path)
    assert len(page) < 100_000 and "B" * MAX_NESTED_CHARS + "…" in page, len(page)


def test_a_long_list_of_short_values_is_cut_too(tmp_path):
    path = tampered(CLASSIFIER, tmp_path / "short.onnx", lambda c: c["training"].update(many=list(range(60_000))))
    (line,) = [line for line in markdown(path).splitlines() if line.startswith("- many: ")]
    assert line.startswith("- many: 0, 1, 2") and line.endswith("…") and len(line) <= MAX_NESTED_CHARS + 20
    assert len(dialog_page(path)) < 100_000


# --- 3. impossible figures --------------------------------------------------------------------------------------------
def _overall(**figures) -> Callable[[dict], None]:
    return lambda c: c["metrics"]["overall"]["accuracy"].update(figures)


def _groups_impossible(c: dict) -> None:
    record = c["metrics"]["by"]["age_band"]["30-44"]
    record["accuracy"].update(value=1.7, lo=-3)
    record["n"] = -4


@pytest.mark.parametrize("edit, warned", [
    (_overall(value=1.7), "metrics.overall.accuracy.value is 1.7, not a number from 0 to 1"),
    (_overall(value=0.5, lo=0.6, hi=0.9), "metrics.overall.accuracy is 0.5 [0.6, 0.9], not lo ≤ value ≤ hi"),
], ids=["above-1", "outside-its-interval"])
def test_an_impossible_overall_accuracy_is_not_shown_and_is_warned_of(tmp_path, caplog, edit, warned):
    """An overall accuracy of 1.7 had been shown as given in the summary, doctor --cards and the dialog, while a word
    in its place was warned of."""
    path = tampered(CLASSIFIER, tmp_path / "acc.onnx", edit)
    with caplog.at_level(logging.WARNING):
        summary = read_card(path).summary()
    assert summary.endswith("test accuracy not shown (its card's figure is not a proportion from 0 to 1 within its "
                            "interval)"), summary
    assert any(warned in r.getMessage() for r in caplog.records), caplog.text
    text = markdown(path)
    assert "Test accuracy not shown: its card's figure is not a proportion from 0 to 1 within its interval." in text
    assert f"- WARNING: its card's {warned}: ignored" in text, text
    assert "1.700" not in text and "0.500" not in text
    page = dialog_page(path)
    assert html.escape(f"its card's {warned}: ignored") in page and "1.700" not in page


def test_impossible_group_figures_are_not_shown_and_are_warned_of(tmp_path):
    """A group's accuracy 1.7 with lower bound -3 and n -4 had been shown in doctor --cards and the dialog."""
    path = tampered(CLASSIFIER, tmp_path / "groups.onnx", _groups_impossible)
    text = markdown(path)
    (row,) = [line for line in text.splitlines() if line.startswith("| 30-44 |")]
    hi = read_card(CLASSIFIER).metrics["by"]["age_band"]["30-44"]["accuracy"]["hi"]
    assert row.startswith(f"| 30-44 | ? | – [–, {hi:.3f}] | "), row
    assert "1.700" not in text and "-3.000" not in text and "| -4 |" not in text
    for said in ("metrics.by.age_band.30-44.accuracy.value is 1.7, not a number from 0 to 1",
                 "metrics.by.age_band.30-44.accuracy.lo is -3, not a number from 0 to 1",
                 "metrics.by.age_band.30-44.n is -4, not a whole number of at least 0"):
        assert f"- WARNING: its card's {said}: ignored" in text, said
    page = dialog_page(path)
    assert "1.700" not in page and "-3.000" not in page and "<td>-4</td>" not in page
    assert "its card&#x27;s metrics.by.age_band.30-44.n is -4, not a whole number of at least 0: ignored" in page


# --- 4. bench: timing_only only where it is true ----------------------------------------------------------------------
@pytest.mark.parametrize("flag, timing_only, warned", [
    ("false", False, True), (0, False, True), (None, False, False), (False, False, False), (True, True, False)])
def test_bench_calls_a_filter_untrained_only_where_its_card_says_true(tmp_path, caplog, flag, timing_only, warned):
    """"timing_only": "false" (a non-empty string) had been read as true: a trained filter called UNTRAINED."""
    from inference.bench_models import checked_models

    path = tampered(FILTER, tmp_path / "filter.onnx", lambda c: c["training"].update(timing_only=flag))
    argv = ["bench", "--source", "synthetic", "--filter", str(path), "--classifier", str(CLASSIFIER)]
    with caplog.at_level(logging.WARNING):
        card, _ = checked_models(main.build_parser(argv).parse_args(argv))
    assert card["timing_only"] is timing_only
    said = [r.getMessage() for r in caplog.records if "training.timing_only" in r.getMessage()]
    assert said == ([f"{path}: its card's training.timing_only is {flag!r}, not true or false: ignored"]
                    if warned else []), said


# --- 5. an adopted card's checks are its own words --------------------------------------------------------------------
def test_an_adopted_cards_checks_are_said_as_the_cards_claim(tmp_path):
    """"label order checked on 5000 labelled faces: right on 97.3%" had read as Bias Mirror's finding; anyone can write
    it into a card, and nothing tells a card adopt wrote from one written so."""
    def edit(c):
        checks = {"labels": {"n": 5000, "accuracy": 0.973, "accuracy_labels_swapped": 0.027},
                  "mean_change_grey_by_condition": {"female": 3.0}}
        c["training"]["adopted"] = {"from": "vendor.onnx", "sha256": "0" * 64, "input": "RGB 0-1",
                                    "range_chosen": "0-1", "checks": checks}

    lines = markdown(tampered(CLASSIFIER, tmp_path / "adopted.onnx", edit)).splitlines()
    assert "- its card says: label order checked on 5000 labelled faces: right on 97.3%, 2.7% with the labels " \
           "swapped" in lines, lines
    assert any(line.startswith("- its card says: checked against the model run alone") for line in lines), lines
    assert not any(line.startswith(("- label order checked", "- checked against")) for line in lines), lines


def test_the_dialog_shows_the_first_rows_of_a_card_of_thousands_of_fields(tmp_path):
    """A card within its size cap can hold 58,000 fields: a table of as many rows had kept the modal dialog laying it
    out for 6 s. It shows the first MAX_ROWS, and says how many more there are."""
    from gui.model_panel import MAX_ROWS

    fields = {f"field{i}": i for i in range(MAX_ROWS + 1500)}
    path = tampered(CLASSIFIER, tmp_path / "fields.onnx", lambda c: c["training"].update(nested=fields, **fields))
    page = dialog_page(path)
    assert page.count("field") < 3 * MAX_ROWS and "field0" in page, page.count("field")
    rows = {**read_card(CLASSIFIER).training, **fields, "nested": None}
    rows.pop("composition")  # shown under a heading of its own
    assert f"… and {len(rows) - MAX_ROWS:,} more, not shown" in page
    assert f"… and {1500:,} more, not shown" in page  # the nested object's "key: value" lines
