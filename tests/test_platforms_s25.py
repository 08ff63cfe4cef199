"""Windows and macOS as a wheel meets them: what a reviewer reproduced there, each simulated here as the project's
tests simulate another system (no FUSE, no Windows): the file system's answers patched, or ``sys.platform``.

1. macOS's APFS and HFS+ (and Windows's NTFS) match names ignoring case: an --out differing from an input only in
   case had overwritten the photo, video or model it names.
2. Windows: an absolute path (D:\\faces) had been read as a dataset KIND "D", and a run given one never resumed.
3. Windows: a report's file open in Excel cannot be replaced; the others had been, leaving a mixed report.
4. Windows under a user folder beyond ASCII: bench's eager baseline loaded its cascade by name, and crashed.
5. Windows: two app windows on one log: its rotation refused, every line after 1 MB had been lost.
6. Windows: `run --out - | head` fails a write with EINVAL, not EPIPE: it had ended "invalid argument", status 2.
"""
from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import sys
import zlib
from pathlib import Path, PureWindowsPath

import cv2
import numpy as np
import pytest

from inference.errors import BiasMirrorError

# --- 1. names that ignore case ---------------------------------------------------------------------------------------


def _as_stored(path: object, root: str) -> object:
    """``path`` below ``root`` spelled as the file system stores it: each name matched to an entry there ignoring
    case, as APFS does (a name matching none stays as written)."""
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        return path
    text = os.fspath(path)
    if not isinstance(text, str) or not (text + os.sep).startswith(root + os.sep):
        return path
    stored = root
    for name in Path(text[len(root):]).parts[1:]:
        try:
            entries = os.listdir(stored)
        except OSError:
            entries = []
        stored = os.path.join(stored, next((e for e in entries if e.casefold() == name.casefold()), name))
    return stored


def _numbered_by_name(result: os.stat_result, path: object) -> os.stat_result:
    """``result`` with an inode number of the name asked for, as a FUSE file system without ``use_ino`` gives."""
    fields = list(result[:10])
    fields[1] = zlib.crc32(os.fsencode(os.fspath(path))) or 1
    return os.stat_result(fields)


@pytest.fixture(params=["APFS", "FUSE"])
def ignores_case(tmp_path, monkeypatch, request) -> Path:
    """A folder whose names match ignoring case and keep the case given, as on macOS (APFS, HFS+): what asks the file
    system about a path (stat, lstat, access; pathlib's exists and resolve ask through them) finds face.jpg as
    Face.jpg. Under "FUSE" each name asked for has an inode number of its own, as a FUSE file system may give (the
    reviewer's case-insensitive mount did): the same file is then told by its name alone."""
    root = tmp_path / "apfs"
    root.mkdir()
    for name in ("stat", "lstat", "access"):
        real = getattr(os, name)

        def asked(path, *a, _real=real, _name=name, **k):
            answer = _real(_as_stored(path, str(root)), *a, **k)
            below = isinstance(path, (str, os.PathLike)) and (os.fspath(path) + os.sep).startswith(str(root) + os.sep)
            return _numbered_by_name(answer, path) if request.param == "FUSE" and _name != "access" and below else answer
        monkeypatch.setattr(os, name, asked)
    return root


def test_an_out_differing_from_its_input_only_in_case_is_refused_where_names_ignore_case(ignores_case):
    """`run --source face.jpg --out Face.jpg` on macOS had written the rows over the photo, status 0."""
    from inference.arg_checks import check_output_file

    (photo := ignores_case / "face.jpg").write_bytes(b"a photo")
    with pytest.raises(BiasMirrorError, match="is an input of this command"):
        check_output_file(ignores_case / "Face.jpg", "--out", source=photo)
    assert photo.read_bytes() == b"a photo"


def test_an_out_naming_a_model_in_other_case_is_refused_where_names_ignore_case(ignores_case):
    """`run --classifier clf.onnx --out CLF.onnx` had written 6 face rows over the model."""
    from inference.arg_checks import check_paths_apart

    (ignores_case / "clf.onnx").write_bytes(b"a model")
    with pytest.raises(BiasMirrorError, match="--out and --classifier name the same file"):
        check_paths_apart([("--out", ignores_case / "CLF.onnx")], [("--classifier", ignores_case / "clf.onnx")])


def test_an_output_in_an_input_folder_spelled_in_other_case_is_refused_where_names_ignore_case(ignores_case):
    """`audit --dataset folder:~/Faces --out ~/faces/report` had written into the input folder."""
    from inference.arg_checks import check_output_dir, check_output_file

    (faces := ignores_case / "faces").mkdir()
    with pytest.raises(BiasMirrorError, match="an input folder"):
        check_output_dir(ignores_case / "Faces" / "report", "--out", sources=(faces,))
    with pytest.raises(BiasMirrorError, match="an input folder"):
        check_output_file(ignores_case / "FACES" / "labels.csv", "--out", source=faces)


def test_two_new_outputs_differing_only_in_case_are_refused_where_names_ignore_case(ignores_case):
    """`app --screenshot shot.png --health SHOT.png`: one file on macOS, the other output lost."""
    from inference.arg_checks import check_paths_apart

    (ignores_case / "runs").mkdir()
    with pytest.raises(BiasMirrorError, match="one would overwrite the other"):
        check_paths_apart([("--screenshot", ignores_case / "shot.png"), ("--health", ignores_case / "SHOT.png")])
    with pytest.raises(BiasMirrorError, match="one would overwrite the other"):  # a folder to be made, in two cases
        check_paths_apart([("--screenshot", ignores_case / "new" / "a.png"),
                           ("--health", ignores_case / "NEW" / "A.png")])
    with pytest.raises(BiasMirrorError, match="one would overwrite the other"):  # a folder there, spelled two ways
        check_paths_apart([("--screenshot", ignores_case / "runs" / "a.png"),
                           ("--health", ignores_case / "RUNS" / "a.png")])


def _names_keep_case(folder: Path) -> bool:
    (folder / "probe").touch()
    try:
        return not (folder / "PROBE").exists()
    finally:
        (folder / "probe").unlink()


def test_names_differing_in_case_are_two_files_where_the_file_system_says_so(tmp_path, monkeypatch):
    """Told by asking the folder, not by the platform: a case-sensitive volume on a Mac holds face.jpg and Face.jpg."""
    from inference.arg_checks import check_output_file, check_paths_apart

    if not _names_keep_case(tmp_path):
        pytest.skip("this folder's file system ignores case")
    monkeypatch.setattr(sys, "platform", "darwin")
    (photo := tmp_path / "face.jpg").write_bytes(b"a photo")
    assert check_output_file(tmp_path / "Face.jpg", "--out", source=photo) == tmp_path / "Face.jpg"
    check_paths_apart([("--screenshot", tmp_path / "shot.png"), ("--health", tmp_path / "SHOT.png")],
                      [("--classifier", photo)])
    with pytest.raises(BiasMirrorError, match="one would overwrite the other"):  # the same name still is one file
        check_paths_apart([("--screenshot", tmp_path / "shot.png"), ("--health", tmp_path / "." / "shot.png")])


def test_a_hard_link_to_an_input_is_that_input(tmp_path):
    """Compared as files, not names: writing through another name of the model replaces the model."""
    from inference.arg_checks import check_paths_apart

    (model := tmp_path / "clf.onnx").write_bytes(b"a model")
    try:
        os.link(model, tmp_path / "other.onnx")
    except OSError:
        pytest.skip("no hard links here")
    with pytest.raises(BiasMirrorError, match="name the same file"):
        check_paths_apart([("--out", tmp_path / "other.onnx")], [("--classifier", model)])


# --- 2. Windows drive letters in a run's config ----------------------------------------------------------------------


class _WindowsPath(PureWindowsPath):
    """pathlib.Path as it is on Windows, for what training/resume.py asks of it; these paths hold no "~"."""

    there: frozenset[str] = frozenset()

    def expanduser(self):
        return self

    def resolve(self):
        return self

    def exists(self):
        return str(self) in self.there


def test_a_windows_drive_is_no_dataset_kind(monkeypatch):
    """D:\\faces\\engineers had been kind "D", path "\\faces\\engineers", anchored as D:C:\\faces\\engineers."""
    import training.resume as resume

    monkeypatch.setattr(resume, "Path", _WindowsPath)
    for text in (r"D:\faces\engineers", "D:/faces/engineers"):
        assert (resume.Where(text).kind, resume.Where(text).path) == ("", str(_WindowsPath(text)))
    assert (resume.Where(r"utkface:D:\data").kind, resume.Where(r"utkface:D:\data").path) == ("utkface", r"D:\data")
    saved = {"started_in": r"C:\Users\me\proj", "domain_a": r"D:\faces\engineers", "domain_b": "faces\\others",
             "dataset": r"folder:D:\faces", "distill_from": [r"C:\models\teacher.onnx", "teacher2.onnx"]}
    fixed = resume.anchored(saved, ("domain_a", "domain_b", "dataset", "distill_from"))
    assert fixed["domain_a"] == r"D:\faces\engineers"
    assert fixed["domain_b"] == r"C:\Users\me\proj\faces\others"
    assert fixed["dataset"] == r"folder:D:\faces"
    assert fixed["distill_from"] == [r"C:\models\teacher.onnx", r"C:\Users\me\proj\teacher2.onnx"]
    assert resume.anchored({**saved, "dataset": "utkface:data"}, ("dataset",))["dataset"] == \
        r"utkface:C:\Users\me\proj\data"


def test_a_run_on_folders_of_another_drive_resumes_on_windows(monkeypatch):
    """`train cyclegan --resume` of a run begun with --domain-a D:\\faces\\engineers had been refused: "domain A's
    folder (C:\\faces\\engineers) … no longer there", the folders where they always were."""
    import argparse

    import training.resume as resume

    monkeypatch.setattr(resume, "Path", _WindowsPath)
    monkeypatch.setattr(_WindowsPath, "there", frozenset({r"D:\faces\engineers", r"D:\faces\others"}))
    monkeypatch.setattr(resume, "no_longer_held", lambda where, recorded: None)  # the faces there are the run's
    saved = {"started_in": r"C:\Users\me\proj", "domain_a": r"D:\faces\engineers", "domain_b": r"D:\faces\others"}
    run_cfg = resume.anchored(saved, tuple(resume.DATA_PLACES))
    args = argparse.Namespace(out=r"runs\cg", _given=set())
    resume.refuse_a_dataset_gone(args, run_cfg, keys=("domain_a", "domain_b"))  # refused nothing: both are there


def test_a_bare_path_with_a_colon_is_no_dataset_kind():
    """A folder named with a colon (POSIX allows one) is a path; a kind is a dataset reader's name."""
    from training.resume import Where

    assert (Where("faces:2024/all").kind, Where("faces:2024/all").path) == ("", "faces:2024/all")
    assert Where("utkface:data").kind == "utkface"


# --- 3. a report's file held open by another program -----------------------------------------------------------------


def _refused_if(held: str, *paths) -> None:
    if any(os.path.basename(os.fspath(p)) == held for p in paths):
        raise PermissionError(errno.EACCES, "The process cannot access the file because it is being used by "
                              "another process", os.fspath(paths[0]), 32, os.fspath(paths[-1]))


def _held_open(monkeypatch, held: str) -> None:
    """Windows with ``held`` open in Excel, which opens a file without delete sharing: it can be neither renamed nor
    replaced nor removed (PermissionError, WinError 32)."""
    for name in ("rename", "replace"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda src, dst, *a, _real=real, **k: (
            _refused_if(held, src, dst), _real(src, dst, *a, **k))[1])
    real_unlink = Path.unlink
    monkeypatch.setattr(Path, "unlink", lambda self, *a, **k: (_refused_if(held, self), real_unlink(self, *a, **k))[1])


def _replaced_onto_refused(monkeypatch, held: str) -> None:
    """The reviewer's emulation: os.replace onto ``held`` refused, a rename to or from it not."""
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst, *a, **k: (_refused_if(held, dst), real(src, dst, *a, **k))[1])


def _report(folder: Path, words: str, staged=None) -> None:
    for name in ("report.json", "faces.csv", "run.json"):
        (staged.path(folder / name) if staged is not None else folder / name).write_text(f"{words} {name}")


@pytest.mark.parametrize("how", ["renamed", "replaced onto"])  # refused setting it aside, or moving the new one in
def test_a_report_file_open_in_another_program_leaves_the_whole_earlier_report(tmp_path, monkeypatch, how):
    """faces.csv open in Excel: report.json had been replaced, the rest left the earlier audit's, and the error named
    the hidden staging file. Refused before anything is replaced, naming faces.csv, every earlier file kept."""
    from inference.writing import Staged

    _report(tmp_path, "earlier")
    staged = Staged()
    _report(tmp_path, "new", staged)
    (_held_open if how == "renamed" else _replaced_onto_refused)(monkeypatch, "faces.csv")
    with pytest.raises(BiasMirrorError) as refused:
        staged.put_in_place()
    monkeypatch.undo()
    staged.discard()
    assert refused.value.path == str(tmp_path / "faces.csv")
    assert "being used by another process" in refused.value.message and "as they were" in refused.value.message
    assert not staged.placed
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        n: f"earlier {n}" for n in ("report.json", "faces.csv", "run.json")}


def test_a_stale_file_held_open_leaves_every_file_as_it_was(tmp_path, monkeypatch):
    """report.html removed as stale, but open elsewhere: nothing replaced, the page named."""
    from inference.writing import Staged

    _report(tmp_path, "earlier")
    (tmp_path / "report.html").write_text("earlier page")
    staged = Staged()
    _report(tmp_path, "new", staged)
    _held_open(monkeypatch, "report.html")
    with pytest.raises(BiasMirrorError) as refused:
        staged.put_in_place(stale=(tmp_path / "report.html",))
    monkeypatch.undo()
    staged.discard()
    assert refused.value.path == str(tmp_path / "report.html")
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == [
        "earlier faces.csv", "earlier page", "earlier report.json", "earlier run.json"]


def test_files_put_in_place_leave_nothing_of_the_earlier_ones(tmp_path):
    from inference.writing import Staged

    _report(tmp_path, "earlier")
    (tmp_path / "report.html").write_text("earlier page")
    staged = Staged()
    _report(tmp_path, "new", staged)
    staged.put_in_place(stale=(tmp_path / "report.html",))
    assert staged.placed and staged.in_place == [tmp_path / n for n in ("report.json", "faces.csv", "run.json")]
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        n: f"new {n}" for n in ("report.json", "faces.csv", "run.json")}


# --- 4. bench's eager baseline under a user folder beyond ASCII ------------------------------------------------------


def _opencv_on_windows(monkeypatch) -> None:
    """OpenCV's CascadeClassifier as on Windows: a file name beyond ASCII opens nothing (an empty classifier)."""
    real = cv2.CascadeClassifier
    monkeypatch.setattr(cv2, "CascadeClassifier",
                        lambda *a: real() if a and not str(a[0]).isascii() else real(*a))


def test_the_eager_baselines_cascade_loads_under_a_folder_beyond_ascii(tmp_path, monkeypatch):
    """C:\\Users\\Иван\\…\\cv2\\data: `bench` had crashed in detectMultiScale, "!empty()"."""
    from training.eager_baseline import EagerBaseline

    data = tmp_path / "Иван" / "cv2" / "data"
    shutil.copytree(cv2.data.haarcascades, data)
    monkeypatch.setattr(cv2.data, "haarcascades", str(data) + os.sep)
    _opencv_on_windows(monkeypatch)
    base = EagerBaseline(with_filter=False, device="cpu", classifiers=1)
    assert not base.cascade.empty()
    assert base(np.zeros((120, 160, 3), np.uint8)) == ({}, 0)


def test_an_eager_baseline_without_its_cascade_is_unavailable_not_a_crash(tmp_path, monkeypatch):
    """A BiasMirrorError naming the file, which bench reports as "eager baseline unavailable" and goes on."""
    from training.eager_baseline import EagerBaseline

    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path) + os.sep)
    with pytest.raises(BiasMirrorError) as refused:
        EagerBaseline(with_filter=False, device="cpu", classifiers=1)
    assert refused.value.path == str(tmp_path / "haarcascade_frontalface_default.xml")


# --- 5. two app windows on one log -----------------------------------------------------------------------------------


def test_a_log_another_window_holds_open_keeps_every_line(tmp_path, monkeypatch, capsys):
    """Windows refuses to rename a file another process has open: past 1 MB every line had been dropped, each with a
    traceback on stderr. They are written on; the log rotates once the other window lets go."""
    from gui.log_file import log_file

    path = tmp_path / "bias-mirror.log"
    other = open(path, "a", encoding="utf-8")  # the other window's
    real_rename = os.rename

    def rename(src, dst, *a, **k):
        if os.fspath(src) == str(path) and not other.closed:
            raise PermissionError(errno.EACCES, "The process cannot access the file because it is being used by "
                                  "another process", os.fspath(src), 32, os.fspath(dst))
        return real_rename(src, dst, *a, **k)

    monkeypatch.setattr(os, "rename", rename)
    log = logging.getLogger("gui.recording")
    line = "x" * 1000
    try:
        with log_file(path):
            for i in range(1200):
                log.info("recording saved: recording-%06d.csv %s", i, line)
            assert path.stat().st_size > 1_000_000 and not (tmp_path / "bias-mirror.log.1").exists()
            last = path.read_text(encoding="utf-8").rstrip().splitlines()[-1]
            assert last.endswith(f"recording-{1199:06d}.csv {line}")
            other.close()
            for i in range(1200, 1400):
                log.info("recording saved: recording-%06d.csv %s", i, line)
    finally:
        other.close()
    assert "Logging error" not in capsys.readouterr().err
    rotated = (tmp_path / "bias-mirror.log.1").read_text(encoding="utf-8")
    assert "recording-000000.csv" in rotated and "recording-001199.csv" in rotated
    assert path.read_text(encoding="utf-8").rstrip().splitlines()[-1].endswith(f"recording-{1399:06d}.csv {line}")


# --- 6. a reader gone from standard output on Windows ----------------------------------------------------------------


class _PipeReaderGone(io.StringIO):
    """Standard output on Windows once `head` has exited: a write fails with EINVAL (python/cpython#79935)."""

    def flush(self):
        raise OSError(errno.EINVAL, "Invalid argument")


def test_einval_on_standard_output_is_the_readers_stop_on_windows(monkeypatch):
    """`run --out - | head` on Windows had ended "error: standard output: invalid argument; 1 rows saved", status 2."""
    from inference.rows import ReaderStopped, RowWriter

    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(ReaderStopped, match="closed by its reader after 0 face row"):
        RowWriter("standard output", columns=["frame"], stream=_PipeReaderGone())


def test_einval_stays_a_failed_write_off_windows_and_on_a_named_file(tmp_path, monkeypatch):
    """Elsewhere EINVAL is no reader gone, nor is it from a file the run writes by name."""
    from inference.rows import ReaderStopped, RowWriter

    with pytest.raises(BiasMirrorError, match="invalid argument") as failed:
        RowWriter("standard output", columns=["frame"], stream=_PipeReaderGone())
    assert not isinstance(failed.value, ReaderStopped)
    monkeypatch.setattr(sys, "platform", "win32")
    real_open = open

    class Refusing(io.TextIOWrapper):
        refused = False

        def flush(self):
            if not Refusing.refused:  # once: the file's own close at the end then goes as usual
                Refusing.refused = True
                raise OSError(errno.EINVAL, "Invalid argument")
            super().flush()

    import inference.rows as rows
    monkeypatch.setattr(rows, "open", lambda *a, **k: Refusing(real_open(*a, **k).detach(), encoding="utf-8"),
                        raising=False)
    writer = RowWriter(tmp_path / "rows.csv")
    writer._start_table(["frame"])
    with pytest.raises(BiasMirrorError, match="invalid argument") as failed:
        writer.close()
    assert not isinstance(failed.value, ReaderStopped)


def test_an_earlier_file_that_cannot_go_back_is_kept_beside_its_place_not_in_the_staging_folder(tmp_path, monkeypatch):
    """Kept in the hidden staging folder, it had been deleted with that folder by a later command's sweep of
    leftovers, though the message said it was kept. It is kept as NAME.earlier beside its place, and named."""
    from inference import writing
    from inference.writing import Staged

    _report(tmp_path, "earlier")
    staged = Staged()
    _report(tmp_path, "new", staged)
    _replaced_onto_refused(monkeypatch, "faces.csv")  # report.json goes in first, then faces.csv is refused
    real_rename = os.rename
    monkeypatch.setattr(os, "rename", lambda src, dst, *a, **k: (
        _refused_if("report.json", dst) if ".staged-" in os.fspath(src) else None, real_rename(src, dst, *a, **k))[1])
    with pytest.raises(BiasMirrorError) as refused:
        staged.put_in_place()
    monkeypatch.undo()
    staged.discard()
    kept = tmp_path / "report.json.earlier"
    assert f"kept as {kept}" in refused.value.message and kept.read_text() == "earlier report.json"
    monkeypatch.setattr(writing, "LEFTOVER_AGE_S", -1)  # the sweep a later command makes, its folders long old
    writing.clear_leftovers(tmp_path, ".staged-")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "report.json.earlier": "earlier report.json", "faces.csv": "earlier faces.csv", "run.json": "earlier run.json"}
