"""Every graph the GPU path runs must have a CUDA kernel for each of its nodes, at the types it uses.

A node whose (operator, type) has no CUDA kernel does not fail: ONNX Runtime quietly runs it on the CPU, with a
copy across the bus each way, and the frame rate falls for a reason no CPU test sees. The CUDA provider's kernels
cannot be listed without a GPU, so the table below is what ONNX Runtime's ``docs/OperatorKernels.md`` lists for
``CUDAExecutionProvider`` at opset 17 (checked against onnxruntime-gpu 1.31.1, the version ``scripts/ort_gpu_parts``
installs), for the operators our graphs use and only those. A graph that starts using another operator or type
fails here until someone has looked it up there and either added it or changed the graph; e.g. CUDA has no int32
``Clip`` and no bool ``Where``.
"""
from __future__ import annotations

import onnx
import pytest

from inference.defaults import MODELS_DIR
from inference.device_chain import resize_model
from inference.faces import HAAR_CASCADES, HaarDetector
from inference.haar_cascade import read_cascade
from inference.haar_graph import cascade_model

_ALL = {"bfloat16", "bool", "double", "float", "float16", "int16", "int32", "int64", "int8", "uint16", "uint32",
        "uint64", "uint8"}
_FLOATS = {"double", "float", "float16"}
_ARITHMETIC = _ALL - {"bool"}
_COMPARE = _FLOATS | {"int32", "int64", "uint32", "uint64"}

# operator → the types its CUDA kernel takes for the input that sets its type (ORT 1.31, opset 17 rows)
CUDA_TYPES: dict[str, set[str]] = {
    "Add": _ARITHMETIC, "Sub": _ARITHMETIC, "Mul": _ARITHMETIC, "Div": _ARITHMETIC,
    "And": {"bool"}, "Not": {"bool"},
    "Cast": _ALL, "Concat": _ALL, "Gather": _ALL, "Identity": _ALL, "Reshape": _ALL, "Shape": _ALL, "Slice": _ALL,
    "Split": _ALL, "Squeeze": _ALL, "Unsqueeze": _ALL, "Transpose": _ALL,
    "Clip": _FLOATS | {"int64", "int8", "uint64", "uint8"},
    "CumSum": _FLOATS | {"int32", "int64", "uint32", "uint64"},
    "Greater": _COMPARE, "Less": _COMPARE,
    "NonZero": {"bool", "float", "float16", "int32", "int64", "uint8"},
    "ReduceMin": _FLOATS | {"int32", "int64", "int8", "uint8"},
    "ReduceProd": _FLOATS | {"int32"}, "ReduceMean": _FLOATS | {"int32"},
    "ReduceSum": _FLOATS | {"bfloat16", "int32", "int64"},
    "Where": _FLOATS | {"bfloat16", "int32", "int64", "uint8"},
    "MaxPool": _FLOATS | {"int8", "uint8"},
    "Pad": _FLOATS | {"bool"},
    "Conv": _FLOATS, "ConvTranspose": _FLOATS, "Einsum": _FLOATS, "GlobalAveragePool": _FLOATS,
    "Exp": _FLOATS | {"bfloat16"}, "Sigmoid": _FLOATS | {"bfloat16"},
    "Neg": _FLOATS | {"bfloat16", "int16", "int32", "int64", "int8"},
    "HardSigmoid": _FLOATS, "HardSwish": _FLOATS, "InstanceNormalization": _FLOATS, "Round": _FLOATS,
    "Gemm": _FLOATS | {"bfloat16"}, "MatMul": _FLOATS | {"bfloat16"}, "Relu": _FLOATS | {"bfloat16"},
    "Softmax": _FLOATS | {"bfloat16"}, "Sqrt": _FLOATS | {"bfloat16"}, "Tanh": _FLOATS | {"bfloat16"},
}
# the indices of these must be int32 or int64 on CUDA
INDEX_INPUT = {"Gather": 1, "Slice": 1}
# the input whose type is the operator's T (Where's first input is its bool condition)
TYPED_INPUT = {"Where": 1}


def kernels_needed(model: onnx.ModelProto, only=lambda node: True) -> set[tuple[str, str, str]]:
    """(operator, its type, index type or "") for every node ONNX Runtime runs (of those ``only`` picks): nodes whose
    inputs are all constant are folded into constants when the session is made and need no kernel."""
    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    types.update({t.name: t.data_type for t in g.initializer})
    constant = {t.name for t in g.initializer}
    needed = set()
    for node in g.node:  # in topological order, as ONNX requires
        if node.op_type == "Constant" or all(not i or i in constant for i in node.input):
            constant.update(node.output)
            continue
        if not only(node):
            continue
        assert node.domain in ("", "ai.onnx"), f"{node.name}: a {node.domain} operator is not in the table"
        name = onnx.TensorProto.DataType.Name

        def type_of(i: int) -> str:
            return name(types[node.input[i]]).lower() if i < len(node.input) and node.input[i] in types else "?"

        index = type_of(INDEX_INPUT[node.op_type]) if node.op_type in INDEX_INPUT else ""
        needed.add((node.op_type, type_of(TYPED_INPUT.get(node.op_type, 0)), index))
    return needed


def missing_on_cuda(model: onnx.ModelProto, only=lambda node: True) -> list[str]:
    assert all(o.version == 17 for o in model.opset_import if o.domain in ("", "ai.onnx")), \
        "the table holds the opset-17 rows; check OperatorKernels.md for this opset"
    out = []
    for op, typ, index in sorted(kernels_needed(model, only)):
        if typ not in CUDA_TYPES.get(op, set()):
            out.append(f"{op}({typ})")
        if index and index not in ("int32", "int64"):
            out.append(f"{op} indices ({index})")
    return out


@pytest.mark.parametrize("cascade", sorted(HAAR_CASCADES))
def test_the_haar_graph_runs_wholly_on_cuda(cascade):
    model = onnx.load_from_string(cascade_model(read_cascade(HaarDetector(cascade).path)))
    assert missing_on_cuda(model) == []


def test_the_device_chains_resizes_run_wholly_on_cuda():
    for src, dst in ((112, 64), (64, 112), (256, 128)):
        assert missing_on_cuda(onnx.load_from_string(resize_model(src, dst))) == []


@pytest.mark.parametrize("path", sorted(MODELS_DIR.glob("*.onnx")), ids=lambda p: p.name)
def test_the_shipped_models_run_wholly_on_cuda(path):
    assert missing_on_cuda(onnx.load(str(path))) == []


@pytest.mark.parametrize("outputs", [2, 1])
def test_what_train_adopt_wraps_around_a_model_runs_wholly_on_cuda(tmp_path, outputs):
    """The wrapper's own nodes (the input's normalisation, probs, and Grad-CAM's derivative of every activation it
    knows), not the adopted model's, which are what they are."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    from inference.card import classifier_card
    from training.adopt_encoding import Encoding
    from training.adopt_wrap import wrap
    from training.adopt_head import ACTIVATIONS, find_head

    acts = [nn.ReLU(), nn.LeakyReLU(0.1), nn.ELU(), nn.Sigmoid(), nn.Tanh(), nn.Softplus(), nn.Hardsigmoid(),
            nn.Hardswish(), nn.ReLU6(), nn.SiLU()]
    layers = [nn.Linear(4, 4)]
    for act in acts:
        layers += [act, nn.Linear(4, 4)]
    head = nn.Sequential(*layers, nn.Linear(4, outputs))
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()
    path = tmp_path / "m.onnx"
    torch.onnx.export(net, torch.rand(1, 3, 16, 16), str(path), input_names=["x"], dynamic_axes={"x": {0: "n"}},
                      opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    found = find_head(model.graph, path)
    assert {layer.op for layer in found.layers if hasattr(layer, "op")} == ACTIVATIONS  # every one it knows
    card = classifier_card("m", 16, ["female", "male"], (14, 14), "test", {}, {})
    wrapped = wrap(model, "classifier", Encoding(0.0, 1.0, (0.4, 0.5, 0.6), (0.2, 0.2, 0.2), "BGR"), 16, found, card, path)
    ours = lambda node: not node.output[0].startswith("src/") or node.output[0] == "src/x"  # noqa: E731
    assert {op for op, _, _ in kernels_needed(wrapped, ours)} >= {"Exp", "Where", "And", "MatMul"}
    assert missing_on_cuda(wrapped, ours) == []


def test_a_node_cuda_lacks_is_named():
    """The check itself: an int32 Clip and a bool Where (CUDA has neither) are named; the int32 Greater and Cast pass."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
         helper.make_node("Greater", ["c", "lo"], ["m"]),
         helper.make_node("Where", ["m", "m", "m"], ["w"]),
         helper.make_node("Cast", ["c"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("Relu", ["f"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.INT32, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("w", TensorProto.BOOL, [4])],
        initializer=[helper.make_tensor("lo", TensorProto.INT32, [], [0]),
                     helper.make_tensor("hi", TensorProto.INT32, [], [9])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert missing_on_cuda(model) == ["Clip(int32)", "Where(bool)"]
