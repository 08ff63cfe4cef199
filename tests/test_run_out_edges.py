"""Where `run --out` writes, second look at the header written whole (6d813f1), and tooltips escaped (afdf2c4).

- An --out in a folder named dev or proc (/dev/shm/rows.csv) was appended to, not replaced: a second run left two
  headers and the first run's rows. Only a descriptor's name (/dev/stdout, /proc/self/fd/1) or something there that
  is no plain file (a FIFO, /dev/null) is written in place; any other file is put in place whole.
- Every escaped tooltip had become a narrow column (Qt word-wraps rich text): only a text Qt would read as HTML is
  escaped now.
- `run --out - | head -n 2` ended "error: standard output: broken pipe; 1 rows saved", status 2: a reader that stops
  reading ends the run with status 0 and one line on standard error.
- `--out /dev/stdout` (and /dev/null) was refused to a user who cannot write in /dev, for a check and a lock file
  there.
- --out through a link to the user's file in a folder they cannot write failed ("could not write its header"),
  where it had written before: the file is rewritten where it is.
- `--out -` with standard output closed (`>&-`) wrote a file named "standard output" in the current folder.
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import csv  # noqa: E402
import io  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Iterator  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.conftest import REPO, run_main, utk_images  # noqa: E402
from tests.test_run_outputs import clip_of_a_face  # noqa: E402

NAME = "tiny-a"  # tiny_models["classifier"]'s display name
TIMEOUT_S = 300
POSIX = os.name == "posix"


def run_args(source: Path, out: str, model: Path) -> list[str]:
    return ["run", "--source", str(source), "--out", out, "--classifier", str(model), "--threads", "1", "--no-filter"]


def main_py(source: Path, out: str, model: Path) -> list[str]:
    return [sys.executable, str(REPO / "main.py"), *run_args(source, out, model)]


def lines_of(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text(encoding="utf-8").splitlines()))


def walls(folder: Path) -> Path:
    """A photo without a face."""
    folder.mkdir()
    cv2.imwrite(str(folder / "wall.png"), np.full((240, 320, 3), 90, np.uint8))
    return folder


def one_face(folder: Path) -> Path:
    folder.mkdir()
    shutil.copy(utk_images(1)[0], folder / "face.jpg")
    return folder


# --- another user: /dev, and folders they cannot write ---------------------------------------------------------------

@dataclass(frozen=True)
class User:
    """Who a command runs as: ``nobody`` by setpriv where these tests run as root (to whom every folder is
    writable), else this test's own user."""
    prefix: tuple[str, ...]
    uid: int
    gid: int

    def own(self, path: Path) -> Path:
        """``path`` (made) the user's."""
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)
        return path

    def env(self, home: Path) -> dict[str, str]:
        """This environment, the user's files (log, cache, temporary files) in ``home``."""
        return {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CACHE_HOME": str(home),
                "TMPDIR": str(home)}


@pytest.fixture
def user() -> User:
    if not POSIX:
        pytest.skip("file permissions as POSIX has them")
    if os.geteuid() != 0:
        return User((), os.getuid(), os.getgid())
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root, and no setpriv to run as another user")
    import pwd

    nobody = pwd.getpwnam("nobody")
    return User((setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"),
                nobody.pw_uid, nobody.pw_gid)


@pytest.fixture
def shared(tiny_models) -> Iterator[Path]:
    """A folder anyone can read (the tests' own temporary folders are their user's alone), holding a copy of the
    classifier; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="bias-mirror-out-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        shutil.copy(tiny_models["classifier"], folder / "c.onnx")
        (folder / "c.onnx").chmod(0o644)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def readable(folder: Path) -> Path:
    for path in (folder, *folder.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


# --- 1. a file in a folder named dev is a file ----------------------------------------------------------------------

@pytest.mark.skipif(not os.access("/dev/shm", os.W_OK), reason="no writable /dev/shm here")
def test_a_csv_under_dev_shm_is_replaced_whole_by_the_next_run(tmp_path, tiny_models, capsys):
    """The second run (no face) had appended a second header to the first run's rows, saying "holds the header
    alone", status 0."""
    out = Path(tempfile.mkstemp(prefix="bias-mirror-rows-", suffix=".csv", dir="/dev/shm")[1])
    try:
        code, _, err = run_main(run_args(one_face(tmp_path / "face"), str(out), tiny_models["classifier"]), capsys)
        assert code == 0, err
        assert len(lines_of(out)) == 2  # the header and the face's row
        code, _, err = run_main(run_args(walls(tmp_path / "walls"), str(out), tiny_models["classifier"]), capsys)
        assert code == 0, err
        assert f"so {out} holds the header alone" in err
        [header] = lines_of(out)
        assert header[:2] == ["frame", "time"]
        assert not list(Path("/dev/shm").glob(f".{out.name}*"))  # nothing of its own left beside it
    finally:
        out.unlink(missing_ok=True)


@pytest.mark.skipif(not POSIX, reason="POSIX names its descriptors")
def test_only_a_descriptors_name_or_what_is_no_plain_file_is_written_in_place(tmp_path):
    from inference.writing import written_in_place

    plain = tmp_path / "rows.csv"
    plain.write_text("x\n")
    link_to_stdout = tmp_path / "out.csv"
    link_to_stdout.symlink_to("/dev/stdout")
    os.mkfifo(fifo := tmp_path / "fifo")
    for path in ("/dev/stdout", "/dev/stderr", "/dev/fd/1", "/proc/self/fd/1", f"/proc/{os.getpid()}/fd/2",
                 "/dev/null", fifo, link_to_stdout):
        assert written_in_place(path), path
    for path in (plain, tmp_path / "new.csv", "/dev/shm/rows.csv", "/proc/rows.csv", "/dev/fdx/1"):
        assert not written_in_place(path), path


# --- 2. a plain tooltip is plain text -------------------------------------------------------------------------------

def test_a_plain_tooltip_stays_plain_text_shown_whole_on_its_lines(qtbot):
    """Escaped, a classifier's tooltip (683×48 px) had shown as a column 232 px wide, its path broken at each /."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication, QLabel, QToolTip, QWidget

    from gui.model_panel import plain_tip

    text = ("resnet10-utk-gender-balanced\n/home/someone/projects/bias-mirror/resources/models/resnet10_balanced.onnx"
            "\nclassifier 'resnet10-utk-gender-balanced', 112×112, labels male/female, trained on utkface")
    assert plain_tip(text) == text and plain_tip("") == ""
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.resize(1600, 800)
    widget.show()
    QToolTip.showText(QPoint(10, 10), plain_tip(text), widget)
    QApplication.processEvents()
    try:
        [tip] = [w for w in QApplication.allWidgets() if w.metaObject().className() == "QTipLabel"]
        assert isinstance(tip, QLabel) and not tip.wordWrap()
        widest = max(tip.fontMetrics().horizontalAdvance(line) for line in text.splitlines())
        assert tip.width() >= widest
    finally:
        QToolTip.hideText()


def test_a_tooltip_qt_would_read_as_html_is_still_shown_as_text():
    from PySide6 import QtGui

    from gui.model_panel import plain_tip

    banner = '<h2 style="color:#4caf50">&#10004; All models verified and safe</h2><!--\n/x/y.onnx'
    tip = plain_tip(banner)
    document = QtGui.QTextDocument()
    document.setHtml(tip)
    assert QtGui.Qt.mightBeRichText(tip) and document.toPlainText() == banner


# --- 3. a reader that stops reading ----------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("head") is None, reason="needs bash and head")
def test_out_dash_piped_to_head_ends_with_status_0_and_one_line_said(tmp_path, tiny_models):
    """`set -o pipefail; run --out - | head -n 2` had failed: "error: standard output: broken pipe; 1 rows saved"."""
    clip = clip_of_a_face(tmp_path / "clip.avi", frames=40)  # rows written long after head has gone
    command = shlex.join(main_py(clip, "-", tiny_models["classifier"]))
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {command} | head -n 2"], cwd=tmp_path,
                          capture_output=True, text=True, encoding="utf-8", timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2
    assert "standard output closed by its reader after" in done.stderr
    assert "error" not in done.stderr and "Exception ignored" not in done.stderr and "rows saved" not in done.stderr


@pytest.mark.skipif(not POSIX, reason="a pipe closed under a process, as POSIX has it")
def test_a_reader_gone_before_the_header_ends_the_run_with_status_0(tmp_path, tiny_models):
    read, write = os.pipe()
    os.close(read)  # gone before the run writes anything: its header meets the closed pipe
    try:
        done = subprocess.run(main_py(one_face(tmp_path / "face"), "-", tiny_models["classifier"]), cwd=tmp_path,
                              stdout=write, stderr=subprocess.PIPE, text=True, encoding="utf-8", timeout=TIMEOUT_S)
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr
    assert "standard output closed by its reader after 0 face row(s)" in done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


class _ClosedPipe(io.StringIO):
    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_pipe_is_the_readers_stop_not_a_failed_write():
    from inference.rows import ReaderStopped, RowWriter

    with pytest.raises(ReaderStopped, match="closed by its reader after 0 face row"):
        RowWriter("standard output", columns=["frame"], stream=_ClosedPipe())


def test_runs_help_says_how_a_reader_that_stops_ends_it(capsys):
    code, out, _ = run_main(["run", "--help"], capsys)
    assert code == 0 and "`run --out - | head -n 5`) ends the\n  run there with 0" in out


# --- 4. /dev/stdout and /dev/null for a user who cannot write in /dev -----------------------------------------------

def test_dev_stdout_is_written_by_a_user_who_cannot_write_in_dev(user, shared):
    """It had been refused: "/dev/stdout: --out: cannot write in /dev (no permission)"."""
    (home := shared / "home").mkdir()
    user.own(home)
    faces = readable(one_face(shared / "face"))
    (stdout := shared / "stdout.csv").touch()
    user.own(stdout)
    with open(stdout, "w") as fh:
        done = subprocess.run([*user.prefix, *main_py(faces, "/dev/stdout", shared / "c.onnx")], cwd=home,
                              env=user.env(home), stdout=fh, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                              timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    header, row = lines_of(stdout)
    assert header[:2] == ["frame", "time"] and row[3] == "face.jpg"
    assert "1 face row(s) written to /dev/stdout" in done.stderr


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null here")
def test_dev_null_needs_no_folder_to_write_in_nor_a_lock_there(tmp_path, tiny_models, capsys, monkeypatch):
    """As a user sees /dev: a folder they cannot write in (root may, which would hide the refusal)."""
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, *a, **k: False if os.fspath(path) == "/dev" and
                        mode & os.W_OK else access(path, mode, *a, **k))
    code, _, err = run_main(run_args(walls(tmp_path / "walls"), "/dev/null", tiny_models["classifier"]), capsys)
    assert code == 0, err
    assert "so /dev/null holds the header alone" in err
    assert not Path("/dev/.null.lock").exists()


# --- 5. a link to the user's file in a folder they cannot write -----------------------------------------------------

def test_a_link_to_a_writable_file_in_a_folder_not_writable_is_written_through(user, shared):
    """Its header was to be written beside the file, where the user may make none: "could not write its header
    (permission denied)", where it had been written before."""
    others = shared / "others"
    others.mkdir()
    (target := others / "rows.csv").write_text("earlier,rows\n1,2\n")
    user.own(target)
    target.chmod(0o644)
    if not user.prefix:  # this test's own user: a folder of theirs they may not write in
        others.chmod(0o555)
    (home := shared / "home").mkdir()
    user.own(home)
    (home / "rows.csv").symlink_to(target)
    faces = readable(one_face(shared / "face"))
    try:
        done = subprocess.run([*user.prefix, *main_py(faces, str(home / "rows.csv"), shared / "c.onnx")], cwd=home,
                              env=user.env(home), capture_output=True, text=True, encoding="utf-8", timeout=TIMEOUT_S)
    finally:
        others.chmod(0o755)
    assert done.returncode == 0, done.stderr
    header, row = lines_of(target)
    assert header[:2] == ["frame", "time"] and row[3] == "face.jpg"
    assert (home / "rows.csv").is_symlink() and stat.S_IMODE(target.stat().st_mode) == 0o644


# --- 6. standard output closed ----------------------------------------------------------------------------------------

@pytest.mark.skipif(not POSIX, reason="a descriptor closed for a child, as POSIX has it")
def test_out_dash_with_standard_output_closed_is_refused_and_writes_no_file(tmp_path, tiny_models):
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(main_py(one_face(tmp_path / "face"), "-", tiny_models["classifier"]), cwd=work,
                          stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                          timeout=TIMEOUT_S, preexec_fn=lambda: os.close(1))
    assert done.returncode == 2
    assert "error: standard output is closed" in done.stderr
    assert list(work.iterdir()) == []  # no file "standard output"
