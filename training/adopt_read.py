"""Reading an ONNX model made elsewhere: its file (one whose Bias Mirror card the app takes is refused), its image
and condition inputs, and what they leave the options to say: the layout, the face size, a uint8 input's range, and
the names of a conditional filter's conditions."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import onnx
from google.protobuf.message import DecodeError

from inference.card import METADATA_KEY
from inference.errors import BiasMirrorError
from inference.models import PYTORCH_FILE, is_pytorch_file, load_failure, load_model
from inference.runtime import RuntimeConfig


def read_onnx(path: Path, echo: Callable[[str], None] = print) -> onnx.ModelProto:
    """The model, without a Bias Mirror card: a file whose card run, audit and the app take is refused; one whose
    card they refuse is said to be so, and its card is left out, for the adopted file's to replace."""
    if not path.is_file():
        raise BiasMirrorError("no such model file", path)
    # an external data file missing, cut short or out of reach is said as run and the app say it (load_failure
    # reads onnx's wording as it reads ONNX Runtime's): a file cut short had been called corrupt here
    try:
        model = onnx.load(str(path))
    except onnx.checker.ValidationError as exc:  # onnx's checker reads an external data file's path
        raise BiasMirrorError(load_failure(str(exc).strip(), path), path) from exc
    except (DecodeError, ValueError, OSError) as exc:
        if is_pytorch_file(path):  # a model made elsewhere in PyTorch, not yet exported
            raise BiasMirrorError(f"{PYTORCH_FILE}: export the model to ONNX first (torch.onnx.export), then adopt "
                                  "that file", path) from exc
        raise BiasMirrorError(load_failure(str(exc).strip(), path), path) from exc
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


def dims_of(value: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]


def model_inputs(model: onnx.ModelProto, path: Path) -> tuple[onnx.ValueInfoProto, onnx.ValueInfoProto | None]:
    """Its image input, and the condition input of a conditional filter (a batch of K-vectors; K fixed, or open and
    fixed by --conditions)."""
    weights = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    images = [i for i in inputs if len(dims_of(i)) == 4]
    others = [i for i in inputs if len(dims_of(i)) != 4]
    if len(inputs) == 2 and len(images) == 1 and len(dims_of(others[0])) == 2:
        return images[0], others[0]
    if len(inputs) != 1:
        raise BiasMirrorError(f"it has {len(inputs)} inputs ({', '.join(f'{i.name} {dims_of(i)}' for i in inputs)}): "
                              "only a model that takes one image tensor (a filter: and one condition vector) can be "
                              "adopted", path)
    if not images:
        raise BiasMirrorError(f"its input '{inputs[0].name}' has shape {dims_of(inputs[0])}, not a batch of images "
                              "(four axes)", path)
    return images[0], None


COLOUR_AXIS = {"NCHW": 1, "NHWC": 3}


def layout_of(value: onnx.ValueInfoProto, asked: str, path: Path) -> str:
    dims = dims_of(value)
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
    dims = dims_of(value)
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


def check_conditions(src_cond: onnx.ValueInfoProto | None, kind: str, conditions: list[str], src: Path) -> None:
    """A second input is a filter's condition, and ``--conditions`` names each of its entries."""
    if src_cond is None:
        if conditions:
            raise BiasMirrorError("--conditions names a conditional filter's conditions, and this model takes no "
                                  "condition input", src)
        return
    k = dims_of(src_cond)[1]
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
