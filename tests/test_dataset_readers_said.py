"""What the dataset readers say of what they could not read: every reason a row was skipped, a partition line or a
CSV column not understood, a folder one level off, images no label file names. Each had been passed over without a
word, or lost behind an error that named none of it."""
import csv
import logging
import os
import pathlib
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from inference.audit.cli import choose_samples
from inference.audit.groups import split
from inference.datasets import AGE_BANDS, read_celeba, read_fairface, read_folder
from inference.errors import BiasMirrorError
from inference.metrics import disaggregate, format_table

FAIRFACE_BANDS = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]


def _img(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((24, 24, 3), value, np.uint8))


CELEBA_ROWS = ("000001.jpg 1 -1 1", "000002.jpg -1 1 -1")


def _celeba(root, rows=CELEBA_ROWS, parts=("000001.jpg 0", "000002.jpg 2"), images="img_align_celeba",
            extra_images=()):
    for name in [r.split()[0] for r in rows] + list(extra_images):
        _img(root / images / name)
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    (root / "list_attr_celeba.txt").write_text("\n".join([str(len(rows)), "Male Pale_Skin Young", *rows]) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{p}\n" for p in parts))
    return root


def _fairface(root, train, val=(), csv_folder=None):
    for i, (name, *_) in enumerate([*train, *val]):
        _img(root / name, 10 + 20 * i)
    labels = csv_folder or root
    labels.mkdir(parents=True, exist_ok=True)
    for part, rows in (("train", train), ("val", val)):
        with open(labels / f"fairface_label_{part}.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([["file", "age", "gender", "race"], *rows])
    return labels


def _ff_row(i, band="20-29", part="train"):
    return (f"{part}/{i}.jpg", band, "Male" if i % 2 else "Female", "White")


# 1. a reader that skips every row says why in its error


def test_celeba_with_its_images_one_folder_deeper_names_the_folder_and_why_each_row_was_skipped(tmp_path):
    """Images one folder deeper than the lists say: the error said only "no labelled images", the reasons for every
    skipped row lost with the warning that never came. (Kaggle's own nesting, img_align_celeba/img_align_celeba/,
    is read: tests/test_dataset_real_layouts.py.)"""
    root = _celeba(tmp_path, images="img_align_celeba/faces")
    with pytest.raises(BiasMirrorError) as err:
        read_celeba(root)
    said = str(err.value)
    assert f"skipped {len(CELEBA_ROWS)} file(s)" in said
    assert "000001.jpg (listed in the labels but not in the folder)" in said
    assert "did you mean img_align_celeba/faces/?" in said


def test_celeba_with_every_value_unreadable_says_which_value(tmp_path):
    rows = ("000001.jpg 0 0 0", "000002.jpg 1 0 0")
    with pytest.raises(BiasMirrorError,
                       match=rf"skipped {len(rows)} file\(s\).*000001.jpg \(list_attr_celeba.txt:3: Male '0' "
                             r"\(expected 1 or -1\)\)"):
        read_celeba(_celeba(tmp_path, rows=rows))


def test_celeba_whose_header_names_the_image_column_says_so(tmp_path):
    root = _celeba(tmp_path)
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    lines[1] = "image_id " + lines[1]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(BiasMirrorError, match=r"expected 4 attributes, found 3\).*names 'image_id' first"):
        read_celeba(root)


def test_fairface_with_its_images_below_or_above_the_label_files_names_the_folder(tmp_path):
    rows = [_ff_row(1), _ff_row(2)]
    deeper = _fairface(tmp_path / "a" / "margin025", rows, csv_folder=tmp_path / "a")
    with pytest.raises(BiasMirrorError) as err:
        read_fairface(deeper)
    said = str(err.value)
    assert f"skipped {len(rows)} file(s)" in said and "train/1.jpg (listed in the labels but not in the folder)" in said
    assert "did you mean margin025/train/1.jpg?" in said and "move them into margin025/" in said
    above = _fairface(tmp_path / "b", rows, csv_folder=tmp_path / "b" / "labels")
    with pytest.raises(BiasMirrorError, match=r"did you mean \.\./train/1.jpg\?"):
        read_fairface(above)


# 2. CelebA's partition list


def test_a_celeba_partition_list_no_line_of_which_reads_is_refused_naming_a_line(tmp_path):
    """Kaggle's "image_id,partition" CSV renamed .txt had put every image in the hash split without a word."""
    root = _celeba(tmp_path, parts=("image_id,partition", "000001.jpg,0", "000002.jpg,2"))
    with pytest.raises(BiasMirrorError, match=r"list_eval_partition.txt: no line .* 'NAME 0\|1\|2' "
                                              r"\(e.g. line 1 'image_id,partition'\)"):
        read_celeba(root)


def test_celeba_partition_lines_it_cannot_read_and_images_with_none_are_warned_of(tmp_path, caplog):
    """A "3", a third field or a missing line had each sent an image to the hash split without a word."""
    rows = ("000001.jpg 1 -1 1", "000002.jpg -1 1 -1", "000003.jpg 1 1 1", "000004.jpg -1 -1 -1")
    parts = ("000001.jpg 0", "000002.jpg 3", "000004.jpg 1 extra")
    with caplog.at_level(logging.WARNING):
        read = read_celeba(_celeba(tmp_path, rows=rows, parts=parts))
    assert [s.partition for s in read.samples] == ["train", None, None, None]
    assert "2 line(s) not of the form 'NAME 0|1|2'" in caplog.text
    assert "line 2 '000002.jpg 3'" in caplog.text and "line 3 '000004.jpg 1 extra'" in caplog.text
    assert "3 image(s) of the attribute file have no partition" in caplog.text


# 3. a labels CSV the folder reader would read without any label


def test_a_labels_csv_with_no_known_label_column_is_warned_of_naming_the_columns(tmp_path, caplog):
    _img(tmp_path / "a.jpg")
    (tmp_path / "labels.csv").write_text("file,sex,ethnicity,age_years\na.jpg,female,White,30\n")
    with caplog.at_level(logging.WARNING):
        read = read_folder(tmp_path)
    assert read.samples[0].gender is None
    assert "its columns: file, sex, ethnicity, age_years; known: file, gender, race, age, split, group" in caplog.text


def test_label_columns_named_otherwise_beside_a_known_one_are_named_not_dropped_silently(tmp_path, caplog):
    """With "age" known beside "sex" and "ethnicity", the two were dropped without a word, and training then asked
    for a gender column the file had under another name."""
    _img(tmp_path / "a.jpg")
    (tmp_path / "labels.csv").write_text("file,sex,ethnicity,age,notes\na.jpg,female,White,30,x\n")
    with caplog.at_level(logging.WARNING):
        read = read_folder(tmp_path)
    assert read.samples[0].age == 30 and read.samples[0].gender is None
    assert "column(s) sex, ethnicity, notes not read" in caplog.text
    assert "perhaps sex → gender, ethnicity → race" in caplog.text


def test_a_labels_csv_of_known_columns_alone_says_nothing_of_columns(tmp_path, caplog):
    _img(tmp_path / "a.jpg")
    (tmp_path / "labels.csv").write_text("File,Gender,race\na.jpg,female,White\n")
    with caplog.at_level(logging.WARNING):
        read_folder(tmp_path)
    assert "not read" not in caplog.text and "no column but" not in caplog.text


def test_a_labels_csv_named_in_another_case_is_read_with_a_note(tmp_path, caplog):
    """Labels.csv was passed over on Linux (Windows and macOS read it): the audit ran unlabelled, exit 0."""
    _img(tmp_path / "a.jpg")
    (tmp_path / "Labels.csv").write_text("file,gender\na.jpg,female\n")
    with caplog.at_level(logging.WARNING):
        read = read_folder(tmp_path)
    assert read.samples[0].gender == "female"
    assert "Labels.csv: no labels.csv, read as the folder's labels CSV" in caplog.text


def test_quoted_header_names_after_a_space_are_read(tmp_path):
    _img(tmp_path / "a.jpg")
    (tmp_path / "labels.csv").write_text('"file" , "gender" , "race"\na.jpg , female , White\n')
    assert [(s.gender, s.race) for s in read_folder(tmp_path).samples] == [("female", "White")]


# 4. Excel's "sep=" line


def test_an_excel_sep_line_names_the_separator_and_rows_keep_their_line_numbers(tmp_path):
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "b.jpg", 40)
    (tmp_path / "labels.csv").write_text("sep=;\nfile;gender;age\na.jpg;female;30\nb.jpg;male;40\n")
    assert [(s.gender, s.age) for s in read_folder(tmp_path).samples] == [("female", 30), ("male", 40)]
    (tmp_path / "labels.csv").write_text("sep=;\nfile;gender\na.jpg;female\na.jpg;male\n")
    with pytest.raises(BiasMirrorError, match="'a.jpg' on rows 3 and 4 with different gender"):
        read_folder(tmp_path)


# 5. more cells than the header has columns


def test_a_row_with_more_cells_than_the_header_is_warned_of_naming_its_line(tmp_path, caplog):
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "b.jpg", 40)
    (tmp_path / "labels.csv").write_text("file,gender,group\na.jpg,male,Smith, John\nb.jpg,female,t1,\n")
    with caplog.at_level(logging.WARNING):
        read = read_folder(tmp_path)
    assert "1 row(s) have more cells than the header" in caplog.text and "line 2 ('John')" in caplog.text
    assert all(None not in s.attrs for s in read.samples)


# 6. --min-age on a dataset without ages


def test_the_audits_min_age_on_a_dataset_without_ages_says_it_has_none(tmp_path):
    read = read_celeba(_celeba(tmp_path))
    args = SimpleNamespace(split=None, min_age=18, limit=None)
    with pytest.raises(BiasMirrorError, match="--min-age 18 needs ages, and this dataset has none"):
        choose_samples(read, args)
    assert len(choose_samples(read, SimpleNamespace(split=None, min_age=None, limit=None))) == len(read.samples)


# 7. age bands in order


def test_fairface_age_bands_are_in_age_order_in_every_table(tmp_path):
    """Sorted as text, "10-19" had come before "3-9" in report.json, the audit's tables and train evaluate's."""
    shuffled = sorted(FAIRFACE_BANDS)
    assert shuffled != FAIRFACE_BANDS  # the order text gives is not the ages' order
    labels = shuffled + ["unknown"]
    n = len(labels)
    metrics = disaggregate([0] * n, [0] * n, [0.1] * n, {"age_band": labels})
    assert list(metrics.by["age_band"]) == FAIRFACE_BANDS + ["unknown"]
    table = format_table({"m": metrics}, "age_band")
    assert [line.split()[0] for line in table.splitlines()
            if line.split() and line.split()[0] in labels[:-1] + ["more"]] == [b.split()[0] for b in FAIRFACE_BANDS]
    assert list(split([{}] * n, labels)) == FAIRFACE_BANDS + ["unknown"]
    utk = [name for _, _, name in AGE_BANDS]
    assert list(disaggregate([0] * len(utk), [0] * len(utk), [0.1] * len(utk),
                             {"age_band": utk[::-1]}).by["age_band"]) == utk
    # and where the report, the summary and a card list groups again
    from inference.audit.summary import tied_groups
    from inference.card_fields import CardNotes
    from inference.card_markdown import _metric_rows

    cell = {"value": 0.5, "lo": 0.4, "hi": 0.6, "n": 10}
    by = {b: {"accuracy": cell, "fpr": cell, "fnr": cell, "n": 10} for b in shuffled}
    assert tied_groups(by, "accuracy", "0-2")[0] == FAIRFACE_BANDS
    rows = _metric_rows({"age_band": by}, "age_band", CardNotes())
    assert [row.split(" | ")[0].lstrip("| ") for row in rows[2:]] == FAIRFACE_BANDS


# 8. paths with backslashes, and images no label file names


def test_fairface_paths_with_backslashes_name_their_files(tmp_path):
    root = _fairface(tmp_path, [_ff_row(1), _ff_row(2)])
    text = (root / "fairface_label_train.csv").read_text().replace("train/1.jpg", "train\\1.jpg")
    (root / "fairface_label_train.csv").write_text(text)
    read = read_fairface(root)
    assert read.skipped == [] and sorted(os.path.relpath(s.path, root) for s in read.samples) == [
        os.path.join("train", "1.jpg"), os.path.join("train", "2.jpg")]


def test_images_no_label_file_names_are_warned_of(tmp_path, caplog):
    celeba = _celeba(tmp_path / "c", extra_images=["000100.jpg"])
    ff = _fairface(tmp_path / "f", [_ff_row(1)])
    _img(ff / "train" / "500.jpg", 200)
    with caplog.at_level(logging.WARNING):
        assert len(read_celeba(celeba).samples) == len(CELEBA_ROWS)
        assert len(read_fairface(ff).samples) == 1
    assert ("1 image(s) in the folder are not in list_attr_celeba.txt, skipped (no labels), e.g. 000100.jpg"
            in caplog.text)
    assert "1 image(s) in the folder are not in fairface_label_train.csv and fairface_label_val.csv" in caplog.text
    assert "train/500.jpg" in caplog.text


def test_celeba_lists_its_image_folder_once_rather_than_looking_up_each_image(tmp_path, monkeypatch):
    """The real CelebA lists 202,599 images: one look-up each is as many calls to the file system."""
    root = _celeba(tmp_path)
    images = str(root / "img_align_celeba")
    for method in ("exists", "is_file", "stat"):
        original = getattr(pathlib.Path, method)

        def looked_up(self, *a, _original=original, _method=method, **k):
            assert not str(self).startswith(images + os.sep), f"{_method}({self}) looked up an image"
            return _original(self, *a, **k)

        monkeypatch.setattr(pathlib.Path, method, looked_up)
    assert len(read_celeba(root).samples) == len(CELEBA_ROWS)


# 9. quoted fields after ", ", an age band not read, and the split a card names


def _quoted_after_spaces(rows) -> str:
    """A CSV as some tools write it: '"file", "gender"', each field quoted, the separator ", "."""
    return "".join(", ".join(f'"{cell}"' for cell in row) + "\n" for row in rows)


def test_a_labels_csv_of_quoted_fields_after_spaces_keeps_its_labels(tmp_path, caplog):
    """The header's quotes were taken off, the values kept theirs ('"Female"' not understood): every label was lost
    and the audit run unlabelled, exit 0. A quoted comma is a value's, not a separator."""
    _img(tmp_path / "a.jpg")
    labels = [("female", "White", "30", "Smith, John")]
    (tmp_path / "labels.csv").write_text(_quoted_after_spaces([("file", "gender", "race", "age", "group"),
                                                               ("a.jpg", *labels[0])]))
    with caplog.at_level(logging.WARNING):
        read = read_folder(tmp_path)
    assert [(s.gender, s.race, str(s.age), s.group) for s in read.samples] == labels
    assert "not understood" not in caplog.text and "more cells" not in caplog.text


def test_fairface_label_files_of_quoted_fields_after_spaces_are_read(tmp_path):
    train, val = [_ff_row(1), _ff_row(2)], [_ff_row(3, part="val")]
    root = _fairface(tmp_path, train, val)
    for part, rows in (("train", train), ("val", val)):
        (root / f"fairface_label_{part}.csv").write_text(_quoted_after_spaces([("file", "age", "gender", "race"),
                                                                               *rows]))
    read = read_fairface(root)
    assert read.skipped == []
    assert sorted((os.path.relpath(s.path, root).replace(os.sep, "/"), s.age_bin, s.gender.capitalize(), s.race)
                  for s in read.samples) == sorted([*train, *val])


def test_a_fairface_age_band_it_cannot_read_is_warned_of_naming_the_label_file_line_and_value(tmp_path, caplog):
    """The face was kept without an age, as the folder reader keeps one, but where the folder reader says so FairFace
    had said nothing."""
    unread = _ff_row(2, band="unknown", part="val")
    val = [_ff_row(1, part="val"), unread]
    root = _fairface(tmp_path, [_ff_row(3)], val)
    with caplog.at_level(logging.WARNING):
        read = read_fairface(root)
    line = 2 + val.index(unread)  # the header is line 1
    assert f"{unread[0]} (fairface_label_val.csv:{line}): age 'unknown' (expected a band such as" in caplog.text
    assert "1 label(s) not understood and ignored" in caplog.text
    assert [s.age for s in read.samples if s.path.endswith(unread[0])] == [None]


def test_the_split_a_fairface_card_names_says_val_is_hashed_out_of_train(tmp_path):
    """FairFace's val partition is our test, and our val a hash of file name over its train: the card called all
    of it "the dataset's own split labels"."""
    from inference.datasets.splits import split_rule

    read = read_fairface(_fairface(tmp_path, [_ff_row(1), _ff_row(2)], [_ff_row(3, part="val")]))
    rule = split_rule(read.samples)
    assert "own split labels" not in rule and "hash of file name" in rule and "its val as test" in rule
    _img(tmp_path / "folder" / "a.jpg")
    (tmp_path / "folder" / "labels.csv").write_text("file,split\na.jpg,test\n")
    assert split_rule(read_folder(tmp_path / "folder").samples) == "the dataset's own split labels"
