"""A labels CSV's file names read as Windows and macOS read them, on any machine: an absolute Windows path
(C:\\Users\\ana\\faces\\male\\1.jpg) had matched no file there, and a row in another case than its file's name
(women/img_001.jpg for Women/IMG_001.JPG) had been "not in the folder", where those file systems open it by it."""
import ntpath
import os
import posixpath
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from inference.datasets import folder, read_folder
from inference.datasets.sample import NOT_IN_FOLDER
from inference.errors import BiasMirrorError

WINDOWS_FOLDER = "C:/Users/ana/faces"  # the folder's absolute path on Windows, as Path.as_posix() gives it
IN_FOLDER = {"male/1.jpg", "female/2.jpg"}


def _img(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((24, 24, 3), value, np.uint8))


@pytest.fixture
def names_ignore_case(monkeypatch):
    """Read names as a system whose file names ignore case (True: Windows, macOS) or not (False: Linux) does."""
    def read_as(ignore: bool) -> None:
        monkeypatch.setattr(folder, "NAMES_IGNORE_CASE", ignore)
    return read_as


@pytest.fixture(params=[posixpath, ntpath], ids=["posix-host", "windows-host"])
def host_path(request, monkeypatch):
    """The os.path of the machine reading the CSV: Windows' turns slashes into backslashes as it normalises."""
    monkeypatch.setattr(folder, "os", SimpleNamespace(**{**vars(os), "path": request.param}))


@pytest.mark.parametrize("row, within", [
    ("C:\\Users\\ana\\faces\\male\\1.jpg", "male/1.jpg"),
    ("C:/Users/ana/faces/female/2.jpg", "female/2.jpg"),
    ("c:\\users\\ANA\\faces\\male\\1.jpg", "male/1.jpg"),  # the folder's path in another case is the folder
    ("C:/Users/ana/faces/../faces/female/2.jpg", "female/2.jpg"),
    ("male\\1.jpg", "male/1.jpg"),
    ("D:/Users/ana/faces/male/1.jpg", None),  # another drive
    ("C:/Users/ana/faces", None),  # the folder itself
])
def test_a_windows_absolute_path_names_the_file_inside_the_folder_whatever_the_hosts_os_path(
        host_path, names_ignore_case, row, within):
    names_ignore_case(True)
    assert folder.path_within(row, (WINDOWS_FOLDER,), IN_FOLDER) == within


def test_a_path_on_a_windows_share_names_the_file_inside_the_folder(host_path, names_ignore_case):
    names_ignore_case(True)
    assert folder.path_within("\\\\nas\\photos\\faces\\female\\2.jpg", ("//nas/photos/faces",),
                              IN_FOLDER) == "female/2.jpg"


def test_a_labels_csv_of_posix_absolute_paths_labels_its_files_on_linux_and_not_in_another_case(
        tmp_path, names_ignore_case):
    names_ignore_case(False)
    root = tmp_path / "faces"
    for rel in IN_FOLDER:
        _img(root / rel)
    other_case = str(root / "female" / "2.jpg").upper()
    (root / "labels.csv").write_text(f"file,gender\n{root / 'male' / '1.jpg'},male\n{other_case},female\n")
    read = read_folder(root)
    assert {os.path.relpath(s.path, root): s.gender for s in read.samples} == {"male/1.jpg": "male",
                                                                              "female/2.jpg": None}
    assert [name for name, _ in read.skipped] == [other_case]


def _case_folder(root, files=("Women/IMG_001.JPG", "Women/IMG_002.JPG", "Men/IMG_003.JPG")):
    for rel in files:
        _img(root / rel)
    return root


def test_where_names_ignore_case_a_row_in_another_case_labels_its_file(tmp_path, names_ignore_case):
    names_ignore_case(True)
    root = _case_folder(tmp_path / "faces")
    (root / "labels.csv").write_text(f"file,gender\nwomen/img_001.jpg,female\nWOMEN\\img_002.jpg,female\n"
                                     f"{str(root).swapcase()}/men/img_003.jpg,male\n")
    read = read_folder(root)
    assert read.skipped == []
    assert {os.path.relpath(s.path, root): s.gender for s in read.samples} == {
        "Women/IMG_001.JPG": "female", "Women/IMG_002.JPG": "female", "Men/IMG_003.JPG": "male"}


def test_where_names_keep_their_case_a_row_in_another_case_is_not_in_the_folder(tmp_path, names_ignore_case):
    names_ignore_case(False)
    root = _case_folder(tmp_path / "faces")
    (root / "labels.csv").write_text("file,gender\nwomen/img_001.jpg,female\nWomen/IMG_002.JPG,female\n")
    read = read_folder(root)
    assert read.skipped == [("women/img_001.jpg", NOT_IN_FOLDER)]
    assert {os.path.relpath(s.path, root): s.gender for s in read.samples}["Women/IMG_001.JPG"] is None


def test_where_names_ignore_case_one_file_named_in_two_cases_is_refused(tmp_path, names_ignore_case):
    names_ignore_case(True)
    root = _case_folder(tmp_path / "faces")
    (root / "labels.csv").write_text("file,gender\nWomen/IMG_001.JPG,female\nwomen/img_001.jpg,male\n")
    with pytest.raises(BiasMirrorError, match=r"labels.csv: the labels CSV lists 'Women/IMG_001.JPG' twice, as "
                                              r"'Women/IMG_001.JPG' and 'women/img_001.jpg'"):
        read_folder(root)


@pytest.mark.parametrize("ignore_case", [True, False], ids=["windows-macos", "linux"])
def test_files_differing_in_case_only_are_each_named_by_their_own_row_and_another_case_is_said_ambiguous(
        tmp_path, names_ignore_case, ignore_case):
    """Both files can be there on a case-sensitive volume shared with a Mac or a PC: which one a row in a third case
    means cannot be told, and the row says so rather than "not in the folder"."""
    names_ignore_case(ignore_case)
    both = ("Women/IMG_001.JPG", "women/IMG_001.JPG")
    root = _case_folder(tmp_path / "faces", both)
    (root / "labels.csv").write_text(f"file,gender\n{both[0]},female\n{both[1]},male\nWOMEN/img_001.jpg,female\n")
    read = read_folder(root)
    assert {os.path.relpath(s.path, root): s.gender for s in read.samples} == {both[0]: "female", both[1]: "male"}
    [(name, why)] = read.skipped
    assert name == "WOMEN/img_001.jpg" and why.startswith(NOT_IN_FOLDER)
    assert (f"2 files differ from it in case only: {', '.join(sorted(both))}" in why) == ignore_case


def test_the_files_of_one_folder_are_not_taken_for_anothers(names_ignore_case):
    """The files by casefolded name are indexed once per set of them: a second folder's must be its own."""
    names_ignore_case(True)
    assert folder.path_within("MALE/1.JPG", (WINDOWS_FOLDER,), IN_FOLDER) == "male/1.jpg"
    assert folder.path_within("MALE/1.JPG", (WINDOWS_FOLDER,), {"Male/1.jpg"}) == "Male/1.jpg"
    assert folder.path_within("MALE/1.JPG", (WINDOWS_FOLDER,), {"female/2.jpg"}) is None
