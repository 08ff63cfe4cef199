"""What a video file's container says of its pictures, read from its boxes or elements without decoding a frame: the
colour its pixels are in (an MP4's or MOV's ``colr`` box, a Matroska/WebM track's Colour element), and whether a
Matroska/WebM file's structure is whole up to a time in it.

OpenCV's FFmpeg capture turns a frame's YUV into BGR by its matrix but leaves its transfer curve and primaries as they
are: an HDR phone video (HLG or PQ, BT.2020 primaries) comes in as if it were sRGB, and skin tones measured on it
read 2–20° of ITA off the same faces filmed in SDR. Nothing here converts them (tone mapping is a choice of its own);
the source says so, naming the file and its tags.
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from inference.iso_boxes import Malformed, boxes, file_boxes

# ITU-T H.273's code points, as MP4's colr box, Matroska's Colour element and FFmpeg name them
_PRIMARIES = {1: "BT.709", 5: "BT.601 (PAL)", 6: "BT.601 (NTSC)", 9: "BT.2020", 11: "DCI-P3", 12: "Display P3"}
_TRANSFERS = {1: "BT.709", 6: "BT.601", 13: "sRGB", 14: "BT.2020 (10-bit)", 15: "BT.2020 (12-bit)", 16: "PQ",
              18: "HLG"}
_MATRICES = {0: "RGB", 1: "BT.709", 5: "BT.601", 6: "BT.601", 9: "BT.2020", 10: "BT.2020 constant-luminance"}
HDR_TRANSFERS = frozenset({16, 18})  # PQ (SMPTE ST 2084) and HLG (ARIB STD-B67): a curve no SDR pixel follows
WIDE_PRIMARIES = frozenset({9, 11, 12})  # BT.2020 and the P3s: colours read as sRGB's would be less saturated


@dataclass(frozen=True)
class ColourTags:
    """A video track's colour, by H.273 code point (2 = unspecified)."""
    primaries: int
    transfer: int
    matrix: int

    def unconverted(self) -> bool:
        """Whether pixels in this colour are not sRGB's as OpenCV gives them: an HDR curve, or wider primaries."""
        return self.transfer in HDR_TRANSFERS or self.primaries in WIDE_PRIMARIES

    def words(self) -> str:
        return (f"{_named(_PRIMARIES, self.primaries)} primaries, {_named(_TRANSFERS, self.transfer)} transfer, "
                f"{_named(_MATRICES, self.matrix)} matrix")


def _named(names: dict[int, str], code: int) -> str:
    return names.get(code, f"code {code}")


def unconverted_colour_warning(path: Path) -> str | None:
    """What to say of a video whose pixels are measured in a colour they are not in; None where its tags say sRGB's
    (BT.709) or say nothing."""
    tags = colour_tags(path)
    if tags is None or not tags.unconverted():
        return None
    kind = "an HDR video" if tags.transfer in HDR_TRANSFERS else "a wide-gamut video"
    return (f"{path.name}: {kind} ({tags.words()}): its skin tones are measured on its pixels as decoded, unconverted, "
            "as if they were sRGB (nothing here converts them: no tone mapping), so its ITA does not compare with SDR "
            "footage's; convert it to SDR (BT.709) first to compare")


def colour_tags(path: Path) -> ColourTags | None:
    """The colour the file's video track is tagged with, or None where it carries no tag read here (an HEVC's
    colour in its bitstream alone, not in a box, is not read), or cannot be read."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
            if head[:4] == _EBML:
                return _matroska_colour(f)
            if head[4:8] in _ISO_FIRST_BOXES:
                return _iso_colour(f)
    except (OSError, Malformed):
        return None
    return None


# --- ISO-BMFF (MP4, MOV, 3GP) ---------------------------------------------------------------------------------------
_ISO_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
_MOST_MOOV_BYTES = 256 * 2**20  # a moov is the file's index, tens of MB for hours of video; larger is not one to read
_VISUAL_SAMPLE_ENTRY = 78  # bytes of a visual sample entry's own fields, before its boxes (ISO/IEC 14496-12 12.1.3)


def _iso_colour(f: BinaryIO) -> ColourTags | None:
    """The colr (or VP9's vpcC) box of the file's first video track, its moov found by box sizes, wherever it is (a
    phone writes it at the end): the media data it skips is never read."""
    end = os.fstat(f.fileno()).st_size
    for kind, start, stop in file_boxes(f, 0, end):
        if kind == b"moov":
            if stop - start > _MOST_MOOV_BYTES:
                return None
            f.seek(start)
            moov = memoryview(f.read(stop - start))
            return _moov_colour(moov)
    return None


def _child(buf: memoryview, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((a, b) for k, a, b in boxes(buf, start, end) if k == kind), None)


def _moov_colour(moov: memoryview) -> ColourTags | None:
    for kind, start, end in boxes(moov, 0, len(moov)):
        if kind == b"trak" and (tags := _track_colour(moov, start, end)) is not None:
            return tags
    return None


def _track_colour(buf: memoryview, start: int, end: int) -> ColourTags | None:
    """A video track's colour: trak/mdia (its hdlr says 'vide')/minf/stbl/stsd, in its first sample entry."""
    mdia = _child(buf, start, end, b"mdia")
    hdlr = mdia and _child(buf, *mdia, b"hdlr")
    if hdlr is None or bytes(buf[hdlr[0] + 8:hdlr[0] + 12]) != b"vide":  # version, flags, pre_defined, handler type
        return None
    stsd = None
    if (minf := _child(buf, *mdia, b"minf")) and (stbl := _child(buf, *minf, b"stbl")):
        stsd = _child(buf, *stbl, b"stsd")
    if stsd is None:
        return None
    entries = list(boxes(buf, stsd[0] + 8, stsd[1]))  # after version, flags and the entry count
    if not entries:
        return None
    _, entry_start, entry_end = entries[0]
    for kind, at, stop in boxes(buf, entry_start + _VISUAL_SAMPLE_ENTRY, entry_end):
        if kind == b"colr" and bytes(buf[at:at + 4]) in (b"nclx", b"nclc") and stop - at >= 10:
            return ColourTags(*(int.from_bytes(buf[at + i:at + i + 2], "big") for i in (4, 6, 8)))
        if kind == b"vpcC" and stop - at >= 10:  # version, flags, profile, level, depth+chroma+range, then 3 bytes
            return ColourTags(buf[at + 7], buf[at + 8], buf[at + 9])
    return None


# --- Matroska, WebM ----------------------------------------------------------------------------------------------
_EBML = bytes.fromhex("1A45DFA3")
_SEGMENT, _CLUSTER, _TRACKS = 0x18538067, 0x1F43B675, 0x1654AE6B
_INFO, _TIMESTAMP_SCALE, _CLUSTER_TIMESTAMP = 0x1549A966, 0x2AD7B1, 0xE7
_TRACK_ENTRY, _TRACK_TYPE, _VIDEO, _COLOUR = 0xAE, 0x83, 0xE0, 0x55B0
_MATRIX, _TRANSFER, _PRIMARIES_ID = 0x55B1, 0x55BA, 0x55BB
_VOID, _CRC = 0xEC, 0xBF
_GLOBAL = frozenset({_VOID, _CRC})  # the Matroska spec's global elements: any element may hold them
_SIMPLE_BLOCK, _BLOCK_GROUP, _BLOCK = 0xA3, 0xA0, 0xA1
# the Segment's own elements (SeekHead, Info, Tracks, Cues, Attachments, Chapters, Tags, Cluster): where FFmpeg's
# demuxer resyncs after a break, scanning for their IDs
_LEVEL_1 = frozenset({0x114D9B74, _INFO, _TRACKS, 0x1C53BB6B, 0x1941A469, 0x1043A770, 0x1254C367, _CLUSTER})
_CLUSTER_CHILDREN = frozenset({_CLUSTER_TIMESTAMP, 0x5854, 0xA7, 0xAB, _SIMPLE_BLOCK, _BLOCK_GROUP, 0xAF})
_EBML_ID = int.from_bytes(_EBML, "big")
_HELD_BY = {None: frozenset({_EBML_ID, _SEGMENT}) | _GLOBAL, _SEGMENT: _LEVEL_1 | _GLOBAL,
            _CLUSTER: _CLUSTER_CHILDREN | _GLOBAL}  # the elements each level may hold (the file's top level: None)
_LONGEST_HEADER = 12  # an element's ID (4 bytes at most) and size (8)


@dataclass(frozen=True)
class _Element:
    id: int
    start: int  # of its data
    size: int | None  # None: unknown (a live recording's Segment and Clusters)

    @property
    def end(self) -> int | None:
        return None if self.size is None else self.start + self.size


def _vint(data: bytes, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length number at the start of ``data``: (value, its length in bytes); None where its first
    byte is 0 (no number begins so) or it runs past ``data``."""
    if not data or data[0] == 0:
        return None
    length = 9 - data[0].bit_length()
    if length > len(data):
        return None
    value = int.from_bytes(data[:length], "big")
    return (value if keep_marker else value & ((1 << 7 * length) - 1)), length


def _element_at(f: BinaryIO, at: int) -> _Element | None:
    """The element whose header is at ``at``; None where no element header can begin there."""
    f.seek(at)
    head = f.read(_LONGEST_HEADER)
    element_id = _vint(head, keep_marker=True)
    if element_id is None or element_id[1] > 4:
        return None
    size = _vint(head[element_id[1]:], keep_marker=False)
    if size is None:
        return None
    unknown = size[0] == (1 << 7 * size[1]) - 1
    return _Element(element_id[0], at + element_id[1] + size[1], None if unknown else size[0])


def _uint(f: BinaryIO, element: _Element) -> int:
    if element.size is None or element.size > 8:
        raise Malformed
    f.seek(element.start)
    return int.from_bytes(f.read(element.size), "big")


def _children_of(f: BinaryIO, start: int, end: int) -> Iterator[_Element]:
    at = start
    while at < end:
        element = _element_at(f, at)
        if element is None or element.end is None or element.end > end:
            raise Malformed
        yield element
        at = element.end


def _matroska_colour(f: BinaryIO) -> ColourTags | None:
    """The Colour of the file's first video track, in its Tracks (before its first Cluster, as muxers write it; a
    file whose Tracks come after is not read further)."""
    end = os.fstat(f.fileno()).st_size
    segment = _segment(f, end)
    if segment is None:
        return None
    at, segment_end = segment.start, segment.end or end
    while at < segment_end:
        element = _element_at(f, at)
        if element is None or element.id == _CLUSTER or element.end is None:
            return None
        if element.id == _TRACKS:
            return _tracks_colour(f, element)
        at = element.end
    return None


def _segment(f: BinaryIO, end: int) -> _Element | None:
    at = 0
    while at < end:
        element = _element_at(f, at)
        if element is None:
            return None
        if element.id == _SEGMENT:
            return element
        if element.end is None:
            return None
        at = element.end
    return None


def _tracks_colour(f: BinaryIO, tracks: _Element) -> ColourTags | None:
    for entry in _children_of(f, tracks.start, tracks.end):
        if entry.id != _TRACK_ENTRY:
            continue
        fields = {e.id: e for e in _children_of(f, entry.start, entry.end)}
        if _TRACK_TYPE not in fields or _uint(f, fields[_TRACK_TYPE]) != 1 or _VIDEO not in fields:
            continue  # not a video track
        video = fields[_VIDEO]
        colour = next((e for e in _children_of(f, video.start, video.end) if e.id == _COLOUR), None)
        if colour is None:
            return None
        values = {e.id: _uint(f, e) for e in _children_of(f, colour.start, colour.end)
                  if e.id in (_MATRIX, _TRANSFER, _PRIMARIES_ID)}
        return ColourTags(values.get(_PRIMARIES_ID, 2), values.get(_TRANSFER, 2), values.get(_MATRIX, 2))
    return None


_RESYNC_READ = 2**16  # bytes read at a time while scanning a damaged stretch for the next element to resync to
_LEVEL_1_IDS = tuple(element_id.to_bytes(4, "big") for element_id in _LEVEL_1)  # each 4 bytes long
# blocks: an H.264 or HEVC encoder stores its B-frames after a frame they come before in time (x264's 3 by
# default), so the frames lost at a break may come before the last block walked whole, though not before the few
# stored ahead of them
_STORED_AHEAD = 4


@dataclass
class _BrokenStretch:
    """Where a file's element structure breaks and the demuxer resyncs, located by the frames' times: the frames it
    loses there come after ``from_s`` and before ``to_s`` (the first Cluster read after it; none: infinite)."""
    from_s: float
    to_s: float = float("inf")


class MatroskaWalk:
    """Walks a Matroska/WebM file's elements in order, as far as a time asked about, to tell whether its structure
    breaks between two times: where it does, FFmpeg's demuxer resyncs to the next element of the Segment's it
    finds (it says "invalid as first byte of an EBML number" in its log, which OpenCV does not pass on) and the
    frames in between are lost without a failed read; where it does not, a jump in the frames' times is the
    recording's own (a paused recorder, a browser tab that stalled). The walk resyncs as FFmpeg does, so that one
    damaged stretch does not make every later jump look damaged: each is kept, by the times around it.

    The walk is taken up where the last question left it: a file is walked once however many jumps it has, and only
    as far as the decoder has read it already (in the page cache)."""

    def __init__(self, path: Path):
        self.path = path
        self._at = 0
        self._levels: list[tuple[int, int | None]] = []  # (element id, its end) of the Segment and Cluster walked in
        self._scale_s = 1e-3  # a tick of the file's timestamps, in seconds (Info's TimestampScale, 1 ms by default)
        self._origin: int | None = None  # the first Cluster's timestamp: its frames' times count from there
        self._cluster_ticks: int | None = None  # the timestamp of the Cluster walked in; None until it is read
        self._cluster_s = 0.0  # the time of the last Cluster read: how far in the frames' time the walk has come
        self._blocks: deque[_Element] = deque(maxlen=_STORED_AHEAD)  # the last blocks walked in this Cluster
        self._stretches: list[_BrokenStretch] = []
        self._resyncing: _BrokenStretch | None = None  # the stretch whose end (a Cluster read) is not found yet
        self._done = False  # ended, or of a layout not walked here
        self._ended = False  # walked to the file's end

    def lost_between(self, first_s: float, last_s: float) -> bool:
        """Whether the file's structure breaks where frames between ``first_s`` and ``last_s`` seconds would be (a
        jump's missing frames): the demuxer lost them there."""
        self._walk_past(last_s)
        return any(stretch.from_s < last_s and stretch.to_s > first_s for stretch in self._stretches)

    def whole_between(self, first_s: float, last_s: float) -> bool:
        """Whether the walk found the file whole from ``first_s`` to past ``last_s``: no frame lost there."""
        lost = self.lost_between(first_s, last_s)
        return not lost and (self._ended or self._cluster_s > last_s)

    def _walk_past(self, s: float) -> None:
        if self._done:
            return
        try:
            with self.path.open("rb") as f:
                self._walk(f, os.fstat(f.fileno()).st_size, s)
        except (OSError, Malformed):
            self._done = True

    def _walk(self, f: BinaryIO, file_end: int, until_s: float) -> None:
        if self._at == 0 and f.read(len(_EBML)) != _EBML:  # not a Matroska file: nothing here tells
            self._done = True
            return
        while self._at < file_end:
            self._leave_ended(self._at)
            element = _element_at(f, self._at)
            if element is None and file_end - self._at < _LONGEST_HEADER:
                break  # a header cut off by the file's end: a truncated file, not a damaged stretch
                # (its frames up to there are whole)
            # only a Segment or a Cluster may leave its size open: FFmpeg fails at any other element that does
            if element is None or not self._fits(element) or (element.end is None
                                                              and element.id not in (_SEGMENT, _CLUSTER)):
                self._resync(f, file_end)
                continue
            if element.id in (_SEGMENT, _CLUSTER):
                self._enter(element)
                continue
            if element.id == _INFO:
                self._read_scale(f, element)
            elif element.id in (_SIMPLE_BLOCK, _BLOCK_GROUP):
                self._blocks.append(element)
            elif element.id == _CLUSTER_TIMESTAMP:
                self._read_cluster_time(f, element)
            self._at = element.end
            if self._cluster_s > until_s:  # past the frames asked about: walked on from here next time
                return
        self._done = self._ended = True

    def _fits(self, element: _Element) -> bool:
        """Whether ``element`` can stand where the walk is: an ID its level holds, within the element that holds
        it."""
        self._close_open_levels(element.id)
        level_id, level_end = self._levels[-1] if self._levels else (None, None)
        if element.id not in _HELD_BY[level_id]:
            return False
        return level_end is None or element.end is None or element.end <= level_end

    def _close_open_levels(self, element_id: int) -> None:
        """An element of open size (a live recording's Segment or Cluster) ends where one begins that it cannot hold
        and a level above it can: a Cluster at the next Cluster or the Cues, not at a Void or CRC-32 (which any
        element may hold); a Segment at a chained recording's EBML header."""
        while self._levels and self._levels[-1][1] is None and element_id not in _HELD_BY[self._levels[-1][0]]:
            outer = [None, *(level_id for level_id, _ in self._levels[:-1])]
            if not any(element_id in _HELD_BY[level_id] for level_id in outer):
                return
            self._levels.pop()

    def _enter(self, element: _Element) -> None:
        self._levels.append((element.id, element.end))
        self._at = element.start
        if element.id == _CLUSTER:
            self._blocks.clear()
            self._cluster_ticks = None

    def _leave_ended(self, at: int) -> None:
        while self._levels and self._levels[-1][1] is not None and at >= self._levels[-1][1]:
            self._levels.pop()

    def _read_scale(self, f: BinaryIO, info: _Element) -> None:
        for field in _children_of(f, info.start, info.end):
            if field.id == _TIMESTAMP_SCALE:
                self._scale_s = _uint(f, field) * 1e-9

    def _read_cluster_time(self, f: BinaryIO, timestamp: _Element) -> None:
        self._cluster_ticks = _uint(f, timestamp)
        self._origin = self._cluster_ticks if self._origin is None else self._origin
        self._cluster_s = self._seconds(self._cluster_ticks)
        if self._resyncing is not None:  # the first Cluster after a break: its frames are the demuxer's again
            self._resyncing.to_s, self._resyncing = self._cluster_s, None

    def _seconds(self, ticks: int) -> float:
        return (ticks - self._origin) * self._scale_s

    def _resync(self, f: BinaryIO, file_end: int) -> None:
        """Goes on from a break as FFmpeg's demuxer does (matroska_resync): at the next ID of an element the Segment
        holds, the Segment taken to be of open size; the frames from the last block walked whole to the first
        Cluster read after it are a broken stretch."""
        if self._resyncing is None:
            self._resyncing = _BrokenStretch(self._last_whole_s(f))
            self._stretches.append(self._resyncing)
        found = _next_level_1(f, self._at + 1, file_end)
        self._at = file_end if found is None else found
        self._levels = [(_SEGMENT, None)]
        self._blocks.clear()

    def _last_whole_s(self, f: BinaryIO) -> float:
        """The time the frames lost at a break come after: the earliest of the last blocks walked whole in its
        Cluster (a B-frame's is earlier than the frame stored before it), or the last Cluster's where none was."""
        times = [s for s in (self._block_s(f, block) for block in self._blocks) if s is not None]
        return min(times, default=self._cluster_s)

    def _block_s(self, f: BinaryIO, block: _Element) -> float | None:
        """A block's time: its Cluster's, and the 16-bit offset after its track number; None where it cannot be
        read."""
        if self._cluster_ticks is None:
            return None
        if block.id == _BLOCK_GROUP:
            try:
                block = next((e for e in _children_of(f, block.start, block.end) if e.id == _BLOCK), None)
            except Malformed:
                return None
            if block is None:
                return None
        f.seek(block.start)
        head = f.read(10)  # the track number (8 bytes at most) and the offset
        track = _vint(head, keep_marker=False)
        if track is None or len(head) < track[1] + 2:
            return None
        return self._seconds(self._cluster_ticks + int.from_bytes(head[track[1]:track[1] + 2], "big", signed=True))


def _next_level_1(f: BinaryIO, start: int, end: int) -> int | None:
    """Where the next ID of an element the Segment holds begins, from ``start`` on; None where none does."""
    at = start
    while at < end:
        f.seek(at)
        chunk = f.read(_RESYNC_READ + 3)  # 3 bytes over: an ID across two reads is found whole in the first
        found = [i for i in (chunk.find(mark) for mark in _LEVEL_1_IDS) if i >= 0]
        if found:
            return at + min(found)
        at += _RESYNC_READ
    return None
