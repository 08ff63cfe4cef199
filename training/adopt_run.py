"""An adopted model run on faces: the faces it is checked on, the model alone as it was made, the wrapped one in
batches, and a ``Trial`` (one way of feeding it, wrapped, carded and run); with what a run's failure says of it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
import onnxruntime as ort

from inference.card import ModelCard
from inference.datasets import read_spec
from inference.defaults import DEFAULT_DATASET  # the shared UTKFace copy, as the benches take it
from inference.errors import BiasMirrorError
from inference.images import read_rgb
from inference.models import Classifier, Filter, ort_reason
from training.adopt_encoding import Encoding
from training.fp16 import spread_evenly


def sample_faces(spec: str, n: int, size: int) -> tuple[np.ndarray, list[str | None], str]:
    """``n`` adult faces spread over the dataset (all faces where ages are unknown), at ``size``, with genders."""
    read = read_spec(spec)
    samples = sorted((s for s in read.samples if s.age is None or s.age >= 18), key=lambda s: s.path)
    if not samples:
        raise BiasMirrorError("no faces to check the adopted model on; give a dataset with --dataset KIND:PATH", read.root)
    faces, genders = [], []
    for s in spread_evenly(samples, n):
        face = read_rgb(s.path, size)
        if face is not None:
            faces.append(face)
            genders.append(s.gender)
    if not faces:
        raise BiasMirrorError("none of the sampled images could be read", read.root)
    return np.stack(faces), genders, f"{len(faces)} faces of {spec}"


def sample_faces_or_default(spec: str | None, n: int, size: int) -> tuple[np.ndarray, list[str | None], str]:
    """``sample_faces`` of ``spec``, or of --dataset's default where it is None: the shared UTKFace copy, whose path
    the user never typed, so a failure to read it says that it is the default and how to give faces (it had said
    "/x/shared/datasets/utkface: the UTKFace folder does not exist", and nothing of --dataset)."""
    if spec is not None:
        return sample_faces(spec, n, size)
    try:
        return sample_faces(DEFAULT_DATASET, n, size)
    except BiasMirrorError as exc:
        where = exc.path or DEFAULT_DATASET.partition(":")[2]
        raise BiasMirrorError(f"no faces to check the adopted model on: --dataset was not given, and its default, "
                              f"the shared UTKFace copy at {where}, cannot be read ({exc.message}); give faces with "
                              "--dataset KIND:PATH (e.g. --dataset utkface:DIR or --dataset folder:DIR)") from exc


def run_alone(path: Path, x: np.ndarray, condition: np.ndarray | None = None) -> list[np.ndarray]:
    """The model made elsewhere on its own, one input at a time (its batch axis may be fixed at 1), or in batches of
    the size its graph fixes (the last one padded with copies of its last face); a conditional filter gets
    ``condition`` rows on its second input."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    types = {"tensor(float16)": np.float16, "tensor(double)": np.float64, "tensor(uint8)": np.uint8}
    image = next(i for i in sess.get_inputs() if len(i.shape) == 4)
    dtype = types.get(image.type, np.float32)
    x = np.round(x).astype(dtype) if dtype == np.uint8 else x.astype(dtype)
    cond = next((i for i in sess.get_inputs() if len(i.shape) == 2), None)
    outs = []
    for rows in batches(len(x), fixed_batch(image.shape)):
        feed = {image.name: x[rows]}
        if cond is not None and condition is not None:
            feed[cond.name] = condition[rows].astype(types.get(cond.type, np.float32))
        outs.append(sess.run(None, feed))
    return [np.concatenate(o)[:len(x)] for o in zip(*outs)]


def fixed_batch(shape: Sequence) -> int:
    """The batch size a graph input's shape fixes, 1 where it leaves it open: a model exported with a batch of 8
    had ended in onnxruntime's "Got invalid dimensions … Got: 1 Expected: 8" when fed one face at a time."""
    return shape[0] if isinstance(shape[0], int) and shape[0] > 1 else 1


def batches(n: int, size: int) -> list[np.ndarray]:
    """Indices of ``n`` inputs in batches of ``size``, the last padded with repeats of the last input (whose outputs
    are cut off after the run)."""
    return [np.minimum(np.arange(start, start + size), n - 1) for start in range(0, n, size)]


def run_wrapped(model: Filter | Classifier, faces: np.ndarray, path: Path) -> list[np.ndarray]:
    """The wrapped model in batches of 16, then of 3: a model whose batch is fixed at 1 fails here."""
    run: Callable[[np.ndarray], list[np.ndarray]] = (
        (lambda x: [model.apply(x)]) if isinstance(model, Filter) else (lambda x: list(model.predict(x))))
    try:
        outs = [run(faces[i:i + 16]) for i in range(0, len(faces), 16)]
        run(faces[:3])
    except Exception as exc:
        raise BiasMirrorError("it does not run on a batch of faces (is its batch axis fixed at 1? re-export it with "
                              f"a dynamic one): {str(exc).splitlines()[0][:300]}", path) from exc
    return [np.concatenate(o) for o in zip(*outs)]


@dataclass(frozen=True)
class Trial:
    """One way of feeding the model, wrapped, carded and run on the faces."""

    enc: Encoding
    card: ModelCard
    wrapped: onnx.ModelProto
    got: list[np.ndarray]  # the wrapped model's outputs on the faces
    model: Filter | Classifier  # the wrapped model, loaded


def takes_k(src: Path, layout: str, size: int, k: int) -> bool:
    """Whether the model made elsewhere, on its own, runs one face with a condition vector of ``k`` entries."""
    shape = (1, 3, size, size) if layout == "NCHW" else (1, size, size, 3)
    try:
        run_alone(src, np.zeros(shape, np.float32), np.eye(k, dtype=np.float32)[:1])
    except Exception:  # noqa: BLE001 - ORT's own error types, at load (shape inference) or at run: it does not
        return False
    return True


def open_k_refused(exc: BiasMirrorError, conditions: list[str], src: Path) -> BiasMirrorError:
    """The wrapped filter, whose condition input leaves K open and was given K = the --conditions' count, failed to
    load or run: said as a K its graph may not take (one exported with K open that computes with a fixed K had
    been called "not a readable ONNX model (truncated, corrupt …)"), with the reason the runtime gave."""
    cause: BaseException = exc
    while isinstance(cause, BiasMirrorError) and cause.__cause__ is not None:
        cause = cause.__cause__
    why = exc.message if isinstance(cause, BiasMirrorError) else ort_reason(cause)[:300]
    k = len(conditions)
    return BiasMirrorError(f"it does not take condition vectors of K={k} (one entry for each of the --conditions "
                           f"{','.join(conditions)}): its condition input leaves K open, but with K={k} it fails "
                           f"({why}). Check the number of --conditions: the model may take another count", src)


def cam_grid(wrapped: onnx.ModelProto, face: np.ndarray, src: Path) -> tuple[int, int]:
    """The CAM grid (h, w) of the head's feature map, by running the wrapped graph once."""
    try:
        sess = ort.InferenceSession(wrapped.SerializeToString(), providers=["CPUExecutionProvider"])
        cam = sess.run(["cam"], {"image": face})[0]
    except Exception as exc:
        raise BiasMirrorError(f"the wrapped classifier does not run: {str(exc).splitlines()[0][:300]}", src) from exc
    return int(cam.shape[2]), int(cam.shape[3])
