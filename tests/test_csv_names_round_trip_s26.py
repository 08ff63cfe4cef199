"""faces.csv's `file` column fed back as a groups or labels CSV names the files it was written from.

The audit's writer marks a cell that a spreadsheet would run as a formula with a leading ' ("'-5.jpg"), and
csv.writer (as pandas' to_csv) writes a name that begins with a space unquoted (" lead space.jpg"): read back, the
mark stayed in the name and the space was dropped, so "-5.jpg", "=HYPERLINK(1).jpg" and " lead space.jpg" were
"listed in the groups CSV but not in the folder" and audited ungrouped. A name as written still wins over a reading
of it, and a cell two files could be read as names neither.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for conftest, as in test_audit.py

from conftest import make_classifier, run_main  # noqa: E402
from inference.audit.cli import faces_csv_cell  # noqa: E402
from inference.datasets.folder import read_folder  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402

ODD_NAMES = ["-5.jpg", "=HYPERLINK(1).jpg", " lead space.jpg", 'a,b "q" é.jpg', "plain.jpg"]


def _jpegs(folder: Path, names: list[str]) -> Path:
    """Small JPEGs named ``names``, each a grey of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        ok, data = cv2.imencode(".jpg", np.full((40, 40, 3), 30 + 40 * i, np.uint8))
        assert ok
        (folder / name).write_bytes(data.tobytes())
    return folder


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """A CSV as csv.writer (and pandas' to_csv) writes it: a name beginning with a space is not quoted."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _labels(read) -> dict[str, tuple[str | None, str | None]]:
    return {Path(s.path).name: (s.gender, s.group) for s in read.samples}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    return make_classifier(tmp_path_factory.mktemp("model") / "c.onnx", name="tiny-a")


def _audit(capsys, folder: Path, out: Path, classifier: Path, *extra: str) -> tuple[int, str]:
    code, _, err = run_main(["audit", "--dataset", f"folder:{folder}", "--out", str(out), "--classifier",
                             str(classifier), "--no-filter", "--aligned", "--threads", "1", "--no-progress",
                             "--no-html", "--no-dataset-cache", *extra], capsys)
    return code, err


def test_faces_csv_file_column_read_back_as_groups_groups_every_file(tmp_path, classifier, capsys):
    """The data scientist's round trip: faces.csv's file column, a group column added, passed back as --groups."""
    folder = _jpegs(tmp_path / "faces", ODD_NAMES)
    code, err = _audit(capsys, folder, tmp_path / "first", classifier)
    assert code == 0, err
    with open(tmp_path / "first" / "faces.csv", newline="", encoding="utf-8") as fh:
        files = [row["file"] for row in csv.DictReader(fh)]
    assert sorted(files) == sorted(faces_csv_cell(n) for n in ODD_NAMES)  # the writer's marks, as the finding saw
    assert "'-5.jpg" in files and "'=HYPERLINK(1).jpg" in files
    groups = {name: f"g{i % 2}" for i, name in enumerate(files)}
    groups_csv = _write_csv(tmp_path / "groups.csv", ["file", "group"], [[f, g] for f, g in groups.items()])
    assert '\n lead space.jpg,' in groups_csv.read_text(encoding="utf-8")  # unquoted, as pandas writes it too

    code, err = _audit(capsys, folder, tmp_path / "second", classifier, "--groups", str(groups_csv))
    assert code == 0, err
    assert "not in the folder" not in err and "not listed" not in err, err
    notes = json.loads((tmp_path / "second" / "report.json").read_text())["images"]["groups_csv"]
    assert notes["listed_not_found"] == [] and notes["not_listed"] == []
    with open(tmp_path / "second" / "faces.csv", newline="", encoding="utf-8") as fh:
        grouped = {row["file"]: row["group"] for row in csv.DictReader(fh)}
    assert grouped == groups


def test_faces_csv_file_column_read_back_as_labels_csv(tmp_path):
    folder = _jpegs(tmp_path / "faces", ODD_NAMES)
    rows = [[faces_csv_cell(n), "female" if i % 2 else "male"] for i, n in enumerate(ODD_NAMES)]
    read = read_folder(folder, _write_csv(tmp_path / "labels.csv", ["file", "gender"], rows))
    assert read.skipped == []
    assert _labels(read) == {n: ("female" if i % 2 else "male", None) for i, n in enumerate(ODD_NAMES)}


def test_a_name_as_written_wins_over_its_unmarked_or_unpadded_reading(tmp_path):
    """'-5.jpg and -5.jpg both in the folder: the cell "'-5.jpg" is the first, "''-5.jpg" (the writer's mark of
    it) the first too, "-5.jpg" the second; " lead.jpg" and "lead.jpg" are two files."""
    folder = _jpegs(tmp_path / "faces", ["'-5.jpg", "-5.jpg", " lead.jpg", "lead.jpg"])
    rows = [["'-5.jpg", "female"], ["-5.jpg", "male"], [" lead.jpg", "female"], ["lead.jpg", "male"]]
    read = read_folder(folder, _write_csv(tmp_path / "labels.csv", ["file", "gender"], rows))
    assert read.skipped == []
    assert _labels(read) == {"'-5.jpg": ("female", None), "-5.jpg": ("male", None), " lead.jpg": ("female", None),
                             "lead.jpg": ("male", None)}

    marked = [["''-5.jpg", "female"], ["-5.jpg", "male"]]
    read = read_folder(folder, _write_csv(tmp_path / "marked.csv", ["file", "gender"], marked))
    assert _labels(read)["'-5.jpg"] == ("female", None) and _labels(read)["-5.jpg"] == ("male", None)


def test_padding_around_a_separator_is_read_past_where_only_the_unpadded_name_exists(tmp_path):
    """A hand-typed "gender, file" CSV: the padding is no part of the name, as before."""
    folder = _jpegs(tmp_path / "faces", ["a.jpg", "b.jpg"])
    labels = tmp_path / "labels.csv"
    labels.write_text("gender, file\nmale, a.jpg\nfemale , b.jpg  \n", encoding="utf-8")
    read = read_folder(folder, labels)
    assert read.skipped == [] and _labels(read) == {"a.jpg": ("male", None), "b.jpg": ("female", None)}


def test_a_cell_two_files_could_be_read_as_names_neither(tmp_path):
    """" '-x.jpg" is neither file as written; less its padding it is "'-x.jpg", and that less the mark "-x.jpg":
    both exist, so which the row meant cannot be told, and it labels neither, saying why."""
    folder = _jpegs(tmp_path / "faces", ["-x.jpg", "'-x.jpg", "c.jpg"])
    labels = _write_csv(tmp_path / "labels.csv", ["file", "gender"], [[" '-x.jpg", "male"], ["c.jpg", "female"]])
    read = read_folder(folder, labels)
    [(name, why)] = read.skipped
    assert name == " '-x.jpg" and "it may be any of 2 files: \"'-x.jpg\", '-x.jpg'" in why
    assert _labels(read) == {"-x.jpg": (None, None), "'-x.jpg": (None, None), "c.jpg": ("female", None)}


def test_a_name_with_a_line_break_is_refused_saying_what_to_do(tmp_path):
    """A row is one line (README): csv.writer quotes such a name over two lines, and the refusal had only spoken
    of a stray quote, which this is not."""
    folder = _jpegs(tmp_path / "faces", ["a.jpg", "b.jpg"])
    labels = _write_csv(tmp_path / "labels.csv", ["file", "gender"], [["a\nb.jpg", "male"], ["b.jpg", "female"]])
    with pytest.raises(BiasMirrorError, match=r"labels.csv: the labels CSV's line 2 has a quote .* runs on to line 3"
                                              r".*a file name with a line break.*rename the file"):
        read_folder(folder, labels)


def test_a_padded_bare_name_groups_its_image_in_a_subfolder(tmp_path, classifier, capsys):
    """A groups CSV written with a space after each comma names images in subfolders by their bare names: the name
    as written (" p1.jpg") named none of them, and the audit lost its grouping with a warning only (second look)."""
    folder = tmp_path / "data"
    _jpegs(folder / "a", ["p1.jpg", "p2.jpg", "p3.jpg"])
    _jpegs(folder / "b", ["x.jpg", "y.jpg", "z.jpg", "p4.jpg", "p5.jpg", "p6.jpg"])  # greys of their own
    for name in ("x.jpg", "y.jpg", "z.jpg"):
        (folder / "b" / name).unlink()
    groups = tmp_path / "groups.csv"
    groups.write_text("group, file\nG1, p1.jpg\nG1, p2.jpg\nG2, p4.jpg\nG2, p5.jpg\n", encoding="utf-8")
    code, err = _audit(capsys, folder, tmp_path / "out", classifier, "--groups", str(groups))
    assert code == 0 and "not in the folder" not in err and "2 image(s) not listed" in err, err
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["groups"]["sizes"]["group"] == {"(no group)": 2, "G1": 2, "G2": 2}


def test_a_bare_name_that_names_an_image_as_written_is_not_also_read_past_its_padding(tmp_path, classifier, capsys):
    """" p1.jpg" names a/ p1.jpg as written: read past its padding as well, it had named b/p1.jpg too, and the
    audit was refused as a name of two images (last read)."""
    folder = tmp_path / "data"
    _jpegs(folder / "a", [" p1.jpg", "q.jpg"])
    _jpegs(folder / "b", ["x.jpg", "y.jpg", "p1.jpg"])
    for name in ("x.jpg", "y.jpg"):
        (folder / "b" / name).unlink()
    groups = _write_csv(tmp_path / "groups.csv", ["file", "group"], [[" p1.jpg", "G1"]])
    code, err = _audit(capsys, folder, tmp_path / "out", classifier, "--groups", str(groups))
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["groups"]["sizes"]["group"] == {"(no group)": 2, "G1": 1}
