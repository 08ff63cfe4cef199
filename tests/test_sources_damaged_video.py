"""A video damaged in the middle: the frames FFmpeg's demuxer passes over without a failed read are counted from the
decoder's times, so each frame after the damage keeps its position in the file as its number; a steady video, a
variable-rate one and a container that indexes its frames get no gap the times do not show."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import inference.sources as sources
from inference.sources import VideoSource
from tests.test_sources import _VariableRateCapture

FPS = 10
FRAMES = 40
SIDE = 64
BITS = 6  # of a frame's number, drawn as bands: 2**BITS > FRAMES
BAND = 8  # rows per bit: a JPEG block's height, so that the bands survive compression apart
BAD = (15, 22)  # the frames [first, last) whose bytes the damage overwrites


def _draw_number(i: int, rng: np.random.Generator) -> np.ndarray:
    """A frame that says its number: a band per bit, white for 1, above noise (each frame then of one size)."""
    img = rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)
    for bit in range(BITS):
        img[bit * BAND:(bit + 1) * BAND] = 255 if i >> bit & 1 else 0
    return img


def _drawn_number(img: np.ndarray) -> int:
    return sum(1 << bit for bit in range(BITS) if img[bit * BAND + 2:(bit + 1) * BAND - 2, 4:-4].mean() > 128)


def _video(path: Path) -> Path:
    """A steady-rate MJPG video (every frame decodes alone, so a frame read is the frame it shows)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (SIDE, SIDE))
    rng = np.random.default_rng(0)
    for i in range(FRAMES):
        writer.write(_draw_number(i, rng))
    writer.release()
    return path


def _damaged(path: Path) -> Path:
    """The video with zeros over frames BAD, their block headers among them: a Matroska demuxer resyncs past them."""
    whole = bytearray(_video(path).read_bytes())
    starts = [i for i in range(len(whole) - 1) if whole[i:i + 2] == b"\xff\xd8"]  # each JPEG's start marker
    assert len(starts) == FRAMES
    first, last = BAD
    whole[starts[first]:starts[last] - 16] = bytes(starts[last] - 16 - starts[first])  # the next block's header kept
    path.write_bytes(bytes(whole))
    return path


def test_the_frames_after_a_damaged_stretch_keep_their_position_in_the_file(tmp_path):
    """The demuxer dropped the damaged frames with no failed read: each frame after them had been numbered as many
    frames early (its CSV rows and snapshots said frame 16 of the frame at 24), and nothing said so."""
    video = _damaged(tmp_path / "damaged.mkv")
    source = VideoSource(video)
    frames = list(source)
    given = [f for f in frames if f.image is not None]
    assert [f.index for f in given] == [_drawn_number(f.image) for f in given]
    assert [f.index for f in frames] == list(range(FRAMES)) and source.end_warning is None
    skipped = [f for f in frames if f.image is None]
    assert skipped and all(f.warning.startswith(f"{video.name}: frame {f.index} ") for f in skipped)
    # the stretch FFmpeg dropped without a word is named as missing, with each frame's time in the file
    missing = [f for f in skipped if "missing" in f.warning]
    assert missing, "the damage no longer makes FFmpeg pass frames over: this test no longer tests the gap"
    assert all(f"frame {f.index} (at {f.index / FPS:.2f} s) is missing from the file (damaged there?); skipped"
               in f.warning for f in missing)


def test_a_whole_steady_video_has_no_gap(tmp_path):
    source = VideoSource(_video(tmp_path / "whole.mkv"))
    frames = list(source)
    assert all(f.image is not None for f in frames) and source.end_warning is None
    assert [f.index for f in frames] == [_drawn_number(f.image) for f in frames] == list(range(FRAMES))
    assert [f.video_s for f in frames] == pytest.approx([i / FPS for i in range(FRAMES)])


def _timed_capture(times: list[float]) -> _VariableRateCapture:
    """A stand-in for cv2.VideoCapture whose frames come at the given times (seconds), every read a success, its
    header declaring FPS and no frame count."""
    return _VariableRateCapture(times, float(FPS), 0)


def _played(monkeypatch, tmp_path: Path, name: str, times: list[float], loop: bool = False,
            reads: int | None = None) -> list:
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda path: _timed_capture(times))
    source = VideoSource(tmp_path / name, loop=loop)
    return list(source) if reads is None else [source.read() for _ in range(reads)]


def _steady(start: int, stop: int) -> list[float]:
    return [i / FPS for i in range(start, stop)]


# A gap in steady times alone is no longer counted as frames lost: a paused recording's jump is whole. Where the
# file's structure breaks at the jump, it is, once per pass of a loop: tests/test_sources_second_look.py
# (test_a_matroska_file_damaged_where_its_times_jump_still_counts_the_frames_lost).


@pytest.mark.parametrize("name, times", [
    # a phone's rate falling to half in low light, and back: its times jump, and go on at the longer interval
    ("phone.mkv", _steady(0, 10) + [1.0 + 2 * i / FPS for i in range(1, 8)] + [2.4 + i / FPS for i in range(1, 10)]),
    # a jump just before the end: nothing after it says the rate went on
    ("end.mkv", _steady(0, 10) + [2.0]),
    # a container that indexes its frames is read by its index (a phone's MP4 whose recording paused is whole)
    ("paused.mp4", _steady(0, 10) + _steady(30, 40)),
    # times that once strayed off the frame period's grid: not one rate, whatever they do after
    ("strayed.webm", _steady(0, 10) + [1.05 + i / FPS for i in range(6)] + [2.05 + i / FPS for i in range(5)])])
def test_times_that_do_not_show_a_gap_in_one_rate_are_taken_as_they_are(tmp_path, monkeypatch, name, times):
    frames = _played(monkeypatch, tmp_path, name, times)
    assert all(f.image is not None for f in frames)
    assert [f.index for f in frames] == list(range(len(times)))
    assert [f.video_s for f in frames] == pytest.approx(times)


def test_a_jump_before_the_rate_is_known_is_taken_as_it_is(tmp_path, monkeypatch):
    """Too few times before it to know the file's rate: a camcorder's fields timed at twice its frames' rate jump
    from the first."""
    times = _steady(0, sources._FrameTimes.STEADY_BEFORE) + _steady(10, 20)
    frames = _played(monkeypatch, tmp_path, "early.mkv", times)
    assert [f.index for f in frames] == list(range(len(times))) and all(f.image is not None for f in frames)
