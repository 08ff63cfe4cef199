"""Give an ONNX model made elsewhere a Bias Mirror card, so that the app, ``run`` and the audit can host it.

    python main.py train adopt FILTER.onnx --kind filter --out my_filter.onnx
    python main.py train adopt CLASSIFIER.onnx --kind classifier --labels female,male --range unit \\
        --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --out my_classifier.onnx
    python main.py train adopt CVAE.onnx --kind filter --range symmetric --conditions female=1,male=0 --out cvae.onnx
    python main.py train adopt DCGAN.onnx --kind generator --range symmetric --out my_generator.onnx

An engineer testing a face filter before it ships, or a researcher auditing a gender classifier, holds an ONNX
file that takes float tensors normalised its own way. The model is not changed: its graph is wrapped so that it
takes and gives what every Bias Mirror model does (uint8 RGB N×H×W×3 faces in; uint8 faces, or ``probs`` and a
raw ``cam``, out), the wrapping is checked on real faces against the model run on its own, and a card that says
the model was made elsewhere is embedded. It has no per-group figures: the audit measures them.

- A conditional filter's card takes a one-hot condition, one entry a named condition (run, the audit and the app
  choose one with --condition). The model may take that row itself (``--conditions female,male``), or, as CVAEs and
  StarGANs are trained, a value for each: a 0/1 scalar (``--conditions female=1,male=0``), an attribute vector
  (``blond=1:0:1,dark=0:1:0``), a label index for an nn.Embedding (``female=0,male=1``). The wrapper maps the
  one-hot row onto it: the row times the K×D table of values, or for an integer input the value of its largest
  entry; each condition is checked against the model run alone with its value.
- A generator (``--kind generator``: a latent N×D, or N×D×1×1 as a DCGAN's z, → an image) is wrapped to take the
  card's N×D float32 latents and give uint8 RGB faces. With no faces to compare its output with, its range is not
  inferred: ``--range`` is required (a DCGAN's tanh: symmetric), and refused where much of its output on latents
  drawn from N(0, 1) lies past that range's bounds, or every face is flat; the wrapped faces are checked against the
  model run alone on the same latents, a batch at a time. A grey output (one channel) is given as three alike, as a
  filter's is. The app, run and the audit do not host generators yet: the Python API does,
  ``load_model(path).generate(z)``.
- Refused before any check: a graph that samples at random (RandomNormalLike and the like: a VAE exported with its
  reparameterisation), naming its nodes, and a --name or --method over the caps of a card's text. A --method over
  200 characters is written once, as the card's method, the command on the card referring to it.

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
- A filter's float output is read back on its input's range, de-normalised by --mean/--std, unless --output-range
  gives its own (a sigmoid's [0, 1] after an ImageNet-normalised input). Its scale is told by where its raw output
  lies, not by how far from the faces it reads (a strong filter lies far read rightly): where it stays within [0, 1]
  and its input is fed otherwise, it may be a sigmoid's, and adopt asks, naming every option to give, unless its
  input's range reads it 20 grey levels nearer; an output much of which lies past a range's bounds (a tanh's, below
  0 on the darker half of a face) is never read on it. A given --output-range is refused where that is so, or where
  its input's range reads it 20 nearer and holds it. Refused unless forced: those, and flat faces. Refused outright:
  NaN or infinite output, an output of other than 3 (or 1, grey) colours, a graph that mixes the faces of a batch.
  Of several outputs, the one image of 3 colours at the face size is taken, and the card names it.
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

import numpy as np
import onnx
from onnx import TensorProto

from inference.arg_checks import check_output_file, int_at_least, positive_int
from inference.card import MAX_FACE_SIZE, MAX_TEXT_CHARS, classifier_card, filter_card, generator_card
from inference.defaults import DEFAULT_DATASET  # the shared UTKFace copy, as the benches take it
from inference.errors import BiasMirrorError
from inference.models import load_model, ort_reason
from inference.program_name import program
from inference.runtime import RuntimeConfig
from training.adopt_classifier_checks import classifier_checks
from training.adopt_encoding import MAX_BATCH, RANGES, Conditions, Encoding
from training.adopt_filter_checks import filter_checks, generator_checks
from training.adopt_head import find_head
from training.adopt_labels import gender_labels
from training.adopt_read import (COLOUR_AXIS, check_conditions, check_deterministic, dims_of, filter_output,
                                 image_layout, image_size, latent_input, layout_of, model_digest, model_inputs,
                                 output_shapes, quantised, read_onnx, size_of, uint8_input_range)
from training.adopt_run import (LATENT_SEED, Trial, alone_session, cam_grid, check_condition_values,
                                conditions_refused, latents, load_trial, run_alone, run_wrapped,
                                sample_faces_or_default, takes_conditions)
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


def _check_filter_size(dims: list[int | None], name: str, layout: str, size: int, src: Path) -> None:
    """A filter gives back a face of the size and colours it takes: an upscaler's output, checked only once wrapped,
    had been refused with the shapes of a trial copy's graph and card, and an RGBA output asked whether its batch
    axis was fixed at 1. ``dims``: its output's shape as shape inference gives it, its input fixed at ``size``."""
    if len(dims) != 4:
        return
    colours = dims[COLOUR_AXIS[layout]]
    if colours not in (3, 1, None):  # one is a grey face, which the wrapper gives as three alike
        alpha = "y[:, :3]" if layout == "NCHW" else "y[..., :3]"
        how = (f"its alpha is no part of a face: re-export it giving the colours alone ({alpha})" if colours == 4
               else "re-export it giving an RGB image")
        raise BiasMirrorError(f"its output '{name}' has {colours} colour channels, not 3 ({dims} in {layout}, its "
                              f"input fixed at {size}×{size}): a filter gives back an RGB face; {how}", src)
    h, w = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
    if h is not None and w is not None and (h, w) != (size, size):
        raise BiasMirrorError(f"wrapped as a filter of {size}×{size} faces, it does not fit: its output is {h}×{w}, "
                              f"not a face like the {size}×{size} one it is given ([None, {h}, {w}, 3] in the graph "
                              "as wrapped): a filter gives back the face it takes, at its size", src)


def _precision(model: onnx.ModelProto) -> str:
    """The arithmetic its card says the model computes in: int8 where it is quantised, fp16 where most of its
    weights are, else fp32."""
    return "int8" if quantised(model) else "fp16" if fp16_weights(model) else "fp32"


def _colour_order_note(order: str) -> str:
    """The colour order adopt cannot check: a BGR-trained warm filter taken as RGB was audited as a cooling one."""
    return (f"its colour order is taken as {order}, as given or by default: no output tells it. A model trained on "
            "images read by OpenCV works in BGR: give --channels BGR" if order == "RGB" else
            f"its colour order is taken as {order}, as given: no output tells it")


# face size: `--size 100000` ended in an OpenCV allocation traceback; the loader refuses a card beyond it alike
MAX_SIZE = MAX_FACE_SIZE


def adopt(src: str | Path, out: str | Path, kind: str, name: str | None = None, labels: Sequence[str] = ("female", "male"),
          value_range: str = "auto", mean: tuple[float, float, float] = (0, 0, 0), std: tuple[float, float, float] = (1, 1, 1),
          order: str = "RGB", layout: str = "auto", size: int | None = None, method: str = "", dataset: str | None = None,
          n: int = 64, force: bool = False, echo: Callable[[str], None] = print, conditions: Sequence[str] = (),
          output_range: str | None = None) -> Path:
    """Wrap ``src``, check it on ``n`` faces of ``dataset`` (default: the shared UTKFace copy; a generator: on ``n``
    latents), and write it with its card to ``out``. ``conditions``: a conditional filter's, names alone (fed
    one-hot) or each NAME=VALUE, the value the model takes for it (numbers separated by ':'). ``output_range``: a
    filter's output's, read on it alone (None: its input's, de-normalised by ``mean``/``std``)."""
    src = Path(src)
    out = check_output_file(out, "--out")
    if out.resolve() == src.resolve():
        raise BiasMirrorError("the adopted model would overwrite the file it wraps; give another --out", out)
    if any(s == 0 for s in std):
        raise BiasMirrorError("--std has a zero: every channel needs a spread to divide by")
    if output_range is not None and kind != "filter":
        raise BiasMirrorError(f"--output-range reads a filter's output; a {kind}'s "
                              + ("is read by --range" if kind == "generator" else "is scores") + ": leave it out", src)
    if kind == "classifier":
        labels = gender_labels(labels, src, echo)
    what = method or ("made elsewhere; wrapped by `train adopt` (float32 latents in, uint8 RGB faces out)"
                      if kind == "generator" else
                      "made elsewhere; wrapped by `train adopt` (uint8 faces in, its own normalisation inside)")
    command = _command(sys.argv, method, echo)
    _check_card_text(kind, name or out.stem, what, command, labels, conditions, src)
    model = read_onnx(src, echo)
    check_deterministic(model, src)  # before any check: each would blame the wrapper for what the model draws
    digest, data_files = model_digest(src)
    hashed = {"sha256_of": f"{src.name}, then its external data ({', '.join(data_files)})"} if data_files else {}
    training = {"dataset": "unknown (made elsewhere, not by Bias Mirror)",
                "adopted": {"from": src.name, "sha256": digest, **hashed}, "command": command, **provenance()}
    if kind == "generator":
        if conditions or dataset is not None:
            raise BiasMirrorError("a generator takes no condition and is checked on latents, not faces: leave "
                                  "--conditions and --dataset out", src)
        pixels = Encoding(*RANGES["unit"], mean, std, order)  # its range and layout replaced once its output is read
        return _adopt_generator(model, src, out, name or out.stem, what, training, value_range, pixels, layout, size,
                                n, force, echo)
    src_in, src_cond = model_inputs(model, src)
    conds = check_conditions(src_cond, kind, list(conditions), src)
    open_k = src_cond is not None and len(dims_of(src_cond)) == 2 and dims_of(src_cond)[1] is None
    if open_k:  # its K is the --conditions given, fed one-hot, or the length of their values
        src_cond.type.tensor_type.shape.dim[1].dim_value = conds.width  # type: ignore[union-attr]
    layout = layout_of(src_in, layout, src)
    size = size_of(src_in, layout, size, src)
    in_dtype = onnx.helper.tensor_dtype_to_np_dtype(src_in.type.tensor_type.elem_type).name
    takes_bytes = in_dtype == "uint8"
    source_output = None
    outputs = [o.name for o in model.graph.output]  # before a filter's face is taken, the others dropped
    if kind == "filter":  # its face, of several outputs; then its size and colours
        shapes = output_shapes(model, src_in, layout, size)
        source_output = filter_output(model, shapes, layout, size, src, echo)
        if shapes is not None:  # where shape inference cannot tell, the faces are checked later
            _check_filter_size(shapes[source_output], source_output, layout, size, src)
    gives_bytes = kind == "filter" and model.graph.output[0].type.tensor_type.elem_type == TensorProto.UINT8
    value_range, output_range = _output_range(value_range, output_range, takes_bytes, gives_bytes, src)
    if takes_bytes:
        value_range = uint8_input_range(value_range, mean, std, kind == "filter" and not gives_bytes, src)
    if kind == "classifier" and value_range == "auto":
        raise BiasMirrorError("give --range (and --mean/--std where it was trained normalised): a classifier's "
                              "input range cannot be told from its output", src)
    head = find_head(model.graph, src) if kind == "classifier" else None
    if head is not None and len(head.weight) > 2:
        # said before any --labels count: "give 3 --labels" had been answered by a refusal of the third label
        k = len(head.weight)
        raise BiasMirrorError(f"its head gives {k} outputs, and only a classifier of two classes, female and male, "
                              "can be hosted (every measure here is a binary one): export it giving those two alone, "
                              "e.g. torch.softmax(fc(x)[:, [i, j]], 1) with i and j its female and male outputs, or, "
                              "of a DB-VAE's encoder, its classifier logit alone, torch.sigmoid(fc(x)[:, 0:1]): adopt "
                              "folds such a choice into the head", src)
    if conds is not None and conds.values is not None:
        check_condition_values(src, layout, size, conds)
    faces, genders, where = sample_faces_or_default(dataset, n, size)
    name = name or out.stem
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".adopt-", dir=out.parent) as tmp:

        def trial(r: str) -> Trial:
            enc = Encoding(*RANGES[r], mean, std, order, layout, takes_bytes, gives_bytes,
                           *(RANGES[output_range] if output_range else (None, None)))
            if kind == "filter":
                card = filter_card(name, size, "face->filtered", what, training, {},
                                   list(conds.names) if conds else None)
            else:
                grid = cam_grid(wrap(model, kind, enc, size, head, classifier_card(
                    name, size, list(labels), ("h", "w"), what, training, {}), src), faces[:1], src)  # type: ignore[arg-type]
                card = classifier_card(name, size, list(labels), grid, f"{what}; its map: {head.method}",  # type: ignore[union-attr]
                                       training, {}, head.formula)  # type: ignore[union-attr]
            path = Path(tmp) / f"{r.replace(',', '_')}.onnx"
            proto = wrap(model, kind, enc, size, head, card, src, conds)
            onnx.save(proto, str(path))
            try:
                wrapped = load_trial(path, kind, size, src)
                return Trial(enc, card, proto, run_wrapped(wrapped, faces, src), wrapped,  # type: ignore[arg-type]
                             conds, source_output)
            except BiasMirrorError as exc:
                # its K is ours (--conditions), or its values are, and its graph may take only another K, or fewer
                # classes: said so where the model alone fails with them, not for any failure of such a model (a
                # batch fixed at 1, a size)
                if conds is not None and (open_k or conds.values is not None) \
                        and not takes_conditions(src, layout, size, conds):
                    raise conditions_refused(exc, conds, src) from exc
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
        if kind == "filter":  # as a generator's: the range its output is read on, and whether de-normalised
            out_dtype = onnx.helper.tensor_dtype_to_np_dtype(model.graph.output[0].type.tensor_type.elem_type).name
            adopted["output"] = chosen.enc.describe_output(out_dtype)
            if len(outputs) > 1:  # which one the card is of, as stdout said: an image and a mask are told apart
                adopted["output_taken"] = source_output
                adopted["outputs_left_out"] = [o for o in outputs if o != source_output]
        if conds is not None and conds.values is not None:
            adopted["conditions"] = _conditions_record(src_cond, conds)  # type: ignore[arg-type]
            described += f"; its condition '{src_cond.name}' fed {conds.written()}"  # type: ignore[union-attr]
        adopted.setdefault("range_chosen", "given")
        card = replace(chosen.card, precision=_precision(model),
                       training={**training, "adopted": {**training["adopted"], **adopted}})
        save(with_card(chosen.wrapped, card, src), out)  # the graph checked, with the checks in its card
    load_model(out, kind, RuntimeConfig(provider="cpu"))  # as every user of it will
    echo(f"wrote {out}: {card.summary()}; input taken as {described}")
    echo(_colour_order_note(order))
    echo(f"it has no per-group figures yet: measure them with `{program()} audit --dataset KIND:PATH "
         f"--{kind} {out}" + (" --classifier …" if kind == "filter" else "") + "`")
    return out


# A --method longer than this is written once, as the card's method, and the command on the card refers to it: the
# command holding it too had put a method within the cap of a card's text over it, refused after every check.
METHOD_IN_COMMAND = 200


def _command(argv: Sequence[str], method: str, echo: Callable[[str], None]) -> str:
    """The command as typed, for the card, within the cap of a card's text: a --method of over METHOD_IN_COMMAND
    characters replaced by a reference to the card's method (said), and what is still over the cap cut."""
    words = list(argv)
    if len(method) > METHOD_IN_COMMAND:
        reference = f"<the method on this card, {len(method):,} characters>"
        words = [reference if w == method else w.partition("=")[0] + "=" + reference
                 if w.startswith("--") and w.partition("=")[2] == method else w for w in words]
        echo(f"--method's text ({len(method):,} characters) is written once, as the card's method: the command on the "
             f"card gives it as '{reference}'")
    command = "python " + " ".join(shlex.quote(w) for w in words)
    if len(command) > MAX_TEXT_CHARS:
        cut = f"… (cut: {len(command):,} characters in all)"
        command = command[:MAX_TEXT_CHARS - len(cut)] + cut
    return command


def _check_card_text(kind: str, name: str, what: str, command: str, labels: Sequence[str], conditions: Sequence[str],
                     src: Path) -> None:
    """The names and texts of the card adopt would write within the caps of a card's (card.check_text), said before
    any check runs: a --name or --method over them had been refused as an "invalid model card" once every check had
    run (minutes for a large model)."""
    training = {"command": command}
    names = [c.partition("=")[0].strip() for c in conditions] or None
    card = (generator_card(name, 1, 8, what, training, {}) if kind == "generator" else
            classifier_card(name, 8, list(labels), (1, 1), what, training, {}) if kind == "classifier" else
            filter_card(name, 8, "face->filtered", what, training, {}, names))
    card.check_text(src, "the card adopt would write")


def _output_range(value_range: str, output_range: str | None, takes_bytes: bool, gives_bytes: bool,
                  src: Path) -> tuple[str, str | None]:
    """--range and --output-range as a filter's trials take them: a uint8 output is a face as it is, which no range
    reads; of a uint8 input, --range is its float output's already, which --output-range may give instead."""
    if output_range is None:
        return value_range, None
    if gives_bytes:
        raise BiasMirrorError("its output is uint8, which holds 0..255: a face as it is, which --output-range has "
                              "nothing to apply to; leave it out", src)
    if takes_bytes:
        if value_range not in ("auto", output_range):
            raise BiasMirrorError(f"its input is uint8, taken as it is: --range is its float output's, and --range "
                                  f"{value_range} and --output-range {output_range} differ; give one", src)
        return output_range, None
    return value_range, output_range


def _conditions_record(src_cond: onnx.ValueInfoProto, conditions: Conditions) -> dict:
    """What the card says of a condition the model takes as values: its input, and each condition's value."""
    dims = dims_of(src_cond)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(src_cond.type.tensor_type.elem_type).name
    how = "the value of the one-hot row's largest entry" if conditions.integer else "the one-hot row times the values"
    return {"input": f"'{src_cond.name}' {dtype} {'(N,)' if len(dims) == 1 else f'[N, {dims[1]}]'}, fed {how}",
            "values": conditions.record()}


def _adopt_generator(model: onnx.ModelProto, src: Path, out: Path, name: str, what: str, training: dict,
                     value_range: str, pixels: Encoding, layout: str, size: int | None, n: int, force: bool,
                     echo: Callable[[str], None]) -> Path:
    """A generator: its latent input; its output's layout and size, from the model run alone on the first of ``n``
    latents drawn from N(0, 1); its range as given (``pixels``: the --mean/--std and --channels its output is read
    with); wrapped, checked on those latents a batch at a time (generator_checks) and written with its card."""
    z_in, d = latent_input(model, src)
    z = latents(n, d)
    fed = z.reshape(-1, d, 1, 1) if len(dims_of(z_in)) == 4 else z
    try:
        session = alone_session(src)
        first = run_alone(session, fed[:MAX_BATCH])[0]  # its shape and type; the checks run it a batch at a time
    except Exception as exc:  # noqa: BLE001 - ORT's own error types, at load or at run
        raise BiasMirrorError(f"it does not run on its own on latents of length {d} ({ort_reason(exc)[:300]})",
                              src) from exc
    size, layout = _generated_size(first.shape, layout, size, src)
    gives_bytes = first.dtype == np.uint8
    value_range = _generator_range(value_range, gives_bytes, pixels, first, len(first), src)
    enc = replace(pixels, lo=RANGES[value_range][0], hi=RANGES[value_range][1], layout=layout, gives_bytes=gives_bytes)
    card = generator_card(name, d, size, what, training, {})
    proto = wrap(model, "generator", enc, size, None, card, src)
    where = f"{n} latents drawn from N(0, 1), seed {LATENT_SEED}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".adopt-", dir=out.parent) as tmp:
        path = Path(tmp) / "generator.onnx"
        onnx.save(proto, str(path))
        generated = run_wrapped(load_trial(path, "generator", size, src), z, src)[0]
        checks = generator_checks(enc, lambda rows: run_alone(session, fed[rows])[0], generated, value_range, where,
                                  src, force)
    grey = first.shape[COLOUR_AXIS[layout]] == 1
    described = enc.describe_output(first.dtype.name) + ("; grey, its one channel given as three alike" if grey else "")
    adopted = {**training["adopted"], "output": described, "checks": checks,
               "range_chosen": "uint8 output, taken as it is" if gives_bytes else "given"}
    card = replace(card, precision=_precision(model), training={**training, "adopted": adopted})
    save(with_card(proto, card, src), out)
    load_model(out, "generator", RuntimeConfig(provider="cpu"))  # as every user of it will
    echo(f"wrote {out}: {card.summary()}; its output read as {described}")
    echo(_colour_order_note(pixels.order))
    echo("the app, run and the audit do not host generators yet: generate faces from Python, "
         f"load_model({str(out)!r}).generate(z), z a float32 array of N × {d} latents")
    return out


def _generated_size(shape: tuple[int, ...], layout: str, size: int | None, src: Path) -> tuple[int, str]:
    """The size and layout of the images a generator gives (``shape``: its output on latents)."""
    if len(shape) != 4:
        raise BiasMirrorError(f"its output has shape {list(shape)}, not a batch of images (four axes): a generator "
                              "gives faces", src)
    layout = image_layout(list(shape), layout, src, "output")
    return image_size(list(shape), layout, size, src, "output"), layout


def _generator_range(value_range: str, gives_bytes: bool, pixels: Encoding, raw: np.ndarray, n: int,
                     src: Path) -> str:
    """A generator's --range: required of a float output, which no faces can tell (a DCGAN's tanh read as [0, 1]
    gives faces too, darker ones); a uint8 output is a face as it is, which neither it nor --mean/--std apply to.
    ``raw``: its output on the first ``n`` latents."""
    if gives_bytes:
        if value_range not in ("auto", "byte") or pixels.mean != (0, 0, 0) or pixels.std != (1, 1, 1):
            raise BiasMirrorError("its output is uint8, which holds 0..255: a face as it is, which --range, --mean "
                                  "and --std have nothing to apply to; leave them out", src)
        return "byte"
    if value_range == "auto":
        raise BiasMirrorError("give --range, the range of the images it was trained to give: a generator's output has "
                              "no faces to compare with, so adopt does not guess it (a DCGAN's tanh: symmetric "
                              f"[-1, 1]; a sigmoid: unit [0, 1]; byte [0, 255]). On {n} latents drawn from N(0, 1) "
                              f"its output lies in [{float(raw.min()):.3g}, {float(raw.max()):.3g}]", src)
    return value_range


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an ONNX model made elsewhere: a filter (image → image), a classifier "
                                 "(image → class scores, with a global average pool, then linear layers: CAM for "
                                 "one, Grad-CAM where activations lie between them), or a generator (latent → image)")
    p.add_argument("--kind", required=True, choices=["filter", "classifier", "generator"],
                   help="generator: a latent N×D or N×D×1×1 (a DCGAN's z) → an image; wrapped to take float32 "
                        "N×D latents and give uint8 RGB faces, checked on --n latents drawn from N(0, 1); needs "
                        "--range. The app, run and the audit do not host generators yet: "
                        "load_model(PATH).generate(z) does")
    p.add_argument("--out", required=True, help="where to write the adopted model (.onnx)")
    p.add_argument("--name", help="its name in the app and the reports (default: --out's stem)")
    p.add_argument("--labels", default="female,male",
                   help="a classifier's labels in the order of its outputs: female and male alone, in any case "
                        "(a third label is refused: every measure is a binary female/male one; default female,male); "
                        "one output: "
                        "NEGATIVE,POSITIVE, P(POSITIVE) being its sigmoid, or the output itself where its graph "
                        "ends in a Sigmoid")
    p.add_argument("--range", dest="value_range", default="auto", choices=["auto", *RANGES],
                   help="what 0..255 maps onto (a filter's output maps back, unless --output-range gives its own): "
                        "symmetric [-1, 1] (GANs' tanh), unit "
                        "[0, 1] (ImageNet-style, with --mean/--std), byte [0, 255]; auto (filters only): the one whose "
                        "output lies nearest the face (where another, reading it rightly, gives other faces about as "
                        "near, adopt asks for it: within 15 grey levels, or 3.5 times as far, more on faces of low "
                        "contrast; on fewer than 4 faces it always asks). A uint8 input takes 0..255 as it is: then "
                        "--range is a filter's float output's. A generator's is its output's, and must be given (no "
                        "faces tell it; a DCGAN's tanh: symmetric)")
    p.add_argument("--output-range", choices=list(RANGES), default=None,
                   help="a filter's output range, where it differs from its input's: symmetric [-1, 1] (tanh), unit "
                        "[0, 1] (sigmoid), byte [0, 255]; read on it alone, without --mean/--std (default: its "
                        "input's range, de-normalised by --mean/--std). Where it is left out and the output stays "
                        "within [0, 1] while the input is fed otherwise ([-1, 1], ImageNet-normalised, 0..255), adopt "
                        "asks for it unless the input's range reads the output much nearer the faces; a given one is "
                        "refused where much of the output lies past its bounds (a tanh's read as [0, 1]), or where "
                        "the input's range reads it much nearer and holds it")
    p.add_argument("--mean", type=_triple, default=(0.0, 0.0, 0.0), help="per-channel mean subtracted after --range, "
                   "RGB, e.g. 0.485,0.456,0.406")
    p.add_argument("--std", type=_spreads, default=(1.0, 1.0, 1.0), help="per-channel spread divided by after --mean, "
                   "RGB, e.g. 0.229,0.224,0.225")
    p.add_argument("--channels", dest="order", default="RGB", choices=["RGB", "BGR"], help="its colour order")
    p.add_argument("--layout", default="auto", choices=["auto", "NCHW", "NHWC"],
                   help="its tensor layout (auto: from the axis of length 3); a generator's, its output's")
    p.add_argument("--size", type=int_at_least(8, MAX_SIZE),
                   help=f"the face size in px (8 to {MAX_SIZE}), where its input size is open")
    p.add_argument("--method", default="", help="what it is, for the card (e.g. 'pix2pix, our 2025 beauty filter')")
    p.add_argument("--dataset", default=None,
                   help="KIND:PATH of faces to check the wrapping on (default: the shared UTKFace copy, "
                        f"{DEFAULT_DATASET}); labelled ones also check a classifier's --labels")
    p.add_argument("--n", type=positive_int, default=64, help="how many faces to check on (a generator: latents; "
                                                                      "default 64)")
    p.add_argument("--force", action="store_true", help="write a classifier whose labels look swapped, or whose "
                                                        "outputs do not tell the faces apart, a filter whose given "
                                                        "--range puts its output far from the faces, whose output "
                                                        "scale is asked or whose --output-range is refused, or is "
                                                        "flat, or a generator "
                                                        "whose output lies much past --range's bounds, is flat, or is "
                                                        "one face for every latent")
    p.add_argument("--conditions", default="", help="a conditional filter's (one that takes a second input: a batch "
                   "of K-vectors, or of single numbers or indices): its conditions, in order. Names alone "
                   "(female,male) are fed one-hot, one entry each, to a model that takes the K-vector; NAME=VALUE "
                   "gives each condition what the model takes for it: a number (a 0/1 CVAE: female=1,male=0), a "
                   "vector, its numbers separated by ':' (StarGAN attributes: blond=1:0:1,dark=0:1:0), or an index "
                   "for an integer input (nn.Embedding: female=0,male=1). run, audit and the app choose one with "
                   "--condition")


def main(args: argparse.Namespace) -> int:
    given = given_options(args)
    # what only the other kind uses was silently dropped
    unused = {"filter": [("labels", "--labels names a classifier's outputs")],
              "classifier": [("conditions", "--conditions names a conditional filter's inputs"),
                             ("output_range", "--output-range reads a filter's output")],
              "generator": [("labels", "--labels names a classifier's outputs"),
                            ("conditions", "--conditions names a conditional filter's inputs"),
                            ("output_range", "--output-range reads a filter's output (a generator's is --range)"),
                            ("dataset", "--dataset gives faces to check a filter or classifier on (a generator is "
                                        "checked on latents)")]}[args.kind]
    for dest, why in unused:
        if dest in given:
            raise BiasMirrorError(f"{why}, and this is --kind {args.kind}: leave it out")
    labels = [s.strip() for s in args.labels.split(",") if s.strip()]
    adopt(args.model, args.out, args.kind, args.name, labels, args.value_range, args.mean, args.std, args.order,
          args.layout, args.size, args.method, args.dataset, args.n, args.force,
          conditions=[c.strip() for c in args.conditions.split(",") if c.strip()], output_range=args.output_range)
    return 0
