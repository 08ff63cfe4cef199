"""A TIFF's photo decoded: read from the first page that is a photo of its own (inference.tiff_pages tells them
apart), by OpenCV or, for samples its decoder refuses, by tifffile as OpenCV reads a page; with the page's ICC
profile."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tifffile

from .frame_depth import as_bgr_uint8, frame_problem
from .tiff_pages import TIFFFILE_ERRORS, first_photo_page


def decoded_tiff(path: Path, data: np.ndarray, flags: int) -> tuple[np.ndarray | None, bytes | None]:
    """A TIFF's photo, and the ICC profile its page carries: its first page that is one, not a thumbnail or mask
    first in the file, which OpenCV reads as the image (a face measured in a 160-pixel preview in place of the photo
    it previews). A page of samples OpenCV's decoder refuses (float16, uint32) is read by tifffile: OpenCV had printed
    a block of errors and called it corrupt."""
    page = first_photo_page(path)
    layout = _tiff_page_layout(path, page)
    if layout is not None and layout.dtype is not None and layout.dtype not in _OPENCV_TIFF_SAMPLES:
        return _tiff_by_tifffile(path, page, layout, flags), layout.icc
    icc = layout.icc if layout is not None else None
    if page == 0:
        return cv2.imdecode(data, flags), icc
    try:
        pages = cv2.imdecodemulti(data, flags, range=(page, page + 1))[1]
    except cv2.error:  # a damaged page: as unreadable as a damaged file, said so by the caller
        return None, icc
    return (pages[0] if pages else None), icc


class _TiffPage:
    """What is read of a TIFF page's tags before its pixels: its samples' type, bits and layout, its orientation and
    its ICC profile."""

    def __init__(self, page: tifffile.TiffPage):
        self.dtype = np.dtype(page.dtype) if page.dtype is not None else None
        self.bits = int(page.bitspersample)
        self.photometric = int(page.photometric)
        self.planar = page.axes.startswith("S")  # samples stored plane by plane: (S, Y, X), not (Y, X, S)
        self.orientation = int(page.tags.valueof(274, 1))
        icc = page.tags.valueof(34675)
        self.icc = bytes(icc) if icc is not None else None


# the samples OpenCV's TIFF decoder reads (1 to 16 bits unsigned or signed, 32 signed or float, 64 float; grfmt_tiff)
_OPENCV_TIFF_SAMPLES = frozenset(map(np.dtype, (bool, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32,
                                                np.float64)))
# what tifffile raises for a TIFF it cannot read (as inference.tiff_pages finds), then left to OpenCV


def _tiff_page_layout(path: Path, page: int) -> _TiffPage | None:
    """The tags of a TIFF's page that say how it is read; None where tifffile cannot read them."""
    try:
        with tifffile.TiffFile(path) as tiff:
            return _TiffPage(tiff.pages[page])
    except TIFFFILE_ERRORS:
        return None


_MINISBLACK, _RGB = 1, 2  # TIFF PhotometricInterpretation: grey, and RGB


def _tiff_by_tifffile(path: Path, page: int, layout: _TiffPage, flags: int) -> np.ndarray | None:
    """A TIFF page OpenCV's decoder refuses, read by tifffile as OpenCV reads what it can: BGR (BGRA) or grey, turned
    by its orientation tag (OpenCV's TIFF decoder turns a page by it, whatever the flags), float16 made float32 and
    wider unsigned integers 16-bit (their high 16 bits, as a 16-bit frame keeps its high 8), for as_bgr_uint8 to make
    8-bit as it makes any float or 16-bit frame. None for a layout it has no reading for (CMYK, Lab, a palette)."""
    if layout.photometric not in (_MINISBLACK, _RGB):
        return None
    try:
        with tifffile.TiffFile(path) as tiff:
            img = tiff.pages[page].asarray()
    except TIFFFILE_ERRORS:
        return None
    if layout.planar:
        img = np.moveaxis(img, 0, -1)
    if img.dtype == np.float16:
        img = img.astype(np.float32)
    elif img.dtype.kind == "u" and img.dtype.itemsize > 2:
        img = (img >> max(0, layout.bits - 16)).astype(np.uint16)
    if img.ndim == 3 and img.shape[2] >= 3 and layout.photometric == _RGB:
        img = img[..., [2, 1, 0, *range(3, img.shape[2])]]  # RGB(A…) as OpenCV's BGR(A…)
    img = np.ascontiguousarray(_upright(img, layout.orientation))
    if flags < 0:  # IMREAD_UNCHANGED: as stored
        return img
    if img.ndim == 3 and img.shape[2] > 3:  # OpenCV's other flags read no alpha
        img = np.ascontiguousarray(img[..., :3])
    # 8-bit BGR where the flags ask for no other depth (IMREAD_COLOR), as OpenCV gives any other photo
    return img if flags & cv2.IMREAD_ANYDEPTH or frame_problem(img) else as_bgr_uint8(img)


def _upright(img: np.ndarray, orientation: int) -> np.ndarray:
    """A page stored under a TIFF (EXIF) orientation, shown upright: row 0 and column 0 put where the tag says."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
             8: lambda a: np.rot90(a, 1)}
    return turns[orientation](img) if orientation in turns else img
