"""An adopted model run on faces: the faces it is checked on (a generator: the latents), the model alone as it was
made, the wrapped one in batches, and a ``Trial`` (one way of feeding it, wrapped, carded and run); with what a run's
failure says of it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
import onnxruntime as ort

from inference.card import ModelCard
from inference.datasets import read_spec
# the shared UTKFace copy, as the benches take it, and what they say where it cannot be read
from inference.defaults import DEFAULT_DATASET, default_data_refused
from inference.errors import BiasMirrorError
from inference.images import read_rgb
from inference.models import Classifier, Filter, Generator, load_model, ort_reason
from inference.runtime import RuntimeConfig
from training.adopt_encoding import Conditions, Encoding, batch_rows
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
    the user never typed, so a failure to read it says that it is the default and how to give faces, in the words
    every command uses of its default data (``default_data_refused``)."""
    if spec is not None:
        return sample_faces(spec, n, size)
    try:
        return sample_faces(DEFAULT_DATASET, n, size)
    except BiasMirrorError as exc:
        raise default_data_refused(exc, "--dataset", Path(DEFAULT_DATASET.partition(":")[2])) from exc


LATENT_SEED = 0  # the latents a generator is checked on: the same on every run, so that its card's checks repeat


def latents(n: int, d: int) -> np.ndarray:
    """``n`` latents of length ``d`` drawn from N(0, 1), as DCGANs and most GANs are trained on."""
    return np.random.default_rng(LATENT_SEED).standard_normal((n, d)).astype(np.float32)


def alone_session(path: Path) -> ort.InferenceSession:
    """An ONNX Runtime session of the model made elsewhere, as ``run_alone`` runs it: kept by a caller that runs it on
    one batch at a time."""
    options = ort.SessionOptions()
    options.log_severity_level = 4  # its failures are raised, and said in adopt's words: not logged as well
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_alone(path: Path | ort.InferenceSession, x: np.ndarray, condition: np.ndarray | None = None,
              output: str | None = None, encode: Callable[[np.ndarray], np.ndarray] | None = None) -> list[np.ndarray]:
    """The model made elsewhere on its own, one input at a time (its batch axis may be fixed at 1), or in batches of
    the size its graph fixes (the last one padded with copies of its last face); ``x``: faces, or a generator's
    latents, as it takes them, or where ``encode`` is given, faces as they are, each batch encoded as it is fed (a
    whole encoded copy of 64 faces of 1024 px is 800 MB); a conditional filter gets ``condition`` rows, in its own
    terms (Conditions.inner), on its second input. ``output``: the one output to give (a filter's face, of an image
    and a mask), else all. ``path``: the model's file, or a session of it (``alone_session``)."""
    sess = path if isinstance(path, ort.InferenceSession) else alone_session(path)
    inputs = sess.get_inputs()
    main = next((i for i in inputs if len(i.shape) == 4), inputs[0])  # the image; a generator's N×D latent
    dtype = ort_dtype(main.type)
    cond = next((i for i in inputs if i.name != main.name), None)
    outs: list[np.ndarray] = []
    for rows in batches(len(x), fixed_batch(main.shape)):
        fed = x[rows] if encode is None else encode(x[rows])
        feed = {main.name: np.round(fed).astype(dtype) if dtype == np.uint8 else fed.astype(dtype)}
        if cond is not None and condition is not None:
            feed[cond.name] = condition[rows].astype(ort_dtype(cond.type))
        got = sess.run(None if output is None else [output], feed)
        # each batch written into one array: the batches kept, then joined, had held the whole output twice
        outs = outs or [np.empty((len(x), *g.shape[1:]), g.dtype) for g in got]
        start, end = int(rows[0]), min(int(rows[0]) + len(rows), len(x))
        for whole, g in zip(outs, got):
            whole[start:end] = g[:end - start]
    return outs


def ort_dtype(ort_type: str) -> np.dtype:
    """The NumPy type of an ONNX Runtime input type ("tensor(int64)"): float32 where it names none NumPy has."""
    name = ort_type.removeprefix("tensor(").removesuffix(")")
    try:
        return np.dtype({"float": "float32", "double": "float64"}.get(name, name))
    except TypeError:  # bfloat16, string
        return np.dtype(np.float32)


def fixed_batch(shape: Sequence) -> int:
    """The batch size a graph input's shape fixes, 1 where it leaves it open: a model exported with a batch of 8
    had ended in onnxruntime's "Got invalid dimensions … Got: 1 Expected: 8" when fed one face at a time."""
    return shape[0] if isinstance(shape[0], int) and shape[0] > 1 else 1


def batches(n: int, size: int) -> list[np.ndarray]:
    """Indices of ``n`` inputs in batches of ``size``, the last padded with repeats of the last input (whose outputs
    are cut off after the run)."""
    return [np.minimum(np.arange(start, start + size), n - 1) for start in range(0, n, size)]


def load_trial(path: Path, kind: str, size: int, src: Path) -> Filter | Classifier | Generator:
    """The wrapped model at ``path`` (a trial copy), loaded as every user loads it; a refusal is said of ``src``,
    the file the user gave, not of a trial copy."""
    try:
        return load_model(path, kind, RuntimeConfig(provider="cpu"))  # type: ignore[return-value]
    except BiasMirrorError as exc:
        raise BiasMirrorError(f"wrapped as a {kind} of {size}×{size} faces, it does not fit: {exc.message}",
                              src) from exc


def run_wrapped(model: Filter | Classifier | Generator, inputs: np.ndarray, path: Path) -> list[np.ndarray]:
    """The wrapped model on ``inputs``, faces (a generator's: latents), in batches (``_batched``): a model whose
    batch is fixed at 1 fails here, and is said to be so where it runs on one alone. ``path``: the file the user
    gave, named, not the trial copy that failed (whose name had been said, with an RGBA output's failure taken for
    a batch fixed at 1)."""
    try:
        outs = _batched(model, inputs)
    except Exception as exc:
        what = "latents" if isinstance(model, Generator) else "faces"
        why = _reason(exc)
        try:
            _run_one(model, inputs[:1])
        except Exception as one:  # noqa: BLE001 - one fails as the batch did: its batch is not the cause
            raise BiasMirrorError(f"wrapped, it does not run on {what}, even one at a time ({_reason(one)})",
                                  path) from exc
        raise BiasMirrorError(f"it runs on one of the {what} at a time, not on a batch of them: is its batch axis "
                              f"fixed at 1? Re-export it with a dynamic one ({why})", path) from exc
    return [np.concatenate(o) for o in zip(*outs)]


def _reason(exc: BaseException) -> str:
    """Why a run failed, in one line: a BiasMirrorError's message without the file it names (a trial copy's)."""
    text = exc.message if isinstance(exc, BiasMirrorError) else str(exc)
    return (text.strip().splitlines() or ["no message"])[0][:300]


def _run_one(model: Filter | Classifier | Generator, inputs: np.ndarray) -> None:
    if isinstance(model, Generator):
        model.generate(inputs)
    elif isinstance(model, Filter):
        model.apply(inputs)
    else:
        model.predict(inputs)


def _batched(model: Filter | Classifier | Generator, inputs: np.ndarray) -> list[list[np.ndarray]]:
    """Each run's outputs, in batches of up to 16 (``per_batch``: fewer of large faces), then of 3; a generator's
    too, whose latents had all gone through at once (10 GB at 1024 px). A run on 3 is not kept: it is there to fail
    where the batch is fixed."""
    run: Callable[[np.ndarray], list[np.ndarray]] = (
        (lambda x: [model.generate(x)]) if isinstance(model, Generator) else
        (lambda x: [model.apply(x)]) if isinstance(model, Filter) else (lambda x: list(model.predict(x))))
    values = int(np.prod(model.card.outputs[0].shape[1:])) if isinstance(model, Generator) else inputs[0].size
    outs = [run(inputs[rows]) for rows in batch_rows(len(inputs), values)]
    run(inputs[:3])
    return outs


@dataclass(frozen=True)
class Trial:
    """One way of feeding the model, wrapped, carded and run on the faces."""

    enc: Encoding
    card: ModelCard
    wrapped: onnx.ModelProto
    got: list[np.ndarray]  # the wrapped model's outputs on the faces
    model: Filter | Classifier  # the wrapped model, loaded
    conditions: Conditions | None = None  # a conditional filter's, and what the model takes for each
    source_output: str | None = None  # the model's output that is its face, of several (None: its one)

    def inner(self, rows: np.ndarray | None) -> np.ndarray | None:
        """Condition rows (one-hot, as the card's) in the model's own terms, to run it alone."""
        return rows if rows is None or self.conditions is None else self.conditions.inner(rows)


def condition_failures(src: Path, layout: str, size: int, conditions: Conditions) -> dict[str, str]:
    """The conditions under which the model made elsewhere, on its own, does not run one face, each fed as it takes
    them, with the reason the runtime gives."""
    shape = (1, 3, size, size) if layout == "NCHW" else (1, size, size, 3)
    failed = {}
    for name, row in zip(conditions.names, np.eye(len(conditions.names), dtype=np.float32)):
        try:
            run_alone(src, np.zeros(shape, np.float32), conditions.inner(row[None]))
        except Exception as exc:  # noqa: BLE001 - ORT's own error types, at load (shape inference) or at run
            failed[name] = ort_reason(exc)[:300]
    return failed


def takes_conditions(src: Path, layout: str, size: int, conditions: Conditions) -> bool:
    """Whether the model made elsewhere, on its own, runs one face under each of ``conditions`` as it takes them."""
    return not condition_failures(src, layout, size, conditions)


def check_condition_values(src: Path, layout: str, size: int, conditions: Conditions) -> None:
    """Each value --conditions gives runs through the model alone, where another does: an index past the classes an
    nn.Embedding holds had failed mid-check in ONNX Runtime's words ("indices element out of data bounds"), of a
    trial copy. Where none runs, the model fails for some other reason, said where it shows."""
    failed = condition_failures(src, layout, size, conditions)
    if failed and len(failed) < len(conditions.names):
        given = conditions.written_each()
        raise BiasMirrorError(f"it does not run with {', '.join(given[n] for n in failed)} of --conditions "
                              f"{conditions.written()}, where it runs with the others ({next(iter(failed.values()))}): "
                              "check those values (an index past the classes the model embeds, a vector of another "
                              "length)", src)


def conditions_refused(exc: BiasMirrorError, conditions: Conditions, src: Path) -> BiasMirrorError:
    """The wrapped filter, whose condition input leaves K open and was given K = the --conditions' count (or the
    length of their values), or which takes values (an index beyond its embedding), failed to load or run: said as
    conditions its graph may not take (one exported with K open that computes with a fixed K had been called "not a
    readable ONNX model (truncated, corrupt …)"), with the reason the runtime gave."""
    cause: BaseException = exc
    while isinstance(cause, BiasMirrorError) and cause.__cause__ is not None:
        cause = cause.__cause__
    why = exc.message if isinstance(cause, BiasMirrorError) else ort_reason(cause)[:300]
    names = ",".join(conditions.names)
    if conditions.values is None:
        k = len(conditions.names)
        return BiasMirrorError(f"it does not take condition vectors of K={k} (one entry for each of the --conditions "
                               f"{names}): its condition input leaves K open, but with K={k} it fails ({why}). Check "
                               "the number of --conditions: the model may take another count", src)
    return BiasMirrorError(f"it does not run with the condition values --conditions {conditions.written()} ({why}). "
                           "Check them: an index past the model's number of classes, or a vector of another length, "
                           "fails", src)


def cam_grid(wrapped: onnx.ModelProto, face: np.ndarray, src: Path) -> tuple[int, int]:
    """The CAM grid (h, w) of the head's feature map, by running the wrapped graph once."""
    try:
        sess = ort.InferenceSession(wrapped.SerializeToString(), providers=["CPUExecutionProvider"])
        cam = sess.run(["cam"], {"image": face})[0]
    except Exception as exc:
        raise BiasMirrorError(f"the wrapped classifier does not run: {str(exc).splitlines()[0][:300]}", src) from exc
    return int(cam.shape[2]), int(cam.shape[3])
