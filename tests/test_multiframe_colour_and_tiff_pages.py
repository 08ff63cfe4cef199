"""A file of several frames played frame by frame reads each as a file of that frame alone is read: an animation's
frames and a TIFF's pages put in sRGB by their colour profile, a TIFF's float16 pages read beside its others, and a
TIFF tifffile cannot decode without imagecodecs said to need it."""
from __future__ import annotations

import importlib.util
import io
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from inference import tiff_read
from inference.errors import BiasMirrorError
from inference.images import FRAME_FLAGS, read_image_checked
from inference.sources import ImageFramesSource, open_source
from tests.conftest import utk_images
from tests.test_image_decoding_strict import display_p3, _in_p3

HAS_IMAGECODECS = importlib.util.find_spec("imagecodecs") is not None
LZW = 5  # TIFF's Compression tag value for LZW
COMPRESSION, STRIP_OFFSETS, STRIP_BYTE_COUNTS = 259, 273, 279  # TIFF tags
STRUCT_CODES = {3: "H", 4: "I", 16: "Q"}  # TIFF's SHORT, LONG and LONG8 field types as struct's


def _faces_rgb(n: int) -> list[np.ndarray]:
    """``n`` real faces (UTKFace), RGB."""
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in utk_images(n)]


def _played(path: Path) -> list:
    source = open_source(str(path))
    frames = list(source)
    assert isinstance(source, ImageFramesSource) and source.end_warning is None, source.end_warning
    return frames


def _read_alone(path: Path) -> np.ndarray:
    """A file read as a photo, as a folder, the audit and training read it."""
    image, problem = read_image_checked(path, FRAME_FLAGS)
    assert problem is None, problem
    return image


# --- colour profiles ------------------------------------------------------------------------------------------------


def test_a_p3_tiffs_pages_are_put_in_srgb_as_each_page_alone_is(tmp_path):
    """`run` measured a P3 TIFF's pages in P3's numbers while the audit converted its first: the same picture read
    ITA -7.76 played, -6.25 as a one-page file."""
    pages = [np.asarray(_in_p3(face)) for face in _faces_rgb(2)]
    with tifffile.TiffWriter(tmp_path / "p3.tif") as tiff:
        for page in pages:
            tiff.write(page, photometric="rgb", iccprofile=display_p3())
    played = _played(tmp_path / "p3.tif")
    assert len(played) == len(pages)
    for number, (frame, page) in enumerate(zip(played, pages)):
        tifffile.imwrite(tmp_path / f"{number}.tif", page, photometric="rgb", iccprofile=display_p3())
        alone = _read_alone(tmp_path / f"{number}.tif")
        assert not np.array_equal(alone, page[..., ::-1])  # the profile changes the pixels: it is not left unread
        assert np.array_equal(frame.image, alone), number


@pytest.mark.parametrize("suffix", [".webp", ".png"])  # animated WebP, APNG
def test_a_p3_animations_frames_are_put_in_srgb_as_its_first_is_read_alone(tmp_path, suffix):
    if not hasattr(cv2, "imreadanimation"):
        pytest.skip(f"OpenCV {cv2.__version__} cannot read an animation's frames (4.11 or later can)")
    frames = [_in_p3(face) for face in _faces_rgb(2)]
    path = tmp_path / f"p3{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], icc_profile=display_p3(), lossless=True,
                   duration=100)
    played = _played(path)
    assert len(played) == len(frames)
    assert np.array_equal(played[0].image[..., :3], _read_alone(path)[..., :3])  # as the audit reads its first
    for number, (frame, p3) in enumerate(zip(played, frames)):
        p3.save(tmp_path / f"{number}.png", icc_profile=display_p3())  # the frame alone, as lossless
        alone = _read_alone(tmp_path / f"{number}.png")
        assert not np.array_equal(alone, np.asarray(p3)[..., ::-1])
        assert np.array_equal(frame.image[..., :3], alone), number


# --- a TIFF's pages of samples OpenCV's decoder refuses -------------------------------------------------------------


def _samples(face: np.ndarray, kind: str) -> np.ndarray:
    """A face as a TIFF page's samples: 8-bit, or those OpenCV's decoder refuses (float16 0–1, uint32)."""
    return {"u8": face, "f16": (face / 255).astype(np.float16), "u32": face.astype(np.uint32) * 0x1010101}[kind]


@pytest.mark.parametrize("kinds", [("f16", "f16"), ("u8", "f16"), ("f16", "u8"), ("u32", "u8", "f16")])
def test_a_tiff_with_a_page_opencv_refuses_plays_every_page_as_each_alone_reads(tmp_path, kinds):
    """OpenCV counts no page of a file that holds a float16 one, and its multi-page reader refuses all of them: a
    TIFF of two float16 pages played its first alone without a word, one of an 8-bit page then a float16 one
    "ended after 0 of 2 pages"."""
    pages = [_samples(face, kind) for face, kind in zip(_faces_rgb(len(kinds)), kinds)]
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tiff:
        for page in pages:
            tiff.write(page, photometric="rgb")
    played = _played(tmp_path / "pages.tif")
    assert [f.name for f in played] == [f"pages.tif#{i}" for i in range(len(pages))]
    for number, (frame, page) in enumerate(zip(played, pages)):
        tifffile.imwrite(tmp_path / f"{number}.tif", page, photometric="rgb")
        assert frame.warning is None and np.array_equal(frame.image, _read_alone(tmp_path / f"{number}.tif")), number


# --- a TIFF compressed as tifffile decodes only with imagecodecs ----------------------------------------------------


def _lzw(data: bytes) -> bytes:
    """``data`` compressed by TIFF's LZW, by Pillow's libtiff (tifffile compresses by LZW only with imagecodecs):
    bytes written as one strip of an 8-bit image one row high."""
    out = io.BytesIO()
    Image.fromarray(np.frombuffer(data, np.uint8)[None]).save(out, "TIFF", compression="tiff_lzw")
    with tifffile.TiffFile(io.BytesIO(out.getvalue())) as tiff:
        page = tiff.pages[0]
        assert page.compression == LZW and len(page.dataoffsets) == 1
        return out.getvalue()[page.dataoffsets[0]:page.dataoffsets[0] + page.databytecounts[0]]


def _lzw_page(data: bytes, number: int) -> bytes:
    """A TIFF's uncompressed one-strip page compressed by LZW: its strip compressed and put at the file's end, and its
    tags made to say so."""
    out = bytearray(data)
    with tifffile.TiffFile(io.BytesIO(data)) as tiff:
        page = tiff.pages[number]
        assert len(page.dataoffsets) == 1  # one strip
        start, length = page.dataoffsets[0], page.databytecounts[0]
        compressed = _lzw(data[start:start + length])
        order = tiff.byteorder
        for code, value in ((COMPRESSION, LZW), (STRIP_OFFSETS, len(out)), (STRIP_BYTE_COUNTS, len(compressed))):
            tag = page.tags[code]
            struct.pack_into(order + STRUCT_CODES[int(tag.dtype)], out, tag.valueoffset, value)
    return bytes(out + compressed)


def _lzw_tiff(path: Path, pages: list[np.ndarray], compressed: set[int]) -> Path:
    """An RGB TIFF of ``pages``, those numbered in ``compressed`` compressed by LZW."""
    out = io.BytesIO()
    with tifffile.TiffWriter(out) as tiff:
        for page in pages:
            tiff.write(page, photometric="rgb", rowsperstrip=page.shape[0])
    data = out.getvalue()
    for number in compressed:
        data = _lzw_page(data, number)
    path.write_bytes(data)
    return path


def test_the_lzw_tiffs_written_here_are_read_by_opencv_as_written(tmp_path):
    """The files the tests below read are true LZW TIFFs: OpenCV's libtiff decodes 8-bit ones itself."""
    faces = _faces_rgb(2)
    path = _lzw_tiff(tmp_path / "lzw.tif", faces, set(range(len(faces))))
    with tifffile.TiffFile(path) as tiff:
        assert [page.compression for page in tiff.pages] == [LZW] * len(faces)
    ok, pages = cv2.imreadmulti(str(path))
    assert ok and all(np.array_equal(page[..., ::-1], face) for page, face in zip(pages, faces))


def _needs_imagecodecs_said(problem: str | None) -> None:
    assert problem is not None and "LZW" in problem and "pip install imagecodecs" in problem, problem


@pytest.mark.skipif(HAS_IMAGECODECS, reason="imagecodecs is installed: tifffile decodes LZW with it")
def test_a_float16_tiff_compressed_by_lzw_is_said_to_need_imagecodecs(tmp_path):
    """tifffile decodes LZW only with imagecodecs (not a dependency here): its error had been taken for a corrupt
    file, and such a TIFF (as Photoshop, GIMP and ImageMagick save one by default) called corrupt."""
    path = _lzw_tiff(tmp_path / "f16.tif", [_samples(_faces_rgb(1)[0], "f16")], {0})
    photo = tiff_read.tiff_photo(path, np.fromfile(path, np.uint8), FRAME_FLAGS)
    assert photo.image is None
    _needs_imagecodecs_said(photo.problem)


@pytest.mark.skipif(HAS_IMAGECODECS, reason="imagecodecs is installed: tifffile decodes LZW with it")
def test_a_tiffs_page_compressed_by_lzw_is_skipped_saying_it_needs_imagecodecs_and_the_others_played(tmp_path):
    faces = _faces_rgb(3)
    pages = [faces[0], _samples(faces[1], "f16"), faces[2]]
    path = _lzw_tiff(tmp_path / "pages.tif", pages, {1})
    played = _played(path)
    assert [f.image is None for f in played] == [False, True, False]
    _needs_imagecodecs_said(played[1].problem)
    assert played[1].warning.startswith(f"{path.name}: page 1: ")  # the file named, as the source is
    for number in (0, 2):
        tifffile.imwrite(tmp_path / f"{number}.tif", pages[number], photometric="rgb")
        assert np.array_equal(played[number].image, _read_alone(tmp_path / f"{number}.tif")), number


@pytest.mark.skipif(HAS_IMAGECODECS, reason="imagecodecs is installed: tifffile decodes LZW with it")
def test_run_says_a_float16_tiff_compressed_by_lzw_needs_imagecodecs_naming_it(tmp_path):
    """`run --source`, a folder and the audit read it through read_image_checked, which gives the reason."""
    path = _lzw_tiff(tmp_path / "f16.tif", [_samples(_faces_rgb(1)[0], "f16")], {0})
    image, problem = read_image_checked(path, FRAME_FLAGS)
    assert image is None
    _needs_imagecodecs_said(problem)
    with pytest.raises(BiasMirrorError) as refused:
        open_source(str(path))
    assert str(path) in str(refused.value)
    _needs_imagecodecs_said(str(refused.value))


def test_a_float16_tiff_compressed_by_lzw_reads_with_imagecodecs_installed(tmp_path):
    pytest.importorskip("imagecodecs")
    face = _samples(_faces_rgb(1)[0], "f16")
    tifffile.imwrite(tmp_path / "uncompressed.tif", face, photometric="rgb")
    path = _lzw_tiff(tmp_path / "lzw.tif", [face, face], {0, 1})
    assert np.array_equal(_read_alone(path), _read_alone(tmp_path / "uncompressed.tif"))
    assert all(np.array_equal(f.image, _read_alone(tmp_path / "uncompressed.tif")) for f in _played(path))
