"""Text in and out in UTF-8 whatever the platform's code page: Windows writes redirected output and files opened
without an encoding in cp1252, which has no →, Δ or ≥ and no Chinese file name."""
from __future__ import annotations

import ast
import io
import os
import subprocess
import sys

import main
from tests.conftest import REPO


def test_output_sent_to_a_file_in_a_code_page_without_arrows_is_utf8_not_a_traceback():
    """`main.py audit … > audit.log` on Windows stopped at its first → with a UnicodeEncodeError."""
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    for command in (["run", "--help"], ["doctor", "--no-gpu-probe", "--cameras", "0"]):
        done = subprocess.run([sys.executable, str(REPO / "main.py"), *command], capture_output=True, env=env,
                              cwd=REPO, timeout=120)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert "Traceback" not in done.stderr.decode(errors="replace")
        assert "→" in done.stdout.decode("utf-8")


class _Console(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def test_a_console_whose_code_page_lacks_a_character_shows_it_escaped():
    raw = io.BytesIO()
    console, piped = _Console(raw, encoding="cp1252"), io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    main.printable_output([console, piped])
    console.write("ΔITA → 0.5°")
    console.flush()
    assert raw.getvalue() == "\\u0394ITA \\u2192 0.5°".encode("cp1252")
    assert piped.encoding == "utf-8"
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    main.printable_output([utf8])
    assert (utf8.encoding, utf8.errors) == ("utf-8", "strict")  # left as it was


def _opens_without_encoding(path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
        if name == "open" and isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) \
                and fn.value.id in ("os", "gzip", "tarfile", "zipfile", "Image", "np", "cv2"):
            continue
        if name not in ("open", "write_text", "read_text") or any(k.arg == "encoding" for k in node.keywords):
            continue
        if name == "open" and "FILE_STORAGE_" in ast.unparse(node):  # OpenCV's FileStorage.open(text, flags)
            continue
        if name == "open":
            at = 1 if isinstance(fn, ast.Name) else 0  # open(path, mode) or path.open(mode)
            modes = [a.value for a in node.args[at:at + 1] if isinstance(a, ast.Constant)]
            modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
            if any("b" in str(m) for m in modes):
                continue
        found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)[:100]}")
    return found


def test_every_text_file_the_project_reads_or_writes_names_its_encoding():
    """A run's CSV of 中文.jpg's rows, a training log, a card's JSON: opened without an encoding, Windows writes them
    in cp1252 and stops at the first character it lacks."""
    sources = [REPO / "main.py", *[p for room in ("inference", "gui", "training") for p in (REPO / room).rglob("*.py")]]
    assert len(sources) > 50
    assert [line for p in sorted(sources) for line in _opens_without_encoding(p)] == []
