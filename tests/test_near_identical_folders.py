"""Near-identical thumbnails act as one photograph only in aligned face crops: a folder's photos of different people
against one background match as well, and had been left out as conflicts or audited under another's labels."""
import csv
import os

import cv2
import numpy as np
import pytest

from inference.audit.cli import read_dataset
from inference.datasets import Sample, open_dataset, read_spec, split_of
from inference.datasets.near_identical import near_groups, thumbnail_tells_photographs
from inference.datasets.utkface import parse_name
from inference.file_identity import file_stats
from tests.conftest import utk_images

RACE_CODES = ("0", "1", "2", "3", "4")  # UTKFace's: one face of each, so no two are one person
FRAME = (240, 320)  # a small room photo: height, width
FACE_SHARE = 6  # the face's side is the frame's height over this: small in its frame, as in a photo of a room


def _wall() -> np.ndarray:
    """A plain wall, lit unevenly: enough contrast for its thumbnail to be compared at all."""
    height, width = FRAME
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([120 + 20 * xx / width, 140 + 30 * yy / height, 150 + 40 * xx / width], -1).astype(np.uint8)


def _room(folder) -> list[tuple[str, str, str]]:
    """Photos ``000.jpg`` … of different UTKFace people, each pasted at the middle of one wall; their (file,
    gender, race) as UTKFace's names give them."""
    folder.mkdir()
    side = FRAME[0] // FACE_SHARE
    top, left = (FRAME[0] - side) // 2, (FRAME[1] - side) // 2
    people = []
    for path in (p for race in RACE_CODES for p in utk_images(1, race=race)):
        photo = _wall()
        photo[top:top + side, left:left + side] = cv2.resize(cv2.imread(str(path)), (side, side))
        name = f"{len(people):03d}.jpg"
        cv2.imwrite(str(folder / name), photo)
        truth = parse_name(path.name)
        people.append((name, truth.gender, truth.race))
    return people


def _matched(folder, cache) -> list[list[str]]:
    """The thumbnail groups the folder's photos fall into: the test means something only where there are some."""
    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    groups = near_groups(file_stats(paths), str(folder), cache)
    assert groups, f"the photos of {folder} should look alike in thumbnails: the test builds them so"
    return groups


def _splits(samples: list[Sample]) -> dict[str, str]:
    return {s.path: split_of(s) for s in samples}


def test_the_rule_is_by_reader_kind():
    assert thumbnail_tells_photographs("utkface") and thumbnail_tells_photographs("celeba")
    assert thumbnail_tells_photographs("fairface")
    assert not thumbnail_tells_photographs("folder")


def test_a_folder_of_different_people_against_one_wall_keeps_everyone_with_a_groups_csv(tmp_path, caplog):
    folder = tmp_path / "room"
    people = _room(folder)
    matched = _matched(folder, tmp_path / "cache")
    groups_csv = tmp_path / "groups.csv"
    with open(groups_csv, "w", newline="") as fh:  # two sites, alternating: matched photos fall in both
        csv.writer(fh).writerows([("file", "group"), *((name, f"site_{i % 2}") for i, (name, *_) in enumerate(people))])
    read, _ = read_dataset(f"folder:{folder}", str(groups_csv))
    assert sorted(os.path.basename(s.path) for s in read.samples) == [name for name, *_ in people]
    assert read.conflicts == [] and read.skipped == []
    assert {os.path.basename(s.path): s.group for s in read.samples} == {
        name: f"site_{i % 2}" for i, (name, *_) in enumerate(people)}
    assert read.near_identical == []  # not listed as one photograph: nothing says they are
    assert _splits(read.samples) == _splits(read_spec(f"folder:{folder}").samples)  # none moved to another's split
    assert "same background" in caplog.text and os.path.basename(matched[0][0]) in caplog.text


def test_a_folder_with_two_labelled_photos_gives_no_unlabelled_one_their_labels(tmp_path, caplog):
    folder = tmp_path / "room"
    people = _room(folder)
    _matched(folder, tmp_path / "cache")
    labelled = {name: (gender, race) for name, gender, race in people[:: len(people) // 2][:2]}
    with open(folder / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("file", "gender", "race"), *((n, *labels) for n, labels in labelled.items())])
    read = open_dataset(f"folder:{folder}", tmp_path / "cache")
    assert read.conflicts == [] and read.skipped == []
    assert {os.path.basename(s.path): (s.gender, s.race) for s in read.samples} == {
        name: labelled.get(name, (None, None)) for name, *_ in people}
    assert "take it from a copy" not in caplog.text


def _utk_name(age: str, gender: str, race: str, stamp: int) -> str:
    return f"{age}_{gender}_{race}_{20170101000000000 + stamp}.jpg.chip.jpg"


@pytest.fixture
def saved_again(tmp_path):
    """UTKFace crops: face a saved again smaller and re-encoded under the same labels, face b under another
    gender, face c once; and the same files in a folder, labelled alike."""
    root = tmp_path / "UTKFace"
    root.mkdir()
    a, b, c = (cv2.imread(str(p)) for p in utk_images(3))
    files = [(_utk_name("30", "1", "1", 1), a, 95), (_utk_name("30", "1", "1", 2), cv2.resize(a, (150, 150)), 70),
             (_utk_name("40", "0", "2", 3), b, 95),
             (_utk_name("40", "1", "2", 4), b, 85),  # re-encoded: not the same bytes, so near-identical
             (_utk_name("50", "0", "0", 5), c, 95)]
    for name, image, quality in files:
        cv2.imwrite(str(root / name), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return root, [name for name, *_ in files]


def test_aligned_crops_saved_again_still_share_one_split_and_under_other_labels_are_left_out(tmp_path, saved_again):
    root, (a, a_small, b, b_as_a_woman, c) = saved_again
    read = open_dataset(f"utkface:{root}", tmp_path / "cache")
    assert read.near_identical == [sorted([a, a_small])] and read.copies == []
    split = {os.path.basename(s.path): split_of(s) for s in read.samples}
    assert set(split) == {a, a_small, c}
    assert split[a] == split[a_small] == min((split_of(Sample(path=n)) for n in (a, a_small)),
                                              key=("train", "val", "test").index)
    assert read.conflicts == [sorted([b, b_as_a_woman])]
    assert "near-identical" in dict(read.skipped)[b_as_a_woman]


def test_the_same_crops_in_a_folder_are_all_kept_under_their_own_labels(tmp_path, saved_again):
    root, names = saved_again
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("file", "gender", "race"))
        for name in names:
            truth = parse_name(name)
            w.writerow((name, truth.gender, truth.race))
    read = open_dataset(f"folder:{root}", tmp_path / "cache")
    assert sorted(os.path.basename(s.path) for s in read.samples) == sorted(names)
    assert read.near_identical == [] and read.conflicts == [] and read.skipped == []
    assert _splits(read.samples) == _splits(read_spec(f"folder:{root}").samples)
