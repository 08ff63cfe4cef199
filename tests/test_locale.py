"""Locales other than the C one and UTF-8: numbers written with a decimal comma, file names in Latin-1 or EUC-JP.

ONNX Runtime parses some operators' constants from text when it is imported, with the C library's strtof: imported
under a decimal-comma LC_NUMERIC (Qt's QApplication sets it from the environment on Unix, as does a script's
locale.setlocale(LC_ALL, "")), HardSwish's 1/6 and 0.5 read as 0 and the shipped MobileNet gave every face the same
P(female) and an all-zero CAM, without an error. And under a Latin-1 or EUC-JP locale Python decoded file names in
that encoding while every CSV is UTF-8: a labelled folder with accented names was refused, and `run` wrote garbled
names. Each check runs in a process of its own, under a locale built with localedef where the system has none.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, utk_images

MOBILENET = REPO / "resources" / "models" / "mobilenet_fast.onnx"
I18N = Path("/usr/share/i18n")


def _locale_env(tmp_path_factory, name: str) -> dict[str, str]:
    """The environment of a process whose every category is ``name`` ("de_DE.UTF-8"): the system's where it has it,
    else one built with localedef into a LOCPATH folder of this session. Skips where neither can be."""
    env = {**os.environ, "LC_ALL": name, "PYTHONIOENCODING": "utf-8"}
    env.pop("PYTHONUTF8", None)
    if _locale_works(env):
        return env
    language, _, charmap = name.partition(".")
    localedef = shutil.which("localedef")
    if localedef is None:
        pytest.skip(f"the system has no {name} locale, and no localedef to build one")
    if not (I18N / "locales" / language).is_file() or not any((I18N / "charmaps").glob(f"{charmap}*")):
        pytest.skip(f"the system has no {name} locale, and localedef's sources for it ({I18N}/locales/{language}, "
                    f"{I18N}/charmaps/{charmap}) are missing")
    folder = tmp_path_factory.getbasetemp() / "locales"
    if not (folder / name).is_dir():
        folder.mkdir(exist_ok=True)
        built = subprocess.run([localedef, "-i", language, "-f", charmap, str(folder / name)], capture_output=True,
                               text=True)
        if not (folder / name).is_dir():
            pytest.skip(f"localedef could not build {name}: {built.stderr.strip()[-300:]}")
    env["LOCPATH"] = str(folder)
    assert _locale_works(env), f"{name} built with localedef into {folder}, but setlocale refuses it"
    return env


def _locale_works(env: dict[str, str]) -> bool:
    probe = subprocess.run([sys.executable, "-c", "import locale; locale.setlocale(locale.LC_ALL, '')"], env=env,
                           capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def decimal_comma(tmp_path_factory) -> dict[str, str]:
    return _locale_env(tmp_path_factory, "de_DE.UTF-8")


@pytest.fixture(scope="module", params=["de_DE.ISO-8859-1", "ja_JP.EUC-JP"])
def legacy_encoding(request, tmp_path_factory) -> dict[str, str]:
    """A locale whose encoding is not UTF-8, as a server's LANG=de_DE still is."""
    return _locale_env(tmp_path_factory, request.param)


def _python(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=600)


# A script that changes the C locale from the environment before anything imports onnxruntime, as a script or
# notebook that builds its QApplication first does, then reads P(female) and the CAM of a few faces.
MOBILENET_ON_FACES = """
    import json, locale, sys
    if sys.argv[1] == "environment":
        locale.setlocale(locale.LC_ALL, "")
    decimal_point = locale.localeconv()["decimal_point"]
    import cv2
    from inference.models import load_model
    model = load_model(sys.argv[2])
    faces = [cv2.resize(cv2.imread(f)[:, :, ::-1], model.size) for f in sys.argv[3:]]
    import numpy as np
    probs, cam = model.predict(np.stack(faces))
    female = model.labels.index("female")
    print(json.dumps({"decimal_point": decimal_point, "after": locale.localeconv()["decimal_point"],
                      "p_female": probs[:, female].tolist(), "cam_max": cam.max(axis=(1, 2, 3)).tolist()}))
"""


def _mobilenet_on_faces(env: dict[str, str], locale_from: str, faces: list[Path]) -> dict:
    done = _python(MOBILENET_ON_FACES, env, locale_from, str(MOBILENET), *map(str, faces))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mobilenet_reads_faces_alike_under_a_decimal_comma_locale(decimal_comma):
    faces = utk_images(4)
    in_c = _mobilenet_on_faces({**decimal_comma, "LC_ALL": "C"}, "environment", faces)
    in_german = _mobilenet_on_faces(decimal_comma, "environment", faces)
    assert in_german["decimal_point"] == ",", "the locale did not take: the check would prove nothing"
    assert in_german["after"] == ",", "loading a model changed the process's locale, which is the caller's"
    assert in_c["decimal_point"] == "."
    assert in_german["p_female"] == pytest.approx(in_c["p_female"], rel=1e-5), (
        "P(female) of the same faces differs once the C locale writes numbers with a decimal comma")
    assert in_german["cam_max"] == pytest.approx(in_c["cam_max"], rel=1e-5)
    assert len(set(in_c["p_female"])) == len(faces), "the faces chosen do not tell the models' outputs apart"


ONNXRUNTIME_FIRST = """
    import locale, sys
    locale.setlocale(locale.LC_ALL, "")
    import onnxruntime  # by the script itself, before inference could read its numbers the C way
    from inference.errors import BiasMirrorError
    from inference.models import load_model
    try:
        load_model(sys.argv[1])
    except BiasMirrorError as exc:
        print(f"error: {exc}")
    else:
        print("loaded")
"""


def test_an_onnxruntime_imported_under_a_decimal_comma_is_refused_not_run(decimal_comma):
    """An onnxruntime a script imported itself under such a locale cannot be mended (its parsed constants stay for
    the process): its sessions are refused, saying why, rather than giving every face the same P(female)."""
    done = _python(ONNXRUNTIME_FIRST, decimal_comma, str(MOBILENET))
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout.strip().splitlines()[-1]
    assert said.startswith(f"error: {MOBILENET}: "), said
    assert "decimal comma" in said and "locale" in said, said


MODULE_IMPORTING_ONNXRUNTIME_FIRST = """
    import locale, sys
    locale.setlocale(locale.LC_ALL, "")
    import inference.pipeline  # imports onnxruntime itself, before inference.runtime's own import is reached
    from inference.runtime import ort_numbers_problem
    print(ort_numbers_problem())
"""


def test_a_module_of_the_package_that_imports_onnxruntime_itself_leaves_it_reading_numbers_right(decimal_comma):
    """pipeline, bench, fixed_binding and others import onnxruntime themselves: imported first under a decimal
    comma, they had left this process's ORT reading HardSwish's constants as 0 (the package imports it first now)."""
    done = _python(MODULE_IMPORTING_ONNXRUNTIME_FIRST, decimal_comma)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "None", done.stdout


THREADS_KEEP_THEIR_LOCALE = """
    import locale, threading
    locale.setlocale(locale.LC_ALL, "")
    from inference.runtime import c_numbers_on_this_thread
    inside, held, seen = threading.Event(), threading.Event(), {}
    def hold():
        with c_numbers_on_this_thread():
            seen["holder"] = locale.localeconv()["decimal_point"]
            inside.set()
            held.wait()
    worker = threading.Thread(target=hold)
    worker.start()
    inside.wait()
    seen["others"] = locale.localeconv()["decimal_point"]
    held.set()
    worker.join()
    seen["after"] = locale.localeconv()["decimal_point"]
    print(seen["holder"], seen["others"], seen["after"])
"""


def test_numbers_read_the_c_way_on_one_thread_leave_the_others_theirs(decimal_comma):
    """The app makes sessions on worker threads while its GUI thread draws: what a session's creation holds is that
    thread's alone."""
    done = _python(THREADS_KEEP_THEIR_LOCALE, decimal_comma)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [".", ",", ","]


PROCESS_WIDE_WITHOUT_THREAD_LOCALES = """
    import locale
    before = locale.setlocale(locale.LC_ALL, "")
    from inference import runtime
    runtime._thread_locales = lambda: None  # a C library without uselocale, as Windows'
    with runtime.c_numbers():
        inside = locale.localeconv()["decimal_point"]
    print(inside, locale.localeconv()["decimal_point"], locale.setlocale(locale.LC_ALL) == before)
"""


def test_numbers_are_read_the_c_way_process_wide_where_threads_cannot_and_put_back(decimal_comma):
    done = _python(PROCESS_WIDE_WITHOUT_THREAD_LOCALES, decimal_comma)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [".", ",", "True"]


# --- file names under a locale whose encoding is not UTF-8 ---------------------------------------------------

def _faces_named(folder: Path, n: int) -> list[str]:
    """``n`` faces in ``folder`` under names that are not ASCII (written as UTF-8 bytes, as every system writes them
    now); their names."""
    folder.mkdir(parents=True)
    names = [f"Bild {i} é£ 男性.jpg" for i in range(n)]
    for name, face in zip(names, utk_images(n)):
        shutil.copyfile(face, folder / name)
    return names


def test_run_writes_file_names_as_they_are_under_a_legacy_encoding(legacy_encoding, tmp_path):
    folder = tmp_path / "Frauen Ünïcødé 日本"
    names = _faces_named(folder, 2)
    rows = tmp_path / "Ausgabe ö.csv"
    done = subprocess.run([sys.executable, "main.py", "run", "--source", str(folder), "--out", str(rows),
                           "--no-filter"], cwd=REPO, env=legacy_encoding, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    with open(rows, encoding="utf-8", newline="") as f:
        written = {row["source"] for row in csv.DictReader(f)}
    assert written == set(names)


def test_a_failing_command_keeps_its_exit_code_and_arguments_under_a_legacy_encoding(legacy_encoding, tmp_path):
    missing = tmp_path / "nicht da ü 日本"
    done = subprocess.run([sys.executable, "main.py", "run", "--source", str(missing), "--out",
                           str(tmp_path / "rows.csv")], cwd=REPO, env=legacy_encoding, capture_output=True)
    said = done.stderr.decode("utf-8", errors="replace")
    assert done.returncode == 2, said[-3000:]
    assert str(missing) in said, said[-3000:]


def test_the_utf8_restart_never_repeats():
    import main

    legacy = dict(fs_encoding="iso8859-1", utf8_mode=0, xoptions={}, environ={}, os_name="posix")
    assert main.needs_utf8_restart(**legacy)
    assert not main.needs_utf8_restart(**{**legacy, "utf8_mode": 1})  # the restarted process: once
    assert not main.needs_utf8_restart(**{**legacy, "fs_encoding": "utf-8"})
    assert not main.needs_utf8_restart(**{**legacy, "xoptions": {"utf8": "0"}})  # the user's -X utf8=0
    assert not main.needs_utf8_restart(**{**legacy, "environ": {"PYTHONUTF8": "0"}})
    assert not main.needs_utf8_restart(**{**legacy, "os_name": "nt"})  # Windows names files in UTF-16


@pytest.fixture(scope="module")
def latin1(tmp_path_factory) -> dict[str, str]:
    return _locale_env(tmp_path_factory, "de_DE.ISO-8859-1")


def test_a_latin1_terminal_gets_latin1_after_the_utf8_restart(latin1):
    """UTF-8 mode writes UTF-8 to a terminal too: a Latin-1 terminal showed "Ã" and a control character for ×."""
    import os
    import pty

    # as a Latin-1 terminal's user has it: a PYTHONIOENCODING of their own is kept, and says what they want
    env = {k: v for k, v in latin1.items() if k != "PYTHONIOENCODING"}
    leader, follower = pty.openpty()
    try:  # read as it writes: a terminal holds only so much unread
        child = subprocess.Popen([sys.executable, "main.py", "audit", "--help"], cwd=REPO, env=env, stdout=follower,
                                 stderr=subprocess.DEVNULL)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end closed: all was read
                break
            if not chunk:
                break
            shown += chunk
        code = child.wait(timeout=120)
    finally:
        os.close(leader)
    assert code == 0, shown[-2000:]
    assert "×".encode("latin-1") in shown and "×".encode("utf-8") not in shown, shown[:400]
