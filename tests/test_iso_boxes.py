"""One walker of ISO-BMFF boxes for the AVIF reader and the MP4 colour reader: the same edge rules for both."""
from __future__ import annotations

import numpy as np
import pytest

from inference.avif_read import heif_transforms
from inference.iso_boxes import MOST_BOXES, Malformed, boxes


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def _full(kind: bytes, payload: bytes) -> bytes:
    return _box(kind, b"\x00\x00\x00\x00" + payload)  # version 0, no flags


def _avif_turned(ipco_padding: bytes) -> bytes:
    """An AVIF's boxes alone (no image data: the orientation is read from the boxes) whose primary item 1 is turned a
    quarter anticlockwise by irot, with ``ipco_padding`` after ipco's last box."""
    ipco = _box(b"ipco", _box(b"irot", b"\x01") + ipco_padding)
    ipma = _full(b"ipma", (1).to_bytes(4, "big") + (1).to_bytes(2, "big") + b"\x01" + b"\x81")
    meta = _full(b"meta", _full(b"pitm", (1).to_bytes(2, "big")) + _box(b"iprp", ipco + ipma))
    return _box(b"ftyp", b"avif" + b"\x00" * 4 + b"mif1avif") + meta


def test_the_boxes_laid_end_to_end_are_found_with_their_payloads():
    wide = (1).to_bytes(4, "big") + b"wide" + (18).to_bytes(8, "big") + b"xy"  # a 64-bit size
    data = memoryview(_box(b"free", b"abc") + _box(b"moov", b"") + wide)
    found = list(boxes(data, 0, len(data)))
    assert [(k, bytes(data[a:b])) for k, a, b in found] == [(b"free", b"abc"), (b"moov", b""), (b"wide", b"xy")]


def test_fewer_bytes_than_a_header_after_the_last_box_are_padding_in_both_readers():
    """QuickTime closes a sample entry's boxes with 4 zero bytes: the MP4 reader's walker let them be, the AVIF
    reader's called the box malformed and showed a turned photo on its side. One rule now."""
    data = memoryview(_box(b"colr", b"nclx") + b"\x00" * 4)
    assert [k for k, _, _ in boxes(data, 0, len(data))] == [b"colr"]
    assert heif_transforms(np.frombuffer(_avif_turned(b""), np.uint8)) == ((b"irot", 1),)
    assert heif_transforms(np.frombuffer(_avif_turned(b"\x00" * 4), np.uint8)) == ((b"irot", 1),)


@pytest.mark.parametrize("data", [
    _box(b"free", b"abc")[:-1],  # a box past the end of what holds it
    (4).to_bytes(4, "big") + b"free",  # a size smaller than its own header
    (1).to_bytes(4, "big") + b"free" + b"\x00" * 4,  # a 64-bit size cut short (it had been read from 4 bytes)
])
def test_sizes_that_do_not_add_up_are_malformed(data):
    with pytest.raises(Malformed):
        list(boxes(memoryview(data), 0, len(data)))


def test_more_boxes_than_a_file_holds_are_not_walked_for_seconds():
    data = memoryview(_box(b"free", b"") * (MOST_BOXES + 1))
    with pytest.raises(Malformed):
        list(boxes(data, 0, len(data)))


def test_a_files_top_level_is_walked_by_the_same_rules_its_last_box_cut_short_kept():
    """The MP4 reader's walk of the file's top level had been a second walker: no count of boxes (15 MB of empty
    boxes took 1.3 s as a video opened) and a 64-bit size read from fewer than 8 bytes."""
    import io

    from inference.iso_boxes import file_boxes

    whole = _box(b"ftyp", b"isom") + _box(b"moov", b"abcdefgh")
    cut = whole[:-3]  # a recording cut short: its last box ends where the file does
    assert [(k, a, b) for k, a, b in file_boxes(io.BytesIO(cut), 0, len(cut))] == [
        (b"ftyp", 8, 12), (b"moov", 20, len(cut))]
    for data in (_box(b"free", b"") * (MOST_BOXES + 1), (1).to_bytes(4, "big") + b"mdat" + b"\x00" * 4):
        with pytest.raises(Malformed):
            list(file_boxes(io.BytesIO(data), 0, len(data)))
