"""The graph wrapped around an adopted model: uint8 RGB N×H×W×3 faces in, normalised its way and fed to it (with a
conditional filter's one-hot condition mapped onto what it takes), or a generator's N×D latents shaped as it takes
them; out, a filter's or generator's faces mapped back to uint8, or a classifier's ``probs`` and ``cam`` (built by
adopt_head); its card embedded."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from inference.card import OUTPUT_NAMES, ModelCard
from inference.errors import BiasMirrorError
from training.adopt_encoding import Conditions, Encoding
from training.adopt_head import Builder, Head, cam_outputs
from training.adopt_read import COLOUR_AXIS, dims_of, latent_input, model_inputs
from training.fp16 import with_card

PREFIX = "src/"  # the adopted graph's names, kept apart from the wrapper's ("image", "probs", "cam", "filtered")
MIN_OPSET = 11  # Clip with its bounds as inputs, and Round


def wrap(model: onnx.ModelProto, kind: str, enc: Encoding, size: int, head: Head | None, card: ModelCard,
         path: Path, conditions: Conditions | None = None) -> onnx.ModelProto:
    """The model inside a graph that takes uint8 faces (a generator: float latents) and gives what ``card`` says,
    with the card embedded. ``conditions``: a conditional filter's, where the model takes values, not one-hot rows."""
    m = onnx.compose.add_prefix(_at_least_min_opset(model, path), PREFIX)
    g = m.graph
    b = Builder()
    if kind == "generator":
        fed = [_latent_input(b, m, card, path)]
    else:
        src_in, src_cond = model_inputs(m, path)
        fed = [_image_input(b, src_in, enc, size)]
        if src_cond is not None:  # a filter's (adopt refuses it for a classifier)
            fed.append(_condition_input(b, src_cond, conditions))
    feeding = len(b.nodes)  # the nodes that feed the model, which go before its own
    if kind == "classifier":
        cam_outputs(b, head, PREFIX)  # type: ignore[arg-type]
    else:
        _image_outputs(b, m, enc, kind, path)
    for i, (inner, outer) in enumerate(fed):
        g.input.remove(inner)
        g.input.insert(i, outer)
    del g.output[:]
    for spec in card.outputs:
        g.output.append(helper.make_tensor_value_info(spec.name, TensorProto.UINT8 if spec.dtype == "uint8"
                                                      else TensorProto.FLOAT, spec.shape))
    del g.value_info[:]  # the model's own shapes may fix the batch at 1; ONNX Runtime infers them again
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(b.nodes[:feeding] + nodes + b.nodes[feeding:])
    g.initializer.extend(b.consts)
    return with_card(m, card, path)


def _at_least_min_opset(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset >= MIN_OPSET:
        return model
    try:
        return onnx.version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:  # the converter raises bare RuntimeErrors and C++ errors alike
        raise BiasMirrorError(f"its opset {opset} is older than {MIN_OPSET} and could not be converted ({exc}); "
                              f"re-export it at opset {MIN_OPSET} or later", path) from exc


Fed = tuple[onnx.ValueInfoProto, onnx.ValueInfoProto]  # the model's input, and the wrapper's that replaces it


def _image_input(b: Builder, src_in: onnx.ValueInfoProto, enc: Encoding, size: int) -> Fed:
    """uint8 RGB N×H×W×3 faces, normalised as the model takes them."""
    in_type = src_in.type.tensor_type.elem_type
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
    return src_in, helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", size, size, 3])


def _condition_input(b: Builder, src_cond: onnx.ValueInfoProto, conditions: Conditions | None) -> Fed:
    """Bias Mirror's float32 N×K one-hot condition, as the model takes it: the row itself, or each condition's value
    (a constant MatMul by the K×D table; an index, the entry of the row's largest, so a row that mixes conditions
    runs the one it asks most for), in the model's type and rank."""
    to = src_cond.type.tensor_type.elem_type
    table = None if conditions is None else conditions.table
    if table is None:
        b.op("Cast", ["condition"], out=src_cond.name, to=to)
        k = dims_of(src_cond)[1]
    elif conditions.integer:  # type: ignore[union-attr]
        chosen = b.op("ArgMax", ["condition"], axis=1, keepdims=0)
        b.op("Cast", [b.op("Gather", [b.const(table), chosen], axis=0)], out=src_cond.name, to=to)
        k = len(table)
    else:
        b.op("Cast", [b.op("MatMul", ["condition", b.const(table)])], out=src_cond.name, to=to)
        k = len(table)
    return src_cond, helper.make_tensor_value_info("condition", TensorProto.FLOAT, ["N", k])


def _latent_input(b: Builder, m: onnx.ModelProto, card: ModelCard, path: Path) -> Fed:
    """The card's float32 N×D latents, shaped (N×D×1×1, a DCGAN's) and typed as the model takes them."""
    z, d = latent_input(m, path)
    spec = card.inputs[0]
    x = spec.name
    if len(dims_of(z)) == 4:
        x = b.op("Reshape", [x, b.const(np.array([-1, d, 1, 1], np.int64))])
    b.op("Cast", [x], out=z.name, to=z.type.tensor_type.elem_type)
    return z, helper.make_tensor_value_info(spec.name, TensorProto.FLOAT, ["N", d])


def _image_outputs(b: Builder, m: onnx.ModelProto, enc: Encoding, kind: str, path: Path) -> None:
    """A filter's or generator's output, read in its range, layout and colour order, as a uint8 RGB N×H×W×3 face."""
    if len(m.graph.output) != 1:
        raise BiasMirrorError(f"a {kind} should have one output; this one has {len(m.graph.output)} "
                              f"({', '.join(o.name[len(PREFIX):] for o in m.graph.output)})", path)
    out = m.graph.output[0]
    dims = dims_of(out)
    if out.type.tensor_type.HasField("shape") and len(dims) != 4:  # ORT's type inference said only "Transpose"
        raise BiasMirrorError(f"its output '{out.name[len(PREFIX):]}' has shape {dims}, not a batch of images: a "
                              f"{kind} gives back faces (a classifier is adopted with --kind classifier)", path)
    y = b.op("Cast", [out.name], to=TensorProto.FLOAT)
    if enc.layout == "NCHW":
        y = b.op("Transpose", [y], perm=[0, 2, 3, 1])
    if len(dims) == 4 and dims[COLOUR_AXIS[enc.layout]] == 1:  # grey: given as three alike, as Encoding.grey reads it
        y = b.op("Expand", [y, b.const(np.array([1, 1, 1, 3], np.int64))])
    if enc.order == "BGR":
        y = b.op("Gather", [y, b.const(np.array([2, 1, 0], np.int64))], axis=3)
    # a float output is mapped back from its range whatever the input: a uint8-input filter's [0, 1] output, taken
    # for 0..255, had turned every face black. Through the input's mean/std only where read on the input's range
    # (Encoding.grey): --output-range is the output's own
    if out.type.tensor_type.elem_type != TensorProto.UINT8:
        if enc.output_denormalised:
            y = b.op("Add", [b.op("Mul", [y, b.const(np.float32(enc.std))]), b.const(np.float32(enc.mean))])
        lo, hi = enc.output_interval
        y = b.op("Mul", [b.op("Sub", [y, b.const(np.float32(lo))]), b.const(np.float32(255 / (hi - lo)))])
    y = b.op("Round", [b.op("Clip", [y, b.const(np.float32(0)), b.const(np.float32(255))])])
    b.op("Cast", [y], out=OUTPUT_NAMES[kind], to=TensorProto.UINT8)
