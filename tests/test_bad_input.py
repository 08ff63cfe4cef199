"""Bad input to run, audit, bench and the app: one line that names the file or option, never a traceback."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from inference.bench_frames import make_frames
from inference.datasets import read_folder
from inference.errors import BiasMirrorError
from inference.faces import YuNetDetector
from inference.images import read_image, read_rgb
from inference.sources import ImageListSource
from tests.conftest import REPO, utk_images

MODEL = REPO / "resources" / "models" / "resnet10_balanced.onnx"


def refused(argv: list[str], capsys) -> str:
    """What main.py printed for a command it refused; fails on a traceback or another exit code."""
    try:
        code = main.main(argv)
    except SystemExit as exc:  # argparse refuses a value with exit status 2
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, message", [
    (["bench", "--seconds", "-1"], "argument --seconds: must be above 0, got -1"),
    (["bench", "--soak", "-5"], "argument --soak: must be at least 0"),
    (["bench", "--skin-threads", "9"], "argument --skin-threads: invalid choice"),
    (["audit", "--dataset", "folder:x", "--out", "y", "--batch", "0"], "argument --batch: must be at least 1, got 0"),
    (["audit", "--dataset", "folder:x", "--out", "y", "--batch", "-1"], "argument --batch: must be at least 1"),
    (["run", "--source", "x", "--out", "y", "--max-frames", "0"], "argument --max-frames: must be at least 1"),
    (["run", "--source", "x", "--out", "y", "--threads", "-3"], "argument --threads: must be at least 1"),
    (["run", "--source", "x", "--out", "y", "--max-frames", "ten"], "'ten' is not a whole number"),
])
def test_numbers_out_of_range_are_refused_where_they_are_parsed(argv, message, capsys):
    assert message in refused(argv, capsys)


def test_output_paths_are_checked_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    images = tmp_path / "images"
    images.mkdir()
    assert "--out names a folder; give a file name" in refused(
        ["run", "--source", str(images), "--out", str(images)], capsys)
    assert f"--out: {a_file} is a file, not a folder" in refused(
        ["run", "--source", str(images), "--out", str(a_file / "rows.csv")], capsys)
    assert "--out names a file; give a folder" in refused(
        ["audit", "--dataset", f"folder:{images}", "--out", str(a_file)], capsys)
    assert "--json names a folder" in refused(["bench", "--source", str(images), "--json", str(images)], capsys)
    assert "--health names a folder" in refused(["app", "--source", str(images), "--health", str(images)], capsys)


def test_filter_and_no_filter_together_are_refused_by_the_app_as_by_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BIASMIRROR_SETTINGS", str(tmp_path / "settings.ini"))  # should the app open after all
    both = ["--filter", str(MODEL), "--no-filter"]
    run = refused(["run", "--source", str(tmp_path), "--out", str(tmp_path / "x.csv"), *both], capsys)
    app = refused(["app", "--source", str(tmp_path), "--max-seconds", "1", *both], capsys)
    assert app == run and "--filter and --no-filter contradict each other" in app


def test_a_file_error_no_check_caught_is_one_line(monkeypatch, tmp_path, capsys):
    import inference.run_cli

    def fails(args):
        raise IsADirectoryError(21, "Is a directory", str(tmp_path))
    monkeypatch.setattr(inference.run_cli, "main", fails)
    assert f"error: {tmp_path}: Is a directory" in refused(["run", "--source", "0", "--out", "x.csv"], capsys)


def test_a_model_that_is_not_yunet_is_named_when_given(tmp_path):
    with pytest.raises(BiasMirrorError, match="not a YuNet face detector") as err:
        YuNetDetector(MODEL)
    assert str(MODEL) in str(err.value)
    with pytest.raises(BiasMirrorError, match="is a folder"):
        YuNetDetector(tmp_path)


def test_csv_and_dataset_paths_of_the_wrong_kind(tmp_path, capsys):
    folder = tmp_path / "faces"
    folder.mkdir()
    shutil.copy(utk_images(1)[0], folder / "a.jpg")
    binary = tmp_path / "groups.csv"
    binary.write_bytes(MODEL.read_bytes()[:400])
    assert f"{binary}: the groups CSV is not UTF-8 text" in refused(  # a folder's groups CSV may carry labels too
        ["audit", "--dataset", f"folder:{folder}", "--groups", str(binary), "--out", str(tmp_path / "o")], capsys)
    utk = tmp_path / "utk"
    utk.mkdir()
    shutil.copy(utk_images(1)[0], utk / utk_images(1)[0].name)
    assert f"{binary}: the groups CSV is not UTF-8 text" in refused(
        ["audit", "--dataset", f"utkface:{utk}", "--groups", str(binary), "--out", str(tmp_path / "o")], capsys)
    image = folder / "a.jpg"
    for kind in ("utkface", "folder"):
        assert f"{image}: is a file, not a folder" in refused(
            ["audit", "--dataset", f"{kind}:{image}", "--out", str(tmp_path / "o")], capsys)
    assert "is a folder; give the model's .onnx file" in refused(
        ["run", "--source", str(folder), "--out", str(tmp_path / "r.csv"), "--classifier", str(folder)], capsys)
    assert "--filter and --no-filter contradict" in refused(
        ["run", "--source", str(folder), "--out", str(tmp_path / "r.csv"), "--no-filter", "--filter", str(MODEL)], capsys)


def test_labels_a_folder_csv_cannot_use_are_named(tmp_path, caplog):
    shutil.copy(utk_images(1)[0], tmp_path / "a.jpg")
    # written by a spreadsheet: a byte-order mark before the header
    (tmp_path / "labels.csv").write_text("\ufefffile,gender,age,split\na.jpg,banana,old,later\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        read = read_folder(tmp_path)
    s = read.samples[0]
    assert (s.gender, s.age) == (None, None)
    assert "gender 'banana' (expected male or female)" in caplog.text and "age 'old'" in caplog.text
    assert "split 'later'" in caplog.text and "labels.csv" in caplog.text


def test_a_truncated_jpeg_is_unreadable_not_half_grey(tmp_path):
    whole = utk_images(1)[0].read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    assert cv2.imread(str(cut)) is not None  # what OpenCV alone does: decodes it, the rest grey
    assert read_image(cut) is None and read_rgb(str(cut)) is None
    assert read_rgb(str(utk_images(1)[0])) is not None
    frame = ImageListSource([cut], "images").read()
    assert frame.image is None and "cut.jpg: cannot be read as an image (corrupt, truncated" in frame.warning


def test_an_audit_names_the_images_it_could_not_read(tmp_path, capsys):
    data = tmp_path / "utk"
    data.mkdir()
    src = utk_images(3)
    for p in src:
        shutil.copy(p, data / p.name)
    whole = src[0].read_bytes()
    (data / "30_1_0_20170101000000000.jpg.chip.jpg").write_bytes(whole[: len(whole) // 2])
    assert main.main(["audit", "--dataset", f"utkface:{data}", "--no-filter", "--no-html", "--no-progress",
                      "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "1 image(s) could not be read (corrupt, truncated or another format): 30_1_0_20170101000000000" in out
    assert "leave out --no-html for report.html" in out


def test_bench_takes_a_single_image_or_a_short_clip(tmp_path):
    face = utk_images(1)[0]
    frames = make_frames(str(face), 4, (320, 240), 7)
    assert len(frames) == 7 and frames[0].shape == (240, 320, 3)
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(2):
        writer.write(np.full((48, 64, 3), 40 * (i + 1), np.uint8))
    writer.release()
    looped = make_frames(str(clip), 1, (64, 48), 5)
    assert len(looped) == 5 and looped[2].mean() == pytest.approx(looped[0].mean())


def test_a_cache_that_is_a_file_is_refused_before_any_work(monkeypatch, tmp_path, tiny_utk, capsys):
    """--cache naming a file failed only when the first decoded image was to be cached ("Not a directory")."""
    import training.bench_train
    import training.tasks.classifier
    import training.tasks.cyclegan

    def work(*args, **kwargs):
        raise AssertionError("work started before --cache was checked")
    for module, name in ((training.tasks.classifier, "build_data"), (training.tasks.cyclegan, "build_domains"),
                         (training.bench_train, "real_faces")):
        monkeypatch.setattr(module, name, work)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    run = tmp_path / "run"
    commands = [
        ["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--device", "cpu", "--out", str(run)],
        ["train", "cyclegan", "--domain-a", str(tiny_utk), "--domain-b", str(tiny_utk), "--device", "cpu",
         "--out", str(run)],
        ["bench", "train", "--data", f"utkface:{tiny_utk}", "--device", "cpu", "--trainers", "classifier"],
    ]
    for argv in commands:
        assert f"{a_file}: --cache names a file; give a folder" in refused([*argv, "--cache", str(a_file)], capsys)
        assert f"--cache: {a_file} is a file, not a folder" in refused([*argv, "--cache", str(a_file / "sub")], capsys)
    assert not run.exists()


def test_no_validation_faces_is_not_measured_rather_than_zero_accuracy(tmp_path, capsys):
    """A folder whose labels.csv splits it into train and test only: val_accuracy was 0.0, a false figure."""
    import json

    import onnx

    from inference.card import METADATA_KEY

    rng = np.random.default_rng(0)
    data = tmp_path / "faces"
    data.mkdir()
    rows = ["file,gender,age,split"]
    for i in range(40):
        gender = ("male", "female")[i % 2]
        cv2.imwrite(str(data / f"{i}.png"), rng.integers(0, 60, (32, 32, 3), dtype=np.uint8) + (120 if i % 2 else 40))
        rows.append(f"{i}.png,{gender},30,{'test' if i >= 32 else 'train'}")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main.main(["train", "classifier", "--dataset", f"folder:{data}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--swa-epochs", "1", "--batch-size", "8", "--cache", "", "--device", "cpu",
                      "--threads", "1", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "no faces in the val split: val_accuracy is not measured" in out and "val_accuracy nan" in out
    header, *rows = (run / "epochs.csv").read_text().splitlines()
    column = header.split(",").index("val_accuracy")
    assert [r.split(",")[column] for r in rows] == ["nan", "nan"]
    card = {p.key: p.value for p in onnx.load(str(run / "model.onnx")).metadata_props}[METADATA_KEY]
    entry = json.loads(card)["training"]["weight_averaging"]
    assert entry["val_accuracy_last"] is None and entry["val_accuracy_averaged"] is None  # null, not NaN
    json.dumps(entry, allow_nan=False)  # the entry is valid JSON (NaN is not)


def test_an_unknown_baseline_generator_is_refused_with_the_presets(capsys):
    from training.nets.cyclegan import PRESETS

    err = refused(["bench", "--baseline-generator", "banana"], capsys)
    assert "argument --baseline-generator: invalid choice: 'banana'" in err
    assert all(f"'{name}'" in err for name in ["match", *PRESETS])
    err = refused(["bench", "--timing-filter", "banana"], capsys)  # refused before torch or any model loads
    assert "argument --timing-filter: invalid choice: 'banana'" in err and all(f"'{n}'" in err for n in PRESETS)


@pytest.mark.parametrize("argv, option", [
    (["run", "--source", "x", "--out", ""], "--out"),
    (["audit", "--dataset", "folder:x", "--out", ""], "--out"),
    (["train", "classifier", "--dataset", "folder:x", "--out", ""], "--out"),
    # (a trainer's --export-to '' means no copy: tests/test_classifier_training.py)
    (["train", "cyclegan", "--dataset", "folder:x", "--preset-domains", "engineer", "--out", ""], "--out"),
    (["train", "compare", "--dataset", "folder:x", "--out", ""], "--out"),
    (["train", "evaluate", "--model", "m.onnx", "--dataset", "folder:x", "--json", ""], "--json"),
    (["train", "fp16", str(MODEL), "--images", "x", "--out", ""], "--out"),
    (["bench", "--source", "x", "--json", ""], "--json"),
    (["bench", "--source", "x", "--profile-host", ""], "--profile-host"),
    (["bench", "detect", "--data", "folder:x", "--json", ""], "--json"),
    (["bench", "train", "--trainers", "nope", "--json", ""], "--json"),
    (["app", "--source", "x", "--max-seconds", "1", "--health", ""], "--health"),
    (["app", "--source", "x", "--max-seconds", "1", "--screenshot", ""], "--screenshot"),
])
def test_an_empty_output_path_is_refused_not_taken_as_the_current_folder(argv, option, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # "" is the current folder to the OS: anything written by mistake would land here
    assert f"error: {option} is empty" in refused(argv, capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make", ["onnx", "garbage", "garbage.jpg", "folder of garbage"])
def test_run_refuses_a_source_it_cannot_read_and_leaves_an_existing_csv_alone(make, tmp_path, capsys):
    if make == "onnx":
        source = MODEL
    elif make == "folder of garbage":
        source = tmp_path / "faces"
        source.mkdir()
        (source / "a.jpg").write_bytes(b"not a jpeg")
    else:
        source = tmp_path / make
        source.write_bytes(bytes(range(256)) * 64)
    out = tmp_path / "k.csv"
    out.write_text("precious\n")
    err = refused(["run", "--source", str(source), "--out", str(out), "--classifier", str(MODEL), "--no-filter"], capsys)
    assert str(source) in err and "cannot be read" in err
    assert out.read_text() == "precious\n"


@pytest.mark.parametrize("command", ["run", "audit", "bench", "app"])
def test_an_unknown_cam_class_is_refused_with_the_classifiers_labels(command, tmp_path, capsys):
    faces = tmp_path / "faces"
    faces.mkdir()
    shutil.copy(utk_images(1)[0], faces / "a.jpg")
    models = ["--classifier", str(MODEL), "--no-filter", "--cam-class", "cat"]
    argv = {"run": ["run", "--source", str(faces), "--out", str(tmp_path / "rows.csv")],
            "audit": ["audit", "--dataset", f"folder:{faces}", "--out", str(tmp_path / "audit")],
            "bench": ["bench", "--source", str(faces), "--frames", "1", "--warmup", "0", "--no-baseline",
                      "--providers", "cpu"],
            "app": ["app", "--source", str(faces), "--max-seconds", "1"]}[command]
    err = refused([*argv, *models], capsys)
    assert "--cam-class 'cat' is not a label of" in err and "male, female" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "rows.csv").exists()


@pytest.mark.parametrize("kind", ["folder", "utkface"])
def test_a_groups_csv_that_puts_one_image_in_two_groups_is_refused(kind, tiny_utk, tmp_path, capsys):
    name = sorted(p.name for p in tiny_utk.iterdir())[0]
    groups = tmp_path / "groups.csv"
    groups.write_text(f"file,group\n{name},a\nother.jpg,b\n{name},b\n")
    err = refused(["audit", "--dataset", f"{kind}:{tiny_utk}", "--groups", str(groups), "--out", str(tmp_path / "a")],
                  capsys)
    assert str(groups) in err and repr(name) in err and "rows 2 and 4" in err and "group" in err


# the app's runs are bounded: before the fix the window opened on the current folder and stayed open
@pytest.mark.parametrize("command", [["run", "--out", "rows.csv"], ["app", "--max-seconds", "1"], ["bench"],
                                     ["--max-seconds", "1"]])
def test_an_empty_source_is_refused_not_the_current_folder(command, tmp_path, monkeypatch, capsys):
    """`--source "$UNSET"` opened the current folder, recursively: 5,021 images in a checkout."""
    monkeypatch.chdir(tmp_path)
    assert "--source is empty" in refused([*command, "--source", ""], capsys)
    assert not (tmp_path / "rows.csv").exists()


@pytest.mark.parametrize("command, option", [(["run", "--out"], "--out"), (["bench", "--json"], "--json"),
                                             (["app", "--max-seconds", "1", "--health"], "--health"),
                                             # the app loads every default model whatever it is given
                                             (["app", "--max-seconds", "1", "--classifier", str(MODEL), "--no-filter", "--log"], "--log")])
def test_an_output_over_a_default_model_is_refused(command, option, tmp_path, monkeypatch, capsys):
    """`run --out resources/models/resnet10_unbalanced.onnx` wrote its rows over a default model, exit 0: only the
    models given by name were kept from an output. (The defaults' folder is a copy here: what a failure writes over.)"""
    import inference.defaults

    models = tmp_path / "models"
    shutil.copytree(REPO / "resources" / "models", models)
    monkeypatch.setattr(inference.defaults, "MODELS_DIR", models)
    model = models / "resnet10_unbalanced.onnx"
    before = model.read_bytes()
    err = refused([command[0], "--source", str(utk_images(1)[0]), *command[1:], str(model)], capsys)
    assert (f"{option} and the default model resnet10_unbalanced.onnx name the same file: writing {option} would "
            "destroy the default model") in err
    assert model.read_bytes() == before


def test_an_output_that_is_the_source_or_lies_in_its_folder_is_refused(tmp_path, capsys):
    """`run --source v.avi --out v.avi` replaced the video with its rows, and `--out faces/labels.csv` a folder's
    labels; the app's screenshot in a slideshow folder would have been shown as a face."""
    face = tmp_path / "faces" / "a.jpg"
    face.parent.mkdir()
    shutil.copy(utk_images(1)[0], face)
    labels = face.parent / "labels.csv"
    labels.write_text("file,gender\na.jpg,female\n")
    before = face.read_bytes()
    err = refused(["run", "--source", str(face), "--out", str(face)], capsys)
    assert "--out is an input of this command" in err and str(face) in err
    err = refused(["run", "--source", str(face.parent), "--out", str(labels)], capsys)
    assert f"--out lies in {face.parent}, an input folder" in err and str(labels) in err
    err = refused(["app", "--source", str(face.parent), "--screenshot", str(face.parent / "shot.png")], capsys)
    assert "--screenshot lies in" in err
    assert "--json is an input of this command" in refused(["bench", "--source", str(face), "--json", str(face)], capsys)
    assert face.read_bytes() == before and labels.read_text() == "file,gender\na.jpg,female\n"


def test_a_thread_count_beyond_four_per_core_is_refused(capsys):
    """--threads 100000 started threads for minutes before anything ran."""
    import os

    most = max(8, 4 * (os.cpu_count() or 1))
    for argv in (["run", "--source", "x", "--out", "y"], ["train", "classifier", "--dataset", "folder:x", "--out", "y"]):
        err = refused([*argv, "--threads", str(most + 1)], capsys)
        assert f"argument --threads: must be at most {most}" in err


def test_a_png_of_a_few_pixels_is_read_like_any_image_when_copies_are_looked_for(tmp_path):
    """OpenCV cannot decode a PNG under 4 px on a side at a quarter of its size: the look for near-identical
    copies raised cv2.error out of audit, train evaluate and train classifier."""
    from inference.datasets import open_dataset
    from inference.datasets.near_identical import SIDE, thumbnail

    folder = tmp_path / "faces"
    folder.mkdir()
    shutil.copy(utk_images(1)[0], folder / "face.jpg")
    for name, shape in (("dot.png", (1, 1, 3)), ("strip.png", (100, 3, 3))):
        cv2.imwrite(str(folder / name), np.full(shape, 90, np.uint8))
    assert thumbnail(str(folder / "dot.png")).shape == (SIDE * SIDE,)
    read = open_dataset(f"folder:{folder}", tmp_path / "cache")
    assert sorted(Path(s.path).name for s in read.samples) == ["dot.png", "face.jpg", "strip.png"]


def test_a_labels_csv_is_read_with_spaces_after_its_commas_and_odd_names(tmp_path, caplog):
    """'file, gender' left every row's keys with a leading space, so every label was silently dropped; './a.jpg'
    was listed as a file the folder did not hold; an age of '²' passed str.isdigit and crashed int()."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(utk_images(1)[0], folder / name)
    (folder / "labels.csv").write_text("file, gender, race, age\n./a.jpg, female, Black, 31\nb.jpg, male, White, ²\n",
                                       encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        read = read_folder(folder)
    got = {Path(s.path).name: (s.gender, s.race, s.age) for s in read.samples}
    assert got == {"a.jpg": ("female", "Black", 31), "b.jpg": ("male", "White", None)}
    assert not read.skipped and "age '²' (expected whole years)" in caplog.text


def test_a_folders_labels_stay_when_a_groups_csv_is_given(tmp_path):
    """With --groups, a folder's labels.csv used to be replaced by the groups CSV: a labelled audit became an
    unlabelled one."""
    from inference.audit.cli import read_dataset

    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(utk_images(2)[name == "b.jpg"], folder / name)
    (folder / "labels.csv").write_text("file,gender,race\na.jpg,female,Asian\nb.jpg,male,Indian\nghost.jpg,male,\n")
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\na.jpg,team a\nb.jpg,team b\nother.jpg,team b\n")
    read, notes = read_dataset(f"folder:{folder}", str(groups))
    got = {Path(s.path).name: (s.gender, s.race, s.group) for s in read.samples}
    assert got == {"a.jpg": ("female", "Asian", "team a"), "b.jpg": ("male", "Indian", "team b")}
    assert notes["groups_csv"]["listed_not_found"] == ["other.jpg"]  # ghost.jpg is the labels CSV's, not the groups'
    carrying_labels = tmp_path / "labelled_groups.csv"  # a folder's groups CSV with labels is its labels CSV…
    carrying_labels.write_text("file,group,gender\na.jpg,x,male\nghost.jpg,y,male\n")
    with pytest.raises(BiasMirrorError, match=r"label column\(s\) gender and the folder has its own labels.csv"):
        read_dataset(f"folder:{folder}", str(carrying_labels))  # … which would replace the folder's own, unsaid
    own = folder / "labels.csv"  # the folder's own, with groups, given as --groups too: one file, no conflict
    own.write_text("file,gender,race,group\na.jpg,female,Asian,x\nb.jpg,male,Indian,y\n")
    same, _ = read_dataset(f"folder:{folder}", str(own))
    assert {Path(s.path).name: (s.gender, s.group) for s in same.samples} == {"a.jpg": ("female", "x"),
                                                                               "b.jpg": ("male", "y")}
    (folder / "labels.csv").unlink()
    read, notes = read_dataset(f"folder:{folder}", str(carrying_labels))
    assert {Path(s.path).name: (s.gender, s.group) for s in read.samples} == {"a.jpg": ("male", "x"),
                                                                               "b.jpg": (None, None)}
    assert notes["groups_csv"]["listed_not_found"] == ["ghost.jpg"]
    no_group_column = tmp_path / "nogroup.csv"
    no_group_column.write_text("file,team\na.jpg,x\n")
    with pytest.raises(BiasMirrorError, match="the groups CSV needs columns 'file' and 'group'"):
        read_dataset(f"folder:{folder}", str(no_group_column))


@pytest.mark.parametrize("kind", ["folder", "utkface", "celeba", "fairface"])
def test_a_dataset_spec_without_a_path_is_refused_not_the_current_folder(kind, tmp_path, capsys):
    err = refused(["audit", "--dataset", f"{kind}:", "--out", str(tmp_path / "a")], capsys)
    assert f"dataset spec '{kind}:' has no path after {kind}:" in err


def test_a_jpeg_with_data_after_its_end_is_read_and_one_cut_off_in_it_is_not(tmp_path):
    """A phone's motion photo keeps a video after the JPEG's end marker: more than 1 KB of it hid the marker
    from the truncation check, and the photo was refused as unreadable."""
    whole = utk_images(1)[0].read_bytes()
    motion = tmp_path / "motion.jpg"
    motion.write_bytes(whole + b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 16)
    assert read_image(motion) is not None and read_rgb(str(motion)) is not None
    # a header segment holding an end marker of its own (as an EXIF thumbnail does) does not hide a cut
    app1 = b"\xff\xe1" + (2 + 6).to_bytes(2, "big") + b"\xff\xd8ab\xff\xd9"
    with_thumb = whole[:2] + app1 + whole[2:]
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(with_thumb[: len(with_thumb) * 2 // 3])
    assert read_image(cut) is None
    (tmp_path / "thumb.jpg").write_bytes(with_thumb)
    assert read_image(tmp_path / "thumb.jpg") is not None


def test_a_float_frame_with_a_highlight_above_one_is_still_a_zero_to_one_frame():
    """One pixel at 1.02 made the whole 0–1 frame read as 0–255: black, and its face unseen."""
    from inference.frame_depth import as_bgr_uint8

    frame = np.full((20, 20, 3), 0.5, np.float32)
    frame[0, 0] = 1.02
    out = as_bgr_uint8(frame)
    half = int(np.rint(0.5 * 255))  # the nearest level, as every float frame is read
    assert out[5, 5].tolist() == [half] * 3 and out[0, 0].tolist() == [255, 255, 255]
    assert as_bgr_uint8(np.full((4, 4, 3), 200.0))[0, 0].tolist() == [200, 200, 200]


def test_a_dark_float_frame_in_0_255_with_a_small_bright_face_stays_0_255():
    """Told by its 99th percentile alone, a dark 0–255 frame whose face was under 1 % of it read as 0–1: the face
    white, the background grey."""
    from inference.frame_depth import as_bgr_uint8

    frame = np.random.default_rng(0).uniform(0, 1.0, (480, 640, 3)).astype(np.float32)
    frame[200:240, 300:340] = 180.0
    out = as_bgr_uint8(frame)
    assert out[220, 320].tolist() == [180, 180, 180] and out[:100].max() <= 1


def _labelled_folder(tmp_path: Path) -> Path:
    data = tmp_path / "lab"
    data.mkdir()
    for i, p in enumerate(utk_images(4)):
        shutil.copy(p, data / f"{i}.jpg")
    (data / "labels.csv").write_text("file,gender\n0.jpg,male\n1.jpg,female\n2.jpg,male\n3.jpg,female\n")
    return data


@pytest.mark.parametrize("command", ["evaluate", "bench detect", "audit", "train classifier"])
def test_no_output_is_written_into_the_dataset_it_reads(command, tmp_path, capsys):
    """train evaluate --json and bench detect --json replaced the dataset's labels.csv; audit --out the dataset's
    folder overwrote files of it; train classifier --export-to overwrote a training image with the model."""
    data = _labelled_folder(tmp_path)
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    argv = {"evaluate": ["train", "evaluate", "--model", str(MODEL), "--dataset", f"folder:{data}", "--json",
                         str(data / "labels.csv")],
            "bench detect": ["bench", "detect", "--data", f"folder:{data}", "--json", str(data / "labels.csv")],
            "audit": ["audit", "--dataset", f"folder:{data}", "--classifier", str(MODEL), "--no-filter", "--out",
                      str(data)],
            "train classifier": ["train", "classifier", "--dataset", f"folder:{data}", "--out", str(tmp_path / "run"),
                                 "--export-to", str(data / "0.jpg")]}[command]
    err = refused(argv, capsys)
    assert "an input folder" in err or "an input of this command" in err
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before


@pytest.mark.parametrize("mode", [[], ["--aligned"]], ids=["detected", "aligned"])
def test_an_audit_says_why_an_image_could_not_be_read(mode, tmp_path, monkeypatch, capsys):
    """An image the audit could not open for want of permission was called "corrupt, truncated or another format" in
    the summary and "cannot be read as an image" in report.json, where run and the app said "permission denied";
    and once the permission was put right, the cache went on calling it unreadable."""
    import json

    data = tmp_path / "faces"
    data.mkdir()
    for name, src in zip(("a.jpg", "locked.jpg"), utk_images(3)[1:]):
        shutil.copy(src, data / name)
    (data / "broken.jpg").write_bytes(b"not a jpeg")
    locked = str(data / "locked.jpg")
    fromfile = np.fromfile

    def denied(file, *args, **kwargs):  # as a user the file's permissions refuse (the tests run as root)
        if str(file) == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return fromfile(file, *args, **kwargs)

    argv = ["audit", "--dataset", f"folder:{data}", "--classifier", str(MODEL), "--no-filter", "--no-html",
            "--no-progress", "--out", str(tmp_path / "out"), *mode]
    monkeypatch.setattr(np, "fromfile", denied)
    assert main.main(argv) == 0
    out = capsys.readouterr().out
    assert "1 image(s) could not be read (permission denied): locked.jpg." in out
    assert "1 image(s) could not be read (corrupt, truncated or another format): broken.jpg." in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {u["file"]: u["error"] for u in report["images"]["unreadable"]} == {
        "locked.jpg": "permission denied", "broken.jpg": "cannot be read as an image"}
    monkeypatch.setattr(np, "fromfile", fromfile)  # the permission put right: read now, not the cache's refusal
    assert main.main(argv) == 0
    assert "locked.jpg" not in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [u["file"] for u in report["images"]["unreadable"]] == ["broken.jpg"] and report["images"]["n_faces"] == 2


def test_the_audit_summary_names_each_reason_images_could_not_be_read():
    from inference.audit.summary import unreadable_lines

    unreadable = [{"file": f"c{i}.jpg", "error": "cannot be read as an image"} for i in range(6)] + [
        {"file": "p.jpg", "error": "permission denied"},
        {"file": "io.jpg", "error": "cannot be read (input/output error)"},
        {"file": "d.tif", "error": "its pixels are int16: only 8- or 16-bit unsigned and float32/64 pixels can be analysed"}]
    assert unreadable_lines(unreadable) == [
        "6 image(s) could not be read (corrupt, truncated or another format): c0.jpg, c1.jpg, c2.jpg, c3.jpg, c4.jpg "
        "and 1 more (listed in the report).",
        "1 image(s) could not be read (permission denied): p.jpg.",
        "1 image(s) could not be read (input/output error): io.jpg.",
        "1 image(s) could not be read (its pixels are int16: only 8- or 16-bit unsigned and float32/64 pixels can be "
        "analysed): d.tif."]


def test_a_tilde_in_an_output_path_is_the_home_folder_as_in_a_source(tmp_path, monkeypatch, capsys):
    """`--source=~/pics --out=~/pics/rows.csv` (a shell leaves a ~ after = as it is) wrote ./~/pics/rows.csv in the
    current folder, said "written to ~/pics/rows.csv", and so passed the check that keeps outputs out of an input
    folder: --source was expanded, --out and the app's --screenshot, --health and --log were not."""
    import argparse

    import gui.app_cli
    from inference.arg_checks import check_output_dir, check_output_file

    home, here = tmp_path / "home", tmp_path / "here"
    (home / "pics").mkdir(parents=True)
    here.mkdir()
    shutil.copy(utk_images(1)[0], home / "pics" / "a.jpg")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    assert check_output_file("~/rows.csv", "--out") == home / "rows.csv"
    assert check_output_dir("~/audit", "--out") == home / "audit"
    with pytest.raises(BiasMirrorError, match="--out lies in"):
        check_output_dir("~/pics/audit", "--out", ("~/pics",))
    err = refused(["run", "--source=~/pics", "--out=~/pics/rows.csv", "--classifier", str(MODEL), "--no-filter"], capsys)
    assert f"{home / 'pics' / 'rows.csv'}: --out lies in {home / 'pics'}, an input folder" in err
    err = refused(["app", "--source=~/pics", "--screenshot=~/pics/shot.png", "--max-seconds", "1"], capsys)
    assert f"{home / 'pics' / 'shot.png'}: --screenshot lies in" in err

    assert main.main(["run", "--source=~/pics", "--out=~/out/rows.csv", "--classifier", str(MODEL), "--no-filter"]) == 0
    assert f"written to {home / 'out' / 'rows.csv'};" in capsys.readouterr().err
    assert (home / "out" / "rows.csv").is_file()

    class WindowWouldOpen(Exception):
        pass

    def stop() -> None:
        raise WindowWouldOpen

    monkeypatch.setattr(gui.app_cli, "check_display", stop)  # the app's outputs as checked, before its window
    args = argparse.Namespace(source=str(home / "pics"), filter=None, no_filter=False, health="~/h/health.json",
                              screenshot="~/h/shot.png", log="~/h/app.log")
    with pytest.raises(WindowWouldOpen):
        gui.app_cli.main(args)
    assert (args.health, args.screenshot, args.log) == tuple(str(home / "h" / n) for n in ("health.json", "shot.png",
                                                                                           "app.log"))
    assert list(here.iterdir()) == []  # no folder named "~" here


def test_every_command_writes_a_tilde_output_in_the_home_folder(tmp_path, monkeypatch, capsys):
    """The checks expanded "~" but audit --out, evaluate --json and the trainers' --export-to wrote with the path as
    given: a folder named "~" in the current one, after the check had passed on another path."""
    home, here = tmp_path / "home", tmp_path / "here"
    (home / "pics").mkdir(parents=True)
    here.mkdir()
    for p in utk_images(2):
        shutil.copy(p, home / "pics" / p.name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    assert main.main(["audit", "--dataset", "folder:~/pics", "--out", "~/aud", "--classifier", str(MODEL),
                      "--no-filter", "--no-progress", "--threads", "1", "--no-html"]) == 0
    assert (home / "aud" / "report.json").is_file()
    (home / "pics" / "labels.csv").write_text("file,gender,age,split\n" + "".join(
        f"{p.name},{'male' if p.name.split('_')[1] == '0' else 'female'},30,test\n" for p in (home / "pics").glob("*.jpg")))
    assert main.main(["train", "evaluate", "--model", str(MODEL), "--dataset", "folder:~/pics", "--json",
                      "~/eval.json"]) == 0
    assert (home / "eval.json").is_file()
    assert list(here.iterdir()) == []


def test_an_x_display_qt_cannot_use_is_named_with_the_libraries_to_install(monkeypatch, capsys):
    """On a server or in a container with DISPLAY set, Qt's xcb plugin lacked libxcb-icccm.so.4 and Qt aborted the app
    (status 134) saying only that libxcb-cursor0 was needed, which was installed. With no display at all it is said
    too, as before; the check loads what Qt would load next."""
    import ctypes

    import gui.app_cli

    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(BiasMirrorError, match="no display to open the window on"):
        gui.app_cli.check_display()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")  # outside a Wayland session Qt takes X, and found no DISPLAY
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    with pytest.raises(BiasMirrorError, match="WAYLAND_DISPLAY is set but this is no Wayland session .* DISPLAY is not "
                                              "set: set QT_QPA_PLATFORM=wayland"):
        gui.app_cli.check_display()
    monkeypatch.delenv("WAYLAND_DISPLAY")
    monkeypatch.setenv("DISPLAY", ":93")

    def missing(path, *a, **k):
        raise OSError(f"{path}: libxcb-icccm.so.4: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert gui.app_cli.xcb_plugin_problem() == "libxcb-icccm.so.4: cannot open shared object file: No such file or directory"
    code = main.main(["app", "--source", str(utk_images(1)[0]), "--max-seconds", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert ("error: Qt cannot open a window on this X display (DISPLAY=:93): its xcb platform plugin needs a system "
            "library that is not installed (libxcb-icccm.so.4: cannot open") in err
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in err and "QT_QPA_PLATFORM=offscreen" in err
