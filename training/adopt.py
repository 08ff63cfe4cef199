"""Give an ONNX model made elsewhere a Bias Mirror card, so that the app, ``run`` and the audit can host it.

    python main.py train adopt FILTER.onnx --kind filter --out my_filter.onnx
    python main.py train adopt CLASSIFIER.onnx --kind classifier --labels female,male --range unit \\
        --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --out my_classifier.onnx

An engineer testing a face filter before it ships, or a researcher auditing a gender classifier, holds an ONNX
file that takes float tensors normalised its own way. The model is not changed: its graph is wrapped so that it
takes and gives what every Bias Mirror model does (uint8 RGB N×H×W×3 faces in; uint8 faces, or ``probs`` and a
raw ``cam``, out), the wrapping is checked on real faces against the model run on its own, and a card that says
the model was made elsewhere is embedded. It has no per-group figures: the audit measures them.

- A filter's input range, when not given, is the one (of -1..1, 0..1, 0..255) whose output lies nearest its
  input: read with the wrong range a filter's output is far from the face. A given range is measured the same
  way, and refused (unless forced) where another puts the output much nearer. The card says how it was chosen.
  A uint8 input is fed the faces as they are (it normalises inside: --mean/--std are refused); where such a filter
  gives a float image, the range found is its output's. A uint8 output is a face as it is.
- A classifier's class-activation map comes from its head, what follows its last global average pool
  (``adopt_head``). One linear layer (or several with nothing but batch norm or a constant scale between them):
  CAM (Zhou et al. 2016), whose grid mean is the head's output less the bias, which is checked on the faces.
  Linear layers with activations between them (torchvision's MobileNetV3: Linear, Hardswish, Linear): Grad-CAM
  (Selvaraju et al. 2017), the gradient computed inside the graph, which is checked against central differences
  of the model's own head. A model without such a head has no map to show and is refused. ``probs`` is the
  softmax of the head's output (a sigmoid where it has one output), checked against the model's own output: taken
  as probabilities where its graph ends in a Softmax or Sigmoid, else as logits.
- Where the faces are labelled, the classifier's accuracy is measured with ``--labels`` as given and swapped:
  labels in the wrong order are the commonest mistake, and an order is refused where the swapped one is shown better
  (an exact sign test). Where neither is, it is written as given and its card says the order was not confirmed;
  outputs that do not tell the faces apart (an untrained model, inputs read wrongly) are refused as such.
- A file that carries a Bias Mirror card is refused where run, the audit and the app take it as it is; where they
  refuse its card, adopt says why and wraps it as it would a file without one, the card it writes replacing the old.
"""
from __future__ import annotations

import argparse
import math
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper

from inference.arg_checks import check_output_file, int_at_least, positive_int
from inference.defaults import DEFAULT_DATASET  # the shared UTKFace copy, as the benches take it
from inference.card import METADATA_KEY, ModelCard, classifier_card, filter_card
from inference.datasets import read_spec
from inference.errors import BiasMirrorError
from inference.file_identity import file_hash
from inference.images import read_rgb
from inference.models import Classifier, Filter, load_failure, load_model, ort_reason
from inference.runtime import RuntimeConfig
from training.adopt_head import TO_OUTPUT, Builder, Head, cam_outputs, find_head
from training.fp16 import fp16_weights, save, spread_evenly, with_card
from training.resume import given_options
from training.provenance import provenance

# Named, not "-1,1": argparse would read a value that opens with a minus sign as an option.
RANGES = {"symmetric": (-1.0, 1.0), "unit": (0.0, 1.0), "byte": (0.0, 255.0)}
PREFIX = "src/"  # the adopted graph's names, kept apart from the wrapper's ("image", "probs", "cam", "filtered")
MIN_OPSET = 11  # Clip with its bounds as inputs, and Round
MAX_FILTER_GREY = 1  # wrapped against the model run alone: rounding only
# A given --range whose output lies this many grey levels further from the faces, on average, than another range's
# reads them wrongly: a tanh filter taken as byte gave back black faces, 123 grey levels off against 32 (UTKFace).
WRONG_RANGE_GREY = 20.0
# Under a range whose output lies this near the faces (mean grey levels) the filter left them as they were: no evidence
# of its range where another changes them. A filter trained on [-1, 1] that lifts shadows (relu(-x)) does nothing to
# [0, 1] inputs; "nearest" took [0, 1], and the audit then measured a no-op and passed the gate on a filter that
# lightens Black faces by 13° ITA.
UNCHANGED_GREY = 0.5
MAX_DPROB = 1e-3
MAX_CAM_MISMATCH = 1e-3  # relative to the head's output scale
MAX_GRAD_ERROR = 2e-2  # a wrong derivative is off by tens of percent; float32 rounding leaves a few 1e-3 at worst
GRAD_STEPS = (1e-2, 3e-2, 1e-1, 3e-1)  # along a random direction, relative to the pooled features' RMS; a step that
# crosses a ReLU's kink spoils its face only, and the median is taken
# The label order. A face is called female or male by which of the two it gives more; one given both alike (to float32
# rounding) is called neither: a tie had been called female, so an untrained model's "accuracy" was the share of women
# in the sample, in either order, and both orders were refused.
TIE = 1e-6
# P(female) (of the two) varying by less than this over the labelled faces: its outputs do not tell them apart (an
# untrained torchvision MobileNetV3 gives exactly 0.5 to every face), and no order of --labels is better than another.
MIN_P_SPREAD = 1e-3
# An order is shown better where the exact one-sided sign test on the faces called (right k, swapped n − k: for two
# labels every call is one or the other) gives p below this. "Swapped beats right", by any margin, had told a
# 55 %-accurate classifier to swap its labels on 18 % of 64-face samples (now 0.07 %).
LABEL_ORDER_P = 0.01


@dataclass(frozen=True)
class Encoding:
    """How the model wants its pixels: 0..255 mapped onto [lo, hi], then (x − mean) / std per channel (RGB order),
    then channels in ``order`` and the tensor in ``layout``; a filter's output mapped back the same way.
    ``takes_bytes``/``gives_bytes``: its input/output is uint8, 0..255 as it is, which no range or mean/std touches
    (a uint8 input with a float output: [lo, hi] is its output's range alone)."""

    lo: float
    hi: float
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    order: str = "RGB"
    layout: str = "NCHW"
    takes_bytes: bool = False
    gives_bytes: bool = False

    def encode(self, faces: np.ndarray) -> np.ndarray:
        """uint8 N×H×W×3 RGB faces as the model takes them (float32): what the wrapper's nodes do, in NumPy."""
        x = faces.astype(np.float32)
        if not self.takes_bytes:  # as the wrapper, which feeds a uint8 input the faces as they are
            x = x * np.float32((self.hi - self.lo) / 255) + np.float32(self.lo)
            x = (x - np.float32(self.mean)) / np.float32(self.std)
        x = x[..., ::-1] if self.order == "BGR" else x
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "NCHW" else x)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """A filter's output in the model's terms → uint8 N×H×W×3 RGB."""
        y = y.astype(np.float32)
        y = y.transpose(0, 2, 3, 1) if self.layout == "NCHW" else y
        y = y[..., ::-1] if self.order == "BGR" else y
        if not self.gives_bytes:  # a uint8 output is a face already: mapped through the range it was 222 grey off
            y = y * np.float32(self.std) + np.float32(self.mean)
            y = (y - np.float32(self.lo)) * np.float32(255 / (self.hi - self.lo))
        return np.clip(np.round(y), 0, 255).astype(np.uint8)

    def describe(self, dtype: str, gives_image: bool = True) -> str:
        """Its input, and a filter's (``gives_image``) output where it is not read as its input is."""
        if self.takes_bytes:
            reads_out = gives_image and not self.gives_bytes
            out = f"; its float output read as [{self.lo:g}, {self.hi:g}]" if reads_out else ""
            return f"{dtype} {self.layout} {self.order}, pixels 0..255 as they are{out}"
        norm = "" if self.mean == (0, 0, 0) and self.std == (1, 1, 1) else f", then (x − {list(self.mean)}) / {list(self.std)}"
        out = "; its uint8 output taken as it is" if gives_image and self.gives_bytes else ""
        return f"{dtype} {self.layout} {self.order}, pixels mapped onto [{self.lo:g}, {self.hi:g}]{norm}{out}"


# --- reading the model ----------------------------------------------------------

# onnx's checker, where a weight kept in an external data file cannot be read from it
_EXTERNAL_DATA = re.compile(r"should be stored in (.+), but it is not (?:a )?regular file")


def read_onnx(path: Path, echo: Callable[[str], None] = print) -> onnx.ModelProto:
    """The model, without a Bias Mirror card: a file whose card run, audit and the app take is refused; one whose
    card they refuse is said to be so, and its card is left out, for the adopted file's to replace."""
    if not path.is_file():
        raise BiasMirrorError("no such model file", path)
    try:
        model = onnx.load(str(path))
    except onnx.checker.ValidationError as exc:  # an external data file missing (onnx's checker reads the path)
        if m := _EXTERNAL_DATA.search(str(exc)):
            raise BiasMirrorError(f"not a readable ONNX model: its weights are kept in an external data file, {m[1]}, "
                                  "which does not exist (or is not a regular file): put that file where the model "
                                  "says, or re-export the model with its weights inside it", path) from exc
        raise BiasMirrorError(load_failure(str(exc).strip()), path) from exc
    except (DecodeError, ValueError, OSError) as exc:
        raise BiasMirrorError(load_failure(str(exc)), path) from exc
    if not model.graph.node:
        raise BiasMirrorError(load_failure("it has no graph"), path)
    if any(p.key == METADATA_KEY for p in model.metadata_props):
        kind, refused = carded(path)
        if kind == "generator":  # a valid card, of a kind nothing here runs on faces: "take it as it is" was false
            raise BiasMirrorError("this file already carries a Bias Mirror card, of a generator (latent → face): the "
                                  "app, run and audit run classifiers and filters, and adopt makes only those", path)
        if refused is None:
            raise BiasMirrorError(f"this file already carries a Bias Mirror card, of a {kind}: the app, run and audit "
                                  "take it as it is", path)
        echo(f"{path}: this file carries a Bias Mirror card, but the app, run and audit refuse it ({refused}): it is "
             "adopted anew, and the card written replaces its old one (whose training record and figures are not "
             "carried over)")
        keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
        del model.metadata_props[:]
        model.metadata_props.extend(keep)
    return model


def carded(path: Path) -> tuple[str | None, str | None]:
    """The carded file at ``path`` as the app, run and the audit load it: (its kind, None) where they take it, else
    (None, why they refuse it: its card, or the card against its graph)."""
    try:
        return load_model(path, None, RuntimeConfig(provider="cpu")).card.kind, None
    except BiasMirrorError as exc:
        return None, exc.message


def _dims(value: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]


def model_inputs(model: onnx.ModelProto, path: Path) -> tuple[onnx.ValueInfoProto, onnx.ValueInfoProto | None]:
    """Its image input, and the condition input of a conditional filter (a batch of K-vectors; K fixed, or open and
    fixed by --conditions)."""
    weights = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    images = [i for i in inputs if len(_dims(i)) == 4]
    others = [i for i in inputs if len(_dims(i)) != 4]
    if len(inputs) == 2 and len(images) == 1 and len(_dims(others[0])) == 2:
        return images[0], others[0]
    if len(inputs) != 1:
        raise BiasMirrorError(f"it has {len(inputs)} inputs ({', '.join(f'{i.name} {_dims(i)}' for i in inputs)}): "
                              "only a model that takes one image tensor (a filter: and one condition vector) can be "
                              "adopted", path)
    if not images:
        raise BiasMirrorError(f"its input '{inputs[0].name}' has shape {_dims(inputs[0])}, not a batch of images "
                              "(four axes)", path)
    return images[0], None


COLOUR_AXIS = {"NCHW": 1, "NHWC": 3}


def layout_of(value: onnx.ValueInfoProto, asked: str, path: Path) -> str:
    dims = _dims(value)
    if asked != "auto":
        check_colour_axis(dims, asked, path)
        return asked
    nchw, nhwc = dims[1] == 3, dims[3] == 3
    if nchw != nhwc:
        return "NCHW" if nchw else "NHWC"
    raise BiasMirrorError(f"cannot tell from its input shape {dims} whether colour is axis 1 or 3: give --layout", path)


def check_colour_axis(dims: list[int | None], layout: str, path: Path) -> None:
    """The axis ``layout`` puts colour on holds 3 (or is open): a wrong --layout had been told its input is not
    square ("its input is 3×48")."""
    axis = COLOUR_AXIS[layout]
    if dims[axis] in (3, None):
        return
    other = next((name for name, i in COLOUR_AXIS.items() if dims[i] == 3), None)
    hint = f": its axis {COLOUR_AXIS[other]} has 3, so give --layout {other} (or leave --layout out)" if other else \
        ": no axis of it has the 3 colours of an RGB image"
    raise BiasMirrorError(f"--layout {layout} puts colour on axis {axis} of its input {dims}, which has {dims[axis]}"
                          f"{hint}", path)


def size_of(value: onnx.ValueInfoProto, layout: str, asked: int | None, path: Path) -> int:
    dims = _dims(value)
    h, w = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
    if h is None or w is None:
        if asked is None:
            raise BiasMirrorError(f"its input shape {dims} leaves the image size open: give --size", path)
        return asked
    if h != w:
        raise BiasMirrorError(f"its input is {h}×{w}: Bias Mirror's face crops are square", path)
    if asked is not None and asked != h:
        raise BiasMirrorError(f"its input is fixed at {h}×{w}, not --size {asked}", path)
    return h


# --- wrapping ------------------------------------------------------------------------

def wrap(model: onnx.ModelProto, kind: str, enc: Encoding, size: int, head: Head | None, card: ModelCard,
         path: Path) -> onnx.ModelProto:
    """The model inside a graph that takes uint8 faces and gives what ``card`` says, with the card embedded."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
        except Exception as exc:  # the converter raises bare RuntimeErrors and C++ errors alike
            raise BiasMirrorError(f"its opset {opset} is older than {MIN_OPSET} and could not be converted ({exc}); "
                                  f"re-export it at opset {MIN_OPSET} or later", path) from exc
    m = onnx.compose.add_prefix(model, PREFIX)
    g = m.graph
    src_in, src_cond = model_inputs(m, path)
    in_type = src_in.type.tensor_type.elem_type
    b = Builder()
    x = b.op("Cast", ["image"], to=TensorProto.FLOAT)
    if in_type != TensorProto.UINT8:
        x = b.op("Add", [b.op("Mul", [x, b.const(np.float32((enc.hi - enc.lo) / 255))]), b.const(np.float32(enc.lo))])
        if enc.mean != (0, 0, 0) or enc.std != (1, 1, 1):
            x = b.op("Div", [b.op("Sub", [x, b.const(np.float32(enc.mean))]), b.const(np.float32(enc.std))])
    if enc.order == "BGR":
        x = b.op("Gather", [x, b.const(np.array([2, 1, 0], np.int64))], axis=3)
    if enc.layout == "NCHW":
        x = b.op("Transpose", [x], perm=[0, 3, 1, 2])
    b.op("Cast", [x], out=src_in.name, to=in_type)
    if kind == "filter":
        _filter_outputs(b, m, enc, path)
    else:
        cam_outputs(b, head, PREFIX)  # type: ignore[arg-type]
    g.input.remove(src_in)
    g.input.insert(0, helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", size, size, 3]))
    if src_cond is not None:  # a filter's (adopt refuses it for a classifier): Bias Mirror's float32 N×K condition,
        # in the type the model takes
        b.op("Cast", ["condition"], out=src_cond.name, to=src_cond.type.tensor_type.elem_type)
        g.input.remove(src_cond)
        g.input.insert(1, helper.make_tensor_value_info("condition", TensorProto.FLOAT, ["N", _dims(src_cond)[1]]))
    del g.output[:]
    for spec in card.outputs:
        g.output.append(helper.make_tensor_value_info(spec.name, TensorProto.UINT8 if spec.dtype == "uint8"
                                                      else TensorProto.FLOAT, spec.shape))
    del g.value_info[:]  # the model's own shapes may fix the batch at 1; ONNX Runtime infers them again
    nodes = list(g.node)
    del g.node[:]
    feeds = {src_in.name, *([src_cond.name] if src_cond is not None else [])}
    pre = next(i for i, n in enumerate(b.nodes) if n.output[0] == src_in.name) + 1  # the nodes that feed the model
    before = b.nodes[:pre] + [n for n in b.nodes[pre:] if n.output[0] in feeds]
    g.node.extend(before + nodes + [n for n in b.nodes[pre:] if n.output[0] not in feeds])
    g.initializer.extend(b.consts)
    return with_card(m, card, path)


def _filter_outputs(b: Builder, m: onnx.ModelProto, enc: Encoding, path: Path) -> None:
    if len(m.graph.output) != 1:
        raise BiasMirrorError(f"a filter should have one output; this one has {len(m.graph.output)} "
                              f"({', '.join(o.name[len(PREFIX):] for o in m.graph.output)})", path)
    out = m.graph.output[0]
    dims = _dims(out)
    if out.type.tensor_type.HasField("shape") and len(dims) != 4:  # ORT's type inference said only "Transpose"
        raise BiasMirrorError(f"its output '{out.name[len(PREFIX):]}' has shape {dims}, not a batch of images: a filter "
                              "gives back faces (a classifier is adopted with --kind classifier)", path)
    y = b.op("Cast", [out.name], to=TensorProto.FLOAT)
    if enc.layout == "NCHW":
        y = b.op("Transpose", [y], perm=[0, 2, 3, 1])
    if enc.order == "BGR":
        y = b.op("Gather", [y, b.const(np.array([2, 1, 0], np.int64))], axis=3)
    # a float output is mapped back from its range whatever the input: a uint8-input filter's [0, 1] output, taken
    # for 0..255, had turned every face black
    if m.graph.output[0].type.tensor_type.elem_type != TensorProto.UINT8:
        y = b.op("Add", [b.op("Mul", [y, b.const(np.float32(enc.std))]), b.const(np.float32(enc.mean))])
        y = b.op("Mul", [b.op("Sub", [y, b.const(np.float32(enc.lo))]), b.const(np.float32(255 / (enc.hi - enc.lo)))])
    y = b.op("Round", [b.op("Clip", [y, b.const(np.float32(0)), b.const(np.float32(255))])])
    b.op("Cast", [y], out="filtered", to=TensorProto.UINT8)


# --- checking it on faces -------------------------------------------------------------

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


def path_to_output(model: onnx.ModelProto, head: Head) -> tuple[str, list[str]]:
    """The graph output the head's logits reach through TO_OUTPUT ops alone (a Softmax or Sigmoid, reshapes, casts),
    and those ops, in order. Where the logits are an output themselves and go on to another (a model giving both
    its logits and its probabilities, in either order), the last one on the path: the model's own probabilities,
    which the wrapped classifier's are checked against. ("", []) where the path reaches no output."""
    takers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            takers.setdefault(i, []).append(n)
    outputs = {o.name for o in model.graph.output}
    name, ops, reached = head.logits, [], ("", [])
    while True:
        if name in outputs:
            reached = (name, list(ops))
        after = [n for n in takers.get(name, []) if n.op_type in TO_OUTPUT]
        if len(after) != 1:
            return reached
        ops.append(after[0].op_type)
        name = after[0].output[0]


def as_probs(y: np.ndarray, k: int, ops: Sequence[str]) -> np.ndarray | None:
    """The model's own output as probabilities of its K labels: itself where its graph ends in a Sigmoid (one
    output) or a Softmax, else taken for logits. Told from the graph, not from the values: a raw logit can lie in
    [0, 1] on every face."""
    y = y.reshape(len(y), -1).astype(np.float64)
    if y.shape[1] != max(k, 1):
        return None
    if k == 1:
        p = y[:, 0] if "Sigmoid" in ops else 1 / (1 + np.exp(-y[:, 0]))
        return np.stack([1 - p, p], 1)
    if "Softmax" in ops:
        return y
    e = np.exp(y - y.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def cam_mismatch(probs: np.ndarray, cam: np.ndarray, head: Head) -> float:
    """How far the CAM's grid mean plus the bias is from the head's output, recovered from ``probs`` (log-odds
    against the first label), relative to that output's spread; faces at a saturated probability are left out."""
    p = np.clip(probs.astype(np.float64), 1e-12, 1)
    ok = (p > 1e-5).all(1)
    if not ok.any():
        return float("nan")
    means = cam.astype(np.float64).mean((2, 3))
    if len(head.weight) == 1:
        want, got = np.log(p[:, 1] / p[:, 0]), means[:, 1] + head.bias[0]
    else:
        want = np.log(p[:, 1:] / p[:, :1])
        got = (means[:, 1:] + head.bias[1:]) - (means[:, :1] + head.bias[:1])
    err = np.abs(want - got)[ok]
    return float(err.max() / max(1.0, np.abs(want[ok]).max()))


def cut_head(model: onnx.ModelProto, head: Head, dtype: np.dtype) -> onnx.ModelProto:
    """The model's own nodes from the pooled features to the head's output, as a model of its own."""
    needed, nodes = {head.logits}, []
    for n in reversed(model.graph.node):
        if needed & set(n.output):
            nodes.insert(0, n)
            needed |= {i for i in n.input if i and i != head.pooled}
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info(
        head.pooled, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), None)], [helper.make_empty_tensor_value_info(
            head.logits)], [i for i in model.graph.initializer if i.name in needed])
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)


def gradient_check(chosen: Trial, head: Head, model: onnx.ModelProto, src: Path, faces: np.ndarray) -> dict:
    """The in-graph gradient of each class score with respect to the pooled features, against central differences of
    the model's own head (cut out of its graph) along a random direction per face."""
    probe = onnx.ModelProto()
    probe.CopyFrom(chosen.wrapped)
    for name in ("bm/grad", PREFIX + head.pooled):
        probe.graph.output.append(helper.make_empty_tensor_value_info(name))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    grad, pooled = sess.run(["bm/grad", PREFIX + head.pooled], {"image": faces})
    try:
        part = ort.InferenceSession(cut_head(model, head, pooled.dtype).SerializeToString(),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own kinds
        raise BiasMirrorError(f"its head could not be cut out of the graph to check the gradient: "
                              f"{str(exc).splitlines()[0][:300]}", src) from exc
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(pooled.shape).astype(np.float32)
    rms = np.sqrt((pooled.reshape(len(pooled), -1) ** 2).mean(1)).reshape(-1, *[1] * (pooled.ndim - 1))
    rels = []
    for h in GRAD_STEPS:
        delta = (direction * h * rms).astype(pooled.dtype)
        up, down = (part.run([head.logits], {head.pooled: pooled + s * delta})[0].reshape(len(faces), -1).astype(np.float64)
                    for s in (1, -1))
        numeric = (up - down) / 2
        analytic = np.einsum("nkc,nc->nk", grad.astype(np.float64), delta.reshape(len(faces), -1).astype(np.float64))
        rels.append(np.abs(numeric - analytic) / np.maximum(np.maximum(np.abs(numeric), np.abs(analytic)), 1e-12))
    # Per face and class, the step that rounding and curvature spoil least: a head whose outputs barely move (a
    # saturated sigmoid) loses its difference to float32 rounding at small steps, a curved one its accuracy at
    # large steps; a wrong derivative is wrong at every step.
    rel = np.min(rels, axis=0)
    return {"median_rel_error": float(np.median(rel)), "p90_rel_error": float(np.quantile(rel, 0.9)),
            "max_rel_error": float(rel.max()), "n": int(rel.size), "steps": list(GRAD_STEPS)}


def sign_test(n: int, k: int) -> float:
    """P(X ≥ k) for X ~ Binomial(n, 1/2): exact, the one-sided sign test of k successes in n (SciPy's: a sum of
    big-integer binomial terms took 17 s at n = 20,000)."""
    from scipy.stats import binomtest

    return float(binomtest(max(k, 0), n, 0.5, alternative="greater").pvalue) if n else 1.0


def label_check(probs: np.ndarray, genders: list[str | None], labels: list[str]) -> dict | None:
    """The label order on the faces with a gender label: accuracy with ``labels`` as given and swapped (a face given
    female and male alike is neither right nor wrong), and ``order``: "confirmed" or "looks swapped" where the sign
    test shows that order better (p < LABEL_ORDER_P), "not confirmed" where it shows neither, "not told apart" where
    the outputs do not separate the faces (P(female) nearly the same on all, or every face, women and men, called the
    same): then no order is better, and accuracy either way is only the share of one gender."""
    if not {"female", "male"} <= set(labels):
        return None
    known = [i for i, g in enumerate(genders) if g in ("female", "male")]
    if not known:
        return None
    f, m = labels.index("female"), labels.index("male")
    pf, pm = probs[known, f].astype(np.float64), probs[known, m].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = pf / (pf + pm)  # P(female), of the two
    finite = np.isfinite(q)
    decided = finite & (np.abs(q - 0.5) > TIE)
    said = np.where(q > 0.5, "female", "male")
    truth = np.array([genders[i] for i in known])
    n, d = len(known), int(decided.sum())
    right = int((decided & (said == truth)).sum())
    swapped = d - right
    out: dict = {"n": n, "ties": n - d, "accuracy": right / n, "accuracy_labels_swapped": swapped / n,
                 "p_female_range": [float(q[finite].min()), float(q[finite].max())] if finite.any() else None}
    one_call = len(set(said[decided])) == 1 and len(set(truth[decided])) > 1
    if len(set(truth)) < 2:  # one face, or faces of one gender: no spread or call is expected to tell anything
        out["order"] = "too few faces"
        return out
    if not finite.any() or np.ptp(q[finite]) < MIN_P_SPREAD or d == 0 or one_call:
        out["order"] = "not told apart"
        out["calls"] = str(said[decided][0]) if one_call else None
        return out
    out["p_right_better"], out["p_swapped_better"] = sign_test(d, right), sign_test(d, swapped)
    out["order"] = ("looks swapped" if out["p_swapped_better"] < LABEL_ORDER_P else
                    "confirmed" if out["p_right_better"] < LABEL_ORDER_P else "not confirmed")
    return out


def label_verdict(labelled: dict, labels: list[str], force: bool, src: Path, echo: Callable[[str], None]) -> None:
    """Refuse (unless ``force``) a label order shown wrong, or outputs that do not tell the faces apart; say where the
    order could not be confirmed either way, and note in ``labelled`` (the card's record) what was written."""
    given, n, order = ",".join(labels), labelled["n"], labelled["order"]
    if order == "too few faces":  # `--n 1` had been told its good model does not tell faces apart
        text = (f"the {n} labelled face(s) it was checked on are all of one gender: the order {given} cannot be "
                "checked; give more faces with --n (or --dataset)")
        if not force:
            raise BiasMirrorError(f"{text} (--force writes it anyway)", src)
        echo(f"warning: {text}; written as --force asks")
        labelled["note"] = "checked on faces of one gender only: the label order was not checked; written with --force"
        return
    if order == "not told apart":
        lo_hi = labelled["p_female_range"]
        if labelled["calls"]:
            how = f"it calls every face it decides {labelled['calls']}, women and men alike"
        elif lo_hi is None:
            how = f"its P(female) is not a number on any of the {n} labelled faces"
        elif lo_hi[1] - lo_hi[0] < 1e-4:
            how = f"it gives every one of the {n} labelled faces P(female) {lo_hi[0]:.4f}"
        else:
            how = f"its P(female) lies between {lo_hi[0]:.4f} and {lo_hi[1]:.4f} on all {n} labelled faces"
        text = (f"its outputs do not tell these faces apart: {how}, so no order of --labels is better than another "
                f"and the order {given} cannot be checked. Is the model untrained, or are its inputs read wrongly? "
                "Check --range, --mean, --std and --channels")
        if not force:
            raise BiasMirrorError(f"{text} (--force writes it anyway)", src)
        echo(f"warning: {text}; written as --force asks")
        labelled["note"] = f"its outputs do not tell the faces apart ({how}): the label order was not checked; " \
                           "written with --force"
        return
    ties = f", {labelled['ties']} called neither" if labelled["ties"] else ""
    echo(f"on {n} labelled faces: {labelled['accuracy']:.1%} right with --labels {given}, "
         f"{labelled['accuracy_labels_swapped']:.1%} with them swapped{ties}")
    called = n - labelled["ties"]
    if order == "looks swapped":
        text = (f"with --labels {given} it is right on {labelled['accuracy']:.1%} of {n} labelled faces, swapped on "
                f"{labelled['accuracy_labels_swapped']:.1%}{ties} (the swapped order better at p = "
                f"{labelled['p_swapped_better']:.2g}, exact sign test on the {called} faces it calls)")
        if not force:
            raise BiasMirrorError(f"{text}: give them in the other order (or check --range, --mean, --std; --force "
                                  "writes it anyway)", src)
        labelled["note"] = "the swapped order is better on these faces; written as given with --force"
    elif order == "not confirmed":
        echo(f"warning: neither order of the labels is shown better on these {called} faces (sign test: p = "
             f"{labelled['p_right_better']:.2g} for --labels {given}, {labelled['p_swapped_better']:.2g} swapped; "
             f"{LABEL_ORDER_P:g} needed): the model may be weak, its inputs read wrongly (a model right on about "
             "half the faces either way usually is: check --range, --mean, --std and --channels), or the faces few "
             "(a larger --n). It is written with the labels as given, and its card says the order was not confirmed")
        labelled["note"] = (f"the label order could not be confirmed on these {called} faces: neither order is shown "
                            f"better (sign test, p < {LABEL_ORDER_P:g}); written as given")


# --- the command ---------------------------------------------------------------------------------------

def _triple(text: str) -> tuple[float, float, float]:
    """Three finite numbers, R,G,B: `--std=nan,1,1` wrote a filter that blacked out every face (status 0), and
    `--mean=inf,0,0` had a classifier refused for a CAM mismatch."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} should be three numbers, R,G,B, e.g. 0.485,0.456,0.406")
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} should be three finite numbers (no inf or nan), R,G,B")
    return values  # type: ignore[return-value]


def _spreads(text: str) -> tuple[float, float, float]:
    """--std: three spreads above 0. A zero has nothing to divide by, and a negative one turns the channel's
    values upside down: the model is fed a negative of the face."""
    values = _triple(text)
    if not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each spread must be above 0, e.g. 0.229,0.224,0.225")
    return values


MAX_SIZE = 1024  # face size: `--size 100000` ended in an OpenCV allocation traceback; the trainers' largest is 512


@dataclass(frozen=True)
class Trial:
    """One way of feeding the model, wrapped, carded and run on the faces."""

    enc: Encoding
    card: ModelCard
    wrapped: onnx.ModelProto
    got: list[np.ndarray]  # the wrapped model's outputs on the faces
    model: Filter | Classifier  # the wrapped model, loaded


def adopt(src: str | Path, out: str | Path, kind: str, name: str | None = None, labels: Sequence[str] = ("female", "male"),
          value_range: str = "auto", mean: tuple[float, float, float] = (0, 0, 0), std: tuple[float, float, float] = (1, 1, 1),
          order: str = "RGB", layout: str = "auto", size: int | None = None, method: str = "", dataset: str | None = None,
          n: int = 64, force: bool = False, echo: Callable[[str], None] = print, conditions: Sequence[str] = ()) -> Path:
    """Wrap ``src``, check it on ``n`` faces of ``dataset`` (default: the shared UTKFace copy), and write it with its
    card to ``out``."""
    src = Path(src)
    out = check_output_file(out, "--out")
    if out.resolve() == src.resolve():
        raise BiasMirrorError("the adopted model would overwrite the file it wraps; give another --out", out)
    if any(s == 0 for s in std):
        raise BiasMirrorError("--std has a zero: every channel needs a spread to divide by")
    if kind == "classifier" and len(set(labels)) != len(labels):  # male,male made a card no measure could read
        raise BiasMirrorError(f"--labels {','.join(labels)} names a label twice: give each output its own label")
    model = read_onnx(src, echo)
    src_in, src_cond = model_inputs(model, src)
    check_conditions(src_cond, kind, list(conditions), src)
    open_k = src_cond is not None and _dims(src_cond)[1] is None
    if open_k:  # its K is the --conditions given, fed one-hot
        src_cond.type.tensor_type.shape.dim[1].dim_value = len(conditions)
    layout = layout_of(src_in, layout, src)
    size = size_of(src_in, layout, size, src)
    in_dtype = onnx.helper.tensor_dtype_to_np_dtype(src_in.type.tensor_type.elem_type).name
    takes_bytes = in_dtype == "uint8"
    gives_bytes = kind == "filter" and model.graph.output[0].type.tensor_type.elem_type == TensorProto.UINT8
    if takes_bytes:
        value_range = uint8_input_range(value_range, mean, std, kind == "filter" and not gives_bytes, src)
    if kind == "classifier" and value_range == "auto":
        raise BiasMirrorError("give --range (and --mean/--std where it was trained normalised): a classifier's "
                              "input range cannot be told from its output", src)
    head = find_head(model.graph, src) if kind == "classifier" else None
    if head is not None and len(labels) != max(2, len(head.weight)):
        raise BiasMirrorError(f"its head has {len(head.weight)} output(s): give {max(2, len(head.weight))} --labels "
                              "in the order of its outputs (one output: the label its sigmoid gives last)", src)
    faces, genders, where = sample_faces_or_default(dataset, n, size)
    training = {"dataset": "unknown (made elsewhere, not by Bias Mirror)",
                "adopted": {"from": src.name, "sha256": file_hash(src)},
                "command": "python " + " ".join(shlex.quote(a) for a in sys.argv), **provenance()}
    what = method or "made elsewhere; wrapped by `train adopt` (uint8 faces in, its own normalisation inside)"
    name = name or out.stem
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".adopt-", dir=out.parent) as tmp:

        def trial(r: str) -> Trial:
            enc = Encoding(*RANGES[r], mean, std, order, layout, takes_bytes, gives_bytes)
            if kind == "filter":
                card = filter_card(name, size, "face->filtered", what, training, {}, list(conditions) or None)
            else:
                grid = cam_grid(wrap(model, kind, enc, size, head, classifier_card(
                    name, size, list(labels), ("h", "w"), what, training, {}), src), faces[:1], src)  # type: ignore[arg-type]
                card = classifier_card(name, size, list(labels), grid, f"{what}; its map: {head.method}",  # type: ignore[union-attr]
                                       training, {}, head.formula)  # type: ignore[union-attr]
            path = Path(tmp) / f"{r.replace(',', '_')}.onnx"
            proto = wrap(model, kind, enc, size, head, card, src)
            onnx.save(proto, str(path))
            try:
                try:
                    wrapped = load_model(path, kind, RuntimeConfig(provider="cpu"))
                except BiasMirrorError as exc:  # said of the file the user gave, not of a trial copy
                    raise BiasMirrorError(f"wrapped as a {kind} of {size}×{size} faces, it does not fit: "
                                          f"{exc.message}", src) from exc
                return Trial(enc, card, proto, run_wrapped(wrapped, faces, src), wrapped)  # type: ignore[arg-type]
            except BiasMirrorError as exc:
                # its K is ours (--conditions), and its graph may take only another: said so where the model alone
                # fails with that K, not for any failure of a model whose K is open (a batch fixed at 1, a size)
                if open_k and not takes_k(src, layout, size, len(conditions)):
                    raise open_k_refused(exc, list(conditions), src) from exc
                raise

        if kind == "filter":
            # every range is tried, a given one too: read with the wrong one a filter's output is far from the face.
            # Of a uint8 input, its float output's (one taken for 0..255 had turned every face black); uint8 in and
            # out, no range is in play
            tried = [value_range] if takes_bytes and gives_bytes else list(RANGES)
            chosen, adopted = filter_checks({r: trial(r) for r in tried}, src, faces, where, echo,
                                            None if value_range == "auto" else value_range, force,
                                            "output" if takes_bytes else "input")
        else:
            chosen = trial(value_range)
            adopted = classifier_checks(chosen, head, model, src, faces, genders, where, list(labels), force, echo)  # type: ignore[arg-type]
        described = chosen.enc.describe(in_dtype, kind == "filter")
        adopted["input"] = described
        adopted.setdefault("range_chosen", "given")
        card = replace(chosen.card, precision="fp16" if fp16_weights(model) else "fp32",
                       training={**training, "adopted": {**training["adopted"], **adopted}})
        save(with_card(chosen.wrapped, card, src), out)  # the graph checked, with the checks in its card
    load_model(out, kind, RuntimeConfig(provider="cpu"))  # as every user of it will
    echo(f"wrote {out}: {card.summary()}; input taken as {described}")
    echo("it has no per-group figures yet: measure them with `python main.py audit --dataset KIND:PATH "
         f"--{kind} {out}" + (" --classifier …" if kind == "filter" else "") + "`")
    return out


def uint8_input_range(value_range: str, mean: tuple[float, float, float], std: tuple[float, float, float],
                      output_range: bool, src: Path) -> str:
    """The --range of a model whose input is uint8: 0..255 as the faces are, which it normalises inside, so neither
    --range nor --mean/--std has anything to apply to (--mean/--std had been applied by the check alone, and the
    difference blamed on the head); where it gives a float image (``output_range``), --range is that output's."""
    if tuple(mean) != (0, 0, 0) or tuple(std) != (1, 1, 1):
        raise BiasMirrorError("its input is uint8, which holds 0..255, and it normalises inside: --mean and --std "
                              "have nothing to apply to; leave them out", src)
    if output_range:
        return value_range
    if value_range not in ("auto", "byte"):
        raise BiasMirrorError("its input is uint8, which holds 0..255: --range must be byte (or left out)", src)
    return "byte"


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


def check_conditions(src_cond: onnx.ValueInfoProto | None, kind: str, conditions: list[str], src: Path) -> None:
    """A second input is a filter's condition, and ``--conditions`` names each of its entries."""
    if src_cond is None:
        if conditions:
            raise BiasMirrorError("--conditions names a conditional filter's conditions, and this model takes no "
                                  "condition input", src)
        return
    k = _dims(src_cond)[1]
    if kind != "filter":
        raise BiasMirrorError(f"it takes a second input, '{src_cond.name}' [N, {k or 'K'}]: only a filter may take a "
                              "condition", src)
    if k is None:  # exported with the condition's axis open: --conditions says how many there are
        if not conditions or len(set(conditions)) != len(conditions):
            raise BiasMirrorError(f"its second input '{src_cond.name}' [N, K] looks like a condition whose K is left "
                                  "open: name its entries, in order and each once, with --conditions (e.g. "
                                  "--conditions female,male)", src)
        return
    if len(conditions) != k or len(set(conditions)) != k:
        raise BiasMirrorError(f"its second input '{src_cond.name}' [N, {k}] looks like a condition: name its {k} "
                              f"entries, in order and each once, with --conditions (e.g. --conditions "
                              f"{','.join(f'c{i}' for i in range(k))})" + (f"; {len(conditions)} given" if conditions else ""),
                              src)


def cam_grid(wrapped: onnx.ModelProto, face: np.ndarray, src: Path) -> tuple[int, int]:
    """The CAM grid (h, w) of the head's feature map, by running the wrapped graph once."""
    try:
        sess = ort.InferenceSession(wrapped.SerializeToString(), providers=["CPUExecutionProvider"])
        cam = sess.run(["cam"], {"image": face})[0]
    except Exception as exc:
        raise BiasMirrorError(f"the wrapped classifier does not run: {str(exc).splitlines()[0][:300]}", src) from exc
    return int(cam.shape[2]), int(cam.shape[3])


def _interval(name: str) -> str:
    lo, hi = RANGES[name]
    return f"[{lo:g}, {hi:g}]"


def _largest_change(trial: Trial, faces: np.ndarray) -> float:
    """How far the filter, fed as ``trial`` feeds it, moves the faces (mean grey levels), under the condition that
    moves them most: a conditional filter whose first condition does nothing had been judged on that one alone, every
    range "unchanged", and the first range taken."""
    model = trial.model
    if not getattr(model, "condition_labels", None):
        return float(np.abs(trial.got[0].astype(np.int16) - faces).mean())
    return max(float(np.abs(model.apply(faces, model.condition_rows(label, len(faces))).astype(np.int16) - faces).mean())
               for label in model.condition_labels)


def filter_checks(trials: dict[str, Trial], src: Path, faces: np.ndarray, where: str,
                  echo: Callable[[str], None], given: str | None = None, force: bool = False,
                  side: str = "input") -> tuple[Trial, dict]:
    """The range whose output lies nearest the faces (or the ``given`` one, refused unless ``force`` where another
    puts the output much nearer), checked against the model run alone. A range under which the filter leaves the
    faces as they were is no evidence of the right one where another changes them: then the range must be given.
    ``side``: whose range the trials differ in, its input's or (a uint8 input's) its output's."""
    shape = next(iter(trials.values())).got[0].shape
    if shape != faces.shape:
        raise BiasMirrorError(f"its output is {shape[1]}×{shape[2]}×{shape[3]}, not a face like the "
                              f"{faces.shape[1]}×{faces.shape[2]}×3 one it was given", src)
    changes = {r: _largest_change(t, faces) for r, t in trials.items()}
    unchanged = sorted(r for r, c in changes.items() if c < UNCHANGED_GREY)
    changed = sorted((r for r in changes if r not in unchanged), key=changes.__getitem__)
    if given is None and unchanged and changed:  # which is its range, the one of no effect or the other? It cannot tell
        raise BiasMirrorError(f"with --range {unchanged[0]} {_interval(unchanged[0])} it leaves the faces as they were "
                              f"({changes[unchanged[0]]:.1f} grey levels on average), with --range {changed[0]} "
                              f"{_interval(changed[0])} it changes them ({changes[changed[0]]:.1f}): either it does "
                              f"nothing, or {unchanged[0]} is not its range and an audit would measure nothing. Give "
                              f"--range: the range of the {side}s it was trained on", src)
    # compared with the ranges it changes the faces under: one of no effect says nothing of the right one (the shadow
    # lift's right range, 32.6 grey levels from the faces, had been refused for [0, 1]'s 0.0)
    nearest = min([r for r in changes if r in changed or r == given] or list(changes), key=changes.__getitem__)
    if given is not None and changes[given] > changes[nearest] + WRONG_RANGE_GREY and not force:
        raise BiasMirrorError(f"with --range {given} its output lies {changes[given]:.1f} grey levels from the face on "
                              f"average, with --range {nearest} {changes[nearest]:.1f}: the faces it gave back are not "
                              f"faces. Leave --range out to take the nearest, or give --force to write it as given",
                              src)
    if given in unchanged and changed:  # as the auto choice would have asked: said, and written as given
        echo(f"warning: with --range {given} {_interval(given)} it leaves the faces as they were, with --range "
             f"{changed[0]} {_interval(changed[0])} it changes them ({changes[changed[0]]:.1f} grey levels): if "
             f"{given} is not the range it was trained on, an audit of it measures nothing")
    best = given or nearest
    chosen, adopted = trials[best], {}
    if len(changes) > 1:
        echo(f"{side} range, by how far the output lies from the face (mean grey levels): "
             + ", ".join(f"{r} {_interval(r)} {c:.1f}" for r, c in changes.items())
             + (f": {best} chosen" if given is None else f": {best} as given"))
        how = f"given: {_interval(best)}" if given else f"auto: {_interval(best)}, whose output lies nearest the input"
        adopted["range_chosen"] = f"{how} (mean change in grey levels: " \
            + ", ".join(f"{_interval(r)} {c:.1f}" for r, c in changes.items()) + ")"
    model: Filter = chosen.model  # type: ignore[assignment]
    worst, by_condition = 0, {}
    for label in model.condition_labels or [None]:  # every condition, each against the model run alone on it
        rows = model.condition_rows(label, len(faces))
        got = model.apply(faces, rows)
        alone = chosen.enc.decode(run_alone(src, chosen.enc.encode(faces), rows)[0])
        worst = max(worst, int(np.abs(got.astype(np.int16) - alone).max()))
        if label is not None:
            by_condition[label] = round(float(np.abs(got.astype(np.int16) - faces).mean()), 2)
    if worst > MAX_FILTER_GREY:
        raise BiasMirrorError(f"the wrapped filter differs from the model run alone by {worst} grey levels "
                              f"(limit {MAX_FILTER_GREY})", src)
    adopted["checks"] = {"faces": where, "mean_change_grey": round(changes[best], 2), "max_grey_vs_model_alone": worst}
    if by_condition:
        adopted["checks"]["mean_change_grey_by_condition"] = by_condition
        echo("mean change per condition (grey levels): " + ", ".join(f"{k} {v:.1f}" for k, v in by_condition.items()))
    return chosen, adopted


def classifier_checks(chosen: Trial, head: Head, model: onnx.ModelProto, src: Path, faces: np.ndarray,
                      genders: list[str | None], where: str, labels: list[str], force: bool,
                      echo: Callable[[str], None]) -> dict:
    """The wrapped classifier against the model run alone, its map against its head, and its label order."""
    probs, cam = chosen.got
    checks: dict = {"faces": where}
    # the output the head's path ends in, not the first: a model giving (probabilities, logits) had its
    # probabilities taken for logits and was refused
    output, ops = path_to_output(model, head)
    names = [o.name for o in model.graph.output]
    checks["model_output_compared"] = output or names[0]
    own = run_alone(src, chosen.enc.encode(faces))[names.index(output) if output else 0]
    alone = as_probs(own, len(head.weight), ops)
    if alone is not None:
        checks["max_dprob_vs_model_alone"] = float(np.abs(probs - alone).max())
        if checks["max_dprob_vs_model_alone"] > MAX_DPROB:
            squash = "sigmoid" if len(head.weight) == 1 else "softmax"
            raise BiasMirrorError(f"the wrapped classifier's probabilities differ from the model's own output by "
                                  f"{checks['max_dprob_vs_model_alone']:.3g} (limit {MAX_DPROB}): its output is not the "
                                  f"{squash} of the head found", src)
    if head.grad_cam:
        checks["gradient"] = gradient_check(chosen, head, model, src, faces)
        echo(f"Grad-CAM's gradient against central differences of the head on {len(faces)} faces: relative error "
             f"median {checks['gradient']['median_rel_error']:.2g}, 90th percentile {checks['gradient']['p90_rel_error']:.2g} "
             f"(the best of steps {', '.join(map(str, GRAD_STEPS))} of the pooled features' RMS)")
        if not checks["gradient"]["median_rel_error"] <= MAX_GRAD_ERROR:
            raise BiasMirrorError(f"the gradient through its head, computed in the graph for Grad-CAM, differs from the "
                                  f"head's own central differences (median relative error "
                                  f"{checks['gradient']['median_rel_error']:.3g}, limit {MAX_GRAD_ERROR})", src)
    else:
        checks["cam_mismatch"] = cam_mismatch(probs, cam, head)
        if not checks["cam_mismatch"] <= MAX_CAM_MISMATCH:
            raise BiasMirrorError(f"the CAM's grid mean does not give back the head's output (mismatch "
                                  f"{checks['cam_mismatch']:.3g}): the head found is not the one that decides", src)
    labelled = label_check(probs, genders, labels)
    if labelled is not None:
        checks["labels"] = labelled
        label_verdict(labelled, labels, force, src, echo)
    elif {"female", "male"} <= set(labels):
        # faces without a gender label (a plain folder): a swapped order had been written without a word, every
        # P(female) it gives then 1 − the truth
        echo(f"warning: none of the faces it was checked on has a gender label, so the order --labels "
             f"{','.join(labels)} was not checked (nor --range, --mean, --std against right answers): give labelled "
             "faces with --dataset (utkface, celeba, fairface, or a folder with a labels CSV)")
        checks["labels"] = {"n": 0, "order": "not checked",
                            "note": "no face it was checked on had a gender label: the label order was not checked"}
    return {"checks": checks}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an ONNX model made elsewhere: a filter (image → image) or a classifier "
                                 "(image → class scores, with a global average pool, then linear layers: CAM for "
                                 "one, Grad-CAM where activations lie between them)")
    p.add_argument("--kind", required=True, choices=["filter", "classifier"])
    p.add_argument("--out", required=True, help="where to write the adopted model (.onnx)")
    p.add_argument("--name", help="its name in the app and the reports (default: --out's stem)")
    p.add_argument("--labels", default="female,male",
                   help="a classifier's labels in the order of its outputs (default female,male); one output: "
                        "NEGATIVE,POSITIVE, P(POSITIVE) being its sigmoid, or the output itself where its graph "
                        "ends in a Sigmoid")
    p.add_argument("--range", dest="value_range", default="auto", choices=["auto", *RANGES],
                   help="what 0..255 maps onto (a filter's output maps back): symmetric [-1, 1] (GANs' tanh), unit "
                        "[0, 1] (ImageNet-style, with --mean/--std), byte [0, 255]; auto (filters only): the one whose "
                        "output lies nearest the face. A uint8 input takes 0..255 as it is: then --range is a "
                        "filter's float output's")
    p.add_argument("--mean", type=_triple, default=(0.0, 0.0, 0.0), help="per-channel mean subtracted after --range, "
                   "RGB, e.g. 0.485,0.456,0.406")
    p.add_argument("--std", type=_spreads, default=(1.0, 1.0, 1.0), help="per-channel spread divided by after --mean, "
                   "RGB, e.g. 0.229,0.224,0.225")
    p.add_argument("--channels", dest="order", default="RGB", choices=["RGB", "BGR"], help="its colour order")
    p.add_argument("--layout", default="auto", choices=["auto", "NCHW", "NHWC"],
                   help="its tensor layout (auto: from the axis of length 3)")
    p.add_argument("--size", type=int_at_least(8, MAX_SIZE),
                   help=f"the face size in px (8 to {MAX_SIZE}), where its input size is open")
    p.add_argument("--method", default="", help="what it is, for the card (e.g. 'pix2pix, our 2025 beauty filter')")
    p.add_argument("--dataset", default=None,
                   help="KIND:PATH of faces to check the wrapping on (default: the shared UTKFace copy, "
                        f"{DEFAULT_DATASET}); labelled ones also check a classifier's --labels")
    p.add_argument("--n", type=positive_int, default=64, help="how many faces to check on (default 64)")
    p.add_argument("--force", action="store_true", help="write a classifier whose labels look swapped, or whose "
                                                        "outputs do not tell the faces apart, or a filter whose given "
                                                        "--range puts its output far from the faces")
    p.add_argument("--conditions", default="", help="a conditional filter's (one that takes a second input, a batch "
                   "of K-vectors): the names of its K conditions in input order, e.g. female,male; each is fed one-hot, "
                   "and run, audit and the app choose one with --condition")


def main(args: argparse.Namespace) -> int:
    given = given_options(args)
    # what only the other kind uses was silently dropped
    unused = {"filter": [("labels", "--labels names a classifier's outputs")],
              "classifier": [("conditions", "--conditions names a conditional filter's inputs")]}[args.kind]
    for dest, why in unused:
        if dest in given:
            raise BiasMirrorError(f"{why}, and this is --kind {args.kind}: leave it out")
    labels = [s.strip() for s in args.labels.split(",") if s.strip()]
    adopt(args.model, args.out, args.kind, args.name, labels, args.value_range, args.mean, args.std, args.order,
          args.layout, args.size, args.method, args.dataset, args.n, args.force,
          conditions=[c.strip() for c in args.conditions.split(",") if c.strip()])
    return 0
