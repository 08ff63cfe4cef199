"""Sources, a second look: a recording that paused is not called damaged, an HDR video is said to be measured
unconverted, an image under a video's name is read as an image, a looped 1-frame video keeps its rate, a looped
folder is listed again at each pass, and a folder's own warnings are kept on the source for the app's window.

Every video here is made with OpenCV's VideoWriter; the pause and the colour tag are put in by editing the file's
Matroska elements or MP4 boxes, as a recorder or a phone writes them."""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import cv2
import numpy as np
import pytest

import gui.workers as workers
import inference.sources as sources
from inference.datasets.folder import list_folder
from inference.errors import BiasMirrorError
from inference.sources import ImageFramesSource, ImageListSource, VideoSource, open_source
from inference.video_colour import colour_tags
from tests.conftest import utk_images
from tests.test_sources import _heic, _portrait_as_a_phone_saves_it
from tests.test_sources_damaged_video import FPS, FRAMES, _drawn_number, _timed_capture, _video

PAUSED = (20, 25)  # the frames [first, last) a recording's pause leaves out
_SEGMENT, _CLUSTER, _SIMPLE_BLOCK, _CRC_32 = 0x18538067, 0x1F43B675, 0xA3, 0xBF


# --- a pause in a recording ---------------------------------------------------------------------------------------
def _ebml_number(data: bytes, at: int, keep_marker: bool) -> tuple[int, int]:
    length = 9 - data[at].bit_length()
    value = int.from_bytes(data[at:at + length], "big")
    return (value if keep_marker else value & ((1 << 7 * length) - 1)), length


def _elements(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(ID, start, its size's start, end) of each element of a Matroska file in order, its Segment's and Clusters'
    walked into."""
    at = 0
    while at < len(data):
        element, id_length = _ebml_number(data, at, keep_marker=True)
        size, size_length = _ebml_number(data, at + id_length, keep_marker=False)
        start = at + id_length + size_length
        yield element, at, at + id_length, start + size
        at = start if element in (_SEGMENT, _CLUSTER) else start + size


def _blocks(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each frame's SimpleBlock element in a Matroska file, in the order they come."""
    return [(at, end) for element, at, _, end in _elements(data) if element == _SIMPLE_BLOCK]


def _clusters(data: bytes) -> list[list[int]]:
    """The IDs of each Cluster's elements, in order."""
    held: list[list[int]] = []
    for element, *_ in _elements(data):
        if element == _CLUSTER:
            held.append([])
        elif held and element != _SEGMENT:
            held[-1].append(element)
    return held


def _cluster_of_each_frame(data: bytes) -> list[int]:
    """The Cluster (by its place among them) that holds each frame's block."""
    cluster, found = -1, []
    for element, *_ in _elements(data):
        cluster += element == _CLUSTER
        if element == _SIMPLE_BLOCK:
            found.append(cluster)
    return found


def _of_open_size(data: bytearray) -> None:
    """Its Segment's and Clusters' sizes made unknown (all ones, in their own length), as a live recorder writes
    them, which cannot go back to write a size: nothing else moves."""
    for element, _, size_at, _ in list(_elements(bytes(data))):
        if element in (_SEGMENT, _CLUSTER):
            length = 9 - data[size_at].bit_length()
            data[size_at:size_at + length] = ((1 << 7 * length + 1) - 1).to_bytes(length, "big")


def _edited(path: Path, name: str, paused: range = range(0), damaged: range = range(0), live: bool = False) -> Path:
    """The video with the frames ``paused`` taken out as a recording's pause leaves them (each block made a Void
    element of its length: the file whole, its times jumping), the frames ``damaged`` zeroed (a damaged stretch,
    which FFmpeg resyncs past), and its Segment and Clusters of open size where ``live``."""
    data = bytearray(path.read_bytes())
    blocks = _blocks(bytes(data))
    assert len(blocks) == FRAMES
    for start, end in (blocks[i] for i in paused):
        void_data = end - start - 9  # after Void's ID (1 byte) and an 8-byte size
        data[start:end] = b"\xec\x01" + void_data.to_bytes(7, "big") + bytes(void_data)
    for start, end in (blocks[i] for i in damaged):
        data[start:end] = bytes(end - start)
    if live:
        _of_open_size(data)
    out = path.with_name(name)
    out.write_bytes(bytes(data))
    return out


def _without_frames(path: Path, name: str, voided: bool) -> Path:
    """The video with frames PAUSED taken out: voided (a recording that paused there), or zeroed (damaged there)."""
    frames = range(*PAUSED)
    return _edited(path, name, paused=frames) if voided else _edited(path, name, damaged=frames)


def _pause_said(name: str) -> str:
    first, last = PAUSED
    return (f"{name}: no frames between {(first - 1) / FPS:.2f} s and {last / FPS:.2f} s: the recording paused there "
            "(the file is whole there: no frame is missing)")


def _numbered_as_decoded_past_the_pause(frames: list) -> bool:
    """Whether each frame given is numbered by its place in the file, the pause taking no place."""
    first, last = PAUSED
    given = [f for f in frames if f.image is not None]
    drawn = [_drawn_number(f.image) for f in given]
    return [f.index for f in given] == [n if n < first else n - (last - first) for n in drawn]


def test_a_recording_that_paused_keeps_its_numbering_and_says_where_once(tmp_path):
    """A WebM whose recorder paused 0.5 s had every later frame numbered 14 too high, 14 "missing from the file
    (damaged there?)" frames skipped, and the app said "14 unreadable frame(s)"; the file was whole."""
    paused = _without_frames(_video(tmp_path / "whole.mkv"), "paused.mkv", voided=True)
    source = VideoSource(paused, loop=True)
    first, last = PAUSED
    kept = FRAMES - (last - first)
    frames = [source.read() for _ in range(2 * kept)]  # two passes: said once
    assert all(f.image is not None for f in frames)
    assert [f.index for f in frames] == 2 * list(range(kept))
    assert [_drawn_number(f.image) for f in frames[:kept]] == [*range(first), *range(last, FRAMES)]
    assert source.warnings == (_pause_said("paused.mkv"),)


def test_a_live_recordings_clusters_of_open_size_hold_crc_32_and_void_elements(tmp_path):
    """A paused recording whose Clusters are of open size (a live recorder's) and open with a CRC-32 (as FFmpeg's
    muxer writes them) had been called broken at 0 s: its Clusters were closed at the CRC-32 (and a Void), which
    any element may hold, and the pause counted as lost frames."""
    whole = _video(tmp_path / "whole.mkv")
    assert all(held[0] == _CRC_32 for held in _clusters(whole.read_bytes()))
    paused = _edited(whole, "live.mkv", paused=range(*PAUSED), live=True)  # each paused frame's block a Void
    source = VideoSource(paused)
    frames = list(source)
    assert [f.warning for f in frames if f.image is None] == []
    assert _numbered_as_decoded_past_the_pause(frames) and source.warnings == (_pause_said("live.mkv"),)


# the frames zeroed: one amid a Cluster before the pause, and one after it in the Cluster it ended in, where two
# frames came whole after the pause (a jump is judged only where the rate goes on a frame after it)
DAMAGED_BEFORE = range(PAUSED[0] // 2, PAUSED[0] // 2 + 1)
DAMAGED_AFTER = range(PAUSED[1] + 2, PAUSED[1] + 3)


@pytest.mark.parametrize("live", [False, True], ids=["sized", "live"])
@pytest.mark.parametrize("damaged", [DAMAGED_BEFORE, DAMAGED_AFTER], ids=["before", "after, in its Cluster"])
def test_damage_before_or_after_a_pause_counts_its_own_frames_lost_and_not_the_pauses(tmp_path, damaged, live):
    """One damaged spot before a recording's pause, or after it in the Cluster it ended in, made the pause's jump
    lost frames too (a WebM's 1 s pause 29 frames, its last frame numbered 328 of 300): the walk of its structure
    stopped at the first break, and every later jump was called damaged."""
    whole = _video(tmp_path / "whole.mkv")
    after = PAUSED[1]
    assert len(set(_cluster_of_each_frame(whole.read_bytes())[after:DAMAGED_AFTER.stop])) == 1, (
        "the frame after the pause and the one damaged after it are no longer in one Cluster: the case not tested")
    paused = _edited(whole, "paused.mkv", paused=range(*PAUSED), damaged=damaged, live=live)
    source = VideoSource(paused)
    frames = list(source)
    lost = [f for f in frames if f.image is None]
    assert lost, "the damage no longer makes FFmpeg pass frames over: this test no longer tests a damaged stretch"
    assert all("(damaged there?)" in f.warning or "could not be decoded" in f.warning for f in lost)
    assert source.warnings == (_pause_said("paused.mkv"),)
    assert [f.index for f in frames] == list(range(FRAMES - len(range(*PAUSED))))
    assert _numbered_as_decoded_past_the_pause(frames)


@pytest.mark.parametrize("live", [False, True], ids=["sized", "live"])
def test_a_matroska_file_damaged_where_its_times_jump_still_counts_the_frames_lost(tmp_path, live):
    """Its structure breaks there (FFmpeg logs "invalid as first byte of an EBML number" and resyncs): the frames
    after keep their place in the file, as before the pause was told apart."""
    damaged = _edited(_video(tmp_path / "whole.mkv"), "damaged.mkv", damaged=range(*PAUSED), live=live)
    source = VideoSource(damaged, loop=True)
    frames = [source.read() for _ in range(2 * FRAMES)]  # counted once per pass
    given = [f for f in frames if f.image is not None]
    assert [f.index for f in given] == [_drawn_number(f.image) for f in given]
    assert [f.index for f in frames] == 2 * list(range(FRAMES)) and source.warnings == ()
    assert all("is missing from the file (damaged there?)" in f.warning for f in frames if f.image is None
               and "could not be decoded" not in f.warning)


def test_a_jump_in_a_container_whose_structure_is_not_walked_invents_no_frame(tmp_path, monkeypatch):
    """An FLV's (or WMV's, MPEG-TS's) times jump where it paused as where it is damaged, and nothing here tells
    which: the decoder's numbering is kept and the gap said, not frames made up for it."""
    first, last = PAUSED
    times = [i / FPS for i in range(first)] + [i / FPS for i in range(last, FRAMES)]
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda path: _timed_capture(times))
    source = VideoSource(tmp_path / "gap.flv")
    frames = list(source)
    assert all(f.image is not None for f in frames) and [f.index for f in frames] == list(range(len(times)))
    assert source.warnings == (f"gap.flv: no frames between {(first - 1) / FPS:.2f} s and {last / FPS:.2f} s: damaged, "
                               "or the recording paused (if damaged, the frames after it are numbered early)",)


# --- an HDR video -------------------------------------------------------------------------------------------------
HLG, PQ, BT2020, BT709 = 18, 16, 9, 1  # H.273's code points, as a phone's colr box holds them
_MP4_HOLDERS = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")


def _mp4(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    return path


def _mp4_boxes(data: bytes, start: int, end: int):
    at = start
    while at < end:
        yield data[at + 4:at + 8], at, at + int.from_bytes(data[at:at + 4], "big")
        at += int.from_bytes(data[at:at + 4], "big")


def _tagged(path: Path, name: str, primaries: int, transfer: int, matrix: int) -> Path:
    """The MP4 with a colr box (nclx) in its video's sample entry, as a phone writes it, each box that holds it grown
    by its size. Its moov comes after its media data, so no chunk offset moves."""
    data = bytearray(path.read_bytes())
    body = b"colr" + b"nclx" + b"".join(v.to_bytes(2, "big") for v in (primaries, transfer, matrix)) + b"\x00"
    colr = (4 + len(body)).to_bytes(4, "big") + body
    holders, start, end = [], 0, len(data)
    for kind in _MP4_HOLDERS:
        at, end = next((at, stop) for k, at, stop in _mp4_boxes(data, start, end) if k == kind)
        holders.append(at)
        start = at + 8
    assert data.index(b"mdat") < holders[0]
    entry = start + 8  # after stsd's version, flags and entry count: the video's sample entry
    entry_end = entry + int.from_bytes(data[entry:entry + 4], "big")
    data[entry_end:entry_end] = colr
    for at in (*holders, entry):
        data[at:at + 4] = (int.from_bytes(data[at:at + 4], "big") + len(colr)).to_bytes(4, "big")
    out = path.with_name(name)
    out.write_bytes(bytes(data))
    return out


def test_an_hdr_video_is_said_to_be_measured_unconverted_naming_its_tags(tmp_path, caplog):
    """An iPhone's HLG video was measured as if sRGB, without a word: ITA 2–20° off the same faces in SDR."""
    plain = _mp4(tmp_path / "plain.mp4")
    hlg = _tagged(plain, "hlg.mp4", BT2020, HLG, BT2020)
    with caplog.at_level(logging.WARNING):
        source = open_source(str(hlg))
    assert len([f for f in source if f.image is not None]) == len(list(VideoSource(plain)))  # it plays as before
    (said,) = source.warnings
    assert said.startswith("hlg.mp4: an HDR video (BT.2020 primaries, HLG transfer, BT.2020 matrix): its skin tones "
                           "are measured on its pixels as decoded, unconverted")
    assert "no tone mapping" in said and said in caplog.text  # `run` prints it on stderr, through the log
    assert colour_tags(_tagged(plain, "pq.mp4", BT2020, PQ, BT2020)).transfer == PQ
    for sdr in (plain, _tagged(plain, "sdr.mp4", BT709, BT709, BT709)):
        assert open_source(str(sdr)).warnings == ()


def _ebml(element_id: int, payload: bytes) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + (0x01 << 56 | len(payload)).to_bytes(
        8, "big") + payload


def test_a_matroska_tracks_colour_is_read_from_its_elements(tmp_path):
    colour = _ebml(0x55B0, _ebml(0x55B1, bytes([BT2020])) + _ebml(0x55BA, bytes([PQ])) + _ebml(0x55BB, bytes([BT2020])))
    video = _ebml(0xE0, _ebml(0xB0, b"\x40") + colour)
    audio = _ebml(0xAE, _ebml(0x83, b"\x02"))  # a track of another type first: passed over
    tracks = _ebml(0x1654AE6B, audio + _ebml(0xAE, _ebml(0x83, b"\x01") + video))
    file = tmp_path / "hdr.webm"
    file.write_bytes(_ebml(0x1A45DFA3, _ebml(0x4282, b"webm")) + _ebml(_SEGMENT, tracks))
    tags = colour_tags(file)
    assert (tags.primaries, tags.transfer, tags.matrix) == (BT2020, PQ, BT2020) and tags.unconverted()


# --- an image under a video's name ----------------------------------------------------------------------------------
def test_an_image_under_a_videos_name_is_read_as_the_image_it_is(tmp_path):
    """A JPEG cut at 70 % named .mp4 was measured as FFmpeg filled it in (the same bytes named .jpg are refused), and
    a portrait JPEG named .mp4 came in on its side: "no face found"."""
    data = utk_images(1)[0].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 7 // 10])
    with pytest.raises(BiasMirrorError, match="cut.mp4: cannot be read as an image or a video"):
        open_source(str(tmp_path / "cut.mp4"))
    upright = _portrait_as_a_phone_saves_it(tmp_path / "portrait.jpg")
    shutil.copy(tmp_path / "portrait.jpg", tmp_path / "portrait.mp4")
    frame = open_source(str(tmp_path / "portrait.mp4")).read().image
    assert frame.shape == upright.shape and frame[:10, :, 2].mean() > 200  # red (BGR) on top: turned as shown
    faces = [np.full((32, 32, 3), 40 * i, np.uint8) for i in range(3)]
    from PIL import Image
    Image.fromarray(faces[0]).save(tmp_path / "anim.mp4", format="GIF", save_all=True,
                                   append_images=[Image.fromarray(f) for f in faces[1:]], duration=100)
    animation = open_source(str(tmp_path / "anim.mp4"))  # a GIF: all its frames, as FFmpeg had played them
    assert isinstance(animation, ImageFramesSource) and len(list(animation)) == len(faces)
    assert isinstance(open_source(str(_mp4(tmp_path / "video.mp4"))), VideoSource)


# --- a looped 1-frame video -------------------------------------------------------------------------------------
def test_a_time_that_does_not_move_on_is_a_loop_shown_a_frame_time(monkeypatch):
    """A 1-frame video's every frame is at 0.0, which never went back: looped, it played 8× its rate."""
    clock, waits = [100.0], []
    monkeypatch.setattr(workers.time, "monotonic", lambda: clock[0])
    capture = workers.CaptureThread(SimpleNamespace(name="v", live=False, fps=float(FPS)), workers.Mailbox())
    monkeypatch.setattr(capture, "_sleep", lambda s: (waits.append(s), clock.__setitem__(0, clock[0] + max(s, 0))))
    for _ in range(3):
        capture._wait_for_its_time(0.0)
    capture._wait_for_its_time(2 * FRAMES / FPS, looped=True)  # a loop the source says, its time moving on
    assert waits == pytest.approx(3 * [1 / FPS])


def test_a_looped_1_frame_video_plays_at_its_rate(tmp_path, monkeypatch):
    one = tmp_path / "one.avi"
    writer = cv2.VideoWriter(str(one), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (32, 32))
    writer.write(np.full((32, 32, 3), 90, np.uint8))
    writer.release()
    source = VideoSource(one, loop=True)
    capture = workers.CaptureThread(source, workers.Mailbox())
    clock, delivered, shown = [100.0], [], 2 * FPS
    monkeypatch.setattr(workers.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(capture, "_sleep", lambda s: clock.__setitem__(0, clock[0] + max(s, 0)))

    def deliver(frame):
        delivered.append(frame)
        if len(delivered) == shown:
            capture.stop()

    monkeypatch.setattr(capture, "_deliver", deliver)
    capture._loop()
    assert source.passes == shown - 1
    assert clock[0] - 100.0 == pytest.approx((shown - 1) / FPS)  # each pass shown a frame's time, on the clock


# --- a looped folder ------------------------------------------------------------------------------------------------
def _folder(path: Path, n: int) -> Path:
    path.mkdir()
    for i, image in enumerate(utk_images(n)):
        shutil.copy(image, path / f"{i}.jpg")
    return path


def _pass(source: ImageListSource, n: int) -> list:
    return [source.read() for _ in range(n)]


def test_a_looped_folder_is_listed_again_at_each_pass(tmp_path):
    """Files added while it looped never appeared, and those deleted were skipped (and warned of) pass after pass."""
    folder = _folder(tmp_path / "faces", 3)
    source = open_source(str(folder), loop=True)
    assert [f.name for f in _pass(source, 3)] == ["0.jpg", "1.jpg", "2.jpg"]
    shutil.copy(folder / "0.jpg", folder / "3.jpg")
    (folder / "1.jpg").unlink()
    for _ in range(2):
        frames = _pass(source, 3)
        assert [f.name for f in frames] == ["0.jpg", "2.jpg", "3.jpg"] and all(f.image is not None for f in frames)
    for path in folder.iterdir():
        path.unlink()
    assert source.read() is None
    assert source.end_warning == f"no images are left in {folder} to loop over (deleted or moved?): looping stopped"


def test_a_looped_folder_is_listed_again_only_when_a_folder_of_it_has_changed(tmp_path, monkeypatch):
    """21,336 images took half a second to list again at each pass, on the capture thread, though none had changed:
    a file added, removed or renamed changes its folder's mtime, which is compared first."""
    folder = _folder(tmp_path / "faces", 2)
    (folder / "person").mkdir()
    shutil.copy(folder / "0.jpg", folder / "person" / "2.jpg")
    settled = time.time_ns() - 60 * 10**9  # changed a minute ago: no change since can share its mtime
    for path in (folder, folder / "person"):
        os.utime(path, ns=(settled, settled))
    listings = []
    monkeypatch.setattr(sources, "list_folder", lambda root, say=True: listings.append(root) or list_folder(root, say))
    source = open_source(str(folder), loop=True)
    for _ in range(4):
        assert [f.name for f in _pass(source, 3)] == ["0.jpg", "1.jpg", "person/2.jpg"]
    assert len(listings) == 1  # opened: its folders' times, taken as it listed them, have not changed since
    shutil.copy(folder / "0.jpg", folder / "person" / "3.jpg")  # in a subfolder: its mtime alone changes
    assert [f.name for f in _pass(source, 4)] == ["0.jpg", "1.jpg", "person/2.jpg", "person/3.jpg"]


def test_a_looped_folder_none_of_whose_images_can_be_read_on_a_later_pass_says_so_of_that_pass(tmp_path):
    """It said "none of the 3 image(s) in … could be read" after 21 frames of them had been analysed."""
    n = 3
    folder = _folder(tmp_path / "faces", n)
    source = open_source(str(folder), loop=True)
    assert all(f.image is not None for f in _pass(source, n))
    for path in folder.iterdir():
        path.write_bytes(b"not a jpeg")
    assert all(f.image is None for f in _pass(source, n)) and source.read() is None
    assert source.end_warning == (f"none of the {n} image(s) in {folder} could be read on pass 2 (earlier passes "
                                  "were read: deleted or changed meanwhile?): looping stopped")


def test_a_folders_own_warnings_are_kept_on_its_listing_and_source_and_new_ones_said_once(tmp_path, caplog):
    """They reached the log alone: the window said "end of heic" with no warning of the HEIC and RAW photos."""
    folder = _folder(tmp_path / "export", 1)
    _heic(folder / "photo.HEIC")
    (folder / "raw.dng").write_bytes(b"II*\x00")
    (folder / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    said = (f"{folder}: 1 link(s) to images that do not exist, skipped, e.g. gone.jpg",
            f"{folder}: 2 photo(s) of a type that cannot be read here, skipped, e.g. photo.HEIC (HEIC), raw.dng (RAW); "
            "convert them (e.g. to JPEG) to include them")
    assert list_folder(folder).warnings == said
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert list_folder(folder, say=False).warnings == said and caplog.text == ""
        source = open_source(str(folder), loop=True)
        assert source.warnings == said and all(caplog.text.count(text) == 1 for text in said)
        _pass(source, 1)
        _heic(folder / "later.heic")
        _pass(source, 2)  # listed again at each pass: what is new said once
    (new,) = source.warnings[len(said):]
    assert new.startswith(f"{folder}: 3 photo(s) of a type that cannot be read here") and caplog.text.count(new) == 1
