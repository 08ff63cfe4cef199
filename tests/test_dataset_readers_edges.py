"""Dataset readers at the edges a fuzzing review found: a labels CSV of a header only, a subfolder that cannot be
listed, CelebA's list naming its images with their folder's name, the training split left empty, macOS's "._"
files beside UTKFace's images, and FairFace rows naming images outside the dataset. Each had been read without a
word, lost from the report, or answered with advice that did not fit."""
import csv
import errno
import json
import os

import cv2
import numpy as np
import pytest

from inference.audit.cli import read_dataset
from inference.datasets import read_celeba, read_fairface, read_folder, read_utkface
from inference.datasets.fairface import OUTSIDE
from inference.datasets.folder import list_folder
from inference.errors import PERMISSION_DENIED, BiasMirrorError
from tests.conftest import run_main, utk_images
from training.tasks.classifier import list_faces


def _img(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((24, 24, 3), value, np.uint8))


# 1. a labels CSV with a header and no rows


@pytest.mark.parametrize("rows, said", [("", "has a header but no rows:"),
                                        (",male\n,female\n", "has a header but no rows naming a file (2 row(s)")])
def test_a_labels_csv_of_a_header_only_is_refused_naming_it(tmp_path, rows, said):
    """It had given an audit "(unlabelled)" with exit 0: no row matched, but only rows that matched nothing were
    refused. Its user asked for a labelled audit; without the CSV the folder is read unlabelled, as meant."""
    _img(tmp_path / "a.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,gender,race,age\n" + rows)
    with pytest.raises(BiasMirrorError) as caught:
        read_folder(tmp_path)
    assert str(caught.value).startswith(f"{labels}: the labels CSV {said}")
    labels.unlink()
    assert [s.gender for s in read_folder(tmp_path).samples] == [None]


# 2. a subfolder that cannot be listed


def _locked(monkeypatch, name):
    """os.scandir refusing the folders called ``name``, as a folder of mode 000 does to anyone but root (the tests
    may run as root, whom permissions do not stop)."""
    scandir = os.scandir

    def refusing(path="."):
        if os.path.basename(os.fspath(path)) == name:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)


def test_a_subfolder_that_cannot_be_listed_is_returned_with_why_and_noted_for_the_report(tmp_path, monkeypatch):
    """It had been named in one warning at the start of the audit, and in neither the summary nor report.json."""
    _img(tmp_path / "top.jpg")
    _img(tmp_path / "locked" / "inside.jpg")
    _locked(monkeypatch, "locked")
    listing = list_folder(tmp_path)
    assert listing.images == [tmp_path / "top.jpg"]
    assert listing.folders_not_read == [(tmp_path / "locked", PERMISSION_DENIED)]
    _, notes = read_dataset(f"folder:{tmp_path}", None, None)
    assert notes["folders_not_read"] == [{"folder": "locked", "why": PERMISSION_DENIED}]


def test_an_audits_report_and_summary_name_the_subfolders_it_could_not_list(tmp_path, tiny_models, monkeypatch,
                                                                             capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "face.png"), cv2.imread(str(utk_images(1)[0])))
    _img(photos / "locked" / "inside.jpg")
    _locked(monkeypatch, "locked")
    argv = ["audit", "--dataset", f"folder:{photos}", "--classifier", str(tiny_models["classifier"]), "--no-filter",
            "--aligned", "--no-progress", "--no-html", "--threads", "1", "--out", str(tmp_path / "out")]
    code, out, _ = run_main(argv, capsys)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["images"]["folders_not_read"] == [{"folder": "locked", "why": PERMISSION_DENIED}]
    line = f"1 folder(s) could not be listed, so the images in them were not audited: locked ({PERMISSION_DENIED})."
    assert line in report["summary"] and line in out
    (photos / "face.png").unlink()  # its only images are in the folder that cannot be listed
    code, _, err = run_main(argv, capsys)
    assert code == 2 and f"{photos}: the folder holds no images" in err and f"locked ({PERMISSION_DENIED})" in err


# 3. CelebA's list naming each image with its folder's name


def test_celeba_rows_naming_their_images_with_the_image_folders_name_read_those_images(tmp_path):
    """"img_align_celeba/000001.jpg", the file in img_align_celeba/: every row had been "not in the folder", with
    advice to move the images into img_align_celeba/, where they were."""
    images = tmp_path / "img_align_celeba"
    for name in ("000001.jpg", "000002.jpg"):
        _img(images / name)
    (tmp_path / "list_attr_celeba.txt").write_text(
        "2\nMale Pale_Skin\nimg_align_celeba/000001.jpg 1 -1\nimg_align_celeba/000002.jpg -1 1\n")
    (tmp_path / "list_eval_partition.txt").write_text("img_align_celeba/000001.jpg 0\n000002.jpg 2\n")
    read = read_celeba(tmp_path)
    assert read.skipped == []
    assert [(s.path, s.gender, s.partition) for s in read.samples] == [
        (str(images / "000001.jpg"), "male", "train"), (str(images / "000002.jpg"), "female", "test")]


# 4. a training split with no face in it


def test_a_training_split_with_no_labelled_face_is_said_empty_not_of_one_gender(tmp_path):
    """A labels.csv with split test on every row had been "the training split holds faces of one gender only
    (none)", sending its user to look for a gender that was there."""
    names = [f"{i}.jpg" for i in range(4)]
    for i, name in enumerate(names):
        _img(tmp_path / name, 40 * i)
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["file", "gender", "split"], *([n, ("male", "female")[i % 2], ("val", "test")[i % 2]]
                                                                 for i, n in enumerate(names))])
    with pytest.raises(BiasMirrorError) as caught:
        list_faces(f"folder:{tmp_path}", None, cache_dir=None)
    said = str(caught.value)
    assert said.startswith(f"{tmp_path}: the training split is empty") and "val or test" in said
    assert "one gender" not in said


# 5. macOS's "._" files beside UTKFace's images


def test_utkface_passes_over_macos_appledouble_files_as_the_folder_reader_does(tmp_path):
    """macOS writes "._NAME" beside each file it copies to a FAT, exFAT or SMB drive: they had been reported as
    images with bad names."""
    name = "20_1_0_20170109150557335.jpg.chip.jpg"
    _img(tmp_path / name)
    (tmp_path / f"._{name}").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    read = read_utkface(tmp_path)
    assert read.skipped == [] and [s.path for s in read.samples] == [str(tmp_path / name)]
    assert [p.name for p in list_folder(tmp_path).images] == [name]  # the folder reader's rule


# 6. FairFace rows naming images outside the dataset


def _fairface(root, rows):
    root.mkdir(parents=True, exist_ok=True)
    for part in ("train", "val"):
        with open(root / f"fairface_label_{part}.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([["file", "age", "gender", "race"],
                                      *([n, "20-29", "Female", "White"] for n, p in rows if p == part)])


def test_fairface_rows_naming_images_outside_the_dataset_are_skipped_as_such(tmp_path):
    """"../outside/1.jpg" and an absolute path elsewhere had audited those images, where the folder reader skips
    such rows; images reached through a link to a folder, which the listing lacks, are still read."""
    root, outside, linked = tmp_path / "fairface", tmp_path / "outside", tmp_path / "elsewhere"
    _img(outside / "1.jpg")
    _img(root / "train" / "2.jpg")
    _img(linked / "3.jpg")
    _fairface(root, [("../outside/1.jpg", "train"), (str(outside / "1.jpg"), "val"), ("train/2.jpg", "train"),
                     (str(root / "train" / "2.jpg"), "val"), ("val/3.jpg", "val")])
    (root / "val").symlink_to(linked, target_is_directory=True)
    read = read_fairface(root)
    assert sorted(read.skipped) == sorted([("../outside/1.jpg", OUTSIDE), (str(outside / "1.jpg"), OUTSIDE)])
    assert sorted(s.path for s in read.samples) == [str(root / "train" / "2.jpg"), str(root / "val" / "3.jpg")]
