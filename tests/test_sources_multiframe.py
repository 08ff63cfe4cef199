"""An image file of several frames (an animated GIF or WebP, a multi-page TIFF) given alone is played frame by frame,
as a video is: its first frame alone had been read, and a GIF whose faces came later gave "no face found", exit 0."""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference import sources
from inference.images import FRAME_FLAGS, read_image_checked
from inference.sources import ImageListSource, open_source
from tests.conftest import run_main, utk_images

ANIMATIONS = (".gif", ".webp", ".avif")
KINDS = (".gif", ".webp", ".tif")  # the kinds played frame by frame
FRAME_MS = 250  # how long each frame of the animations written here shows
BACKGROUND = (128, 128, 128)


def _needs_animations(suffix: str) -> None:
    if suffix in ANIMATIONS and not hasattr(cv2, "imwriteanimation"):
        pytest.skip(f"OpenCV {cv2.__version__} cannot write or read animations (4.11 or later can)")


def _frames() -> list[np.ndarray]:
    """An empty first frame, then a real face on each of the others (UTKFace), all of one size as a GIF's are. Each
    face is framed by a margin: a GIF's palette had left the cascade missing a face cropped to its edges."""
    faces = [cv2.imread(str(p)) for p in utk_images(3)]
    margin = faces[0].shape[0] // 2
    framed = [cv2.copyMakeBorder(f, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=BACKGROUND)
              for f in faces]
    return [np.full_like(framed[0], BACKGROUND[0]), *framed]


def _write(path: Path, frames: list[np.ndarray]) -> Path:
    """``frames`` as one file: an animation for a GIF or WebP, one page each for a TIFF."""
    if path.suffix == ".tif":
        assert cv2.imwritemulti(str(path), frames)
    else:
        animation = cv2.Animation()
        animation.frames, animation.durations = frames, [FRAME_MS] * len(frames)
        assert cv2.imwriteanimation(str(path), animation)
    return path


def _nearest(image: np.ndarray, frames: list[np.ndarray]) -> int:
    """Which of ``frames`` the decoded ``image`` is (a GIF's palette and WebP's compression change its pixels)."""
    return int(np.argmin([np.abs(image[..., :3].astype(int) - f.astype(int)).mean() for f in frames]))


@pytest.mark.parametrize("suffix", KINDS)
def test_an_image_of_several_frames_given_alone_gives_every_frame_in_order(tmp_path, suffix):
    _needs_animations(suffix)
    frames = _frames()
    path = _write(tmp_path / f"clip{suffix}", frames)
    source = open_source(str(path))
    read = list(source)
    assert source.expected == len(frames) and source.end_warning is None
    assert [f.name for f in read] == [f"clip{suffix}#{i}" for i in range(len(frames))]
    assert [f.index for f in read] == list(range(len(frames)))
    assert [_nearest(f.image, frames) for f in read] == list(range(len(frames)))
    if suffix in ANIMATIONS:  # a moving picture, as a video's frames are: tracked across frames, each at its time
        assert not any(f.still for f in read)
        assert [f.video_s for f in read] == [i * FRAME_MS / 1000 for i in range(len(frames))]
    else:  # a TIFF's pages are separate pictures, as a folder's photos are
        assert all(f.still for f in read) and all(f.video_s is None for f in read)


@pytest.mark.parametrize("suffix", KINDS)
def test_run_finds_the_faces_on_the_frames_after_the_first(tmp_path, tiny_models, capsys, suffix):
    _needs_animations(suffix)
    frames = _frames()
    path = _write(tmp_path / f"clip{suffix}", frames)
    out = tmp_path / "rows.csv"
    code, _, said = run_main(["run", "--source", str(path), "--out", str(out),
                              "--classifier", str(tiny_models["classifier"]), "--no-filter", "--threads", "1"],
                             capsys)
    assert code == 0, said
    assert f"{len(frames)} frame(s)" in said  # on stderr: stdout is for --out -
    with out.open(newline="") as f:
        found = {row["source"] for row in csv.DictReader(f)}
    # faces, all of them on the frames after the empty first (a GIF's palette may cost the cascade one)
    assert found and found <= {f"clip{suffix}#{i}" for i in range(1, len(frames))}, found


@pytest.mark.parametrize("suffix", KINDS)
def test_an_image_of_one_frame_is_still_one_photo(tmp_path, suffix):
    _needs_animations(suffix)
    face = _frames()[1]
    path = tmp_path / f"photo{suffix}"
    if suffix in ANIMATIONS:
        _write(path, [face])
    else:
        assert cv2.imwrite(str(path), face)
    source = open_source(str(path))
    read = list(source)
    assert isinstance(source, ImageListSource) and source.expected == 1 and source.end_warning is None
    assert [(f.name, f.index, f.still, f.video_s) for f in read] == [(f"photo{suffix}", 0, True, None)]
    assert np.array_equal(read[0].image, read_image_checked(path, FRAME_FLAGS)[0])


def test_a_folder_reads_the_first_frame_of_each_and_says_the_others_were_left_out(tmp_path, caplog):
    _needs_animations(".gif")
    frames = _frames()
    folder = tmp_path / "photos"
    folder.mkdir()
    _write(folder / "a.gif", frames)
    _write(folder / "b.tif", frames)
    cv2.imwrite(str(folder / "c.png"), frames[1])
    source = open_source(str(folder))
    with caplog.at_level(logging.WARNING, logger="inference.sources"):
        assert [f.name for f in source] == ["a.gif", "b.tif", "c.png"]
    assert source.end_warning is not None
    assert all(f"{name} ({len(frames)} frames)" in source.end_warning for name in ("a.gif", "b.tif"))
    assert "c.png" not in source.end_warning and "open the file on its own" in source.end_warning
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"{name}: only the first of {len(frames)} frames analysed ({sources._IN_A_FOLDER})"
                    for name in ("a.gif", "b.tif")]

    caplog.clear()  # once per file: a slideshow looping over them does not say it again on each pass
    looping = open_source(str(folder), loop=True)
    with caplog.at_level(logging.WARNING, logger="inference.sources"):
        names = [looping.read().name for _ in range(3 * 2)]
    assert names == ["a.gif", "b.tif", "c.png"] * 2 and len(caplog.records) == 2


def test_an_animation_that_decodes_fewer_frames_than_it_counts_says_so(tmp_path, monkeypatch):
    _needs_animations(".gif")
    frames = _frames()
    path = _write(tmp_path / "cut.gif", frames)
    decode = cv2.imreadanimation
    decodable = len(frames) // 2

    def cut_short(filename, start, count):  # as a file damaged after its first frames
        ok, animation = decode(filename, start, max(0, min(count, decodable - start)))
        if start >= decodable:
            animation.frames = []
        return ok, animation

    monkeypatch.setattr(cv2, "imreadanimation", cut_short)
    source = open_source(str(path))
    assert len(list(source)) == decodable
    assert source.end_warning == f"cut.gif ended after {decodable} of {len(frames)} frames (truncated or damaged?)"


def test_a_looping_animation_starts_again_at_its_first_frame_and_time(tmp_path):
    _needs_animations(".gif")
    frames = _frames()
    source = open_source(str(_write(tmp_path / "loop.gif", frames)), loop=True)
    read = [source.read() for _ in range(len(frames) + 1)]
    assert source.expected is None
    assert [f.name for f in read] == [*(f"loop.gif#{i}" for i in range(len(frames))), "loop.gif#0"]
    assert read[-1].video_s == 0.0 and _nearest(read[-1].image, frames) == 0


def test_an_avif_sequence_alone_is_read_as_its_first_frame_and_says_the_rest_were_left_out(tmp_path):
    """OpenCV gives a 10-bit AVIF sequence's frames in a range of their own, near black as 16 bits: its first frame
    is read as a photo (scaled rightly), and the others are said to be left out rather than dropped unsaid."""
    _needs_animations(".avif")
    if not cv2.haveImageWriter(".avif"):
        pytest.skip(f"OpenCV {cv2.__version__} was built without an AVIF encoder")
    frames = _frames()
    path = _write(tmp_path / "clip.avif", frames)
    source = open_source(str(path))
    assert [f.name for f in source] == ["clip.avif"]
    assert source.end_warning == (f"only the first frame of clip.avif ({len(frames)} frames) was analysed: the frames "
                                  "of an AVIF sequence cannot be read one by one here")
