"""Datasets as their real downloads lay them out and frame them: CelebA's official Google Drive layout, torchvision's
celeba/ folder and Kaggle's CSV copy (each had been refused); CelebA's 178×218 faces centre-cropped, not squashed, in
the audit's crop and training's decoded faces alike; FairFace's padding-1.25 release told apart from tight crops; a
stray quote in a label CSV refused at its line (it had swallowed every later row); CelebA's unused attributes not
kept; malformed rows named by file and line; an age bar that cuts through FairFace's bands said."""
import csv
import logging
import os

import cv2
import numpy as np
import pytest

from inference.datasets import read_celeba, read_fairface, read_folder, read_spec, select
from inference.datasets import splits
from inference.datasets.framing import (FOUND_AT_LEAST, SMALL_FACE_SHARE, framing_warning, measure_framing,
                                        sample_paths)
from inference.errors import BiasMirrorError
from inference.faces import whole_image_crop
from inference.images import read_rgb
from tests.conftest import utk_images

ATTRIBUTES = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
              "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair "
              "Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face "
              "Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair "
              "Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()
MALE, PALE = ATTRIBUTES.index("Male"), ATTRIBUTES.index("Pale_Skin")


def _img(path, value=128, shape=(218, 178)):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*shape, 3), value, np.uint8))


def _values(i):
    """CelebA's 40 values of image i: male where i is odd, pale where i is a multiple of 3."""
    values = [-1] * len(ATTRIBUTES)
    values[MALE], values[PALE] = (1 if i % 2 else -1), (1 if i % 3 == 0 else -1)
    return values


def _official(root, n=4, images="Img/img_align_celeba", attr="Anno/list_attr_celeba.txt",
              part="Eval/list_eval_partition.txt"):
    """CelebA as its Google Drive download has it: CRLF lines, each value padded to two characters."""
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for i, name in enumerate(names, 1):
        _img(root / images / name, 20 * i)
    rows = [f"{name} " + " ".join(f"{v:2d}" for v in _values(i)) for i, name in enumerate(names, 1)]
    for path, lines in ((attr, [str(n), " ".join(ATTRIBUTES) + " ", *rows]),
                        (part, [f"{name} {(0, 0, 1, 2)[i % 4]}" for i, name in enumerate(names)])):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return root


def _kaggle(root, n=4, attr_rows=None):
    """Kaggle's copy: the lists as CSVs with a header, the images one folder deeper."""
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for i, name in enumerate(names, 1):
        _img(root / "img_align_celeba" / "img_align_celeba" / name, 20 * i)
    rows = attr_rows or [",".join([name, *map(str, _values(i))]) for i, name in enumerate(names, 1)]
    (root / "list_attr_celeba.csv").write_text("\n".join([",".join(["image_id", *ATTRIBUTES]), *rows]) + "\n")
    (root / "list_eval_partition.csv").write_text(
        "\n".join(["image_id,partition", *(f"{name},{(0, 0, 1, 2)[i % 4]}" for i, name in enumerate(names))]) + "\n")
    return root


def _flat(root):
    """The same files in one folder, as the reader has always read them."""
    return _official(root, images="img_align_celeba", attr="list_attr_celeba.txt", part="list_eval_partition.txt")


def _read_as_expected(read, n=4):
    assert [(os.path.basename(s.path), s.gender, s.race, s.partition) for s in read.samples] == [
        (f"{i:06d}.jpg", "male" if i % 2 else "female", "pale" if i % 3 == 0 else "not_pale",
         ("train", "train", "val", "test")[(i - 1) % 4]) for i in range(1, n + 1)]
    assert read.skipped == []


# 1. CelebA's official layout, and torchvision's folder


def test_celeba_as_the_official_download_lays_it_out_is_read(tmp_path):
    """Img/img_align_celeba/, Anno/list_attr_celeba.txt, Eval/list_eval_partition.txt: "missing img_align_celeba"."""
    read = read_celeba(_official(tmp_path / "CelebA"))
    _read_as_expected(read)
    assert read.root == str(tmp_path / "CelebA")


def test_celeba_in_torchvisions_celeba_folder_is_read_from_its_parent(tmp_path):
    """torchvision's CelebA(root) reads root/celeba/…; given root, as the UTKFace reader takes UTKFace/'s parent."""
    _flat(tmp_path / "celeba")
    read = read_spec(f"celeba:{tmp_path}")
    _read_as_expected(read)
    assert read.root == str(tmp_path / "celeba")


@pytest.mark.parametrize("inside", ["Img", "Anno", "Eval"])
def test_celeba_given_as_one_of_the_downloads_folders_names_the_folder_to_give(tmp_path, inside):
    root = _official(tmp_path / "CelebA")
    with pytest.raises(BiasMirrorError, match=rf"{inside}: this is the CelebA download's {inside}/ folder: give the "
                                              rf"folder that holds it, {root}"):
        read_celeba(root / inside)


def test_celeba_missing_a_list_names_it_and_every_place_looked_in(tmp_path):
    root = _official(tmp_path / "CelebA")
    (root / "Anno" / "list_attr_celeba.txt").unlink()
    with pytest.raises(BiasMirrorError) as err:
        read_celeba(root)
    said = str(err.value)
    assert said.startswith(f"{root}: missing list_attr_celeba.txt (or .csv): looked in the folder itself and in its "
                           "Img/, Anno/, Eval/, celeba/, celeba/Img/, celeba/Anno/ and celeba/Eval/")
    assert "img_align_celeba/ " not in said.split(":")[1]  # what was found is not called missing


# 2. Kaggle's copy


def test_celeba_as_kaggle_has_it_with_csv_lists_and_its_images_nested_is_read(tmp_path):
    """list_attr_celeba.csv and list_eval_partition.csv (header image_id,…), img_align_celeba/img_align_celeba/:
    refused for "missing list_attr_celeba.txt", though the messages knew the format."""
    read = read_celeba(_kaggle(tmp_path))
    _read_as_expected(read)
    assert all(os.path.dirname(s.path).endswith(os.path.join("img_align_celeba", "img_align_celeba"))
               for s in read.samples)


def test_a_kaggle_attribute_row_short_of_a_value_is_skipped_naming_the_csv_and_its_line(tmp_path):
    rows = [",".join(["000001.jpg", *map(str, _values(1))]), ",".join(["000002.jpg", *map(str, _values(2)[:-1])]),
            ",".join(["000003.jpg", *map(str, _values(3))]), ",".join(["000004.jpg", *map(str, _values(4))])]
    read = read_celeba(_kaggle(tmp_path, attr_rows=rows))
    assert read.skipped == [("000002.jpg", "list_attr_celeba.csv:3: expected 40 attributes, found 39")]


# 3. aligned images that are not square: centre-cropped, never squashed


def _tall_face():
    """A 178×218 image: a centred disc (a "face") in grey, black bands of 20 px above and below it."""
    image = np.zeros((218, 178, 3), np.uint8)
    image[20:198] = 120
    cv2.circle(image, (89, 109), 60, (250, 250, 250), -1)
    return image


def test_an_aligned_image_that_is_not_square_is_its_centred_square_in_the_audits_crop(tmp_path):
    """CelebA's 178×218 faces were squashed to a square (22 % wider): 89.3 % against 94.0 % centre-cropped."""
    image = _tall_face()
    crop, to_frame = whole_image_crop(image, 64)
    square = cv2.resize(image[20:198], (64, 64), interpolation=cv2.INTER_AREA)
    assert np.array_equal(crop, square)
    # the crop's outer corners are the square's in the image (pixels 0-177 by 20-197, their centres at whole
    # coordinates): paste-back lands where the face was taken
    corners = np.array([[-0.5, -0.5, 1], [63.5, 63.5, 1]]) @ to_frame.T
    assert np.allclose(corners, [[-0.5, 19.5], [177.5, 197.5]])


def test_training_decodes_an_aligned_image_that_is_not_square_as_the_audit_crops_it(tmp_path):
    image = _tall_face()
    path = tmp_path / "000001.png"
    cv2.imwrite(str(path), image)
    decoded = read_rgb(str(path), 64)
    assert np.array_equal(decoded, whole_image_crop(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 64)[0])
    disc = decoded[..., 0] > 200  # round, as the face was: squashed, it had been 22 % wider than tall
    rows, cols = np.nonzero(disc)
    assert abs((cols.max() - cols.min()) - (rows.max() - rows.min())) <= 1


@pytest.mark.parametrize("side", [200, 224, 64])
def test_square_aligned_images_are_cropped_as_before(side):
    """UTKFace's 200 px and FairFace's 224 px faces (the shipped models' test figures) are unchanged."""
    image = np.random.default_rng(side).integers(0, 256, (side, side, 3), np.uint8)
    crop, to_frame = whole_image_crop(image, 112)
    before = cv2.resize(image, (112, 112), interpolation=cv2.INTER_AREA if side > 112 else cv2.INTER_LINEAR)
    assert np.array_equal(crop, before)
    s = 112 / side
    assert np.allclose(to_frame, cv2.invertAffineTransform(np.array([[s, 0, s / 2 - 0.5], [0, s, s / 2 - 0.5]])))


def test_decoded_faces_cached_before_centre_cropping_are_decoded_again(tmp_path, monkeypatch):
    """A cache of CelebA's faces decoded squashed would have been trained on again: the framing is in its key."""
    import training.data.cache as cache

    photo = tmp_path / "000001.png"
    cv2.imwrite(str(photo), _tall_face())
    now = getattr(cache, "ALIGNED_FRAMING_VERSION", 1)
    monkeypatch.setattr(cache, "ALIGNED_FRAMING_VERSION", now - 1, raising=False)
    cache.load_images([str(photo)], 16, tmp_path / "cache")
    decoded: list[str] = []
    real = cache.read_rgb
    monkeypatch.setattr(cache, "read_rgb", lambda p, size=None: decoded.append(p) or real(p, size))
    monkeypatch.setattr(cache, "ALIGNED_FRAMING_VERSION", now, raising=False)
    again = cache.load_images([str(photo)], 16, tmp_path / "cache")
    assert decoded == [str(photo)]
    assert np.array_equal(again.images[0], read_rgb(str(photo), 16))


# 4. FairFace's padding-1.25 release, read whole


def _fairface_of_utk(root, n, padded):
    """FairFace-like 224 px images of real faces: tight, or small in wide margins as in the padding-1.25 release."""
    rows = []
    for i, face in enumerate(utk_images(n), 1):
        image = cv2.imread(str(face))
        if padded:
            small = cv2.resize(image, (96, 96), interpolation=cv2.INTER_AREA)
            image = cv2.copyMakeBorder(small, 64, 64, 64, 64, cv2.BORDER_REFLECT)
        else:
            image = cv2.resize(image, (224, 224), interpolation=cv2.INTER_LINEAR)
        (root / "val").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "val" / f"{i}.jpg"), image)
        rows.append((f"val/{i}.jpg", "20-29", "Male" if i % 2 else "Female", "White"))
    with open(root / "fairface_label_val.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["file", "age", "gender", "race"], *rows])
    return root


def test_fairfaces_padding_1_25_release_read_whole_is_warned_of_and_tight_crops_are_not(tmp_path):
    """Read as tight crops without a word, the 1.25 release scored 58 % where its faces cropped tight score 99 %."""
    loose = read_fairface(_fairface_of_utk(tmp_path / "ff125", 24, padded=True))
    said = framing_warning(loose)
    assert said is not None and said.startswith(f"{loose.root}: the faces of this fairface dataset are small")
    assert "FairFace's padding-1.25 release" in said and "pass --detect" in said
    assert framing_warning(read_fairface(_fairface_of_utk(tmp_path / "ff025", 24, padded=False))) is None


def test_the_framing_check_puts_a_fixed_sample_to_the_detector(tmp_path):
    read = read_fairface(_fairface_of_utk(tmp_path / "ff125", 30, padded=True))
    assert sample_paths(read) == sample_paths(read) and len(sample_paths(read)) == 24
    framing = measure_framing(sample_paths(read))
    assert framing.sampled == 24 and framing.found >= FOUND_AT_LEAST
    assert framing.median_share < SMALL_FACE_SHARE and framing.small


def test_the_framing_check_says_nothing_of_a_folder(tmp_path):
    for i in range(3):
        _img(tmp_path / f"{i}.jpg", 40 * i)
    assert framing_warning(read_folder(tmp_path)) is None


# 5. a stray quote in a label CSV


def test_a_stray_quote_in_a_fairface_label_file_is_refused_at_its_line(tmp_path):
    """It swallowed every later row: 12 test faces of 600, and the warnings blamed the images, naming no line."""
    for i in range(1, 5):
        _img(tmp_path / "val" / f"{i}.jpg", 30 * i, (24, 24))
    (tmp_path / "fairface_label_val.csv").write_text(
        "file,age,gender,race,service_test\nval/1.jpg,20-29,Female,White,True\n"
        'val/2.jpg,"20-29,Male,Black,False\nval/3.jpg,30-39,Male,White,True\nval/4.jpg,40-49,Female,Black,False\n')
    with pytest.raises(BiasMirrorError, match=r"fairface_label_val.csv: the FairFace label file's line 3 has a quote "
                                              r"\(\"\) that no quote closes on that line, so its value runs on to "
                                              r"line 5"):
        read_fairface(tmp_path)


def test_a_stray_quote_in_a_folders_labels_csv_is_refused_at_its_line(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        _img(tmp_path / name, 10 + len(name), (24, 24))
    (tmp_path / "labels.csv").write_text('file,gender\na.jpg,male\n\nb.jpg,"female\nc.jpg,male\n')
    with pytest.raises(BiasMirrorError, match=r"labels.csv: the labels CSV's line 4 has a quote"):
        read_folder(tmp_path)


def test_quoted_values_on_their_own_line_are_read(tmp_path):
    _img(tmp_path / "a.jpg", 10, (24, 24))
    _img(tmp_path / "b.jpg", 90, (24, 24))
    (tmp_path / "labels.csv").write_text('file,gender,group\n"a.jpg",male,"Smith, John"\nb.jpg,"female",x\n')
    read = read_folder(tmp_path)
    assert sorted((os.path.basename(s.path), s.gender, s.group) for s in read.samples) == [
        ("a.jpg", "male", "Smith, John"), ("b.jpg", "female", "x")]


# 6. CelebA's attributes not kept


def test_celeba_keeps_none_of_the_attributes_it_does_not_read(tmp_path):
    """40 strings a face, read nowhere: about 460 MB held for the whole of CelebA."""
    read = read_celeba(_flat(tmp_path))
    assert len(read.samples) == 4 and all(not s.attrs for s in read.samples)


# 7. malformed rows named by file and line; FairFace's bands cut by an age bar


def test_a_celeba_attribute_row_short_of_a_value_names_the_list_and_its_line(tmp_path):
    root = _flat(tmp_path)
    attr = root / "list_attr_celeba.txt"
    lines = attr.read_bytes().split(b"\r\n")
    lines[4] = lines[4].rsplit(b" ", 1)[0]  # 000003.jpg, one value short
    attr.write_bytes(b"\r\n".join(lines))
    read = read_celeba(root)
    assert read.skipped == [("000003.jpg", "list_attr_celeba.txt:5: expected 40 attributes, found 39")]


def test_a_fairface_gender_it_cannot_read_names_the_label_file_and_its_line(tmp_path):
    for i in (1, 2):
        _img(tmp_path / "train" / f"{i}.jpg", 50 * i, (24, 24))
    (tmp_path / "fairface_label_train.csv").write_text(
        "file,age,gender,race\ntrain/1.jpg,20-29,Male,White\ntrain/2.jpg,20-29,M,White\n")
    read = read_fairface(tmp_path)
    assert read.skipped == [("train/2.jpg", "fairface_label_train.csv:3: gender 'M' (expected Male or Female)")]


def test_an_age_bar_that_cuts_through_fairfaces_bands_says_the_bar_in_effect_once(tmp_path, caplog):
    """--min-age 18 drops FairFace's whole 10-19 band, its 18- and 19-year-olds too: the bar is 20 in effect. Said
    by the command, once (``say_bands_cut``), not by each select it makes."""
    rows = [(f"train/{i}.jpg", band, "Male", "White") for i, band in enumerate(["10-19", "10-19", "20-29", "3-9"], 1)]
    for name, *_ in rows:
        _img(tmp_path / name, 40 + 5 * len(name), (24, 24))
    with open(tmp_path / "fairface_label_train.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["file", "age", "gender", "race"], *rows])
    read = read_fairface(tmp_path)
    with caplog.at_level(logging.INFO, logger="inference.datasets"):
        kept = select(read.samples, min_age=18, labelled=True)
        select(read.samples, min_age=18, labelled=True)
        splits.say_bands_cut(select(read.samples, labelled=True), 18)
        splits.say_bands_cut(select(read.samples, labelled=True), 20)  # on a band's edge: nothing cut
    assert [os.path.basename(s.path) for s in kept] == ["3.jpg"]
    notes = [r.getMessage() for r in caplog.records if "age bar" in r.getMessage()]
    assert notes == ["note: this dataset gives ages as bands, and a face counts as its band's youngest age: the age "
                     "bar of 18 leaves out the whole 10-19 band (2 face(s)), its faces of 18 to 19 with it: the bar "
                     "is 20 in effect"]


@pytest.mark.parametrize("command", ["evaluate", "audit"])
def test_evaluate_and_audit_of_the_padding_1_25_release_warn_without_detect_and_not_with_it(tmp_path, caplog,
                                                                                               command):
    """The check was written but no command called it: `train evaluate` of such a copy said nothing (58 %)."""
    import main

    root = _fairface_of_utk(tmp_path / "ff125", 24, padded=True)
    model = "resources/models/mobilenet_fast.onnx"
    args = (["train", "evaluate", "--model", model, "--dataset", f"fairface:{root}", "--split", "test"]
            if command == "evaluate" else
            ["audit", "--dataset", f"fairface:{root}", "--classifier", model, "--no-filter", "--no-html",
             "--out", str(tmp_path / "audit")])
    for extra, warned in (([], True), (["--detect"], False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert main.main([*args, *extra]) == 0
        said = [r.getMessage() for r in caplog.records if "FairFace's padding-1.25 release" in r.getMessage()]
        assert bool(said) is warned, (extra, said)
