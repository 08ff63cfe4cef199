import csv
import os

import cv2
import numpy as np
import pytest

from inference.datasets import open_dataset, read_celeba, read_fairface, read_folder, read_utkface, select, split_of
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
    assert read.samples[0].attrs["Young"] == "1"


def test_fairface_reader(tmp_path):
    rows = [("train/1.jpg", "20-29", "Female", "Black"), ("train/2.jpg", "more than 70", "Male", "East Asian")]
    for f, *_ in rows:
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
    assert read.skipped == [("ghost.jpg", "listed in the CSV but not in the folder")]


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
