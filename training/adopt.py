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
  way, and refused (unless forced) where another puts the output much nearer, unless it is one adopt would have
  asked between. Where another range gives back other faces about as near (within 15 grey levels or 3.5 times as
  far: a colour filter, a strong darkener, a clamped contrast), the output cannot tell its range: then it must be
  given, unless that range reads the output wrongly where the nearest does not (much more of the raw output past its
  bounds, as tanh's read as [0, 1]; or flat faces, as [0, 1]'s read as [0, 255]: a filter's own clamp lands on its
  bounds, not past them). The card says how it was chosen.
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
- A classifier's ``--labels`` name female and male, in any case (FairFace writes "Female", "Male"; the card has them
  in lower case, as every command looks them up): labels without them are refused, as every command measures P(female).
- Where the faces are labelled, the classifier's accuracy is measured with ``--labels`` as given and swapped:
  labels in the wrong order are the commonest mistake, and an order is refused where the swapped one is shown better
  (an exact sign test). Where neither is, it is written as given and its card says the order was not confirmed;
  outputs that do not tell the faces apart (an untrained model, inputs read wrongly) are refused as such.
- A file that carries a Bias Mirror card is refused where run, the audit and the app take it as it is; where they
  refuse its card, adopt says why and wraps it as it would a file without one, the card it writes replacing the old.

This module is the command: its options, and the steps in order. Its parts: reading the model (adopt_read), the
encoding of its pixels (adopt_encoding), the wrapper graph (adopt_wrap, with the classifier's head from adopt_head),
running it on faces (adopt_run), and the checks: a filter's (adopt_filter_checks), a classifier's
(adopt_classifier_checks) and its label order's (adopt_labels).
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import onnx
from onnx import TensorProto

from inference.arg_checks import check_output_file, int_at_least, positive_int
from inference.card import classifier_card, filter_card
from inference.defaults import DEFAULT_DATASET  # the shared UTKFace copy, as the benches take it
from inference.errors import BiasMirrorError
from inference.file_identity import file_hash
from inference.models import load_model
from inference.runtime import RuntimeConfig
from training.adopt_classifier_checks import classifier_checks
from training.adopt_encoding import RANGES, Encoding
from training.adopt_filter_checks import filter_checks
from training.adopt_head import find_head
from training.adopt_labels import gender_labels
from training.adopt_read import (check_conditions, dims_of, layout_of, model_inputs, read_onnx, size_of,
                                 uint8_input_range)
from training.adopt_run import Trial, cam_grid, open_k_refused, run_wrapped, sample_faces_or_default, takes_k
from training.adopt_wrap import wrap
from training.fp16 import fp16_weights, save, with_card
from training.provenance import provenance
from training.resume import given_options


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


def _check_filter_size(model: onnx.ModelProto, src_in: onnx.ValueInfoProto, layout: str, size: int,
                       src: Path) -> None:
    """A filter gives back a face of the size it takes: an upscaler's output, checked only once wrapped, had been
    refused with the shapes of a trial copy's graph and card. Its output's size, its input fixed at ``size``; not
    refused where shape inference cannot tell (the faces are checked later)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    axes = (2, 3) if layout == "NCHW" else (1, 2)
    image = next(i for i in probe.graph.input if i.name == src_in.name)
    for a in axes:
        image.type.tensor_type.shape.dim[a].dim_value = size
    try:
        dims = dims_of(onnx.shape_inference.infer_shapes(probe).graph.output[0])
    except Exception:  # noqa: BLE001 - an op shape inference does not know: the wrapped model is checked on faces
        return
    h, w = (dims[a] if len(dims) == 4 else None for a in axes)
    if h is not None and w is not None and (h, w) != (size, size):
        raise BiasMirrorError(f"wrapped as a filter of {size}×{size} faces, it does not fit: its output is {h}×{w}, "
                              f"not a face like the {size}×{size} one it is given ([None, {h}, {w}, 3] in the graph "
                              "as wrapped): a filter gives back the face it takes, at its size", src)


MAX_SIZE = 1024  # face size: `--size 100000` ended in an OpenCV allocation traceback; the trainers' largest is 512


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
    if kind == "classifier":
        labels = gender_labels(labels, src, echo)
    model = read_onnx(src, echo)
    src_in, src_cond = model_inputs(model, src)
    check_conditions(src_cond, kind, list(conditions), src)
    open_k = src_cond is not None and dims_of(src_cond)[1] is None
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
    if kind == "filter":
        _check_filter_size(model, src_in, layout, size, src)
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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an ONNX model made elsewhere: a filter (image → image) or a classifier "
                                 "(image → class scores, with a global average pool, then linear layers: CAM for "
                                 "one, Grad-CAM where activations lie between them)")
    p.add_argument("--kind", required=True, choices=["filter", "classifier"])
    p.add_argument("--out", required=True, help="where to write the adopted model (.onnx)")
    p.add_argument("--name", help="its name in the app and the reports (default: --out's stem)")
    p.add_argument("--labels", default="female,male",
                   help="a classifier's labels in the order of its outputs, female and male among them, in any "
                        "case (default female,male); one output: "
                        "NEGATIVE,POSITIVE, P(POSITIVE) being its sigmoid, or the output itself where its graph "
                        "ends in a Sigmoid")
    p.add_argument("--range", dest="value_range", default="auto", choices=["auto", *RANGES],
                   help="what 0..255 maps onto (a filter's output maps back): symmetric [-1, 1] (GANs' tanh), unit "
                        "[0, 1] (ImageNet-style, with --mean/--std), byte [0, 255]; auto (filters only): the one whose "
                        "output lies nearest the face (where another, reading it rightly, gives other faces about as "
                        "near, adopt asks for it: within 15 grey levels, or 3.5 times as far, more on faces of low "
                        "contrast; on fewer than 4 faces it always asks). A uint8 input takes 0..255 as it is: then "
                        "--range is a filter's float output's")
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
