"""A path beyond ASCII on Windows (C:\\Users\\José\\…, where pip puts OpenCV and its cascades): OpenCV's functions that
take a file name open it with the narrow fopen, which reads the UTF-8 name in the ANSI code page
(opencv/opencv#4292, #4242), and find nothing. The default detector had not started ("OpenCV's Haar cascade is
missing (opencv-python 5.x ships none …)"), and an animated GIF there had lost its frames without a word.

Windows is simulated here as the reviewer's scripts did: ``sys.platform`` is "win32", and OpenCV's by-name
functions fail on a name beyond ASCII as they fail there; what OpenCV decodes from memory works as it does."""
from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from inference import images
from inference.errors import BiasMirrorError
from inference.faces import HAAR_CASCADES, HaarDetector, YuNetDetector
from inference.haar_cascade import read_cascade
from inference.sources import open_source
from tests.conftest import utk_images

BEYOND_ASCII = "José"  # a Windows user's folder, as C:\Users\José


def _fails_beyond_ascii(function, failed):
    """``function`` as OpenCV's by-name functions act on Windows: a name beyond ASCII opens nothing (``failed``)."""
    def on_windows(name, *args, **kwargs):
        if isinstance(name, (str, Path)) and not str(name).isascii():
            return failed()
        return function(name, *args, **kwargs)
    return on_windows


def _names_beyond_ascii(source="", flags=cv2.FILE_STORAGE_READ, *_) -> bool:
    """Whether ``cv2.FileStorage``'s arguments name a file beyond ASCII (not the text itself: FILE_STORAGE_MEMORY)."""
    return bool(source) and not flags & cv2.FILE_STORAGE_MEMORY and not str(source).isascii()


def _simulate_windows(monkeypatch) -> None:
    """Windows, as OpenCV's functions that take a file name meet a name beyond ASCII there: they open nothing."""
    real_cascade, real_storage, real_yunet = cv2.CascadeClassifier, cv2.FileStorage, cv2.FaceDetectorYN.create
    real_open = real_storage.open

    def cascade(*args):
        return _fails_beyond_ascii(real_cascade, real_cascade)(*args) if args else real_cascade()

    def storage(*args):
        return real_storage() if _names_beyond_ascii(*args) else real_storage(*args)

    def storage_open(self, *args):
        return False if _names_beyond_ascii(*args) else real_open(self, *args)

    def yunet_not_found():
        raise cv2.error("Failed to parse ONNX model")

    def yunet(model, *args):
        if model == "onnx":  # the overload that takes the model's bytes: (framework, model, config, …)
            return real_yunet(model, *args)
        return _fails_beyond_ascii(real_yunet, yunet_not_found)(model, *args)

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(cv2, "CascadeClassifier", cascade)
    monkeypatch.setattr(real_storage, "open", storage_open)
    monkeypatch.setattr(cv2, "FileStorage", storage)
    monkeypatch.setattr(cv2.FaceDetectorYN, "create", yunet)
    for name, failed in (("imcount", lambda: 0), ("imreadanimation", lambda: (False, cv2.Animation())),
                         ("imreadmulti", lambda: (False, ())), ("haveImageReader", lambda: False),
                         ("imread", lambda: None)):
        monkeypatch.setattr(cv2, name, _fails_beyond_ascii(getattr(cv2, name), failed))


def _faces(n: int) -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in utk_images(n)]


# --- which names OpenCV can be given


def test_opencv_is_given_no_name_beyond_ascii_on_windows():
    assert not images.opencv_can_name(f"{BEYOND_ASCII}/x.jpg", platform="win32")
    assert images.opencv_can_name("Jose/x.jpg", platform="win32")
    assert images.opencv_can_name(f"{BEYOND_ASCII}/x.jpg", platform="linux")  # elsewhere OpenCV takes UTF-8 names


def test_a_video_beyond_ascii_on_windows_is_refused_for_that_reason(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    video = Path(BEYOND_ASCII) / "clip.avi"
    with pytest.raises(BiasMirrorError, match="beyond ASCII") as err:
        images.opencv_path(video, "this video")
    assert str(video) in str(err.value) and "not UTF-8" not in str(err.value)


# --- the detectors


def test_the_haar_cascade_under_a_path_beyond_ascii_finds_the_same_faces_on_windows(tmp_path, monkeypatch):
    faces = _faces(3)
    by_name = HaarDetector()
    expected = [by_name.detect(f) for f in faces]
    assert all(expected)
    data = tmp_path / BEYOND_ASCII / "cv2data"
    data.mkdir(parents=True)
    shutil.copy(by_name.path, data)
    _simulate_windows(monkeypatch)
    monkeypatch.setattr(cv2.data, "haarcascades", str(data))
    detector = HaarDetector()
    assert detector.path.parent == data
    assert [detector.detect(f) for f in faces] == expected
    # and the arrays the ONNX Runtime detector evaluates (haar_device) are those of the cascade by its ASCII name
    copied, original = read_cascade(detector.path), read_cascade(by_name.path)
    for field in dataclasses.fields(copied):
        if field.name != "path":
            assert np.array_equal(getattr(copied, field.name), getattr(original, field.name)), field.name


def test_a_haar_cascade_that_is_there_but_cannot_be_loaded_is_not_blamed_on_opencv_5(tmp_path, monkeypatch):
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path))
    with pytest.raises(BiasMirrorError, match="opencv-python 5.x"):  # absent: OpenCV 5's wheels ship none
        HaarDetector()
    damaged = tmp_path / HAAR_CASCADES["alt2"]
    damaged.write_text('<?xml version="1.0"?>\n<opencv_storage><cascade><stageType>BOOST</stageType>\n')
    with pytest.raises(BiasMirrorError) as err:
        HaarDetector()
    assert str(damaged) in str(err.value) and "5.x" not in str(err.value)


def _yunet_like(path: Path) -> Path:
    """An ONNX model with YuNet's inputs and outputs (cls, obj, bbox and kps at strides 8, 16 and 32) whose scores
    are the brightness of each cell: no face detector, but what OpenCV's FaceDetectorYN runs and decodes."""
    tensors = [helper.make_tensor("rows", TensorProto.INT64, [3], [1, -1, 1]),
               helper.make_tensor("mid_grey", TensorProto.FLOAT, [1], [140.0]),
               helper.make_tensor("gain", TensorProto.FLOAT, [1], [0.1]),
               helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
               helper.make_tensor("box", TensorProto.FLOAT, [1, 1, 4], [0.5, 0.5, float(np.log(3)), float(np.log(3))]),
               helper.make_tensor("marks", TensorProto.FLOAT, [1, 1, 10], [0.5] * 10)]
    nodes = []
    for s in (8, 16, 32):
        nodes += [helper.make_node("AveragePool", ["input"], [f"pool{s}"], kernel_shape=[s, s], strides=[s, s]),
                  helper.make_node("ReduceMean", [f"pool{s}"], [f"mean{s}"], axes=[1], keepdims=1),
                  helper.make_node("Reshape", [f"mean{s}", "rows"], [f"flat{s}"]),
                  helper.make_node("Sub", [f"flat{s}", "mid_grey"], [f"off{s}"]),
                  helper.make_node("Mul", [f"off{s}", "gain"], [f"logit{s}"]),
                  helper.make_node("Sigmoid", [f"logit{s}"], [f"cls_{s}"]),
                  helper.make_node("Identity", [f"cls_{s}"], [f"obj_{s}"]),
                  helper.make_node("Mul", [f"flat{s}", "zero"], [f"nothing{s}"]),
                  helper.make_node("Add", [f"nothing{s}", "box"], [f"bbox_{s}"]),
                  helper.make_node("Add", [f"nothing{s}", "marks"], [f"kps_{s}"])]
    widths = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}
    outputs = [helper.make_tensor_value_info(f"{kind}_{s}", TensorProto.FLOAT, [1, "N", width])
               for kind, width in widths.items() for s in (8, 16, 32)]
    graph = helper.make_graph(nodes, "yunet_like", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                  [1, 3, "H", "W"])], outputs, tensors)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_a_yunet_model_under_a_path_beyond_ascii_finds_the_same_faces_on_windows(tmp_path, monkeypatch):
    faces = _faces(2)
    model = _yunet_like(tmp_path / "yunet.onnx")
    expected = [YuNetDetector(model).detect(f) for f in faces]
    assert all(expected)
    folder = tmp_path / BEYOND_ASCII
    folder.mkdir()
    _simulate_windows(monkeypatch)
    assert [YuNetDetector(shutil.copy(model, folder)).detect(f) for f in faces] == expected


def test_a_yunet_model_whose_name_is_not_utf8_is_loaded_from_its_bytes(tmp_path):
    """Given such a name OpenCV crashes the process (a segmentation fault); the model had been refused for it."""
    faces = _faces(2)
    model = _yunet_like(tmp_path / "yunet.onnx")
    expected = [YuNetDetector(model).detect(f) for f in faces]
    latin = tmp_path / os.fsdecode(b"yun\xe9t.onnx")
    try:
        model.rename(latin)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes no name that is not UTF-8")
    assert [YuNetDetector(latin).detect(f) for f in faces] == expected


# --- an animation


def test_an_animations_frames_under_a_path_beyond_ascii_are_all_read_on_windows(tmp_path, monkeypatch):
    if not hasattr(cv2, "imdecodeanimation"):
        pytest.skip(f"OpenCV {cv2.__version__} cannot read animations from their bytes")
    faces = [cv2.resize(f, (160, 160)) for f in _faces(3)]
    animation = cv2.Animation()
    animation.frames, animation.durations = faces, [200] * len(faces)
    written = tmp_path / "clip.gif"
    assert cv2.imwriteanimation(str(written), animation)
    folder = tmp_path / f"Fotos_{BEYOND_ASCII}"
    folder.mkdir()
    clip = written.rename(folder / written.name)
    _simulate_windows(monkeypatch)
    source = open_source(str(clip))
    frames = [f for f in source if f.image is not None]
    assert len(frames) == len(faces) and source.end_warning is None
