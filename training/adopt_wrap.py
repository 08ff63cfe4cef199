"""The graph wrapped around an adopted model: uint8 RGB N×H×W×3 faces in, normalised its way and fed to it; out, a
filter's faces mapped back to uint8, or a classifier's ``probs`` and ``cam`` (built by adopt_head); its card
embedded."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from inference.card import ModelCard
from inference.errors import BiasMirrorError
from training.adopt_encoding import Encoding
from training.adopt_head import Builder, Head, cam_outputs
from training.adopt_read import dims_of, model_inputs
from training.fp16 import with_card

PREFIX = "src/"  # the adopted graph's names, kept apart from the wrapper's ("image", "probs", "cam", "filtered")
MIN_OPSET = 11  # Clip with its bounds as inputs, and Round


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
        g.input.insert(1, helper.make_tensor_value_info("condition", TensorProto.FLOAT, ["N", dims_of(src_cond)[1]]))
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
    dims = dims_of(out)
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
