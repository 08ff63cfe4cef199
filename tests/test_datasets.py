import csv
import os
import unicodedata

import cv2
import numpy as np
import pytest

from inference.datasets import (Sample, open_dataset, read_celeba, read_fairface, read_folder, read_utkface, select,
                                split_of)
from inference.datasets.splits import hash_fraction
from inference.errors import BiasMirrorError
from tests.conftest import require_utk


def _img(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((24, 24, 3), value, np.uint8))


def test_utkface_reader_parses_names_and_counts_malformed(tmp_path):
    for name in ["25_1_1_20170101000000001.jpg.chip.jpg", "70_0_3_20170101000000002.jpg.chip.jpg",
                 "39_1_20170116174525125.jpg.chip.jpg", "x_0_0_2017.jpg.chip.jpg", "116_1_0_20170101000000003.jpg.chip.jpg",
                 "200_1_0_20170101000000004.jpg.chip.jpg"]:
        _img(tmp_path / name)
    read = read_utkface(tmp_path)
    assert [(s.age, s.gender, s.race) for s in read.samples] == [
        (116, "female", "White"), (25, "female", "Black"), (70, "male", "Indian")]
    assert dict(read.skipped) == {"39_1_20170116174525125.jpg.chip.jpg": "expected 4 underscore-separated fields, found 3",
                                  "x_0_0_2017.jpg.chip.jpg": "age, gender or race field is not a valid code",
                                  "200_1_0_20170101000000004.jpg.chip.jpg": "age 200 is beyond UTKFace's 0–116"}


def test_utkface_reader_on_shared_copy():
    root = require_utk()
    read = read_utkface(root.parent)  # the parent holding UTKFace/ works too
    assert len(read.samples) + len(read.skipped) == 21336
    assert len(read.skipped) == 3
    assert all("expected 4" in why for _, why in read.skipped)


def test_missing_or_empty_dataset_names_path_and_layout(tmp_path):
    with pytest.raises(BiasMirrorError, match="does not exist.*expected"):
        read_utkface(tmp_path / "nope")
    with pytest.raises(BiasMirrorError, match=str(tmp_path)):
        read_utkface(tmp_path)
    with pytest.raises(BiasMirrorError, match="KIND:PATH"):
        open_dataset("mnist:/x")


def test_celeba_reader(tmp_path):
    for i in (1, 2, 3):
        _img(tmp_path / "img_align_celeba" / f"{i:06d}.jpg")
    (tmp_path / "list_attr_celeba.txt").write_text(
        "3\nMale Pale_Skin Young\n000001.jpg 1 -1 1\n000002.jpg -1 1 -1\n000003.jpg -1 -1 1\n")
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n")
    read = read_celeba(tmp_path)
    assert [(s.gender, s.race, split_of(s)) for s in read.samples] == [
        ("male", "not_pale", "train"), ("female", "pale", "val"), ("female", "not_pale", "test")]
    assert not read.samples[0].attrs  # CelebA's 40 attributes a face, read nowhere, are not kept (~460 MB)


def test_fairface_reader(tmp_path):
    rows = [("train/1.jpg", "20-29", "Female", "Black"), ("train/2.jpg", "more than 70", "Male", "East Asian")]
    for f in [r[0] for r in rows] + ["val/1.jpg"]:
        _img(tmp_path / f)
    with open(tmp_path / "fairface_label_train.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "age", "gender", "race", "service_test"])
        w.writerows([(*r, "True") for r in rows])
    with open(tmp_path / "fairface_label_val.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["file", "age", "gender", "race"], ["val/1.jpg", "3-9", "Male", "White"]])
    read = read_fairface(tmp_path)
    assert [(s.gender, s.race, s.age) for s in read.samples] == [
        ("female", "Black", 20), ("male", "East Asian", 70), ("male", "White", 3)]
    assert read.samples[2].partition == "test"


def test_folder_reader_with_and_without_csv(tmp_path):
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "sub" / "b.png")
    plain = read_folder(tmp_path)
    assert len(plain.samples) == 2 and all(s.gender is None for s in plain.samples)
    (tmp_path / "labels.csv").write_text("file,gender,race,age,group\na.jpg,female,Black,30,team\nghost.jpg,male,,,\n")
    read = read_folder(tmp_path)
    a = next(s for s in read.samples if s.path.endswith("a.jpg"))
    assert (a.gender, a.race, a.age, a.group) == ("female", "Black", 30, "team")
    assert read.skipped == [("ghost.jpg", "listed in the labels but not in the folder")]


def test_split_is_stable_and_depends_only_on_file_name(tmp_path):
    names = [f"{20 + i % 50}_{i % 2}_{i % 5}_2017{i:013d}.jpg.chip.jpg" for i in range(400)]
    for n in names[:200]:
        _img(tmp_path / "a" / n)
    for n in names:
        _img(tmp_path / "b" / n)
    before = {os.path.basename(s.path): split_of(s) for s in read_utkface(tmp_path / "a").samples}
    after = {os.path.basename(s.path): split_of(s) for s in read_utkface(tmp_path / "b").samples}
    assert all(after[n] == s for n, s in before.items())  # adding files moves nothing
    counts = {k: list(after.values()).count(k) for k in ("train", "val", "test")}
    assert 280 <= counts["train"] <= 360 and counts["val"] > 15 and counts["test"] > 15
    assert 0 <= hash_fraction("x") < 1


def test_select_filters_by_age_and_split(tmp_path):
    for n in ["10_0_0_20170101000000001.jpg.chip.jpg", "30_1_0_20170101000000002.jpg.chip.jpg"]:
        _img(tmp_path / n)
    read = read_utkface(tmp_path)
    assert [s.age for s in select(read.samples, min_age=18)] == [30]


def _photos(tmp_path, names=("f.jpg", "g.jpg")):
    root = tmp_path / "photos"
    root.mkdir()
    for n in names:
        cv2.imwrite(str(root / n), np.full((8, 8, 3), 128, np.uint8))
    return root


def test_a_labels_csv_that_gives_one_image_two_labels_is_refused(tmp_path):
    root = _photos(tmp_path)
    (root / "labels.csv").write_text("file,gender\nf.jpg,female\ng.jpg,male\nf.jpg,male\n")
    with pytest.raises(BiasMirrorError) as err:
        read_folder(root)
    text = str(err.value)
    assert str(root / "labels.csv") in text and "'f.jpg'" in text and "rows 2 and 4" in text and "gender" in text


def test_an_identical_repeat_in_a_labels_csv_is_kept_once_with_a_warning(tmp_path, caplog):
    root = _photos(tmp_path)
    (root / "labels.csv").write_text("file,gender\nf.jpg,female\nf.jpg,female\ng.jpg,male\n")
    read = read_folder(root)
    assert sorted(s.gender for s in read.samples) == ["female", "male"]
    assert "f.jpg (rows 2 and 3)" in caplog.text
    caplog.clear()  # rows with no file name list nothing, so they repeat nothing either
    (root / "labels.csv").write_text("file,gender\n,female\n,male\nf.jpg,female\ng.jpg,male\n")
    read = read_folder(root)
    assert sorted(s.gender for s in read.samples) == ["female", "male"] and "repeat a file" not in caplog.text


def test_a_utkface_name_with_a_superscript_digit_is_skipped_as_malformed(tmp_path):
    """str.isdigit takes "²", which int() refuses: the reader crashed with a ValueError."""
    for name in ["²5_0_0_20170101000000001.jpg.chip.jpg", "25_0_²_20170101000000002.jpg.chip.jpg",
                 "25_0_0_20170101000000003.jpg.chip.jpg"]:
        _img(tmp_path / name)
    read = read_utkface(tmp_path)
    assert [s.age for s in read.samples] == [25]
    assert sorted(n for n, _ in read.skipped) == ["25_0_²_20170101000000002.jpg.chip.jpg",
                                                  "²5_0_0_20170101000000001.jpg.chip.jpg"]


def _celeba(root, attrs="Male Pale_Skin Young", rows=("000001.jpg 1 -1 1", "000002.jpg -1 1 -1"),
            parts=("000001.jpg 0", "000002.jpg 2"), bom=""):
    for name in {r.split()[0] for r in rows}:
        _img(root / "img_align_celeba" / name)
    (root / "list_attr_celeba.txt").write_text(bom + "\n".join([str(len(rows)), attrs, *rows]) + "\n", encoding="utf-8")
    (root / "list_eval_partition.txt").write_text(bom + "\n".join(parts) + "\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("column", ["Male", "Pale_Skin"])
def test_a_celeba_attribute_file_without_male_or_pale_skin_is_refused_by_name(tmp_path, column):
    """Without Male every face read as female, without Pale_Skin as not pale."""
    attrs = " ".join(a for a in ("Male", "Pale_Skin", "Young") if a != column)
    root = _celeba(tmp_path, attrs, ("000001.jpg 1 1", "000002.jpg -1 -1"))
    with pytest.raises(BiasMirrorError, match=f"list_attr_celeba.txt: the attribute file has no {column} column"):
        read_celeba(root)


def test_celeba_lists_that_begin_with_a_bom_keep_the_first_image_and_its_partition(tmp_path):
    read = read_celeba(_celeba(tmp_path, bom="\ufeff"))
    assert [(os.path.basename(s.path), s.partition) for s in read.samples] == [("000001.jpg", "train"),
                                                                              ("000002.jpg", "test")]


def test_celeba_repeats_are_kept_once_and_conflicting_ones_refused(tmp_path):
    rows = ("000001.jpg 1 -1 1", "000002.jpg -1 1 -1", "000001.jpg 1 -1 1")
    read = read_celeba(_celeba(tmp_path / "same", rows=rows))
    assert [os.path.basename(s.path) for s in read.samples] == ["000001.jpg", "000002.jpg"]
    with pytest.raises(BiasMirrorError, match="'000001.jpg' on rows 3 and 5 with different Male"):
        read_celeba(_celeba(tmp_path / "other", rows=(*rows[:2], "000001.jpg -1 -1 1")))
    with pytest.raises(BiasMirrorError, match="list_eval_partition.txt: .*'000002.jpg' .* different partition"):
        read_celeba(_celeba(tmp_path / "parts", parts=("000001.jpg 0", "000002.jpg 0", "000002.jpg 2")))


def _fairface(root, train, val):
    for i, (name, *_) in enumerate(train + val):
        _img(root / name, 10 + 20 * i)  # of different bytes: copies are another matter (test_copies)
    for part, rows in (("train", train), ("val", val)):
        with open(root / f"fairface_label_{part}.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([["file", "age", "gender", "race"], *rows])
    return root


def test_fairface_repeats_count_once_in_one_split_and_conflicting_ones_are_refused(tmp_path, caplog):
    """A repeated row had counted an image twice, kept both of two genders, and put a file listed in both label
    files in train and in test."""
    a, b = ("train/1.jpg", "20-29", "Male", "White"), ("train/2.jpg", "30-39", "Female", "Black")
    read = open_dataset(f"fairface:{_fairface(tmp_path / 'ok', [a, b, a], [b])}", cache_dir=tmp_path / "cache")
    assert sorted(os.path.basename(s.path) for s in read.samples) == ["1.jpg", "2.jpg"]
    assert "test" not in {split_of(s) for s in read.samples}  # train/2.jpg, in both files, is trained on
    assert "take it from a copy" not in caplog.text and "in both label files" in caplog.text
    with pytest.raises(BiasMirrorError, match="'train/1.jpg' on rows 2 and 3 with different gender"):
        read_fairface(_fairface(tmp_path / "two", [a, (*a[:2], "Female", a[3])], []))
    with pytest.raises(BiasMirrorError, match="'train/2.jpg' is in both .* with different race"):
        read_fairface(_fairface(tmp_path / "both", [a, b], [(*b[:3], "White")]))


def test_case_variants_of_a_race_are_one_group_and_split_values_match_any_case(tmp_path):
    """"white" and "White" had been two groups in every table and balanced mix, and "Train" fell back to the hash."""
    root = tmp_path / "f"
    for i in range(6):
        _img(root / f"{i}.jpg")
    (root / "labels.csv").write_text("file,gender,race,split\n0.jpg,male,white,Train\n1.jpg,female,White,TEST\n"
                                     "2.jpg,male,WHITE,val\n3.jpg,male,latino,train\n4.jpg,male,Latino,train\n"
                                     "5.jpg,male,Latino,train\n")
    read = read_folder(root)
    assert [(s.race, s.partition) for s in read.samples] == [
        ("White", "train"), ("White", "test"), ("White", "val"), ("Latino", "train"), ("Latino", "train"),
        ("Latino", "train")]
    a, b = ("train/1.jpg", "20-29", "Male", "east asian"), ("train/2.jpg", "30-39", "Female", "East Asian")
    assert {s.race for s in read_fairface(_fairface(tmp_path / "ff", [a, b], [])).samples} == {"East Asian"}


def test_file_names_in_nfd_on_disk_match_nfc_labels_and_split_alike(tmp_path, caplog):
    """macOS stores "é" decomposed, a spreadsheet types it composed: every label was dropped, and the two spellings
    of one name hashed to different splits."""
    composed = [f"Jos\u00e9_{i}.jpg" for i in range(8)]
    for name in composed:
        _img(tmp_path / unicodedata.normalize("NFD", name))
    (tmp_path / "labels.csv").write_text("file,gender\n" + "".join(f"{n},female\n" for n in composed),
                                         encoding="utf-8")
    read = read_folder(tmp_path)
    assert [s.gender for s in read.samples] == ["female"] * 8 and read.skipped == []
    assert "not in the CSV" not in caplog.text
    assert all(hash_fraction(unicodedata.normalize("NFD", n)) == hash_fraction(n) for n in composed)


def test_celeba_and_fairface_files_absent_on_disk_are_listed_but_missing(tmp_path):
    """They had been read as images and counted unreadable; the folder reader names them as listed but missing."""
    root = _celeba(tmp_path / "c")
    (root / "img_align_celeba" / "000002.jpg").unlink()
    assert read_celeba(root).skipped == [("000002.jpg", "listed in the labels but not in the folder")]
    root = _fairface(tmp_path / "ff", [("train/1.jpg", "20-29", "Male", "White")], [("val/1.jpg", "3-9", "Male", "")])
    (root / "val" / "1.jpg").unlink()
    assert read_fairface(root).skipped == [("val/1.jpg", "listed in the labels but not in the folder")]


def test_fairface_rows_without_a_file_are_each_skipped_and_a_superscript_age_is_no_age(tmp_path):
    """Rows naming no file were counted as one skip; an age band "²0-29" was a ValueError traceback."""
    for f in ("train/1.jpg", "train/2.jpg", "val/1.jpg"):
        _img(tmp_path / f)
    with open(tmp_path / "fairface_label_train.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["file", "age", "gender", "race"], ["train/1.jpg", "²0-29", "Male", "White"],
                                  ["", "20-29", "Male", "White"], ["train/2.jpg", "30-39", "Female", "Black"],
                                  ["", "20-29", "Female", "White"]])
    with open(tmp_path / "fairface_label_val.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["file", "age", "gender", "race"], ["val/1.jpg", "3-9", "Male", "White"]])
    read = read_fairface(tmp_path)
    assert {s.path.split("/")[-2] + "/" + s.path.split("/")[-1]: s.age for s in read.samples} == {
        "train/1.jpg": None, "train/2.jpg": 30, "val/1.jpg": 3}
    assert sorted(read.skipped) == [("fairface_label_train.csv:3", "the row names no file"),
                                    ("fairface_label_train.csv:5", "the row names no file")]


def test_a_celeba_male_or_pale_skin_other_than_1_or_minus_1_is_skipped_naming_the_value(tmp_path):
    """Any Male value but "1" had read as female, any Pale_Skin but "1" as not pale: a "0" or a typo mislabelled
    the face instead of leaving it out."""
    rows = ("000001.jpg 1 -1 1", "000002.jpg 0 -1 1", "000003.jpg -1 yes 1", "000004.jpg -1 1 1")
    parts = tuple(f"{r.split()[0]} 0" for r in rows)
    read = read_celeba(_celeba(tmp_path, rows=rows, parts=parts))
    assert [(os.path.basename(s.path), s.gender, s.race) for s in read.samples] == [
        ("000001.jpg", "male", "not_pale"), ("000004.jpg", "female", "pale")]
    assert sorted(read.skipped) == [("000002.jpg", "list_attr_celeba.txt:4: Male '0' (expected 1 or -1)"),
                                    ("000003.jpg", "list_attr_celeba.txt:5: Pale_Skin 'yes' (expected 1 or -1)")]


def test_blank_lines_in_the_celeba_attribute_file_are_no_skipped_images(tmp_path):
    """A trailing blank line, or one a CRLF file leaves, had been a skipped image named "?" ("expected 40
    attributes") in evaluate's warning, an audit's reader_skipped and a card's bad_names_skipped."""
    root = _celeba(tmp_path)
    (root / "list_attr_celeba.txt").write_bytes(b"2\r\nMale Pale_Skin Young\r\n000001.jpg 1 -1 1\r\n\r\n"
                                                b"000002.jpg -1 1 -1\r\n \t\r\n\r\n\n")
    read = read_celeba(root)
    assert len(read.samples) == 2 and read.skipped == []


def test_labels_csv_names_with_backslashes_or_absolute_paths_label_their_files_and_bare_names_say_which(tmp_path):
    """`female\\2.jpg` (a CSV written on Windows), an absolute path inside the folder and a bare name were all
    "listed in the labels but not in the folder", and the audit ran unlabelled."""
    root = tmp_path / "f"
    for rel in ("male/1.jpg", "female/2.jpg", "male/3.jpg", "female/3.jpg", "male/4.jpg", "top.jpg"):
        _img(root / rel)
    (root / "labels.csv").write_text("file,gender\nmale\\1.jpg,male\n" f"{root / 'female' / '2.jpg'},female\n"
                                     "3.jpg,male\n4.jpg,male\ntop.jpg,female\nghost.jpg,female\nmale/9/4.jpg,male\n")
    read = read_folder(root)
    assert {os.path.relpath(s.path, root): s.gender for s in read.samples} == {
        "male/1.jpg": "male", "female/2.jpg": "female", "male/3.jpg": None, "female/3.jpg": None,
        "male/4.jpg": None, "top.jpg": "female"}
    assert read.skipped == [
        ("3.jpg", "not a path relative to the folder; 2 files are named '3.jpg': female/3.jpg, male/3.jpg"),
        ("4.jpg", "not a path relative to the folder; did you mean male/4.jpg?"),
        ("ghost.jpg", "listed in the labels but not in the folder"),
        ("male/9/4.jpg", "listed in the labels but not in the folder; did you mean male/4.jpg?")]
    (root / "labels.csv").write_text("file,gender\nmale/1.jpg,male\nmale\\1.jpg,female\n")
    with pytest.raises(BiasMirrorError, match=r"labels.csv: the labels CSV lists 'male/1.jpg' twice, as 'male/1.jpg' "
                                              r"and 'male\\\\1.jpg'"):
        read_folder(root)


def test_fairface_age_bins_are_the_samples_age_band_for_every_table_and_mix(tmp_path):
    """A FairFace "40-49" face, aged 40 by its bin's lower bound, had been in the project's "30-44" band: per-age
    tables labelled "30-44" held 40–49-year-olds. Datasets that give an age keep the project's bands."""
    from training.data.compose import cell_of
    from training.evaluate import _groups

    rows = [("train/1.jpg", "40-49", "Male", "White"), ("train/2.jpg", "more than 70", "Female", "Black"),
            ("train/3.jpg", "²0-29", "Female", "Black"), ("train/4.jpg", "", "Male", "Black")]
    read = read_fairface(_fairface(tmp_path, rows, []))
    assert [(s.age, s.age_band) for s in read.samples] == [(40, "40-49"), (70, "more than 70"), (None, None),
                                                            (None, None)]
    assert [s.age for s in select(read.samples, min_age=40)] == [40, 70]
    assert [cell_of(s, ["age_band"]) for s in read.samples[:2]] == ["40-49", "more than 70"]
    assert _groups(read.samples[:2])["age_band"] == ["40-49", "more than 70"]
    assert Sample("x.jpg", age=40).age_band == "30-44"


def test_a_fairface_gender_it_cannot_use_is_skipped_naming_the_value(tmp_path):
    """It was "missing file or gender", of a row that named its file and gave gender "unknown"."""
    rows = [("train/1.jpg", "20-29", "Male", "White"), ("train/2.jpg", "20-29", "unknown", "White"),
            ("train/3.jpg", "20-29", "", "White")]
    read = read_fairface(_fairface(tmp_path, rows, []))
    assert sorted(read.skipped) == [("train/2.jpg", "fairface_label_train.csv:3: gender 'unknown' (expected Male or "
                                                    "Female)"),
                                    ("train/3.jpg", "fairface_label_train.csv:4: gender '' (expected Male or Female)")]


def test_the_card_counts_unusable_label_rows_apart_from_bad_names(tmp_path):
    """CelebA's and FairFace's unusable label rows were counted under bad_names_skipped, which UTKFace's file names
    (its labels) are; a folder's bare-name rows are listed files the folder lacks as given."""
    from training.tasks.classifier import reading_filters

    root = _celeba(tmp_path / "c", rows=("000001.jpg 1 -1 1", "000002.jpg 0 -1 1", "000003.jpg 1 -1"),
                   parts=("000001.jpg 0", "000002.jpg 0", "000003.jpg 0"))
    filters = reading_filters(read_celeba(root), None, 0)
    assert filters["bad_names_skipped"] == 0 and filters["unusable_labels_skipped"] == 2
    folder = tmp_path / "f"
    _img(folder / "male" / "1.jpg")
    _img(folder / "male" / "2.jpg")
    (folder / "labels.csv").write_text("file,gender\n1.jpg,male\nmale/2.jpg,male\n")
    filters = reading_filters(read_folder(folder), None, 0)
    assert (filters["bad_names_skipped"], filters["listed_not_in_folder"]) == (0, 1)
    assert "unusable_labels_skipped" not in filters


def test_a_labels_csv_that_names_no_image_of_the_folder_is_refused(tmp_path):
    """A labels CSV of bare names (or another folder's) labelled nothing, and the audit ran "(unlabelled)" with
    exit 0: every row skipped in a warning the user may not read."""
    for rel in ("male/1.jpg", "female/2.jpg"):
        _img(tmp_path / rel)
    (tmp_path / "labels.csv").write_text("file,gender\n1.jpg,male\n2.jpg,female\n")
    with pytest.raises(BiasMirrorError, match=r"labels.csv: none of its 2 row\(s\) names an image of the folder .*"
                                              r"'1.jpg': not a path relative to the folder; did you mean male/1.jpg\?"):
        read_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("file,gender\nmale/1.jpg,male\n2.jpg,female\n")  # one row labels: read
    assert sorted(s.gender or "-" for s in read_folder(tmp_path).samples) == ["-", "male"]


def test_a_folder_is_read_through_links_to_folders_once_each_and_broken_links_and_hidden_files_are_not_images(
        tmp_path, caplog):
    """A folder made of links to others (one per session) lost their images without a word; a link leading nowhere
    was dropped silently; macOS's "._a.jpg" sidecars on a shared drive read as unreadable images."""
    elsewhere, root = tmp_path / "sessions" / "monday", tmp_path / "faces"
    _img(elsewhere / "m.jpg")
    _img(root / "a.jpg")
    (root / "._a.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / "monday").symlink_to(elsewhere, target_is_directory=True)
    (root / "again").symlink_to(elsewhere, target_is_directory=True)  # the same folder by two links: read once
    (root / "loop").symlink_to(root, target_is_directory=True)  # back up the tree: not walked again
    _img(root / "session_02" / "s.jpg")
    (root / "current").symlink_to(root / "session_02", target_is_directory=True)  # within: read as session_02/s.jpg
    _img(root / ".store" / "v2" / "h.jpg")
    (root / "photos").symlink_to(root / ".store" / "v2", target_is_directory=True)  # within, but hidden: read so
    (root / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with caplog.at_level("WARNING"):
        read = read_folder(root)
    assert sorted(os.path.relpath(s.path, root) for s in read.samples) == ["a.jpg", "again/m.jpg", "photos/h.jpg",
                                                                            "session_02/s.jpg"]
    assert "1 link(s) to images that do not exist, skipped, e.g. gone.jpg" in caplog.text


def test_a_labels_row_naming_a_heic_of_the_folder_says_it_is_there_but_cannot_be_read(tmp_path):
    """A row naming the folder's IMG_0001.HEIC was "listed in the labels but not in the folder": its user went
    looking for a file that was there."""
    _img(tmp_path / "a.jpg")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    (tmp_path / "labels.csv").write_text("file,gender\na.jpg,male\nsub/IMG_0001.HEIC,female\n"
                                         "sub\\IMG_0001.HEIC,female\nIMG_0009.HEIC,male\n")
    skipped = dict(read_folder(tmp_path).skipped)
    there = "in the folder, but a HEIC photo, a type that cannot be read here; convert it (e.g. to JPEG)"
    assert skipped == {"sub/IMG_0001.HEIC": there, "sub\\IMG_0001.HEIC": there,
                       "IMG_0009.HEIC": "listed in the labels but not in the folder"}


@pytest.mark.parametrize("header, sep", [("File,Gender,Race,Age", ","), ("file;gender;race;age", ";"),
                                         ("FILE\tGender\tRACE\tAge", "\t"), (" File , gender , Race , AGE ", ",")])
def test_a_spreadsheets_labels_csv_is_read_whatever_its_columns_case_and_separator(tmp_path, header, sep):
    """"File,Gender,Race,Age" had every label dropped without a word (the folder trained as unlabelled, or was refused
    as lacking ages); a European Excel's "file;gender;race;age" read as one column, "no 'file' column"."""
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), np.full((8, 8, 3), 99, np.uint8))
    rows = [["a.png", "female", "Asian", "31"], ["b.png", "male", "White", "40"]]
    (tmp_path / "labels.csv").write_text("\n".join([header, *(sep.join(r) for r in rows)]) + "\n", encoding="utf-8")
    read = read_folder(tmp_path)
    got = sorted((os.path.basename(s.path), s.gender, s.race, s.age) for s in read.samples)
    assert got == [("a.png", "female", "Asian", 31), ("b.png", "male", "White", 40)] and read.skipped == []


def test_a_labels_csv_naming_a_column_twice_in_two_cases_is_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((8, 8, 3), 99, np.uint8))
    (tmp_path / "labels.csv").write_text("file,Gender,gender\na.png,female,male\n", encoding="utf-8")
    with pytest.raises(BiasMirrorError, match=r"labels.csv: the labels CSV has column 'gender' twice"):
        read_folder(tmp_path)
