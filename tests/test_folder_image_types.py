"""Every image type a single file is read as, a folder reads too, and a labels row naming a file of a type not read
says the file is there.

- A browser on Windows saves a photo as .jfif: a folder's .jfif (and .jpe, Netpbm, JPEG 2000) files were dropped
  without a word, `run` said "1 frame(s)" for a folder of three, and a folder of only .jfif files had "no images",
  where `run --source a.jfif` read the one file.
- An audit's labels row naming such a file was "listed in the labels but not in the folder", though it was there.
"""
from __future__ import annotations

import csv
import json
import shutil

import cv2
import pytest

from inference.datasets.folder import list_folder
from inference.datasets.sample import IMAGE_EXTENSIONS, NOT_IN_FOLDER
from tests.conftest import run_main, utk_images

JPEG_NAMES = (".jfif", ".JFIF", ".jpe")


def encoded(ext: str, image) -> bytes:
    """``image`` as a file of type ``ext``: OpenCV writes no .jfif, .jif or bare JPEG 2000 codestream (.j2k) by
    that name, so those are a JPEG's bytes and the codestream a .jp2 file ends with; Netpbm's grey types take grey."""
    ext = ext.lower()
    if ext in (".jfif", ".jif"):
        return cv2.imencode(".jpg", image)[1].tobytes()
    if ext == ".j2k":
        jp2 = cv2.imencode(".jp2", image)[1].tobytes()
        return jp2[jp2.index(b"\xff\x4f\xff\x51"):]  # the codestream's start (SOC, SIZ) to its end, the file's
    if ext in (".pgm", ".pbm"):
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.imencode(ext, image)[1].tobytes()


def run_args(source, out, classifier) -> list[str]:
    return ["run", "--source", str(source), "--out", str(out), "--classifier", str(classifier), "--no-filter",
            "--threads", "1"]


def audit_args(tmp_path, folder, classifier) -> list[str]:
    return ["audit", "--dataset", f"folder:{folder}", "--classifier", str(classifier), "--no-filter",
            "--no-progress", "--no-html", "--threads", "1", "--out", str(tmp_path / "out")]


def faces_as(folder, extensions) -> list[str]:
    """One real adult face (UTKFace) per extension in ``folder``, each as a file of that type; their names."""
    folder.mkdir()
    names = []
    for i, (face, ext) in enumerate(zip(utk_images(len(extensions)), extensions)):
        names.append(f"face{i}{ext}")
        (folder / names[-1]).write_bytes(encoded(ext, cv2.imread(str(face))))
    return names


def test_every_image_type_is_one_opencv_reads_and_a_folder_lists(tmp_path):
    """The list is the types a folder, a single file and the Open dialog take: each must be one OpenCV reads."""
    names = faces_as(tmp_path / "all", IMAGE_EXTENSIONS)
    unread = [n for n in names if not cv2.haveImageReader(str(tmp_path / "all" / n))]
    assert not unread, f"OpenCV reads no file of these types: {unread}"
    assert [p.name for p in list_folder(tmp_path / "all").images] == sorted(names)


def test_run_reads_a_folders_jfif_and_jpe_photos_as_it_reads_one_given_alone(tmp_path, tiny_models, capsys):
    names = faces_as(tmp_path / "photos", (".jpg", *JPEG_NAMES))
    out = tmp_path / "rows.csv"
    code, _, said = run_main(run_args(tmp_path / "photos", out, tiny_models["classifier"]), capsys)
    assert code == 0 and f"{len(names)} frame(s), " in said  # status lines on stderr: stdout is for --out -
    assert sorted({row["source"] for row in csv.DictReader(out.open())}) == sorted(names)


def test_run_over_a_folder_of_only_jfif_photos_finds_them(tmp_path, tiny_models, capsys):
    names = faces_as(tmp_path / "photos", (".jfif", ".JFIF"))
    out = tmp_path / "rows.csv"
    code, _, err = run_main(run_args(tmp_path / "photos", out, tiny_models["classifier"]), capsys)
    assert code == 0 and "no images found" not in err and f"{len(names)} frame(s), " in err
    assert sorted({row["source"] for row in csv.DictReader(out.open())}) == sorted(names)


def test_run_reads_a_folder_of_every_image_type(tmp_path, tiny_models, capsys):
    names = faces_as(tmp_path / "all", IMAGE_EXTENSIONS)
    code, _, said = run_main(run_args(tmp_path / "all", tmp_path / "rows.csv", tiny_models["classifier"]), capsys)
    assert code == 0 and f"{len(names)} frame(s), " in said and "; 0 unreadable frame(s) skipped" in said


def labelled(folder, names: list[str], also_listed: tuple[str, ...] = ()) -> None:
    rows = ["file,gender,age", *(f"{n},{'female' if i % 2 else 'male'},30" for i, n in enumerate(names)),
            *(f"{n},female,30" for n in also_listed)]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")


def test_an_audit_reads_and_counts_a_labelled_folders_jfif_photos(tmp_path, tiny_models, capsys, caplog):
    names = faces_as(tmp_path / "photos", (".jpg", *JPEG_NAMES))
    labelled(tmp_path / "photos", names)
    with caplog.at_level("WARNING"):
        code, _, err = run_main(audit_args(tmp_path, tmp_path / "photos", tiny_models["classifier"]), capsys)
    images = json.loads((tmp_path / "out" / "report.json").read_text())["images"]
    assert code == 0, err
    assert images["n_images"] == len(names) and not images.get("reader_skipped")
    assert NOT_IN_FOLDER not in caplog.text


@pytest.mark.parametrize("unread", ["photo.jxl", "sub/scan.TGA", "sub\\scan.TGA", "photo"])
def test_a_labels_row_naming_a_file_of_a_type_not_read_says_it_is_there(tmp_path, tiny_models, capsys, caplog,
                                                                        unread):
    """A JPEG XL, a TGA (OpenCV reads neither here) and a file without an extension: each is in the folder."""
    names = faces_as(tmp_path / "photos", (".jpg", ".jpg"))
    (tmp_path / "photos" / "sub").mkdir()
    there = tmp_path / "photos" / unread.replace("\\", "/")
    shutil.copy(tmp_path / "photos" / names[0], there)  # a photo's bytes: its type is told by its name alone
    labelled(tmp_path / "photos", names, also_listed=(unread, "gone.jxl"))
    with caplog.at_level("WARNING"):
        run_main(audit_args(tmp_path, tmp_path / "photos", tiny_models["classifier"]), capsys)
    skipped = {s["file"]: s["why"] for s in json.loads((tmp_path / "out" / "report.json").read_text())["images"]
               ["reader_skipped"]}
    suffix = there.suffix.lower()
    files = f"{suffix} files" if suffix else "files without an extension"
    assert skipped[unread] == f"in the folder, but {files} are not read as images; convert it (e.g. to JPEG)"
    assert skipped["gone.jxl"] == NOT_IN_FOLDER  # a file that is not there still says so
    assert f"{unread} (in the folder, but {files} are not read" in caplog.text
