"""Models and readers, a third look (2026-12-07): a model or its external data file this user may not read, every
ONNX Runtime load error caught, an external data file that is a folder said as adopt says it; label rows written
through a link read when the dataset is given by its real path; a training split empty of gendered faces or of
faces a band's age bar passes, said so; a link loop given to bench --source or train fp16 --images, and a ~user
of no user, named."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from inference import models
from inference.arg_checks import LINK_LOOP
from inference.datasets import read_fairface, read_folder
from inference.errors import PERMISSION_DENIED, BiasMirrorError
from inference.models import missing_external_data
from tests.conftest import REPO, make_classifier, run_main
from tests.test_damaged_models_run_time import refused, with_external_weights
from tests.test_damaged_models_second_look import adopt_refused
from training.tasks.classifier import list_faces

CANNOT_BE_READ = f"cannot be read by this user ({PERMISSION_DENIED})"
posix_permissions = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="file modes that refuse a user are POSIX's")


# --- 1. a model, or its external data file, that this user may not read --------------------------------------------

@pytest.fixture
def open_tmp():
    """A folder another user can reach: pytest's own tmp_path sits under a folder only root may enter."""
    d = Path(tempfile.mkdtemp(prefix="bm-perm-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    for p in [d, *d.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.rmtree(d)


def _refusals_as_unprivileged(model: Path) -> list[str]:
    """What load_model (run, the audit, the app) and read_onnx (train adopt) refuse ``model`` with, read by a user
    the file's permissions apply to: root reads whatever they say."""
    code = ("import sys\nsys.path.insert(0, sys.argv[1])\nfrom pathlib import Path\n"
            "from inference.errors import BiasMirrorError\nfrom inference.models import load_model\n"
            "from training.adopt_read import read_onnx\n"
            "for read in (load_model, read_onnx):\n"
            "    try:\n        read(Path(sys.argv[2]))\n        print('read')\n"
            "    except BiasMirrorError as exc:\n        print(exc)\n")
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv to drop to a user that permissions apply to")
    drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
    done = subprocess.run([*drop, sys.executable, "-c", code, str(REPO), str(model)], capture_output=True, text=True,
                          timeout=300, cwd="/")
    assert done.returncode == 0, done.stderr  # no traceback
    return done.stdout.splitlines()


@posix_permissions
def test_an_external_data_file_this_user_cannot_read_is_named_by_run_and_by_adopt(open_tmp, tiny_models):
    """onnx.save writes the data file readable by its owner alone: another user's run and audit had ended in a
    traceback (ModelRequiresCompilation: SystemError : 13, exit 1, a failed gate to CI), adopt called the model
    "truncated, corrupt or another format"."""
    model, data = with_external_weights(tiny_models["classifier"], open_tmp)
    model.chmod(0o644)
    data.chmod(0o600)
    said = _refusals_as_unprivileged(model)
    assert len(said) == 2
    for text in said:
        assert text.startswith(f"{model}: not a readable ONNX model: its weights are kept in an external data file, "
                               f"{data}, which {CANNOT_BE_READ}"), text
        assert "corrupt" not in text


@posix_permissions
def test_a_model_file_this_user_cannot_read_is_said_so(open_tmp, tiny_models):
    """It had been "not a readable ONNX model (truncated, corrupt or another format): system error number 13"."""
    model = open_tmp / "locked.onnx"
    shutil.copy(tiny_models["classifier"], model)
    model.chmod(0o600)
    said = _refusals_as_unprivileged(model)
    assert len(said) == 2
    for text in said:
        assert text.startswith(f"{model}: the model file {CANNOT_BE_READ}: let this user read it"), text


@pytest.mark.parametrize("status_error", [c for c in vars(ort_state).values()
                                          if isinstance(c, type) and issubclass(c, Exception)
                                          and c is not ort_state.NotImplemented],
                         ids=lambda c: c.__name__)
def test_every_error_onnx_runtime_raises_at_load_names_the_file(tmp_path, tiny_models, monkeypatch, status_error):
    """A hand-picked list had missed some (ModelRequiresCompilation, EngineError): a traceback in run, the audit and
    the app. NotImplemented has a message of its own."""
    def failing(*args, **kwargs):
        raise status_error("[ONNXRuntimeError] : 1 : FAIL : something failed")

    monkeypatch.setattr(models, "create_session", failing)
    assert refused(tiny_models["classifier"]).startswith("not a readable ONNX model")


def test_an_external_data_file_that_is_a_folder_is_said_as_adopt_says_it(tmp_path, tiny_models):
    """ORT's "Random-access reads require a regular file" had been called "truncated, corrupt or another format";
    adopt said the data file is missing (or no regular file)."""
    model, data = with_external_weights(tiny_models["classifier"], tmp_path)
    data.unlink()
    data.mkdir()
    assert refused(model) == adopt_refused(model) == missing_external_data(data)


# --- 2. label rows written through a link, the dataset given by its real path ----------------------------------------

def _img(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((24, 24, 3), value, np.uint8))


def _write_csv(path: Path, rows: list[list[object]]) -> None:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.fixture
def linked(tmp_path) -> tuple[Path, Path]:
    """(a folder, a link to it)."""
    real, link = tmp_path / "faces", tmp_path / "faces_link"
    real.mkdir()
    link.symlink_to(real, target_is_directory=True)
    return real, link


def test_fairface_rows_written_through_a_link_are_read_when_the_folder_is_given_by_its_real_path(linked):
    """aaff0e1 read rows of the real path through the link; the other way every row had been "not a path relative
    to the folder: it leads outside the dataset folder"."""
    real, link = linked
    names = [f"{part}/{i}.jpg" for i, part in enumerate(["train"] * 4 + ["val"] * 2)]
    for i, name in enumerate(names):
        _img(real / name, 20 + 30 * i)
    for part, label_file in (("train", "fairface_label_train.csv"), ("val", "fairface_label_val.csv")):
        _write_csv(real / label_file, [["file", "age", "gender", "race"],
                                       *([(link / n).as_posix(), "20-29", "Male" if i % 2 else "Female", "White"]
                                         for i, n in enumerate(n for n in names if n.startswith(part)))])
    for given in (link, real):
        read = read_fairface(given)
        assert sorted(os.path.relpath(s.path, given) for s in read.samples) == sorted(names) and not read.skipped


def test_folder_rows_written_through_a_link_are_read_when_the_folder_is_given_by_its_real_path(linked):
    real, link = linked
    names = [f"sub/{i}.jpg" for i in range(4)]
    for i, name in enumerate(names):
        _img(real / name, 20 + 30 * i)
    _write_csv(real / "labels.csv", [["file", "gender"],
                                     *([(link / n).as_posix(), "male" if i % 2 else "female"]
                                       for i, n in enumerate(names))])
    for given in (link, real):
        read = read_folder(given)
        assert sorted(s.gender for s in read.samples) == sorted("male" if i % 2 else "female" for i in range(4))


def test_a_row_leading_out_of_the_folder_through_a_link_is_still_refused(tmp_path):
    """The real path a row leads to is compared, not its words alone: a link in a row out of the folder is out."""
    real, outside = tmp_path / "faces", tmp_path / "elsewhere"
    _img(real / "a.jpg", 40)
    _img(outside / "b.jpg", 90)
    (tmp_path / "alias").symlink_to(outside, target_is_directory=True)
    _write_csv(real / "labels.csv", [["file", "gender"], ["a.jpg", "male"],
                                     [(tmp_path / "alias" / "b.jpg").as_posix(), "female"]])
    read = read_folder(real)
    assert [s.path for s in read.samples] == [str(real / "a.jpg")]


# --- 3 and 4. a training split empty of gendered faces, or of faces a band's age bar passes -----------------------

def _distinct_faces(paths: list[Path]) -> None:
    """A face of its own at each path: faces alike would be merged as copies of one photograph."""
    rng = np.random.default_rng(0)
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))


def test_split_train_rows_without_a_gender_are_said_so_not_told_to_be_split_train(tmp_path):
    """Gender "M"/"F" (not understood) on every split-train row: the error had advised giving some rows split train,
    which they were."""
    root, train_rows, test_rows = tmp_path / "faces", 6, 4
    files = [root / f"{i}.jpg" for i in range(train_rows + test_rows)]
    _distinct_faces(files)
    _write_csv(root / "labels.csv", [["file", "gender", "split"],
                                     *([f.name, "MF"[i % 2], "train"] for i, f in enumerate(files[:train_rows])),
                                     *([f.name, ("male", "female")[i % 2], "test"]
                                       for i, f in enumerate(files[train_rows:]))])
    with pytest.raises(BiasMirrorError) as err:
        list_faces(f"folder:{root}", None, say=False, cache_dir=None)
    said = str(err.value)
    assert f"{train_rows} row(s) of split train have no gender label (male/female)" in said, said
    assert f"({test_rows} test)" in said and "give some rows of its labels CSV split train" not in said


def _fairface(root: Path, train_band: str, test_band: str, n: int) -> Path:
    """FairFace label files of ``n`` faces in band ``train_band`` in train and ``n`` in ``test_band`` in its val
    (our test), genders alternating."""
    names = [f"{part}/{i}.jpg" for part in ("train", "val") for i in range(n)]
    _distinct_faces([root / name for name in names])
    for part, band, label_file in (("train", train_band, "fairface_label_train.csv"),
                                   ("val", test_band, "fairface_label_val.csv")):
        _write_csv(root / label_file, [["file", "age", "gender", "race"],
                                       *([name, band, ("Male", "Female")[i % 2], "White"]
                                         for i, name in enumerate(n for n in names if n.startswith(part)))])
    return root


def test_an_age_bar_leaving_out_a_band_names_the_band_and_the_bar_that_keeps_it(tmp_path):
    """Faces in band 10-19 barred by 15 had been "younger than 15; give a lower --min-age": 16 and 17 fail too, as a
    band compares as its youngest age."""
    youngest, bar = 10, 15
    data = f"fairface:{_fairface(tmp_path / 'ff', f'{youngest}-{youngest + 9}', '20-29', 6)}"
    with pytest.raises(BiasMirrorError) as err:
        list_faces(data, bar, say=False, cache_dir=None)
    said = str(err.value)
    assert f"are in band {youngest}-{youngest + 9}, which compares as its youngest age, {youngest}" in said, said
    assert f"--min-age {youngest} keeps them" in said and f"younger than {bar}" not in said
    assert list_faces(data, youngest, say=False, cache_dir=None).samples  # the bar named keeps them


def test_an_age_bar_above_every_band_names_the_oldest_band(tmp_path):
    """It had said "the oldest labelled face is 20" of faces up to 29."""
    data = f"fairface:{_fairface(tmp_path / 'ff', '10-19', '20-29', 4)}"
    with pytest.raises(BiasMirrorError) as err:
        list_faces(data, 30, say=False, cache_dir=None)
    assert "the oldest labelled faces are in band 20-29, which compares as its youngest age, 20" in str(err.value)


# --- 6 and 7. a link loop given to bench --source or train fp16 --images; a ~user of no user -----------------------

@pytest.fixture
def loop(tmp_path) -> Path:
    link = tmp_path / "loop"
    link.symlink_to(link)
    return link


def test_bench_and_train_fp16_call_a_link_loop_one(tmp_path, loop, capsys):
    """They had said "give --source: a folder of face images …" and "no image folder to measure fp16 parity on"."""
    model = make_classifier(tmp_path / "c.onnx")
    code, _, err = run_main(["bench", "--source", str(loop), "--no-baseline", "--frames", "1", "--warmup", "0",
                             "--providers", "cpu", "--classifier", str(model), "--no-filter"], capsys)
    assert code == 2 and f"--source: {loop} {LINK_LOOP}" in err, err
    code, _, err = run_main(["train", "fp16", str(model), "--out", str(tmp_path / "c_fp16.onnx"), "--images",
                             str(loop)], capsys)
    assert code == 2 and f"--images: {loop} {LINK_LOOP}" in err, err


@pytest.fixture
def unknown_user() -> str:
    pwd = pytest.importorskip("pwd")  # ~user is looked up in the user database on POSIX systems
    name = "bm-no-such-user"
    with pytest.raises(KeyError):
        pwd.getpwnam(name)  # the test needs a name no user has
    return name


def test_a_tilde_of_no_user_is_named_not_a_traceback(tmp_path, unknown_user, capsys):
    """`audit --dataset 'folder:~nosuchuser/x'` had ended in "RuntimeError: Could not determine home directory."."""
    given = f"~{unknown_user}/faces"
    for argv in (["audit", "--dataset", f"folder:{given}", "--out", str(tmp_path / "out"), "--no-html"],
                 ["train", "classifier", "--dataset", f"folder:{given}", "--out", str(tmp_path / "run")]):
        code, _, err = run_main(argv, capsys)
        assert code == 2 and f"error: {given}: ~{unknown_user} names a user unknown on this system" in err, err


# --- a fourth look (2026-12-07): a row's ".." after a link; a model's data file no path can name; ~ in a model's
# path, and ~\ on POSIX; a failed load reads no more of the file than ONNX Runtime did ------------------------------

@pytest.fixture
def dot_dot_after_a_link(tmp_path) -> tuple[Path, Path]:
    """(a folder holding 2.jpg, deep/2.jpg and sub, a link to deep/x; a link to that folder): the OS opens
    sub/../2.jpg as deep/2.jpg, the words alone read 2.jpg."""
    real, link = tmp_path / "faces", tmp_path / "faces_link"
    _img(real / "2.jpg", 40)
    _img(real / "deep" / "2.jpg", 160)
    (real / "deep" / "x").mkdir()
    (real / "sub").symlink_to(Path("deep", "x"), target_is_directory=True)
    link.symlink_to(real, target_is_directory=True)
    return real, link


def test_an_absolute_row_with_dot_dot_after_a_link_labels_the_photo_the_os_opens(dot_dot_after_a_link):
    """Normalised by its words, the row had labelled faces/2.jpg and left faces/deep/2.jpg, the photo it opens,
    unlabelled, whether the folder was given by its real path or through a link."""
    real, link = dot_dot_after_a_link
    for written_through in (real, link):
        _write_csv(real / "labels.csv", [["file", "gender"], [f"{written_through.as_posix()}/sub/../2.jpg", "female"]])
        for given in (real, link):
            labelled = {os.path.relpath(s.path, given): s.gender for s in read_folder(given).samples}
            assert labelled == {"2.jpg": None, "deep/2.jpg": "female"}, (written_through, given, labelled)


def test_a_relative_folder_row_with_dot_dot_labels_the_photo_the_os_opens(dot_dot_after_a_link):
    """A labels row "sub/../2.jpg" had matched no file and been skipped, its photo left unlabelled; "deep/../2.jpg"
    (no link) names 2.jpg, and "sub/../2.jpg" (sub a link to deep/x) the deep/2.jpg the OS opens."""
    real, link = dot_dot_after_a_link
    for row, expected in (("deep/../2.jpg", {"2.jpg": "female", "deep/2.jpg": None}),
                          ("sub/../2.jpg", {"2.jpg": None, "deep/2.jpg": "female"}),
                          ("../faces/2.jpg", {"2.jpg": "female", "deep/2.jpg": None})):  # out and back in
        _write_csv(real / "labels.csv", [["file", "gender"], [row, "female"]])
        for given in (real, link):
            labelled = {os.path.relpath(s.path, given): s.gender for s in read_folder(given).samples}
            assert labelled == expected, (row, given, labelled)


def test_a_relative_fairface_row_with_dot_dot_after_a_link_labels_the_photo_the_os_opens(tmp_path):
    """FairFace looks a name its listing lacks up on disk: "train/sub/../2.jpg" had been read as train/2.jpg."""
    root = tmp_path / "ff"
    names = ["train/2.jpg", "train/deep/2.jpg", "train/other.jpg", "val/1.jpg", "val/3.jpg"]
    _distinct_faces([root / n for n in names])
    (root / "train" / "deep" / "x").mkdir()
    (root / "train" / "sub").symlink_to(Path("deep", "x"), target_is_directory=True)
    rows = [("train/sub/../2.jpg", "Female"), ("train/other.jpg", "Male")]
    _write_csv(root / "fairface_label_train.csv", [["file", "age", "gender", "race"],
                                                    *([n, "20-29", g, "White"] for n, g in rows)])
    _write_csv(root / "fairface_label_val.csv", [["file", "age", "gender", "race"],
                                                  *([n, "20-29", g, "White"]
                                                    for n, g in (("val/1.jpg", "Male"), ("val/3.jpg", "Female")))])
    labelled = {os.path.relpath(s.path, root): s.gender for s in read_fairface(root).samples}
    assert labelled.get("train/deep/2.jpg") == "female" and labelled.get("train/2.jpg") is None, labelled


def _with_data_location(model: Path, location: str) -> Path:
    """``model`` rewritten so that its external weights name ``location`` as their data file."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    proto = onnx.load(str(model), load_external_data=False)
    for tensor in proto.graph.initializer:
        if uses_external_data(tensor):
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
    onnx.save(proto, str(model))
    return model


def test_an_external_data_location_no_path_can_have_is_a_refusal_not_a_traceback(tmp_path, tiny_models):
    """A NUL byte in the data file's location: 05f3c05's permission check had raised "ValueError: embedded null
    byte" in run, the audit, adopt and the app."""
    from training.adopt_read import read_onnx

    model, _ = with_external_weights(tiny_models["classifier"], tmp_path)
    _with_data_location(model, "w\x00.bin")
    for read in (models.load_model, read_onnx):
        with pytest.raises(BiasMirrorError) as err:
            read(model)
        assert str(err.value).startswith(f"{model}: not a readable ONNX model"), str(err.value)


def test_a_file_that_is_no_model_is_not_read_again_to_find_data_files(tmp_path, monkeypatch):
    """Looking for a data file this user may not read had loaded the whole file with onnx after any failed load: a
    600 MB file that was no model took its size again in memory, for the same "Protobuf parsing failed"."""
    corrupt = tmp_path / "noise.onnx"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    looked_for = []
    monkeypatch.setattr(models, "external_data_files", lambda path: looked_for.append(path) or [])
    with pytest.raises(BiasMirrorError) as err:
        models.load_model(corrupt)
    assert "not a readable ONNX model" in str(err.value)
    assert not looked_for, "the model was read again to find its external data files"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A home folder of this test's own."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def test_a_model_path_in_the_home_folder_is_read_as_a_dataset_path_is(home, tiny_models, unknown_user, capsys):
    """`run --classifier=~/m.onnx` had been "model file not found" of a file in the home folder, `train fp16
    ~/m.onnx` too while its default --out was written there, and `train fp16 ~nosuchuser/m.onnx` a traceback."""
    from tests.conftest import require_utk
    from training import fp16

    shutil.copy(tiny_models["classifier"], home / "m.onnx")
    assert models.load_model("~/m.onnx", "classifier").path == home / "m.onnx"
    assert models.read_card("~/m.onnx").kind == "classifier"
    written = fp16.make_variant("~/m.onnx", None, require_utk(), 4, "cpu", force=True, echo=lambda _: None)
    assert written == home / "m_fp16.onnx" and written.is_file()
    given = f"~{unknown_user}/m.onnx"
    code, _, err = run_main(["train", "fp16", given, "--out", str(home / "f.onnx")], capsys)
    assert code == 2 and f"error: {given}: ~{unknown_user} names a user unknown on this system" in err, err


@pytest.mark.skipif(os.name == "nt", reason="on Windows a backslash separates folders, and ~\\ is the home folder")
def test_a_windows_home_path_is_not_blamed_on_home(tmp_path, home, capsys):
    """`run --out '~\\o.csv'` had said HOME was not set, with HOME set: expanduser looked for a user '\\o.csv'."""
    _img(tmp_path / "img" / "1.jpg", 90)
    code, _, err = run_main(["run", "--source", str(tmp_path / "img"), "--out", "~\\o.csv", "--no-filter"], capsys)
    assert code == 2 and "~\\o.csv is not a home folder on this system" in err and "write ~/o.csv" in err, err
    assert "HOME is not set" not in err


def test_a_home_path_where_home_is_set_but_empty_is_refused_not_put_at_the_root(monkeypatch, tmp_path):
    """POSIX's expanduser makes ~ the root folder where HOME is set but empty: `run --out ~/o.csv` had written /o.csv."""
    from inference.arg_checks import user_path
    from inference.errors import BiasMirrorError

    if os.name == "nt":
        pytest.skip("Windows finds the home folder by USERPROFILE, not HOME")
    monkeypatch.setenv("HOME", "")
    for path in ("~", "~/o.csv"):
        with pytest.raises(BiasMirrorError, match="HOME is set but empty"):
            user_path(path)
    assert user_path(tmp_path / "o.csv") == tmp_path / "o.csv"  # no ~: untouched
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_path("~/o.csv") == tmp_path / "o.csv"


def test_a_model_file_whose_name_opens_with_a_tilde_is_read_as_named(tmp_path, monkeypatch):
    """A shell passes "~draft.onnx" on as it is where no user is so named: expanding ~ in model paths had refused
    such a file in this folder as naming an unknown user, and a saved settings entry like it had stopped the app's
    start (loaded_from raised outside the loading's try)."""
    from inference.models import load_model, loaded_from

    shutil.copy(REPO / "resources" / "models" / "resnet10_unbalanced.onnx", tmp_path / "~draft.onnx")
    monkeypatch.chdir(tmp_path)
    model = load_model("~draft.onnx", "classifier")
    assert loaded_from([model], "~draft.onnx") is model
    assert loaded_from([model], "~nosuchuser/x.onnx") is None  # names no file: nothing loaded from it
