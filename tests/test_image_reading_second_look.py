"""A second look at how photos are read: a float image rounded to its nearest level, not truncated; a JPEG damaged
after a harmless libjpeg warning (padding before a marker, a misnumbered ICC chunk) still found damaged; an AVIF put
in sRGB by its ICC profile; and the look for copies reading every photo as every command reads it."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import simplejpeg
import tifffile
from PIL import Image, features

from inference.avif_read import decoded_avif
from inference.datasets import near_identical
from inference.frame_depth import as_bgr_uint8
from inference.images import FRAME_FLAGS, read_image_checked, read_rgb
from inference.jpeg_damage import DAMAGED_JPEG
from inference.sources import open_source
from tests.conftest import utk_images
from tests.test_image_decoding_strict import (_bytes_flipped, _face_bytes, _face_rgb, _in_p3, _scan_cut, _written,
                                              display_p3)


# --- 1. a float image rounded ---------------------------------------------------------------------------------------
def test_a_float16_faces_levels_are_read_back_to_the_level():
    """A float16 TIFF stores x/255 a hair below it for about half the levels: truncated, those pixels read a level
    dark, and a face's ITA moved by up to 3°."""
    face = _face_rgb()
    stored = (face / 255).astype(np.float16)
    assert (stored.astype(np.float32) * 255 < face).any()  # what had been truncated a level down
    assert np.array_equal(as_bgr_uint8(stored.astype(np.float32)), face)


def test_a_0_to_255_float_frame_is_rounded_to_its_nearest_level():
    levels = np.arange(256, dtype=np.float32).reshape(16, 16)
    near = np.stack([levels - 0.4, levels + 0.4], -1).clip(0, 255).reshape(16, 32)
    assert np.array_equal(as_bgr_uint8(near)[..., 0], np.repeat(levels, 2, 1).astype(np.uint8))


def test_a_float16_tiff_reads_as_its_png_copy_to_the_level(tmp_path):
    face = _face_rgb()
    tifffile.imwrite(tmp_path / "f16.tif", (face / 255).astype(np.float16), photometric="rgb")
    Image.fromarray(face).save(tmp_path / "face.png")
    assert np.array_equal(read_rgb(str(tmp_path / "f16.tif")), read_rgb(str(tmp_path / "face.png")))


# --- 2. damage after a harmless warning -----------------------------------------------------------------------------
def _header_padded(jpeg: bytes) -> bytes:
    """Two zero bytes before the quantisation tables: "2 extraneous bytes before marker 0xdb"."""
    tables = jpeg.find(b"\xff\xdb")
    return jpeg[:tables] + b"\x00\x00" + jpeg[tables:]


def _bad_icc_chunk(jpeg: bytes) -> bytes:
    """An ICC chunk numbered 0 of 1 (they count from 1): "bad ICC marker", the profile lost and not the pixels."""
    return jpeg[:2] + b"\xff\xe2\x00\x10ICC_PROFILE\x00\x00\x01" + jpeg[2:]


def _both(jpeg: bytes) -> bytes:
    return _bad_icc_chunk(_header_padded(jpeg))


HARMLESS = [_header_padded, _bad_icc_chunk, _both]  # each warned of before any damage to the scan


def _first_warning(jpeg: bytes) -> str | None:
    """libjpeg's first warning, decoding as the strict check decodes (grey, scaled down)."""
    try:
        simplejpeg.decode_jpeg(jpeg, colorspace="GRAY", min_height=1, min_width=1, strict=True)
    except ValueError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("harmless", HARMLESS)
@pytest.mark.parametrize("damage", [_scan_cut, _bytes_flipped])
def test_damage_after_a_harmless_warning_is_found(tmp_path, harmless, damage):
    """Strict decoding stops at libjpeg's first warning: a harmless one had hidden the damage after it, and the
    garbled face was measured."""
    damaged = damage(harmless(_face_bytes()))
    assert _first_warning(damaged) == _first_warning(harmless(_face_bytes()))  # the harmless warning comes first
    read, problem = read_image_checked(_written(tmp_path / "damaged.jpg", damaged), FRAME_FLAGS)
    assert read is None and problem == DAMAGED_JPEG


@pytest.mark.parametrize("harmless", HARMLESS)
def test_a_photo_with_only_a_harmless_warning_is_read_as_opencv_decodes_it(tmp_path, harmless):
    whole = _face_bytes()
    assert _first_warning(harmless(whole)) is not None
    read, problem = read_image_checked(_written(tmp_path / "photo.jpg", harmless(whole)), FRAME_FLAGS)
    assert problem is None
    assert np.array_equal(read, cv2.imdecode(np.frombuffer(whole, np.uint8), FRAME_FLAGS))


# --- 3. an AVIF's profile -------------------------------------------------------------------------------------------
needs_avif = pytest.mark.skipif(not (features.check("avif") and cv2.haveImageWriter(".avif")),
                                reason="Pillow or OpenCV here reads or writes no AVIF")


def _avif_pair(folder: Path) -> tuple[Path, Path]:
    """A face saved as AVIF in Display P3's numbers with its profile, as a phone saves one, and in sRGB's."""
    face = _face_rgb()
    _in_p3(face).save(folder / "p3.avif", quality=100, subsampling="4:4:4", icc_profile=display_p3())
    Image.fromarray(face).save(folder / "srgb.avif", quality=100, subsampling="4:4:4")
    return folder / "p3.avif", folder / "srgb.avif"


def _channel_means(rgb: np.ndarray) -> np.ndarray:
    return rgb.reshape(-1, 3).mean(0)


@needs_avif
def test_a_display_p3_avif_reads_as_the_same_avif_saved_in_srgb(tmp_path):
    """Its profile was not read: a P3 AVIF was measured in P3's numbers as if sRGB's (a channel's mean 2.6 levels off
    its sRGB copy's). Converted, its channels' means are within a level of its sRGB copy's, as a P3 JPEG's are."""
    p3, srgb = _avif_pair(tmp_path)
    as_stored = cv2.cvtColor(decoded_avif(np.fromfile(str(p3), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.abs(_channel_means(as_stored) - _channel_means(read_rgb(str(srgb)))).max() > 1  # P3 numbers as sRGB
    read = read_rgb(str(p3))
    assert np.abs(_channel_means(read) - _channel_means(read_rgb(str(srgb)))).max() < 1
    frame = as_bgr_uint8(next(iter(open_source(str(p3)))).image)  # `run` reads it so too
    assert np.array_equal(frame[..., ::-1], read)


@needs_avif
def test_an_avif_is_read_as_untagged_where_pillow_cannot_read_avif(tmp_path, monkeypatch):
    """Pillow 11.3 on reads AVIF only where it was built with libavif: without, its reader refuses the file, and the
    photo is read as it had been, never refused for it."""
    import PIL.AvifImagePlugin

    p3, _ = _avif_pair(tmp_path)
    monkeypatch.setattr(PIL.AvifImagePlugin, "SUPPORTED", False)
    read, problem = read_image_checked(p3, FRAME_FLAGS)
    assert problem is None
    assert np.array_equal(read, decoded_avif(np.fromfile(str(p3), np.uint8), FRAME_FLAGS))


# --- 4. the look for copies reads as every command reads -----------------------------------------------------------
def _stats(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_a_float16_tiff_and_its_png_copy_are_found_one_photograph_without_opencvs_errors(tmp_path, capfd):
    """OpenCV's decoder refuses a float16 TIFF: the look for copies printed an error block naming no file for each
    of a folder's, and left them out of it."""
    folder = tmp_path / "faces"
    folder.mkdir()
    face, other = (cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in utk_images(2))
    tifffile.imwrite(folder / "f16.tif", (face / 255).astype(np.float16), photometric="rgb")
    Image.fromarray(face).save(folder / "copy.png")
    Image.fromarray(other).save(folder / "other.png")
    capfd.readouterr()
    groups = near_identical.near_groups(_stats(folder), str(folder), None)
    assert groups == [sorted([str(folder / "copy.png"), str(folder / "f16.tif")])]
    assert "ERROR" not in capfd.readouterr().err


def _kept_thumbnails(tmp_path: Path) -> tuple[Path, dict[str, tuple[int, int]], np.ndarray]:
    """A folder's thumbnails, kept in a cache; with what they are."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for i, path in enumerate(utk_images(3)):
        (folder / f"{i}.jpg").write_bytes(path.read_bytes())
    stats = _stats(folder)
    return folder, stats, near_identical.thumbnails(stats, str(folder), tmp_path / "cache")[1]


def _rewrite_cache(cache: Path, **changes) -> None:
    """The thumbnails cache rewritten with ``changes`` to its arrays (None: left out)."""
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    with open(cache, "wb") as f:
        np.savez(f, **{k: v for k, v in arrays.items() if v is not None})


def _not_read(path: str) -> None:
    raise AssertionError(f"{path} read again, not taken from the cache")


@pytest.mark.parametrize("written_by", ["a reader before versions", "another reader"])
def test_thumbnails_kept_by_another_reader_are_read_again(tmp_path, monkeypatch, written_by):
    """The cache had no version: thumbnails of damaged JPEGs, kept garbled before the strict check, were matched."""
    folder, stats, thumbs = _kept_thumbnails(tmp_path)
    cache = near_identical.folder_cache_file(tmp_path / "cache", "thumbnails", str(folder), ".npz")
    version = None if written_by == "a reader before versions" else np.int64(near_identical.READER_VERSION + 1)
    _rewrite_cache(cache, thumbs=255 - thumbs, reader=version)  # what that reader had made of them: not these
    assert np.array_equal(near_identical.thumbnails(stats, str(folder), tmp_path / "cache")[1], thumbs)
    monkeypatch.setattr(near_identical, "thumbnail", _not_read)  # kept again, by this reader: taken from the cache
    assert np.array_equal(near_identical.thumbnails(stats, str(folder), tmp_path / "cache")[1], thumbs)
