"""`main.py audit`: an image of several frames in a folder (an animated GIF) is audited as its first frame alone,
and report.json, the summary and report.html say so, with advice an audit can follow, whether the faces are found
or aligned and whether the results come from the cache; and `--strict`'s help says what the share of faces made
unmeasurable asks of a small group.

The animation's frames are real UTKFace faces; the models are the tiny random-weight ones of conftest.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for conftest, as in test_audit.py

from conftest import run_main, utk_images  # noqa: E402

from inference.audit.cli import add_arguments  # noqa: E402
from inference.audit.gate import DEFAULT_MAX_UNMEASURABLE_SHARE  # noqa: E402
from inference.audit.stats import exact_share  # noqa: E402

ANIMATION = "anim.gif"
PHOTOS = 2  # JPEGs beside the animation
FRAMES = 3  # the animation's frames, each a real face
ADVICE_OF_A_SLIDESHOW = "open the file on its own"  # sources.py's words for a folder shown in `run` or the app


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Real faces as JPEGs, and an animated GIF whose every frame is another real face (framed by a margin: a GIF's
    palette had left the cascade missing a face cropped to its edges)."""
    if not hasattr(cv2, "imwriteanimation"):
        pytest.skip(f"OpenCV {cv2.__version__} cannot write animations (4.11 or later can)")
    d = tmp_path_factory.mktemp("multiframe") / "in"
    d.mkdir()
    faces = utk_images(PHOTOS + FRAMES)
    for p in faces[:PHOTOS]:
        (d / p.name).write_bytes(p.read_bytes())
    frames = [cv2.imread(str(p)) for p in faces[PHOTOS:]]
    margin = frames[0].shape[0] // 2
    animation = cv2.Animation()
    animation.frames = [cv2.copyMakeBorder(f, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(128,) * 3)
                        for f in frames]
    animation.durations = [250] * len(frames)
    assert cv2.imwriteanimation(str(d / ANIMATION), animation)
    return d


def audit(capsys, folder: Path, out: Path, models: dict, *extra: str) -> tuple[str, dict, dict]:
    """The audit's stderr, report.json and run.json, of an audit that measured faces."""
    code, _, err = run_main(["audit", "--dataset", f"folder:{folder}", "--out", str(out),
                             "--classifier", str(models["classifier"]), "--filter", str(models["darken"]),
                             "--threads", "1", "--no-progress", *extra], capsys)
    assert code == 0, err
    return err, json.loads((out / "report.json").read_text()), json.loads((out / "run.json").read_text())


def assert_first_frame_only_said(report: dict, err: str, logged: list[logging.LogRecord], html: str | None) -> None:
    assert report["images"]["first_frame_only"] == [{"file": ANIMATION, "frames": FRAMES}]
    [line] = [s for s in report["summary"] if ANIMATION in s]
    assert f"{FRAMES} frames" in line and "main.py run --source" in line
    assert re.search(rf"warning: .*{re.escape(ANIMATION)} \({FRAMES} frames\).*main\.py run --source", err), err
    # the folder reader's advice, which an audit cannot follow (logged: under pytest its log is not on stderr)
    assert not [r for r in logged if ADVICE_OF_A_SLIDESHOW in r.getMessage()]
    assert ADVICE_OF_A_SLIDESHOW not in err
    if html is not None:
        assert "Only the first frame audited" in html and f"{ANIMATION} ({FRAMES} frames)" in html


@pytest.mark.parametrize("mode", ["--detect", "--aligned"])
def test_a_folders_animation_is_recorded_as_read_first_frame_only_from_the_cache_too(folder, tmp_path, tiny_models,
                                                                                     capsys, caplog, mode):
    """A 300-frame GIF among JPEGs had been said once in a log line whose advice the audit cannot follow; a rerun from
    the cache, and an aligned audit, said nothing; report.json did not record it."""
    out = tmp_path / "audit"
    err, report, run = audit(capsys, folder, out, tiny_models, mode)
    assert run["images_computed"] == PHOTOS + 1
    assert_first_frame_only_said(report, err, caplog.records, (out / "report.html").read_text(encoding="utf-8"))

    err, again, run = audit(capsys, folder, out, tiny_models, mode, "--no-html")
    assert run["images_from_cache"] == PHOTOS + 1 and run["images_computed"] == 0
    assert_first_frame_only_said(again, err, caplog.records, None)


def test_a_folder_of_photos_alone_records_no_first_frame_only(tmp_path, tiny_models, capsys):
    d = tmp_path / "photos"
    d.mkdir()
    for p in utk_images(PHOTOS):
        (d / p.name).write_bytes(p.read_bytes())
    err, report, _ = audit(capsys, d, tmp_path / "audit", tiny_models, "--no-html")
    assert report["images"]["first_frame_only"] == []
    assert not any("first frame" in s for s in report["summary"]) and "first frame" not in err


def smallest_group_shown_within_by_scipy(tolerance: float) -> int:
    """The smallest group in which no face lost is shown within ``tolerance``, by scipy's exact interval."""
    n = 1
    while exact_share([False] * n)["hi"] > tolerance:
        n += 1
    return n


def option_help(option: str) -> str:
    """``option``'s help as `audit --help` prints it, on one line: from its line to the next option's or a blank."""
    parser = argparse.ArgumentParser(prog="audit")
    add_arguments(parser)
    lines = parser.format_help().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  -") and line.split()[0] == option)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip() or lines[i].startswith("  -")),
               len(lines))
    return " ".join(" ".join(lines[start:end]).split())


@pytest.mark.parametrize("option", ["--strict", "--max-unmeasurable-share"])
def test_strict_and_the_shares_help_say_how_many_faces_a_group_needs_to_be_shown_within(option):
    """`--strict --max-delta-ita` fails a perfect filter on any group too small for its share row to be shown within
    the default tolerance; README.md and the schema said so, --strict's help did not."""
    words = option_help(option)
    n = smallest_group_shown_within_by_scipy(DEFAULT_MAX_UNMEASURABLE_SHARE)
    assert f"{n} faces" in words and "made unmeasurable" in words, words
    assert "raise" in words, words
