"""Photo formats read as they are shown: an AVIF turned by its irot/imir boxes, a float TIFF by training and the aligned
audit as by `run` (inference.images, the one reader all of them share)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, features

from inference.frame_depth import as_bgr_uint8
from inference.avif_read import heif_transforms
from inference.images import FRAME_FLAGS, read_image_checked, read_rgb, read_rgb_checked
from inference.sources import open_source
from tests.conftest import utk_images

T = Image.Transpose
# What shows a photo stored under each EXIF orientation upright (EXIF 2.32, tag 274), as Pillow's transpose
UPRIGHT = {2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE, 6: T.ROTATE_270,
           7: T.TRANSVERSE, 8: T.ROTATE_90}
STORED = {**UPRIGHT, 6: T.ROTATE_90, 8: T.ROTATE_270}  # the other way round: what a camera stores an upright photo as

avif_by_pillow = pytest.mark.skipif(
    not (features.check("avif") and cv2.haveImageWriter(".avif")),
    reason="the AVIFs with irot/imir boxes are written by Pillow, and this Pillow has no AVIF encoder (or this OpenCV "
           "no AVIF decoder)")


def _face() -> np.ndarray:
    """A real face (RGB), taller than wide, so that a quarter turn shows in its shape as well as in its pixels."""
    face = cv2.cvtColor(cv2.imread(str(utk_images(1)[0])), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(face[:, face.shape[1] // 8:-face.shape[1] // 8])


def _save_avif(path: Path, upright: np.ndarray, orientation: int, exif_tags: dict[int, int] | None = None) -> Path:
    """``upright`` stored as a camera stores it under ``orientation``, which Pillow writes as irot/imir boxes (and
    ``exif_tags`` in an Exif item)."""
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    for tag, value in (exif_tags or {}).items():
        exif[tag] = value
    stored = Image.fromarray(upright)
    stored = stored.transpose(STORED[orientation]) if orientation != 1 else stored
    stored.save(path, exif=exif.tobytes(), quality=90)
    return path


def _as_stored(path: Path) -> np.ndarray:
    """The file's pixels as they are stored, unturned (RGB): OpenCV's decoder leaves irot and imir alone."""
    bgr = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _turned_and_mirrored(image: np.ndarray) -> list[np.ndarray]:
    """The image under each of the eight turns and mirrorings, itself first."""
    turns = [np.rot90(image, k) for k in range(4)]
    return turns + [np.fliplr(t) for t in turns]


def _closest_is_itself(read: np.ndarray, upright: np.ndarray) -> bool:
    """Whether, of ``upright``'s eight turns and mirrorings, ``read`` is nearest to ``upright`` itself (compression
    leaves it near, not equal)."""
    errors = [np.abs(read.astype(int) - c).mean() if c.shape == read.shape else np.inf
              for c in _turned_and_mirrored(upright)]
    return int(np.argmin(errors)) == 0


@avif_by_pillow
@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_an_avif_is_read_upright_by_its_irot_and_imir_boxes(tmp_path, orientation):
    """OpenCV's AVIF decoder ignores the irot and imir boxes: a phone's portrait AVIF came in on its side ("no face
    found"), in `run`, the app and the audits alike."""
    upright = _face()
    path = _save_avif(tmp_path / f"o{orientation}.avif", upright, orientation)
    assert not _closest_is_itself(_as_stored(path), upright)  # stored turned or mirrored: the file tests something
    shown = np.asarray(Image.fromarray(_as_stored(path)).transpose(UPRIGHT[orientation]))
    frame = next(iter(open_source(str(path)))).image  # as `run` and the app read it
    for read in (read_rgb(str(path)), read_image_checked(path, FRAME_FLAGS)[0][..., ::-1], frame[..., ::-1]):
        assert read.shape == upright.shape and np.array_equal(read, shown)
        assert _closest_is_itself(read, upright)


@avif_by_pillow
def test_an_avif_is_turned_and_mirrored_in_the_order_its_ipma_box_lists_them(tmp_path):
    """HEIF applies an item's transformative properties in the order its ipma box associates them, not in a fixed
    one: irot then imir is a transpose, imir then irot the other diagonal."""
    path = _save_avif(tmp_path / "o5.avif", _face(), 5)
    data = path.read_bytes()
    irot, imir = _property_index(data, b"irot"), _property_index(data, b"imir")
    ipma = data.index(b"ipma")
    listed = bytes([0x80 | irot, 0x80 | imir])  # both marked essential, as libavif writes them
    assert data.count(listed, ipma) == 1
    swapped = tmp_path / "imir_first.avif"
    swapped.write_bytes(data[:ipma] + data[ipma:].replace(listed, listed[::-1]))
    assert heif_transforms(np.fromfile(str(swapped), np.uint8)) == ((b"imir", 0), (b"irot", 1))
    # imir's axis 0 exchanges top and bottom; irot's angle 1 turns a quarter anticlockwise
    assert np.array_equal(read_rgb(str(swapped)), np.rot90(np.flipud(_as_stored(swapped))))
    assert np.array_equal(read_rgb(str(path)), np.flipud(np.rot90(_as_stored(path))))


def _property_index(data: bytes, kind: bytes) -> int:
    """The index (from 1) of the ``kind`` box among the properties in the file's ipco box."""
    at = data.index(b"ipco") + 4
    end = at - 8 + int.from_bytes(data[at - 8:at - 4], "big")
    index = 1
    while at < end:
        if data[at + 4:at + 8] == kind:
            return index
        at, index = at + int.from_bytes(data[at:at + 4], "big"), index + 1
    raise AssertionError(f"no {kind!r} box among the properties")


@avif_by_pillow
def test_an_avifs_exif_orientation_is_not_applied_on_top_of_its_irot_nor_alone(tmp_path):
    """HEIF makes irot/imir the orientation and an Exif orientation only informative (an iPhone keeps both): the
    photo is turned once, by irot, and an Exif orientation without irot turns nothing, as viewers show it."""
    upright = _face()
    both = _with_exif_orientation(_save_avif(tmp_path / "both.avif", upright, 6, {296: 6}), 6)
    exif_only = _with_exif_orientation(_save_avif(tmp_path / "exif_only.avif", upright, 1, {296: 6}), 6)
    assert heif_transforms(np.fromfile(str(both), np.uint8)) == ((b"irot", 3),)
    assert heif_transforms(np.fromfile(str(exif_only), np.uint8)) == ()
    read = read_rgb(str(both))
    assert np.array_equal(read, np.rot90(_as_stored(both), -1)) and _closest_is_itself(read, upright)
    assert np.array_equal(read_rgb(str(exif_only)), _as_stored(exif_only))


def _with_exif_orientation(path: Path, orientation: int) -> Path:
    """The file with its Exif ResolutionUnit tag (296, which Pillow keeps) renamed Orientation (274, which Pillow turns
    into an irot box and drops): same length, so no box moves."""
    data = path.read_bytes()
    entry = (296).to_bytes(2, "big") + bytes([0, 3, 0, 0, 0, 1, 0, orientation])  # SHORT, 1 value (big-endian Exif)
    assert data.count(entry) == 1
    data = data.replace(entry, (274).to_bytes(2, "big") + entry[2:])
    exif = Image.Exif()
    exif.load(data[data.index(b"Exif\x00\x00", data.index(b"mdat")):])  # the item's payload, not its name
    assert exif[274] == orientation
    path.write_bytes(data)
    return path


@avif_by_pillow
def test_an_avif_whose_boxes_do_not_add_up_is_read_as_stored_never_refused(tmp_path):
    """The boxes are read from the user's file: a box that runs past the one holding it, a count no box holds, a
    property index past the list, a file cut short or with bytes after its boxes give no turn, never an exception."""
    path = _save_avif(tmp_path / "o7.avif", _face(), 7)
    data = path.read_bytes()
    mdat = data.index(b"mdat") - 4
    assert heif_transforms(np.frombuffer(data, np.uint8)) == ((b"irot", 3), (b"imir", 0))
    damaged = [data[:cut] for cut in range(mdat + 1)]  # cut short anywhere in its header
    rng = np.random.default_rng(0)
    for _ in range(2000):  # bytes of the header overwritten
        spoilt = bytearray(data)
        spoilt[rng.integers(0, mdat)] = rng.integers(0, 256)
        damaged.append(bytes(spoilt))
    ipma = data.index(b"ipma") + 4  # its version and flags, then its count of entries
    damaged += [data[:ipma] + b"\xff\xff\xff\xff" + data[ipma + 4:],  # all-ones version and flags
                data[:ipma + 4] + b"\xff\xff\xff\xff" + data[ipma + 8:],  # 4 billion entries
                data[:data.index(b"meta") - 4] + b"\x00\x00\x00\x01meta" + b"\xff" * 8 + data[data.index(b"meta") + 4:]]
    for spoilt in damaged:
        transforms = heif_transforms(np.frombuffer(spoilt, np.uint8))
        assert all((kind, value) in {(b"irot", 1), (b"irot", 2), (b"irot", 3), (b"imir", 0), (b"imir", 1)}
                   for kind, value in transforms)
    for other in (b"", b"\x00\x00\x00\x08ftyp", (utk_images(1)[0]).read_bytes()):
        assert heif_transforms(np.frombuffer(other, np.uint8)) == ()
    appended = tmp_path / "appended.avif"
    appended.write_bytes(data + b"\x00\x00\xff\xffjunk")  # a box that runs past the end of the file
    assert np.array_equal(read_rgb(str(appended)), read_rgb(str(path)))


def test_a_float_tiff_is_read_by_training_and_the_aligned_audit_as_its_8_bit_copy(tmp_path):
    """OpenCV's TIFF decoder cannot give 32-bit samples as 8-bit (IMREAD_COLOR): `audit --aligned` and training called
    a float TIFF that `run` and a detecting audit read well "corrupt"."""
    for i, path in enumerate(utk_images(3)):
        face = cv2.imread(str(path))
        cv2.imwrite(str(tmp_path / f"{i}_8bit.tif"), face)
        cv2.imwrite(str(tmp_path / f"{i}_float.tif"), face.astype(np.float32) / 255)
        assert cv2.imread(str(tmp_path / f"{i}_float.tif"), cv2.IMREAD_UNCHANGED).dtype == np.float32
        eight_bit = read_rgb(str(tmp_path / f"{i}_8bit.tif"))
        read, problem = read_rgb_checked(str(tmp_path / f"{i}_float.tif"))
        assert problem is None and read.dtype == np.uint8 and read.shape == eight_bit.shape
        assert np.array_equal(read, eight_bit)  # v / 255 × 255 may fall a hair below v: rounded back to v
        size = face.shape[0] // 2
        assert read_rgb(str(tmp_path / f"{i}_float.tif"), size).shape == (size, size, 3)


def test_read_rgb_gives_other_formats_the_pixels_it_gave_before_and_run_reads(tmp_path):
    """Read now as a source reads a frame (for float TIFFs), read_rgb must give every other photo the pixels OpenCV's
    IMREAD_COLOR gave it, so that training's faces and the aligned audit's numbers stay as they were; and the pixels
    `run` and the app read. A 16-bit colour TIFF is the one exception, by at most one level: OpenCV's TIFF decoder
    divides it by 257 there, where every other 16-bit image (its grey TIFF too) and `run` shift it down 8 bits."""
    faces = [cv2.imread(str(p)) for p in utk_images(3)]
    files = []
    for i, face in enumerate(faces):
        grey = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
        files += [_written(tmp_path / f"{i}.jpg", face), _written(tmp_path / f"{i}.tif", face),
                  # low bytes a rounding conversion would carry up, where a shift drops them
                  _written(tmp_path / f"{i}_16.png", face.astype(np.uint16) * 256 + 200),
                  _written(tmp_path / f"{i}_grey16.tif", grey.astype(np.uint16) * 256 + 200),
                  _written(tmp_path / f"{i}_grey.png", grey),
                  _written(tmp_path / f"{i}_grey16.png", grey.astype(np.uint16) * 256 + 200),
                  _written(tmp_path / f"{i}_alpha.png", np.dstack([face, np.full(face.shape[:2], 90 * i, np.uint8)]))]
        rgb = Image.fromarray(face[..., ::-1])
        for orientation in (3, 6, 8):  # stored turned, with an EXIF orientation, as phones save photos
            exif = Image.Exif()
            exif[0x0112] = orientation
            rgb.transpose(STORED[orientation]).save(tmp_path / f"{i}_exif{orientation}.jpg", exif=exif.tobytes())
            files.append(tmp_path / f"{i}_exif{orientation}.jpg")
        rgb.convert("CMYK").save(tmp_path / f"{i}_cmyk.jpg")
        rgb.convert("P").save(tmp_path / f"{i}_palette.png")
        files += [tmp_path / f"{i}_cmyk.jpg", tmp_path / f"{i}_palette.png"]
    if cv2.haveImageWriter(".avif"):
        files.append(_written(tmp_path / "hdr.avif", faces[0].astype(np.uint16) * 4, [cv2.IMWRITE_AVIF_DEPTH, 10]))
    files += list(utk_images(3))
    for path in files:
        before = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        frame = as_bgr_uint8(next(iter(open_source(str(path)))).image)[..., ::-1]
        assert np.array_equal(read_rgb(str(path)), before) and np.array_equal(read_rgb(str(path)), frame), path.name
    colour16 = _written(tmp_path / "colour16.tif", faces[0].astype(np.uint16) * 256 + 200)
    frame = as_bgr_uint8(next(iter(open_source(str(colour16)))).image)[..., ::-1]
    before = cv2.cvtColor(cv2.imread(str(colour16), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(read_rgb(str(colour16)), frame) and np.abs(frame.astype(int) - before).max() <= 1


def _written(path: Path, image: np.ndarray, params: list[int] | None = None) -> Path:
    assert cv2.imwrite(str(path), image, params or [])
    return path
