"""A third look at how photos are read: a damaged AVIF unreadable, not a traceback; a JPEG damaged after padding
before a marker that occurs more than once (or before many markers) still found damaged; a TIFF's page beside a
float16 one read as the page saved alone is, in a file of 2 GiB too, and an album whose first page is turned on its
side played upright; and the look for copies reading a photo's thumbnail as every command reads the photo."""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, features

from inference.datasets import near_identical
from inference.errors import BiasMirrorError
from inference.images import FRAME_FLAGS, UNREADABLE, read_bgr, read_image_checked
from inference.jpeg_damage import DAMAGED_JPEG, _segments
from inference.sources import NEITHER, frame_count, open_source
from inference.tiff_read import PAGE_NOT_DECODED
from tests.conftest import utk_images
from tests.test_image_decoding_strict import (_bytes_flipped, _face_bytes, _face_rgb, _scan_cut, _written,
                                              display_p3, grey_gamma)
from tests.test_image_reading_second_look import _first_warning, _stats
from tests.test_multiframe_colour_and_tiff_pages import _faces_rgb, _lzw_tiff, _played, _read_alone, _samples

needs_avif = pytest.mark.skipif(not (features.check("avif") and cv2.haveImageWriter(".avif")),
                                reason="Pillow or OpenCV here reads or writes no AVIF")


# --- 1. a damaged AVIF ----------------------------------------------------------------------------------------------
def _damaged_avif(path: Path) -> Path:
    """A face saved as an AVIF with a profile, its primary item made one the file does not hold: Pillow's AVIF reader
    raises RuntimeError opening it ("Missing or empty image item"), as it did for 8 of 300 damaged copies."""
    out = io.BytesIO()
    Image.fromarray(_face_rgb()).save(out, "AVIF", icc_profile=display_p3())
    data = bytearray(out.getvalue())
    primary = data.find(b"pitm") + 8  # after the box's type, version and flags: the item's ID, 16 bits
    struct.pack_into(">H", data, primary, struct.unpack_from(">H", data, primary)[0] + 1)
    path.write_bytes(bytes(data))
    from PIL.AvifImagePlugin import AvifImageFile

    with pytest.raises(RuntimeError):  # what had escaped every reader
        AvifImageFile(path)
    return path


@needs_avif
def test_a_damaged_avif_is_unreadable_and_said_so_naming_it(tmp_path, capfd):
    """Its profile was read by Pillow before OpenCV decoded it: `run --source` exited with a traceback, where it had
    said the file cannot be read (and OpenCV printed an error naming no file)."""
    path = _damaged_avif(tmp_path / "bad.avif")
    capfd.readouterr()
    with pytest.raises(BiasMirrorError) as refused:
        open_source(str(path))
    assert str(path) in str(refused.value) and NEITHER in str(refused.value)
    assert capfd.readouterr().err == ""
    image, problem = read_image_checked(path, FRAME_FLAGS)
    assert image is None and problem == UNREADABLE, problem


@needs_avif
def test_a_damaged_avif_in_a_folder_is_skipped_by_the_look_for_copies_without_a_word(tmp_path, capfd):
    """The audit's look for copies read it by Pillow too: its traceback exited 1, which CI reads as a failed gate, and
    OpenCV printed an error naming no file (the audit names the files it cannot read)."""
    folder = tmp_path / "faces"
    folder.mkdir()
    _damaged_avif(folder / "bad.avif")
    for i, face in enumerate(utk_images(2)):
        (folder / f"{i}.jpg").write_bytes(face.read_bytes())
    capfd.readouterr()
    assert near_identical.near_groups(_stats(folder), str(folder), None) == []
    assert capfd.readouterr().err == ""


@needs_avif
def test_a_damaged_avif_under_a_name_not_utf8_is_counted_no_frames(tmp_path):
    """Its frames are counted by Pillow from its bytes (OpenCV cannot be given the name): the same traceback."""
    path = _damaged_avif(tmp_path / os.fsdecode(b"caf\xe9.avif"))
    assert frame_count(path) == 0
    with pytest.raises(BiasMirrorError) as refused:
        open_source(str(path))
    assert NEITHER in str(refused.value)


# --- 2. padding before a marker that occurs more than once ----------------------------------------------------------
DQT, DHT, SOS = 0xDB, 0xC4, 0xDA


def _padded_before_second(jpeg: bytes, marker: int) -> bytes:
    """Two zero bytes before the second ``marker`` segment, where the first has zeros before it too: a UTKFace photo's
    first DQT follows its JFIF header, which ends in two zeros; a comment ending in zeros is put before its first DHT.
    Stripped as padding before the first, those zeros cut the header."""
    first = jpeg.find(bytes([0xFF, marker]))
    if jpeg[first - 2:first] != b"\x00\x00":
        jpeg = jpeg[:first] + b"\xff\xfe\x00\x06ab\x00\x00" + jpeg[first:]
        first += 8
    second = jpeg.find(bytes([0xFF, marker]), first + 2)
    return jpeg[:second] + b"\x00\x00" + jpeg[second:]


@pytest.mark.parametrize("marker", [DQT, DHT], ids=["DQT", "DHT"])
@pytest.mark.parametrize("damage", [_scan_cut, _bytes_flipped])
def test_damage_after_padding_before_a_repeated_marker_is_found(tmp_path, marker, damage):
    """The copy cut before the first such marker has a header that cannot be read, and it had counted as a copy that
    decodes whole: none of 200 damaged photos so padded was found, and each read as its garbled pixels."""
    padded = _padded_before_second(_face_bytes(), marker)
    assert _first_warning(padded) == f"Corrupt JPEG data: 2 extraneous bytes before marker 0x{marker:02x}"
    path = _written(tmp_path / "damaged.jpg", damage(padded))
    assert cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR) is not None  # what had been measured
    image, problem = read_image_checked(path, FRAME_FLAGS)
    assert image is None and problem == DAMAGED_JPEG, problem


@pytest.mark.parametrize("marker", [DQT, DHT], ids=["DQT", "DHT"])
def test_a_photo_padded_before_a_repeated_marker_is_read_as_opencv_decodes_it(tmp_path, marker):
    path = _written(tmp_path / "padded.jpg", _padded_before_second(_face_bytes(), marker))
    image, problem = read_image_checked(path, cv2.IMREAD_COLOR)
    assert problem is None and np.array_equal(image, cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR))


def _padded_before_each(jpeg: bytes, markers: set[int], padding: bytes = b"\x00\x00") -> bytes:
    """``padding`` before every segment of the JPEG whose marker is one of ``markers``."""
    out, at = bytearray(), 0
    for start, found, _ in _segments(jpeg):
        if found in markers:
            out += jpeg[at:start] + padding
            at = start
    return bytes(out + jpeg[at:])


def _with_app_segments(jpeg: bytes, markers: list[int]) -> bytes:
    """The JPEG with an APP segment of each of ``markers`` after its first, as a phone writes EXIF and XMP (both
    APP1), an ICC profile and MPF (both APP2), Photoshop's and its maker's own: metadata libjpeg reads past."""
    first_end = next(end for _, _, end in _segments(jpeg))
    apps = b"".join(bytes([0xFF, marker]) + struct.pack(">H", 2 + 64) + bytes([marker]) * 64 for marker in markers)
    return jpeg[:first_end] + apps + jpeg[first_end:]


PHONE_APPS = [0xE1, 0xE1, 0xE2, 0xE2, 0xE9, 0xEB, 0xED, 0xEE]


def _face_padded_before_every_dht() -> bytes:
    dhts = [found for _, found, _ in _segments(_face_bytes()) if found == DHT]
    assert len(dhts) > 2  # a padded place per check had spent the checks before the damage was reached
    return _padded_before_each(_face_bytes(), {DHT})


def _phone_padded_before_every_app() -> bytes:
    return _padded_before_each(_with_app_segments(_face_bytes(), PHONE_APPS), set(PHONE_APPS), b"\x00")


def _progressive_padded_between_scans() -> bytes:
    """A progressive face with zeros before each Huffman table and scan, most of which follow a scan's compressed
    data, where zeros may be the scan's own."""
    out = io.BytesIO()
    Image.fromarray(_face_rgb()).save(out, "JPEG", quality=90, progressive=True, optimize=True)
    return _padded_before_each(out.getvalue(), {DHT, SOS})


PADDED_MANY = [_face_padded_before_every_dht, _phone_padded_before_every_app, _progressive_padded_between_scans]


@pytest.mark.parametrize("padded", PADDED_MANY)
@pytest.mark.parametrize("damage", [_scan_cut, _bytes_flipped])
def test_damage_after_padding_before_many_markers_is_found(tmp_path, padded, damage):
    """A copy was made for each padded place, found place by place: the copies still padded elsewhere had spent the
    checks, and the check that ran out called the photo sound, though a copy had decoded broken (none of 30 damaged
    photos padded before 3 DHTs found, none of 20 phone photos padded before each APP segment)."""
    sound = padded()
    assert _first_warning(sound).startswith("Corrupt JPEG data: ") and "extraneous bytes" in _first_warning(sound)
    path = _written(tmp_path / "damaged.jpg", damage(sound))
    assert cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR) is not None  # what had been measured
    image, problem = read_image_checked(path, FRAME_FLAGS)
    assert image is None and problem == DAMAGED_JPEG, problem


@pytest.mark.parametrize("padded", PADDED_MANY)
def test_a_photo_padded_before_many_markers_is_read_as_opencv_decodes_it(tmp_path, padded):
    path = _written(tmp_path / "padded.jpg", padded())
    image, problem = read_image_checked(path, cv2.IMREAD_COLOR)
    assert problem is None and np.array_equal(image, cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR))


# --- 3. a TIFF's page beside a float16 one --------------------------------------------------------------------------
def _page(face: np.ndarray, kind: str) -> tuple[np.ndarray, dict]:
    """A face as a TIFF page OpenCV decodes and tifffile does not: a palette, CMYK or min-is-white page."""
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    if kind == "palette":
        return grey, {"photometric": "palette", "colormap": np.stack([np.arange(256) * 257] * 3).astype(np.uint16)}
    if kind == "cmyk":
        return np.dstack([255 - face, np.zeros(face.shape[:2], np.uint8)]), {"photometric": "separated"}
    return 255 - grey, {"photometric": "miniswhite"}


@pytest.mark.parametrize("kind", ["palette", "cmyk", "miniswhite"])
@pytest.mark.parametrize("where", ["after", "before"])
@pytest.mark.parametrize("form", [{}, {"bigtiff": True, "byteorder": ">"}], ids=["classic", "big-endian BigTIFF"])
def test_a_page_beside_a_float16_one_is_read_as_the_page_saved_alone(tmp_path, kind, where, form):
    """OpenCV's multi-page reader refuses the pages after a float16 one, and raises for those before it; tifffile,
    which read them instead, reads no palette, CMYK or min-is-white page: a sound file "ended after 1 of 3 pages
    (truncated or damaged?)"."""
    faces = _faces_rgb(3)
    data, tags = _page(faces[1], kind)
    pages = [(faces[0], {"photometric": "rgb"}), (data, tags), (faces[2], {"photometric": "rgb"})]
    f16 = ((faces[0] / 255).astype(np.float16), {"photometric": "rgb"})
    pages = [f16, *pages[1:]] if where == "after" else [*pages[:2], f16]
    with tifffile.TiffWriter(tmp_path / "pages.tif", **form) as tiff:
        for samples, page_tags in pages:
            tiff.write(samples, **page_tags)
    played = _played(tmp_path / "pages.tif")
    assert [f.warning for f in played] == [None] * len(pages)
    for number, (samples, page_tags) in enumerate(pages):
        tifffile.imwrite(tmp_path / f"{number}.tif", samples, **page_tags)
        assert np.array_equal(played[number].image, _read_alone(tmp_path / f"{number}.tif")), number


def test_an_8_bit_lzw_page_after_a_float16_one_is_read_as_the_page_saved_alone(tmp_path):
    """OpenCV decodes LZW itself: the page had been skipped as needing imagecodecs, which tifffile reads it with."""
    faces = _faces_rgb(2)
    played = _played(_lzw_tiff(tmp_path / "pages.tif", [_samples(faces[0], "f16"), faces[1]], {1}))
    assert played[1].warning is None
    assert np.array_equal(played[1].image, _read_alone(_lzw_tiff(tmp_path / "alone.tif", [faces[1]], {0})))


STRIP_OFFSETS = 273


def test_a_page_no_reader_decodes_is_skipped_saying_why_and_the_pages_after_it_played(tmp_path):
    """A page whose tags are read, its pixels not even alone: skipped as a folder's unreadable photo is, not the
    file's end called "truncated or damaged?" with the pages after it left unread."""
    faces = _faces_rgb(3)
    out = io.BytesIO()
    with tifffile.TiffWriter(out) as tiff:
        for face in faces:
            tiff.write(face, photometric="rgb")
    data = bytearray(out.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tiff:
        strips = tiff.pages[1].tags[STRIP_OFFSETS]
        assert strips.count == 1
        struct.pack_into(tiff.byteorder + "I", data, strips.valueoffset, len(data) + 1)  # its strip past the end
    path = _written(tmp_path / "pages.tif", bytes(data))
    played = _played(path)
    assert [f.image is None for f in played] == [False, True, False]
    assert played[1].problem == PAGE_NOT_DECODED and played[1].warning.startswith(f"{path.name}: page 1: ")
    tifffile.imwrite(tmp_path / "2.tif", faces[2], photometric="rgb")
    assert np.array_equal(played[2].image, _read_alone(tmp_path / "2.tif"))


def _sparse_tail(path: Path, size: int) -> Path:
    """The file made ``size`` bytes long by a hole at its end, which takes no disk and no page reads."""
    os.truncate(path, size)
    return path


# the most bytes cv2.imdecode takes (a C int's): a TIFF that size or larger had its later pages decoded from a map
MOST_IMDECODE_BYTES = np.iinfo(np.int32).max


def test_a_page_after_a_float16_one_in_a_tiff_of_2_gib_is_read_as_the_page_saved_alone(tmp_path):
    """The file was mapped whole for cv2.imdecode, which takes no buffer over 2 GiB: the page tifffile had read was
    said to be one that "cannot be decoded"."""
    faces = _faces_rgb(2)
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tiff:
        tiff.write((faces[0] / 255).astype(np.float16), photometric="rgb")
        tiff.write(faces[1], photometric="rgb")
    played = _played(_sparse_tail(tmp_path / "pages.tif", MOST_IMDECODE_BYTES + 1))
    assert [f.problem for f in played] == [None, None]
    tifffile.imwrite(tmp_path / "1.tif", faces[1], photometric="rgb")
    assert np.array_equal(played[1].image, _read_alone(tmp_path / "1.tif"))


ORIENTATION = 274


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_an_album_whose_first_page_is_turned_on_its_side_is_played_upright(tmp_path, orientation):
    """cv2.imread gives none of a TIFF page whose orientation swaps its width and height ("Internal imread issue" in
    OpenCV 4.14), where it reads the same page in the file's bytes: a rotated photo's 2-page album had "ended after 0
    of 2 pages" and could not be read at all."""
    face = _faces_rgb(1)[0]
    face = face[:, : face.shape[0] * 3 // 4]  # not square: turned, its width and height swap
    turned = [(ORIENTATION, "H", 1, orientation, True)]
    with tifffile.TiffWriter(tmp_path / "album.tif") as tiff:
        for _ in range(2):
            tiff.write(face, photometric="rgb", extratags=turned)
    tifffile.imwrite(tmp_path / "alone.tif", face, photometric="rgb", extratags=turned)
    upright = _read_alone(tmp_path / "alone.tif")
    assert upright.shape[:2] == face.shape[1::-1]
    played = _played(tmp_path / "album.tif")
    assert all(np.array_equal(frame.image, upright) for frame in played), [frame.image.shape for frame in played]


# a TIFF's page read while another program cuts its file short (an editor saving over an album being played): run
# in a process of its own, where a SIGBUS shows as its exit status instead of killing pytest. ``when``: "decoded" cuts
# the file as OpenCV decodes the page, "tags read" after tifffile has read the page's tags and before its pixels
_READ_WHILE_CUT = """
import os, sys
from pathlib import Path
import cv2, numpy as np
from inference import tiff_read
from inference.images import FRAME_FLAGS

path, page, when, out = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
decode, layout = cv2.imdecode, tiff_read._tiff_page_layout

class CutWhileDecoded:
    def __getattr__(self, name):
        return getattr(cv2, name)

    def imdecode(self, data, flags):
        os.truncate(path, 0)
        return decode(data, flags)

def cut_after_tags(*args):
    tags = layout(*args)
    os.truncate(path, 0)
    return tags

if when == "decoded":
    tiff_read.cv2 = CutWhileDecoded()
else:
    tiff_read._tiff_page_layout = cut_after_tags
read = tiff_read.tiff_page(path, page, FRAME_FLAGS)
np.save(out, read.image if read.image is not None else np.empty(0, np.uint8))
"""


def _read_while_cut(path: Path, page: int, when: str) -> np.ndarray | None:
    """The page as ``tiff_page`` reads it while the file is cut to nothing; None where it reads none."""
    out = path.with_suffix(".npy")
    done = subprocess.run([sys.executable, "-c", _READ_WHILE_CUT, str(path), str(page), when, str(out)],
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # -7: killed by SIGBUS
    image = np.load(out)
    return image if image.size else None


@pytest.mark.parametrize("when", ["decoded", "tags read"])
@pytest.mark.parametrize("first", ["uint8", "float16"], ids=["page 0", "page 1 after a float16 one"])
def test_a_tiff_cut_short_by_another_program_as_its_page_is_read_does_not_kill_the_app(tmp_path, first, when):
    """Page 0 was decoded from a map of the file, and a later page OpenCV's multi-page reader refuses from a
    copy-on-write map: the file cut short as OpenCV read the map, Linux killed the app with SIGBUS ("Bus error"),
    which Python cannot catch. Decoded from a copy of the bytes read before, the page is read as it was saved; cut
    before its bytes are read, it is none, as a damaged file's page is."""
    faces = _faces_rgb(2)
    page = 0 if first == "uint8" else 1
    with tifffile.TiffWriter(tmp_path / "album.tif") as tiff:
        tiff.write(faces[0] if page == 0 else (faces[0] / 255).astype(np.float16), photometric="rgb")
        tiff.write(faces[1], photometric="rgb")
    tifffile.imwrite(tmp_path / "alone.tif", faces[page], photometric="rgb")
    image = _read_while_cut(tmp_path / "album.tif", page, when)
    if when == "decoded":
        assert np.array_equal(image, _read_alone(tmp_path / "alone.tif"))
    else:
        assert image is None


# --- 4. the look for copies reads as every command reads ------------------------------------------------------------
def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(_faces_rgb(2)[1]).save(folder / "other.png")  # a photo of someone else, matched with neither
    return folder


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("photometric", ["rgb", "minisblack"])
def test_a_float_tiff_and_its_png_copy_are_found_one_photograph_without_a_word_from_opencv(tmp_path, capfd, dtype,
                                                                                           photometric):
    """Read in colour at a quarter, a float32 TIFF had no thumbnail, and OpenCV warned "TIFFRGBAImageOK: Sorry, can
    not handle images with 32-bit samples" on every audit, naming no file."""
    folder = _folder(tmp_path)
    face = _face_rgb() if photometric == "rgb" else cv2.cvtColor(_face_rgb(), cv2.COLOR_RGB2GRAY)
    tifffile.imwrite(folder / "float.tif", (face / 255).astype(dtype), photometric=photometric)
    Image.fromarray(face).save(folder / "copy.png")
    capfd.readouterr()
    assert near_identical.near_groups(_stats(folder), str(folder), None) == [
        sorted([str(folder / "copy.png"), str(folder / "float.tif")])]
    assert capfd.readouterr().err == ""


def test_a_grey_photo_with_a_grey_profile_and_its_srgb_copy_are_found_one_photograph(tmp_path):
    """Its thumbnail was read in colour, and a grey profile converts no colour photo: the photo measured converted
    and its thumbnail not, it lay 17 levels from its sRGB copy's against a limit of 8."""
    folder = _folder(tmp_path)
    Image.fromarray(cv2.cvtColor(_face_rgb(), cv2.COLOR_RGB2GRAY)).save(folder / "grey.jpg", quality=95,
                                                                          icc_profile=grey_gamma(1.8))
    cv2.imwrite(str(folder / "copy.png"), read_bgr(folder / "grey.jpg"))  # as every command reads it
    assert near_identical.near_groups(_stats(folder), str(folder), None) == [
        sorted([str(folder / "copy.png"), str(folder / "grey.jpg")])]


@pytest.mark.parametrize("dtype", [np.uint8, np.float16])
def test_a_tiff_under_4_pixels_has_the_thumbnail_of_its_png_copy(tmp_path, dtype):
    """OpenCV decodes no TIFF under 4 px at a quarter of its size (it gives none, where it raises for a PNG)."""
    pixels = np.random.default_rng(0).integers(0, 256, (3, 3, 3), np.uint8)
    tifffile.imwrite(tmp_path / "tiny.tif", (pixels / 255).astype(dtype) if dtype != np.uint8 else pixels,
                     photometric="rgb")
    Image.fromarray(pixels).save(tmp_path / "tiny.png")
    png = near_identical.thumbnail(str(tmp_path / "tiny.png"))
    assert png is not None and np.array_equal(near_identical.thumbnail(str(tmp_path / "tiny.tif")), png)


def test_a_colour_jpegs_thumbnail_is_the_one_its_colour_reading_gave(tmp_path):
    """Read as a frame is, a colour JPEG without a profile decodes to the pixels IMREAD_REDUCED_COLOR_4 gave: the
    copies the look finds among UTKFace's photos are the ones it found."""
    for path in utk_images(20):
        colour = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4)
        grey = cv2.resize(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), (near_identical.SIDE,) * 2,
                          interpolation=cv2.INTER_AREA)
        assert np.array_equal(near_identical.thumbnail(str(path)), grey.ravel()), path.name
