"""An image file of several frames played frame by frame, at its edges: a TIFF's thumbnail and mask pages are no
photos of their own, a TIFF's pages of different sizes are read one at a time, an animation's frames of no delay
are played as browsers play them, and a file whose name is not UTF-8 has its frames read from its bytes."""
from __future__ import annotations

import csv
import logging
import os
import struct
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference import sources, tiff_pages
from inference.errors import BiasMirrorError
from inference.images import read_rgb_checked
from inference.sources import ImageFramesSource, ImageListSource, open_source
from tests.conftest import run_main, utk_images

BACKGROUND = 128
FRAME_MS = 250  # how long each frame of the animations written here shows, where a test does not say
NOT_UTF8 = b"caf\xe9"  # a Latin-1 name's bytes
ANIMATIONS = (".gif", ".webp", ".png")  # APNG is a .png


def _faces(n: int) -> list[np.ndarray]:
    """``n`` real faces (UTKFace), each framed by a margin of grey, as a detector finds them on a page."""
    faces = [cv2.imread(str(p)) for p in utk_images(n)]
    margin = faces[0].shape[0] // 2
    return [cv2.copyMakeBorder(f, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(BACKGROUND,) * 3)
            for f in faces]


def _thumbnail(page: np.ndarray) -> np.ndarray:
    return cv2.resize(page, (page.shape[1] // 4, page.shape[0] // 4), interpolation=cv2.INTER_AREA)


# NewSubfileType's values (TIFF 6.0, tag 254)
PAGE_OF_MANY, THUMBNAIL, MASK = 0b010, 0b001, 0b100
SHORT, LONG = 3, 4  # TIFF's field types, as tag 254 may be written


def _tiff(pages: list[np.ndarray], kinds: list[int | None], order: str = "<", big: bool = False,
          kind_type: int = LONG) -> bytes:
    """An uncompressed RGB TIFF of ``pages`` (BGR), each with its NewSubfileType (None: no tag 254), written here
    (classic or BigTIFF, little- or big-endian) to say exactly what each page's IFD holds."""
    offset_code, count_code, entry_code, inline = ("Q", "Q", "Q", 8) if big else ("I", "H", "I", 4)
    codes = {SHORT: "H", LONG: "I"}
    out = bytearray(b"II" if order == "<" else b"MM")
    out += struct.pack(order + "HHHQ", 43, 8, 0, 0) if big else struct.pack(order + "HI", 42, 0)
    next_at = 8 if big else 4  # where the offset of the next IFD is written
    for page, kind in zip(pages, kinds):
        rgb = cv2.cvtColor(page, cv2.COLOR_BGR2RGB)
        height, width = rgb.shape[:2]
        strip = len(out)
        out += rgb.tobytes()
        tags = [] if kind is None else [(254, kind_type, [kind])]
        tags += [(256, LONG, [width]), (257, LONG, [height]), (258, SHORT, [8, 8, 8]), (259, SHORT, [1]),
                 (262, SHORT, [2]), (273, LONG, [strip]), (277, SHORT, [3]), (278, LONG, [height]),
                 (279, LONG, [rgb.nbytes]), (284, SHORT, [1])]
        fields = []
        for tag, kind_of_value, values in tags:
            value = struct.pack(order + codes[kind_of_value] * len(values), *values)
            if len(value) > inline:  # out of the entry: written before the IFD, the entry holding its offset
                out += b"\0" * (len(out) % 2)
                at = len(out)
                out += value
                value = struct.pack(order + offset_code, at)
            fields.append(struct.pack(order + "HH" + entry_code, tag, kind_of_value, len(values))
                          + value.ljust(inline, b"\0"))
        out += b"\0" * (len(out) % 2)
        struct.pack_into(order + offset_code, out, next_at, len(out))
        out += struct.pack(order + count_code, len(fields)) + b"".join(fields)
        next_at = len(out)
        out += struct.pack(order + offset_code, 0)
    return bytes(out)


def _write_animation(path: Path, frames: list[np.ndarray], delay_ms: int = FRAME_MS) -> Path:
    animation = cv2.Animation()
    animation.frames, animation.durations = frames, [delay_ms] * len(frames)
    with sources.quiet_opencv():  # a GIF's delay of 0 is warned of
        assert cv2.imwriteanimation(str(path), animation)
    return path


def _write(path: Path, frames: list[np.ndarray]) -> Path:
    """``frames`` as one file: an animation, or a TIFF's pages."""
    if path.suffix == ".tif":
        path.write_bytes(_tiff(frames, [None] * len(frames)))
        return path
    return _write_animation(path, frames)


def _needs_animations() -> None:
    if not hasattr(cv2, "imdecodeanimation"):
        pytest.skip(f"OpenCV {cv2.__version__} cannot read animations from their bytes")


def _nearest(image: np.ndarray, frames: list[np.ndarray]) -> int:
    """Which of ``frames`` the decoded ``image`` is (a GIF's palette and WebP's compression change its pixels)."""
    return int(np.argmin([np.abs(image[..., :3].astype(int) - f.astype(int)).mean() for f in frames]))


# --- a TIFF's reduced-resolution and mask pages


@pytest.mark.parametrize("order, big", [("<", False), (">", False), ("<", True), (">", True)])
@pytest.mark.parametrize("kind_type", [LONG, SHORT])
def test_a_tiffs_thumbnail_and_mask_pages_are_left_out_of_its_photos(tmp_path, order, big, kind_type):
    first, second = _faces(2)
    pages = [first, _thumbnail(first), np.full_like(first, 255), second, _thumbnail(second)]
    kinds = [PAGE_OF_MANY, THUMBNAIL, MASK, None, THUMBNAIL | PAGE_OF_MANY]
    path = tmp_path / "album.tif"
    path.write_bytes(_tiff(pages, kinds, order, big, kind_type))
    source = open_source(str(path))
    read = list(source)
    assert isinstance(source, ImageFramesSource) and source.expected == 2 and source.end_warning is None
    assert [f.name for f in read] == ["album.tif#0", "album.tif#1"]
    assert np.array_equal(read[0].image, first) and np.array_equal(read[1].image, second)


def test_opencv_numbers_a_tiffs_pages_in_the_order_of_its_ifds_thumbnails_and_masks_included(tmp_path):
    """The pages played are mapped to OpenCV's page numbers: the IFDs' order, every IFD counted."""
    first, second = _faces(2)
    pages = [_thumbnail(second), first, np.full_like(first, 255), second]
    path = tmp_path / "album.tif"
    path.write_bytes(_tiff(pages, [THUMBNAIL, None, MASK, None]))
    assert cv2.imcount(str(path)) == len(pages)
    for number, page in enumerate(pages):
        ok, read = cv2.imreadmulti(str(path), number, 1, flags=sources.FRAME_FLAGS)
        assert ok and len(read) == 1 and np.array_equal(read[0], page), number
    assert [f.image.shape for f in open_source(str(path))] == [first.shape, second.shape]


def test_a_photo_with_its_thumbnail_is_one_photo(tmp_path):
    (face,) = _faces(1)
    path = tmp_path / "photo.tif"
    path.write_bytes(_tiff([face, _thumbnail(face)], [None, THUMBNAIL]))
    source = open_source(str(path))
    read = list(source)
    assert isinstance(source, ImageListSource) and source.expected == 1 and source.end_warning is None
    assert [(f.name, f.still) for f in read] == [("photo.tif", True)] and np.array_equal(read[0].image, face)


def test_a_folder_does_not_call_a_photo_with_its_thumbnail_a_file_of_several_frames(tmp_path):
    (face,) = _faces(1)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "photo.tif").write_bytes(_tiff([face, _thumbnail(face)], [None, THUMBNAIL]))
    source = open_source(str(folder))
    assert [f.name for f in source] == ["photo.tif"] and source.end_warning is None


def test_run_gives_a_photo_with_its_thumbnail_one_face(tmp_path, tiny_models, capsys):
    (face,) = _faces(1)
    path = tmp_path / "photo.tif"
    path.write_bytes(_tiff([face, _thumbnail(face)], [None, THUMBNAIL]))
    out = tmp_path / "rows.csv"
    code, stdout, _ = run_main(["run", "--source", str(path), "--out", str(out),
                                "--classifier", str(tiny_models["classifier"]), "--no-filter", "--threads", "1"],
                               capsys)
    assert code == 0, stdout
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["source"] for row in rows] == ["photo.tif"], rows


@pytest.mark.parametrize("kind", [THUMBNAIL, MASK])
def test_a_tiff_whose_first_page_is_a_thumbnail_or_mask_is_read_from_its_photo(tmp_path, kind):
    """OpenCV reads a TIFF's first page as the image: a thumbnail first in its file had been measured in place of the
    photo it previews, alone, in a folder, by training and by the aligned audit."""
    (face,) = _faces(1)
    first = _thumbnail(face) if kind == THUMBNAIL else np.full_like(face, 255)
    data = _tiff([first, face], [kind, None])
    alone = tmp_path / "photo.tif"
    alone.write_bytes(data)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "photo.tif").write_bytes(data)
    for source in (open_source(str(alone)), open_source(str(folder))):
        read = list(source)
        assert [f.name for f in read] == ["photo.tif"] and source.end_warning is None
        assert np.array_equal(read[0].image, face)
    for path in (alone, _renamed_not_utf8(folder / "photo.tif")):
        rgb, problem = read_rgb_checked(str(path))
        assert problem is None and np.array_equal(rgb, cv2.cvtColor(face, cv2.COLOR_BGR2RGB)), path


def test_a_tiffs_pages_are_walked_once_to_open_it(tmp_path, monkeypatch):
    walked = []
    walk = tiff_pages.subfile_types
    monkeypatch.setattr(tiff_pages, "subfile_types", lambda path: walked.append(path) or walk(path))
    first, second = _faces(2)
    path = tmp_path / "album.tif"
    path.write_bytes(_tiff([first, _thumbnail(first), second], [None, THUMBNAIL, None]))
    source = open_source(str(path))
    assert [f.image.shape for f in source] == [first.shape, second.shape] and walked == [path]


def _mutilated(data: bytes):
    """``data`` cut off at many places, and with each of its 4-byte words in turn made 0 or all ones: IFDs whose
    offsets, counts and values are out of the file, looping, or absurd."""
    for end in range(0, len(data), max(1, len(data) // 97)):
        yield data[:end]
    for at in range(0, min(len(data), 4096), 2):
        for word in (b"\0\0\0\0", b"\xff\xff\xff\xff"):
            yield data[:at] + word + data[at + 4:]


@pytest.mark.parametrize("big", [False, True])
def test_a_malformed_tiffs_pages_are_counted_without_raising(tmp_path, big):
    """Counted in the file alone (a name OpenCV cannot be given): its IFDs' offsets, counts and values out of the
    file, looping or absurd give the pages read so far, never an error."""
    face = cv2.resize(_faces(1)[0], (24, 24))
    data = _tiff([face, _thumbnail(face), face], [None, THUMBNAIL, None], big=big)
    path = tmp_path / "album.tif"
    path.write_bytes(data)
    path = _renamed_not_utf8(path)  # each cut written under it in turn
    whole = sources._tiff_photo_pages(path)
    assert whole == [0, 2] and sources.frame_count(path) == len(whole)
    for mutilated in _mutilated(data):
        path.write_bytes(mutilated)
        assert set(sources._tiff_photo_pages(path)) <= {0, 1, 2}
        assert 0 <= sources.frame_count(path) <= 3


def test_a_tiff_whose_ifds_loop_is_read_once(tmp_path):
    face = cv2.resize(_faces(1)[0], (24, 24))
    data = bytearray(_tiff([face, _thumbnail(face)], [None, THUMBNAIL]))
    first_ifd = struct.unpack_from("<I", data, 4)[0]
    struct.pack_into("<I", data, len(data) - 4, first_ifd)  # the last IFD's next is the first again
    latin = tmp_path / "latin.tif"
    latin.write_bytes(bytes(data))
    latin = _renamed_not_utf8(latin)
    assert sources._tiff_photo_pages(latin) == [0] and sources.frame_count(latin) == 1
    path = tmp_path / "loop.tif"
    path.write_bytes(bytes(data))
    try:
        open_source(str(path)).close()  # read as OpenCV can, or refused saying why: never a crash or a hang
    except BiasMirrorError:
        pass


# --- a TIFF's pages of different sizes


def test_a_tiffs_pages_are_held_one_at_a_time_whatever_their_sizes(tmp_path):
    """Batches as many frames as FRAME_BATCH_BYTES holds of the first page's size: a small first page had held all
    the large pages after it at once (a 64×64 page, then 30 of 4000×3000: 1 GiB)."""
    faces = _faces(3)
    small = cv2.resize(faces[0], (faces[0].shape[1] // 8, faces[0].shape[0] // 8))
    path = tmp_path / "scans.tif"
    pages = [small, *(cv2.resize(f, (f.shape[1] * 2, f.shape[0] * 2)) for f in faces)]
    path.write_bytes(_tiff(pages, [None] * len(pages)))
    source = open_source(str(path))
    held = []
    while (frame := source.read()) is not None:
        held.append(len(source._batch))
        assert np.array_equal(frame.image, pages[frame.index])
    assert held == [1] * len(pages)


# --- an animation's frames of no delay


@pytest.mark.parametrize("suffix", ANIMATIONS)
@pytest.mark.parametrize("delay", ["none", "instant", "longer"])
def test_an_animations_frames_of_no_delay_show_as_long_as_a_browser_shows_them(tmp_path, suffix, delay):
    """A delay of 0 is "as fast as the browser shows them": taken as 0, a GIF's frames all had one time, the app
    played them at once, and its one-slot mailbox kept 2 of 30 for analysis."""
    _needs_animations()
    delay_ms = {"none": 0, "instant": sources.INSTANT_FRAME_MS, "longer": 2 * sources.INSTANT_FRAME_MS}[delay]
    frames = _faces(3)
    path = _write_animation(tmp_path / f"quick{suffix}", frames, delay_ms)
    times = [f.video_s for f in open_source(str(path))]
    assert len(times) == len(frames) and all(a < b for a, b in zip(times, times[1:])), times  # each its own time
    shown_ms = sources.INSTANT_FRAME_SHOWN_MS if delay != "longer" else delay_ms
    assert times == [i * shown_ms / 1000 for i in range(len(frames))]


# --- a file whose name is not UTF-8


@pytest.fixture
def opencv_never_given_a_name_not_utf8(monkeypatch):
    """OpenCV's functions that take a file's name crash the process on one that is not UTF-8 (a segmentation
    fault): here they fail the test instead."""
    def guarded(function):
        def given(filename, *args, **kwargs):
            assert isinstance(filename, int) or sources.opencv_can_name(filename), f"{function.__name__}({filename!r})"
            return function(filename, *args, **kwargs)
        return given

    for name in ("imread", "imreadmulti", "imreadanimation", "imcount", "haveImageReader", "VideoCapture"):
        monkeypatch.setattr(cv2, name, guarded(getattr(cv2, name)))


def _renamed_not_utf8(path: Path) -> Path:
    """``path`` moved to a name that holds a Latin-1 byte (written under a UTF-8 name: OpenCV cannot write one)."""
    renamed = path.with_name(os.fsdecode(NOT_UTF8 + path.suffix.encode()))
    try:
        path.rename(renamed)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes no name that is not UTF-8")
    return renamed


@pytest.mark.parametrize("suffix", [*ANIMATIONS, ".tif"])
def test_a_file_of_several_frames_whose_name_is_not_utf8_is_played_as_under_a_utf8_name(
        tmp_path, opencv_never_given_a_name_not_utf8, suffix):
    if suffix != ".tif":
        _needs_animations()
    frames = _faces(3)
    plain = _write(tmp_path / f"plain{suffix}", frames)
    as_named = list(open_source(str(plain)))
    copy = tmp_path / f"copy{suffix}"
    copy.write_bytes(plain.read_bytes())
    latin = _renamed_not_utf8(copy)
    source = open_source(str(latin))
    read = list(source)
    assert isinstance(source, ImageFramesSource) and source.expected == len(frames) and source.end_warning is None
    assert [f.name for f in read] == [f"{latin.name}#{i}" for i in range(len(frames))]
    assert [(f.index, f.video_s, f.still) for f in read] == [(f.index, f.video_s, f.still) for f in as_named]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(read, as_named))
    assert [_nearest(f.image, frames) for f in read] == list(range(len(frames)))


@pytest.mark.parametrize("suffix", [*ANIMATIONS, ".tif"])
def test_frames_counted_in_a_files_bytes_are_those_opencv_counts(tmp_path, suffix):
    if suffix != ".tif":
        _needs_animations()
    faces = _faces(3)
    for n in (1, len(faces)):
        path = _write(tmp_path / f"{n}{suffix}", faces[:n])
        latin = tmp_path / f"latin{n}{suffix}"
        latin.write_bytes(path.read_bytes())
        latin = _renamed_not_utf8(latin)
        assert sources.frame_count(latin) == cv2.imcount(str(path)) == n


def test_a_tiff_whose_name_is_not_utf8_leaves_its_thumbnails_out(tmp_path, opencv_never_given_a_name_not_utf8):
    first, second = _faces(2)
    path = tmp_path / "album.tif"
    path.write_bytes(_tiff([first, _thumbnail(first), second], [None, THUMBNAIL, None], order=">", big=True))
    source = open_source(str(_renamed_not_utf8(path)))
    read = list(source)
    assert isinstance(source, ImageFramesSource) and source.end_warning is None
    assert len(read) == 2 and np.array_equal(read[0].image, first) and np.array_equal(read[1].image, second)


@pytest.mark.parametrize("utf8", [True, False])
def test_a_long_animation_is_decoded_a_batch_at_a_time_never_whole(tmp_path, monkeypatch,
                                                                   opencv_never_given_a_name_not_utf8, utf8):
    """By its name (imreadanimation), or from its bytes where the name is not UTF-8 (imdecodeanimation)."""
    _needs_animations()
    frames = _faces(3)
    path = _write_animation(tmp_path / "long.gif", frames * 3)
    path = path if utf8 else _renamed_not_utf8(path)
    monkeypatch.setattr(sources, "FRAME_BATCH_BYTES", 2 * frames[0].nbytes)
    asked = []
    reader = "imreadanimation" if utf8 else "imdecodeanimation"
    decode = getattr(cv2, reader)

    def counted(name_or_bytes, start, count):
        asked.append(count)
        return decode(name_or_bytes, start, count)

    source = open_source(str(path))  # opening asks the decoder too: only the frames read are counted
    monkeypatch.setattr(cv2, reader, counted)
    read = [_nearest(f.image, frames) for f in source]
    assert read == list(range(len(frames))) * 3
    assert max(asked) == 2 and sum(asked) == len(read)


def test_a_folder_says_a_gif_whose_name_is_not_utf8_had_its_first_frame_alone_analysed(
        tmp_path, caplog, opencv_never_given_a_name_not_utf8):
    _needs_animations()
    frames = _faces(3)
    folder = tmp_path / "photos"
    folder.mkdir()
    gif = _renamed_not_utf8(_write_animation(folder / "clip.gif", frames))
    source = open_source(str(folder))
    with caplog.at_level(logging.WARNING, logger="inference.sources"):
        assert [f.name for f in source] == [gif.name]
    assert source.end_warning is not None and f"{gif.name} ({len(frames)} frames)" in source.end_warning
    assert len(caplog.records) == 1


def test_an_avif_sequence_whose_name_is_not_utf8_says_its_other_frames_were_left_out(
        tmp_path, opencv_never_given_a_name_not_utf8):
    """Read as its first frame, as under a UTF-8 name; its frames had been counted 0 there, and the rest left out
    without a word."""
    _needs_animations()
    if not cv2.haveImageWriter(".avif"):
        pytest.skip(f"OpenCV {cv2.__version__} was built without an AVIF encoder")
    frames = _faces(3)
    latin = _renamed_not_utf8(_write_animation(tmp_path / "clip.avif", frames))
    source = open_source(str(latin))
    assert [f.name for f in source] == [latin.name]
    assert source.end_warning == (f"only the first frame of {latin.name} ({len(frames)} frames) was analysed: the "
                                  "frames of an AVIF sequence cannot be read one by one here")


@pytest.mark.parametrize("suffix", [".gif", ".tif"])
def test_a_cut_off_file_whose_name_is_not_utf8_is_refused_or_read_as_under_a_utf8_name(
        tmp_path, opencv_never_given_a_name_not_utf8, suffix):
    if suffix != ".tif":
        _needs_animations()
    data = _write(tmp_path / f"whole{suffix}", _faces(3)).read_bytes()

    def outcome(path: Path):
        try:
            source = open_source(str(path))
        except BiasMirrorError as exc:
            return "refused", exc.message
        return type(source).__name__, [f.name.split("#")[-1] if "#" in f.name else "" for f in source], \
            source.end_warning and source.end_warning.replace(path.name, "")

    for cut in (len(data) // 2, len(data) * 3 // 4):
        plain = tmp_path / f"cut{cut}{suffix}"
        plain.write_bytes(data[:cut])
        latin = tmp_path / f"latin{cut}{suffix}"
        latin.write_bytes(data[:cut])
        assert outcome(_renamed_not_utf8(latin)) == outcome(plain), cut


def test_tiffs_read_in_two_threads_at_once_leave_tifffiles_logger_as_it_was(tmp_path, monkeypatch):
    """Each reader silenced the process's tifffile logger and put back the level it had found: where a second came
    in while the first read (finding the level silenced) and left after it, the logger stayed silenced for good."""
    import logging
    import threading

    import tifffile

    logger = logging.getLogger("tifffile")
    monkeypatch.setattr(logger, "level", logging.WARNING)
    real, entered = tifffile.TiffFile, []
    second_in, first_out = threading.Event(), threading.Event()

    def overlapping(path):
        entered.append(path)
        if len(entered) == 1:
            second_in.wait(timeout=1)  # the second comes in while the first reads, where nothing keeps it out
        else:
            second_in.set()
            first_out.wait(timeout=1)  # and leaves after it
        return real(path)

    def read(first: bool):
        tiff_pages.subfile_types(path)
        if first:
            first_out.set()

    monkeypatch.setattr(tiff_pages.tifffile, "TiffFile", overlapping)
    (face,) = _faces(1)
    path = tmp_path / "photo.tif"
    path.write_bytes(_tiff([face], [None]))
    first = threading.Thread(target=read, args=(True,))
    first.start()
    while not entered:
        time.sleep(0.001)
    second = threading.Thread(target=read, args=(False,))
    second.start()
    first.join()
    second.join()
    assert len(entered) == 2 and logger.level == logging.WARNING
