"""Photos read as they are: a JPEG damaged inside its compressed data is unreadable, not measured garbled; pixels are
converted to sRGB from an embedded colour profile (a phone's Display P3); a TIFF of samples OpenCV refuses (float16,
uint32) is read by tifffile, without OpenCV's errors; and the benches read every photo as `run` reads it."""
from __future__ import annotations

import base64
import io
import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import simplejpeg
import tifffile
from PIL import Image, ImageCms

import main
from inference import bench_frames
from inference.errors import BiasMirrorError
from inference.frame_depth import as_bgr_uint8
from inference.images import FRAME_FLAGS, read_bgr, read_image_checked, read_rgb, read_rgb_checked
from inference.jpeg_damage import DAMAGED_JPEG
from inference.sources import open_source
from tests.conftest import require_utk, utk_images


def _face_bytes() -> bytes:
    return utk_images(1)[0].read_bytes()


def _face_rgb() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(utk_images(1)[0])), cv2.COLOR_BGR2RGB)


def _scan_cut(jpeg: bytes) -> bytes:
    """A JPEG with an eighth of its compressed data lost from the middle, its header and end marker intact: a copy
    damaged in storage or in transfer, not cut off."""
    scan = jpeg.find(b"\xff\xda")
    middle, lost = (scan + len(jpeg)) // 2, (len(jpeg) - scan) // 8
    return jpeg[:middle] + jpeg[middle + lost:]


def _bytes_flipped(jpeg: bytes, count: int = 20) -> bytes:
    """A JPEG with ``count`` bytes of its last two thirds flipped, as the fuzzing reviewer damaged one (r1)."""
    damaged = bytearray(jpeg)
    for at in np.linspace(len(jpeg) // 3, len(jpeg) - 10, count).astype(int):
        damaged[at] ^= 0x55
    return bytes(damaged)


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- 1. a JPEG damaged inside -------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", [_scan_cut, _bytes_flipped])
def test_a_jpeg_damaged_inside_is_unreadable_and_said_so_naming_it(tmp_path, capfd, damage):
    """OpenCV decoded it into garbled pixels, measured as a face (L* 85 for 72), and libjpeg printed "Corrupt JPEG
    data: premature end of data segment", naming no file."""
    path = _written(tmp_path / "damaged.jpg", damage(_face_bytes()))
    assert cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR) is not None  # what had been measured
    capfd.readouterr()
    for read, problem in (read_image_checked(path, FRAME_FLAGS), read_rgb_checked(str(path))):
        assert read is None and problem == DAMAGED_JPEG, problem
    with pytest.raises(BiasMirrorError) as refused:  # `run --source damaged.jpg`
        open_source(str(path))
    assert str(path) in str(refused.value) and DAMAGED_JPEG in str(refused.value)
    assert "Corrupt JPEG data" not in capfd.readouterr().err  # said once, by name, not by libjpeg on stderr


def test_a_damaged_progressive_jpeg_is_unreadable(tmp_path):
    face = Image.fromarray(_face_rgb())
    face.save(tmp_path / "progressive.jpg", progressive=True)
    path = _written(tmp_path / "damaged.jpg", _scan_cut((tmp_path / "progressive.jpg").read_bytes()))
    read, problem = read_image_checked(path, FRAME_FLAGS)
    assert read is None and problem == DAMAGED_JPEG, problem


# An arithmetic-coded JPEG (32×32, jpegtran -arithmetic): no encoder the tests have writes one.
ARITHMETIC_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcp"
    "LDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIy"
    "MjIyMjIyMjIyMjIyMjL/yQARCAAgACADASIAAhEBAxEB/8wACgAQEAUBEBEF/9oADAMBAAIRAxEAPwD/AM+GZSm6+G6zV+0n"
    "V3Lrxs2/cs6ujnc8QqnIXNvg6INfd9ynz7r56MARExSNKNcUhfd2dX1NGh0IW9fgBq1O8M4QuOr9P88zg//Z")


def _whole_jpegs(tmp_path: Path) -> list[Path]:
    """JPEGs libjpeg reads whole, of every kind a camera, an editor or a phone writes: baseline, progressive, with
    restart markers, arithmetic-coded, grey, CMYK (Adobe's), YCCK, and a motion photo (a video after its end)."""
    face = _face_rgb()
    image = Image.fromarray(face)
    image.save(tmp_path / "progressive.jpg", progressive=True)
    image.convert("L").save(tmp_path / "grey.jpg")
    image.convert("CMYK").save(tmp_path / "cmyk.jpg")
    cv2.imwrite(str(tmp_path / "restarts.jpg"), face[..., ::-1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    cmyk = np.ascontiguousarray(np.asarray(image.convert("CMYK")))
    ycck = _written(tmp_path / "ycck.jpg", simplejpeg.encode_jpeg(cmyk, colorspace="CMYK"))  # TurboJPEG writes YCCK
    assert simplejpeg.decode_jpeg_header(ycck.read_bytes())[2] == "YCCK"
    motion = _written(tmp_path / "motion.jpg", _face_bytes() + b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 16)
    return [utk_images(1)[0], tmp_path / "progressive.jpg", tmp_path / "grey.jpg", tmp_path / "cmyk.jpg",
            tmp_path / "restarts.jpg", _written(tmp_path / "arithmetic.jpg", ARITHMETIC_JPEG), ycck, motion]


def test_jpegs_libjpeg_reads_whole_are_read_as_opencv_decodes_them(tmp_path):
    """The strict check only judges: OpenCV's pixels are the ones measured, and no kind of JPEG is refused for being
    one that simplejpeg converts to no other colour space (CMYK, YCCK) or codes otherwise (progressive, arithmetic)."""
    for path in _whole_jpegs(tmp_path):
        read, problem = read_image_checked(path, FRAME_FLAGS)
        assert problem is None, (path.name, problem)
        assert np.array_equal(read, cv2.imdecode(np.fromfile(str(path), np.uint8), FRAME_FLAGS)), path.name


def test_utkface_photos_pass_the_strict_check():
    """Every 50th photo of the dataset the project is measured on (all 21,336 were checked when this was written)."""
    names = sorted(p.name for p in require_utk().iterdir())[::50]
    refused = [n for n in names if read_image_checked(require_utk() / n, FRAME_FLAGS)[1] is not None]
    assert not refused and names


# --- 2. colour profiles ---------------------------------------------------------------------------------------------
def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(xyz) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in xyz)


def _srgb_curve() -> bytes:
    """sRGB's transfer curve as an ICC parametric curve (type 3), as Display P3 has it."""
    g, a, b, c, d = 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045
    return b"para\0\0\0\0" + struct.pack(">HH", 3, 0) + b"".join(_s15(v) for v in (g, a, b, c, d))


def _gamma_curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256))


def _description(text: str) -> bytes:
    ascii_text = text.encode() + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + b"\0" * 79


D50 = (0.9642, 1.0, 0.8249)  # the profile connection space's white


def _icc(colour_space: bytes, tags: dict[bytes, bytes]) -> bytes:
    """An ICC v2 display profile of ``tags``, as an editor writes one."""
    table, data = b"", b""
    start = 128 + 4 + 12 * len(tags)
    for signature, value in tags.items():
        data += b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", start + len(data), len(value))
        data += value
    size = start + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntr" + colour_space + b"XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + b"".join(_s15(v) for v in D50)
              + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def _bradford_to_d50(primaries: dict[str, tuple[float, float]], white: tuple[float, float]) -> np.ndarray:
    """The colorants (columns: red, green, blue XYZ) of an RGB space given by its chromaticities, adapted to D50 by
    Bradford's transform, as ICC matrix profiles hold them."""
    def xyz(x, y):
        return np.array([x / y, 1.0, (1 - x - y) / y])
    rgb = np.stack([xyz(*primaries[c]) for c in "rgb"], 1)
    to_rgb = rgb * np.linalg.solve(rgb, xyz(*white))
    bradford = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    adapt = np.linalg.inv(bradford) @ np.diag(bradford @ np.array(D50) / (bradford @ xyz(*white))) @ bradford
    return adapt @ to_rgb


def display_p3() -> bytes:
    """Display P3 (DCI-P3 primaries, D65 white, sRGB's curve): what an iPhone's photos carry."""
    colorants = _bradford_to_d50({"r": (0.680, 0.320), "g": (0.265, 0.690), "b": (0.150, 0.060)}, (0.3127, 0.3290))
    curve = _srgb_curve()
    return _icc(b"RGB ", {b"desc": _description("Display P3 (test)"), b"wtpt": _xyz(D50),
                          b"rXYZ": _xyz(colorants[:, 0]), b"gXYZ": _xyz(colorants[:, 1]),
                          b"bXYZ": _xyz(colorants[:, 2]), b"rTRC": curve, b"gTRC": curve, b"bTRC": curve})


def grey_gamma(gamma: float) -> bytes:
    return _icc(b"GRAY", {b"desc": _description(f"Gray Gamma {gamma}"), b"wtpt": _xyz(D50),
                          b"kTRC": _gamma_curve(gamma)})


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _in_p3(rgb: np.ndarray) -> Image.Image:
    """sRGB pixels as the Display P3 numbers that show the same colours (a phone's camera writes these)."""
    p3 = ImageCms.ImageCmsProfile(io.BytesIO(display_p3()))
    return ImageCms.profileToProfile(Image.fromarray(rgb), ImageCms.createProfile("sRGB"), p3,
                                     renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)


def _level_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b).mean())


def test_a_display_p3_photo_reads_as_its_srgb_original(tmp_path):
    """A phone's Display P3 photo had been read as sRGB numbers: the same faces read ITA 30.4° (Monk 5) as P3 and
    27.2° (Monk 6) as sRGB. Converted, it reads as the sRGB original, to within the rounding of its 8-bit P3 copy."""
    face = _face_rgb()
    _in_p3(face).save(tmp_path / "p3.png", icc_profile=display_p3())
    untagged = np.asarray(_in_p3(face))
    assert _level_error(untagged, face) > 1  # what had been measured: the P3 numbers as sRGB
    read = read_rgb(str(tmp_path / "p3.png"))
    assert _level_error(read, face) < 1 and np.abs(read.astype(int) - face).max() <= 2


def test_a_display_p3_jpeg_reads_as_the_same_jpeg_saved_in_srgb(tmp_path):
    """As a phone saves it: a JPEG, compressed in P3's numbers, read as the same face compressed in sRGB's."""
    face = _face_rgb()
    _in_p3(face).save(tmp_path / "p3.jpg", quality=95, icc_profile=display_p3())
    Image.fromarray(face).save(tmp_path / "srgb.jpg", quality=95)
    p3, srgb = read_rgb(str(tmp_path / "p3.jpg")), read_rgb(str(tmp_path / "srgb.jpg"))
    assert np.abs(p3.mean((0, 1)) - srgb.mean((0, 1))).max() < 1  # each channel's mean within a level
    frame = as_bgr_uint8(next(iter(open_source(str(tmp_path / "p3.jpg")))).image)  # `run` reads it so too
    assert np.array_equal(frame[..., ::-1], p3)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_an_srgb_tagged_photo_reads_to_the_byte_as_its_untagged_copy(tmp_path, suffix):
    """Nothing measured on untagged photos (UTKFace's) may change: sRGB's own profile converts nothing."""
    face = Image.fromarray(_face_rgb())
    face.save(tmp_path / f"untagged{suffix}")
    face.save(tmp_path / f"tagged{suffix}", icc_profile=SRGB)
    assert Image.open(tmp_path / f"tagged{suffix}").info["icc_profile"] == SRGB
    assert np.array_equal(read_rgb(str(tmp_path / f"tagged{suffix}")), read_rgb(str(tmp_path / f"untagged{suffix}")))


def test_a_grey_photo_is_converted_by_its_grey_profile(tmp_path):
    """A grey profile's curve says what its levels mean: gamma 1.8 levels shown as a colour-managed viewer shows
    them in sRGB (LittleCMS's conversion, to the level), its mid grey where the curves put it."""
    levels = np.tile(np.arange(256, dtype=np.uint8), (8, 1))
    grey = Image.fromarray(levels)
    grey.save(tmp_path / "grey.png", icc_profile=grey_gamma(1.8))
    shown = ImageCms.profileToProfile(grey, io.BytesIO(grey_gamma(1.8)), ImageCms.createProfile("sRGB"),
                                      renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB")
    read = read_rgb(str(tmp_path / "grey.png"))
    assert np.array_equal(read, np.asarray(shown))
    linear = (128 / 255) ** 1.8
    assert abs(int(read[0, 128, 0]) - (1.055 * linear ** (1 / 2.4) - 0.055) * 255) <= 1


def test_a_16_bit_photo_with_a_p3_profile_is_converted_from_its_8_bit_copy(tmp_path):
    """Pillow converts 8-bit pixels: a 16-bit one is made 8-bit BGR first, as every 16-bit frame is."""
    face = _face_rgb()
    p3 = np.asarray(_in_p3(face)).astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "p3_16.tif", p3, photometric="rgb", iccprofile=display_p3())
    read, problem = read_image_checked(tmp_path / "p3_16.tif", FRAME_FLAGS)
    assert problem is None and read.dtype == np.uint8
    assert _level_error(read[..., ::-1], face) < 1


def test_a_profile_that_does_not_describe_the_pixels_is_left_alone(tmp_path):
    """Read as untagged, as a viewer shows it: a damaged profile, or an RGB one on a grey photo."""
    face = Image.fromarray(_face_rgb())
    face.save(tmp_path / "untagged.jpg")
    face.save(tmp_path / "damaged_profile.jpg", icc_profile=display_p3()[:200])
    face.convert("L").save(tmp_path / "grey.jpg")
    face.convert("L").save(tmp_path / "grey_rgb_profile.jpg", icc_profile=display_p3())
    for tagged, untagged in (("damaged_profile.jpg", "untagged.jpg"), ("grey_rgb_profile.jpg", "grey.jpg")):
        assert np.array_equal(read_image_checked(tmp_path / tagged, FRAME_FLAGS)[0],
                              read_image_checked(tmp_path / untagged, FRAME_FLAGS)[0]), tagged


# --- 3. TIFF samples OpenCV refuses ---------------------------------------------------------------------------------
def _refused_by_opencv(face_rgb: np.ndarray) -> dict[str, np.ndarray]:
    """A face as the TIFF samples OpenCV's decoder refuses: float16 (0–1), uint32 (its full range)."""
    return {"f16": (face_rgb / 255).astype(np.float16), "u32": face_rgb.astype(np.uint32) * 0x1010101}


@pytest.mark.parametrize("kind", ["f16", "u32"])
def test_a_tiff_opencv_refuses_is_read_by_tifffile_without_opencvs_errors(tmp_path, capfd, kind):
    """`run --source tiff_f16.tif` printed a block of OpenCV errors, then called it corrupt."""
    face = _face_rgb()
    tifffile.imwrite(tmp_path / "8bit.tif", face, photometric="rgb")
    tifffile.imwrite(tmp_path / f"{kind}.tif", _refused_by_opencv(face)[kind], photometric="rgb")
    capfd.readouterr()
    read, problem = read_rgb_checked(str(tmp_path / f"{kind}.tif"))
    assert problem is None and np.array_equal(read, read_rgb(str(tmp_path / "8bit.tif")))  # to the level: rounded
    frame = as_bgr_uint8(next(iter(open_source(str(tmp_path / f"{kind}.tif")))).image)
    assert np.array_equal(frame[..., ::-1], read)
    assert "ERROR" not in capfd.readouterr().err


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_tiff_read_by_tifffile_is_turned_as_opencv_turns_one(tmp_path, orientation):
    """OpenCV's TIFF decoder turns a page by its orientation tag: a float16 one stored turned is read upright too."""
    face = _face_rgb()[:, 20:-40]  # taller than wide: a quarter turn shows in its shape
    turned = [(274, "H", 1, orientation, True)]
    tifffile.imwrite(tmp_path / "8bit.tif", face, photometric="rgb", extratags=turned)
    tifffile.imwrite(tmp_path / "f16.tif", _refused_by_opencv(face)["f16"], photometric="rgb", extratags=turned)
    as_opencv_reads = read_rgb(str(tmp_path / "8bit.tif"))
    read = read_rgb(str(tmp_path / "f16.tif"))
    assert np.array_equal(read, as_opencv_reads)


def test_planar_and_grey_tiffs_opencv_refuses_are_read_as_their_8_bit_copies(tmp_path):
    face = _face_rgb()
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    planes = np.moveaxis(_refused_by_opencv(face)["f16"], -1, 0)  # red, green and blue stored one after another
    tifffile.imwrite(tmp_path / "planar.tif", planes, photometric="rgb", planarconfig="separate")
    tifffile.imwrite(tmp_path / "grey.tif", _refused_by_opencv(grey)["u32"], photometric="minisblack")
    assert np.array_equal(read_rgb(str(tmp_path / "planar.tif")), face)
    assert np.array_equal(read_rgb(str(tmp_path / "grey.tif")), np.repeat(grey[..., None], 3, -1))


# --- 4. the benches read as `run` reads ----------------------------------------------------------------------------
def _float_tiffs(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for i, path in enumerate(utk_images(count)):
        paths.append(folder / f"{i}.tif")
        cv2.imwrite(str(paths[-1]), cv2.imread(str(path)).astype(np.float32) / 255)
    return paths


def test_bench_reads_a_float_tiff_as_run_does(tmp_path):
    """`bench` called float TIFFs, which run, audit and train read, unreadable: no readable images in the folder."""
    paths = _float_tiffs(tmp_path / "faces", 2)
    faces, unreadable = bench_frames.readable_faces(paths, 2)
    assert unreadable == 0 and [f.shape for f in faces] == [read_bgr(p).shape for p in paths]
    frames = bench_frames.make_frames(str(paths[0]), 1, (128, 128), 2)  # one photo given alone
    assert len(frames) == 2 and frames[0].dtype == np.uint8


def test_bench_detect_reads_a_float_tiff_as_run_does(tmp_path):
    paths = _float_tiffs(tmp_path / "faces", 2)
    (tmp_path / "faces" / "labels.csv").write_text(
        "file,gender,race,age\n" + "".join(f"{p.name},female,White,30\n" for p in paths))
    out = tmp_path / "detect.json"
    code = main.main(["bench", "detect", "--data", f"folder:{tmp_path / 'faces'}", "--per-group", "2",
                      "--detectors", "haar-alt2", "--json", str(out)])
    assert code == 0  # 2: "none of the 2 image(s) could be read"
    report = json.loads(out.read_text())
    assert report["unreadable"] == [] and report["results"][0]["overall"]["n"] == len(paths)


def test_a_damaged_jpeg_has_no_thumbnail_for_the_copy_detection(tmp_path, capfd):
    """The copy detection decoded it garbled, and OpenCV printed libjpeg's "Corrupt JPEG data", naming no file."""
    from inference.datasets.near_identical import thumbnail

    good = _written(tmp_path / "good.jpg", _face_bytes())
    bad = _written(tmp_path / "bad.jpg", _bytes_flipped(_face_bytes()))
    capfd.readouterr()
    assert thumbnail(str(good)) is not None and thumbnail(str(bad)) is None
    assert "Corrupt JPEG" not in capfd.readouterr().err


def test_padding_between_a_jpegs_segments_is_no_damage(tmp_path):
    """libjpeg says "Corrupt JPEG data: 4 extraneous bytes before marker 0xd9" of padding its pixels do not hold: such
    photos had been refused as damaged."""
    whole = _written(tmp_path / "whole.jpg", _face_bytes())
    for i, face in enumerate(utk_images(20)):
        data = face.read_bytes()
        padded = _written(tmp_path / f"padded{i}.jpg", data[:-2] + b"\x00" * 4 + data[-2:])
        read, problem = read_image_checked(padded, FRAME_FLAGS)
        assert problem is None and np.array_equal(read, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    assert read_image_checked(whole, FRAME_FLAGS)[1] is None
