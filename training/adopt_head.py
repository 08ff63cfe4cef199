"""An adopted classifier's head, read from its ONNX graph, and the class-activation map built from it.

The head is what follows the last global average pool: linear layers (Gemm, MatMul and Add, or a 1×1 Conv of the
pooled map), with element-wise
layers between them (activations, batch norm, a constant scale or shift), ending in the layer whose output,
through nothing but a softmax or reshapes, is the model's output. After that last layer a constant scale or shift of
its outputs (temperature scaling, logit adjustment) and a constant choice of them (a Slice or Gather of the class
axis: the DB-VAE's classifier logit beside its latent mean and log-variance) fold into its weights and bias, so that
they too are one linear layer of the pooled features and the map below stays exact. Where the head becomes several
outputs (its logits and its probabilities), what is hosted is the model's own probabilities; two that differ are
refused, naming both. Where the head is there but cannot be hosted, the refusal names the node that stops it.

- Where every layer is affine (one linear layer, as ResNets end; or several without an activation between them),
  they fold into one, and the map is exact CAM (Zhou et al. 2016): the folded weights at every cell of the pooled
  feature map, whose grid mean plus the folded bias is the head's output.
- Where an activation lies between two linear layers (torchvision's MobileNetV3: Linear, Hardswish, Linear), the
  map is Grad-CAM (Selvaraju et al. 2017): each channel weighted by the gradient of the class score with respect to
  the pooled feature, computed inside the graph by the chain rule through the head, per face. Through a global
  average pool that gradient is the same at every cell, so the map is Grad-CAM's weighted sum exactly, not an
  approximation of it: scaled by the number of cells and raw (before Grad-CAM's ReLU; the pipeline takes the
  positive part where it needs it), like the CAMs of Bias Mirror's own classifiers. For an affine head it is the
  CAM above.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from inference.errors import BiasMirrorError

THROUGH = {"Flatten", "Reshape", "Squeeze", "Identity", "Dropout", "Cast"}  # shape only, in eval
TO_OUTPUT = {"Softmax", "LogSoftmax", "Sigmoid", "Identity", "Cast", "Flatten", "Reshape", "Squeeze"}  # after the head
SQUASHES = {"Softmax", "LogSoftmax", "Sigmoid"}  # what a model's own probabilities come out of
SCALE_OR_SHIFT = {"Mul", "Div", "Add", "Sub"}  # by a constant: an affine layer
RESHAPES = {"Flatten", "Reshape", "Squeeze"}  # of the head's output: taken to leave the classes on the last axis
ACTIVATIONS = {"Relu", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "Softplus", "HardSigmoid", "HardSwish", "Clip"}
GATES = {"Sigmoid", "HardSigmoid", "Tanh"}  # x · gate(x): SiLU and an unfused Hardswish are exported so
CAM_FORMULA = "sum_c w[k,c] * F[c] (raw, unnormalised)"
GRAD_CAM_FORMULA = "sum_c dy[k]/dpool[c] * F[c] (Grad-CAM, the gradient through the head; raw, unnormalised)"


class Builder:
    """Nodes and constants added around an adopted graph, named apart from its own."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.consts: list[onnx.TensorProto] = []

    def const(self, value) -> str:
        name = f"bm/const{len(self.consts)}"
        self.consts.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], out: str | None = None, **attrs) -> str:
        out = out or f"bm/{op_type.lower()}{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def float(self, name: str) -> str:
        return self.op("Cast", [name], to=TensorProto.FLOAT)


@dataclass(frozen=True)
class Affine:
    """An affine layer of the head: y = x·Wᵀ + b (``weight`` out×in), or, element-wise, y = x·s + t (1-D ``weight``)."""

    weight: np.ndarray
    bias: np.ndarray

    def fold(self, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This layer after the affine map (w, b) taken so far."""
        if self.weight.ndim == 1:
            return w * self.weight[:, None], b * self.weight + self.bias
        return self.weight @ w, self.weight @ b + self.bias


@dataclass(frozen=True)
class Activation:
    """An element-wise non-linearity of the head, by its ONNX node: ``x`` its input, ``y`` its output, ``gate``
    for x · gate(x) (the gate node's op, with ``y`` the gate's output)."""

    op: str
    x: str
    y: str
    attrs: dict
    gated: bool = False

    def derivative(self, b: Builder, prefix: str) -> str:
        """dy/dx per face and unit (N×H float), from the graph's own tensors."""
        x = b.float(prefix + self.x)
        y = lambda: b.float(prefix + self.y)  # noqa: E731 - made only where used: ORT warns of unused nodes
        c = lambda v: b.const(np.float32(v))  # noqa: E731
        op, a = self.op, self.attrs
        if op == "Relu":
            d = b.op("Cast", [b.op("Greater", [x, c(0)])], to=TensorProto.FLOAT)
        elif op == "LeakyRelu":
            d = b.op("Where", [b.op("Greater", [x, c(0)]), c(1), c(a.get("alpha", 0.01))])
        elif op == "Elu":
            d = b.op("Where", [b.op("Greater", [x, c(0)]), c(1), b.op("Mul", [b.op("Exp", [x]), c(a.get("alpha", 1.0))])])
        elif op == "Sigmoid":
            s = y()
            d = b.op("Mul", [s, b.op("Sub", [c(1), s])])
        elif op == "Tanh":
            t = y()
            d = b.op("Sub", [c(1), b.op("Mul", [t, t])])
        elif op == "Softplus":
            d = b.op("Sigmoid", [x])
        elif op in ("HardSigmoid", "HardSwish"):
            alpha, beta = (a.get("alpha", 0.2), a.get("beta", 0.5)) if op == "HardSigmoid" else (1 / 6, 0.5)
            v = b.op("Add", [b.op("Mul", [x, c(alpha)]), c(beta)])
            inside = b.op("And", [b.op("Greater", [v, c(0)]), b.op("Less", [v, c(1)])])
            d = b.op("Mul", [b.op("Cast", [inside], to=TensorProto.FLOAT), c(alpha)])
            if op == "HardSwish":  # x · hardsigmoid(x)
                d = b.op("Add", [b.op("Clip", [v, c(0), c(1)]), b.op("Mul", [x, d])])
        elif op == "Clip":
            inside = b.op("And", [b.op("Greater", [x, c(a.get("min", -np.inf))]), b.op("Less", [x, c(a.get("max", np.inf))])])
            d = b.op("Cast", [inside], to=TensorProto.FLOAT)
        else:  # pragma: no cover - find_head admits only the ops above
            raise ValueError(op)
        if self.gated:  # d/dx [x · g(x)] = g(x) + x · g'(x), ``y`` being g(x)
            d = b.op("Add", [y(), b.op("Mul", [x, d])])
        return d


@dataclass(frozen=True)
class Head:
    """A classifier's global-average-pool → head: what its class-activation map is made of."""

    features: str  # the feature map the pool averages
    nhwc: bool
    weight: np.ndarray  # K×C: the folded affine head, or the output layer's weights where an activation lies between
    bias: np.ndarray  # K: the folded bias (exact CAM only)
    logits: str  # what the model's softmax (or sigmoid) takes: the output layer's output and what folds into it
    pooled: str = ""  # the pool's output
    layers: tuple = ()  # pool → output layer, the output layer excluded: Affine and Activation, in order (Grad-CAM)
    output: str = ""  # the graph output ``logits`` become, whose values the wrapped classifier's are checked against
    to_output: tuple[str, ...] = ()  # the TO_OUTPUT ops (a Softmax or Sigmoid, reshapes, casts) from logits to output
    zeroed_by: str = ""  # the node after the output layer that folds its weights, not all zero, to zero (logits × 0)

    @property
    def grad_cam(self) -> bool:
        return any(isinstance(layer, Activation) for layer in self.layers)

    @property
    def squashed(self) -> bool:
        """Whether its output is the model's own probabilities (through a softmax or sigmoid), not bare values."""
        return any(op in SQUASHES for op in self.to_output)

    @property
    def formula(self) -> str:
        return GRAD_CAM_FORMULA if self.grad_cam else CAM_FORMULA

    @property
    def method(self) -> str:
        if not self.grad_cam:
            return "CAM (Zhou et al. 2016) from its global-average-pool → linear head"
        acts = ", ".join(layer.op + (" gate" if layer.gated else "") for layer in self.layers if isinstance(layer, Activation))
        return (f"Grad-CAM (Selvaraju et al. 2017) through its global-average-pool → {acts} → linear head, the gradient "
                "computed in the graph per face")


def constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    out = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def int_list(n: onnx.NodeProto, attr: str, index: int, consts: dict[str, np.ndarray]) -> list[int] | None:
    """A node's integers given as an attribute (older opsets) or as its constant input ``index``; None where
    neither gives them."""
    given = next((helper.get_attribute_value(a) for a in n.attribute if a.name == attr), None)
    if given is None and len(n.input) > index and n.input[index] in consts:
        given = consts[n.input[index]]
    return None if given is None else [int(v) for v in np.ravel(given)]


def pool_layout(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> bool | None:
    """Whether a pooling node averages an NHWC map (True), an NCHW one (False), or is no global average pool."""
    if node.op_type == "GlobalAveragePool":
        return False
    if node.op_type != "ReduceMean":
        return None
    axes = int_list(node, "axes", 1, consts)
    if axes is None:
        return None
    axes = sorted(a % 4 for a in axes)
    return {(2, 3): False, (1, 2): True}.get(tuple(axes))


@dataclass(frozen=True)
class Classes:
    """Where a tensor of the head keeps its units (after the last linear layer, its classes; before it, its
    features): its number of axes (None: not known) and the unit axis, counted from the end (−1: the last); None
    where a Gather of one class has taken it away."""

    rank: int | None
    axis: int | None = -1

    def is_class_axis(self, axis: int) -> bool:
        """Whether a node's ``axis`` (an ONNX attribute: from the start, or from the end where negative) is ours."""
        if self.axis is None or (axis >= 0 and self.rank is None):
            return False
        return (axis - self.rank if axis >= 0 else axis) == self.axis  # type: ignore[operator]

    def per_class(self, value: np.ndarray, k: int | None) -> np.ndarray | None:
        """A constant broadcast onto the K units: one value for all, or one per unit on the unit axis, adding no
        axis (a constant of more axes than the tensor would give the output axes of its own); None otherwise, as
        for a value per face of a batch fixed at export, [N, 1]. ``k`` None: not known yet (the pooled features,
        before the first linear layer: their count is checked there)."""
        if value.ndim > (self.rank if self.rank is not None else 1):
            return None
        if value.size == 1:
            return np.full(k or 1, float(np.ravel(value)[0]))
        if self.axis is None or value.ndim < -self.axis or value.shape[self.axis] != value.size \
                or (k is not None and value.size != k):
            return None
        return value.astype(np.float64).ravel()


def scale_or_shift(op: str, k: np.ndarray, first: bool) -> Affine | None:
    """x op k (``first``), or k op x, as an element-wise affine layer; None for k / x, which is not affine."""
    if op == "Mul":
        return Affine(k, np.zeros_like(k))
    if op == "Div":
        return Affine(1 / k, np.zeros_like(k)) if first else None
    if op == "Add":
        return Affine(np.ones_like(k), k)
    return Affine(np.ones_like(k), -k) if first else Affine(-np.ones_like(k), k)


@dataclass(frozen=True)
class _End:
    """Where the last linear layer, with what folds into it (``layer``), becomes a graph output: ``logits`` its
    folded output, which reaches ``output`` through the TO_OUTPUT ops ``to_output`` alone, in order; ``squashed``
    where a softmax or sigmoid is among them (then ``output`` holds the model's own probabilities); ``zeroed_by``:
    the node that folded weights not all zero to zero, if one did."""

    layer: Affine
    logits: str
    output: str
    to_output: tuple[str, ...]
    zeroed_by: str = ""

    @property
    def squashed(self) -> bool:
        return any(op in SQUASHES for op in self.to_output)


def _same_map(a: Affine, b: Affine) -> bool:
    """Whether two folded output layers are one map of the pooled features, to float rounding (z · 0.4 and z / 2.5
    fold to weights a rounding apart)."""
    if a.weight.shape != b.weight.shape or a.bias.shape != b.bias.shape:
        return False
    scale = max(float(np.abs(a.weight).max(initial=0)), float(np.abs(a.bias).max(initial=0)), 1e-30)
    return bool(np.allclose(a.weight, b.weight, rtol=1e-6, atol=1e-6 * scale)
                and np.allclose(a.bias, b.bias, rtol=1e-6, atol=1e-6 * scale))


def _named(n: onnx.NodeProto) -> str:
    """A node as a message names it: its op and its name in the graph (its output's where it has none)."""
    article = "an" if n.op_type[0] in "AEIOU" else "a"
    return f"{article} {n.op_type} ('{n.name or n.output[0]}')"


class _Graph:
    """Who makes and who takes each tensor, and the constants. ``stopped``: why the walk from the pool being read
    stopped, where the first node to stop it is one a head could hold had it been otherwise (a constant of the
    wrong shape, an op after the model's softmax): said in the refusal instead of "no head" alone."""

    def __init__(self, graph: onnx.GraphProto, path: Path):
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        self.producer: dict[str, onnx.NodeProto] = {}
        for n in graph.node:
            for i in n.input:
                self.consumers[i].append(n)
            for o in n.output:
                self.producer[o] = n
        self.consts = constants(graph)
        self.outputs = {o.name for o in graph.output}
        self.inputs = [i.name for i in graph.input if i.name not in self.consts]  # named in a refusal's advice
        self.path = path
        self.stopped: str | None = None

    def stop(self, why: str | None) -> None:
        """Remembers why the walk stopped: the first reason said, the node nearest the pool on the walk's way."""
        if self.stopped is None and why is not None:
            self.stopped = why

    def outputs_reached(self, name: str) -> list[tuple[str, tuple[str, ...]]]:
        """The graph outputs ``name`` becomes through nothing but softmaxes, sigmoids and reshapes (all of them: a
        model may give its logits and its probabilities), each with the ops on the way, in order."""
        found: list[tuple[str, tuple[str, ...]]] = [(name, ())] if name in self.outputs else []
        for n in self.consumers.get(name, []):
            if n.op_type in TO_OUTPUT:
                found += [(out, (n.op_type, *ops)) for out, ops in self.outputs_reached(n.output[0])]
        return found

    def ends_without_linear(self, name: str, seen: set[str] | None = None) -> bool:
        """Whether ``name`` reaches a graph output through no further linear layer: what stops the walk there
        follows the head's last one."""
        seen = set() if seen is None else seen
        if name in self.outputs:
            return True
        if name in seen:
            return False
        seen.add(name)
        return any(self.linear(n) is None and any(self.ends_without_linear(o, seen) for o in n.output)
                   for n in self.consumers.get(name, []))

    def traces_to(self, name: str, origin: str) -> bool:
        """Whether ``name`` is ``origin`` through reshapes, constant scales or shifts and choices of its classes
        alone: one more of the last linear layer's outputs."""
        while name != origin:
            n = self.producer.get(name)
            if n is None or not n.input:
                return False
            if n.op_type in THROUGH or n.op_type in ("Slice", "Gather"):
                name = n.input[0]
            elif n.op_type in SCALE_OR_SHIFT and len(n.input) == 2 and sum(i in self.consts for i in n.input) == 1:
                name = next(i for i in n.input if i not in self.consts)
            else:
                return False
        return True

    def linear(self, n: onnx.NodeProto) -> tuple[Affine, str] | None:
        """A Gemm, a MatMul with its Add, or a 1×1 convolution of the pooled 1×1 map (timm's ``conv_head``), with
        constant weights: the layer and its output."""
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        c = self.consts
        if n.op_type == "Conv" and n.input[1] in c and c[n.input[1]].shape[2:] == (1, 1) and attrs.get("group", 1) == 1 \
                and not any(attrs.get("pads", [])) and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
            weight = c[n.input[1]][:, :, 0, 0].astype(np.float64)
            if len(n.input) > 2 and n.input[2]:
                if n.input[2] not in c:
                    return None
                return Affine(weight, c[n.input[2]].astype(np.float64).ravel()), n.output[0]
            return Affine(weight, np.zeros(weight.shape[0])), n.output[0]
        if n.op_type == "Gemm" and n.input[1] in c and not attrs.get("transA", 0):
            w = c[n.input[1]].astype(np.float64)
            weight = attrs.get("alpha", 1.0) * (w if attrs.get("transB", 0) else w.T)
            bias_c = c.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
            if len(n.input) > 2 and n.input[2] and bias_c is None:
                return None
            bias = np.broadcast_to(np.ravel(attrs.get("beta", 1.0) * (bias_c if bias_c is not None else 0.0)),
                                   weight.shape[:1]).astype(np.float64)
            return Affine(weight, bias), n.output[0]
        if n.op_type == "MatMul" and n.input[1] in c and c[n.input[1]].ndim == 2:
            weight, out = c[n.input[1]].astype(np.float64).T, n.output[0]
            bias = np.zeros(weight.shape[0])
            after = self.consumers.get(out, [])
            if len(after) == 1 and after[0].op_type == "Add":
                other = [i for i in after[0].input if i != out]
                if other and other[0] in c and c[other[0]].size == weight.shape[0]:
                    bias, out = c[other[0]].astype(np.float64).ravel(), after[0].output[0]
            return Affine(weight, bias), out
        return None

    def elementwise(self, n: onnx.NodeProto, x: str, units: Classes, width: int | None) -> Affine | None:
        """Batch norm (eval), or a constant scale or shift: an affine layer that keeps each unit apart. ``units``:
        where ``x`` keeps its units, ``width`` their number (None before the first linear layer). A constant of
        one value per face, [N, 1] in a batch fixed at export, had been taken for one per unit and ended the walk
        in a NumPy broadcast traceback."""
        c = self.consts
        if n.op_type == "BatchNormalization" and all(i in c for i in n.input[1:5]):
            eps = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "epsilon"), 1e-5)
            scale, shift, mean, var = (c[i].astype(np.float64).ravel() for i in n.input[1:5])
            s = scale / np.sqrt(var + eps)
            return Affine(s, shift - mean * s)
        operand = self.constant_operand(n, x)
        if operand is None:
            return None
        values = units.per_class(operand[0], width)
        affine = None if values is None else scale_or_shift(n.op_type, values, operand[1])
        if affine is None:
            where = "its pooled features" if width is None else "the outputs of a linear layer of its head"
            self.stop(f"{where} go through {self.constant_refusal(n, operand, 'feature' if width is None else 'unit')}")
        return affine

    def constant_refusal(self, n: onnx.NodeProto, operand: tuple[np.ndarray, bool], unit: str) -> str:
        """Why a constant scale or shift of the head's ``unit``s (feature, unit or class) does not fold."""
        value, first = operand
        if n.op_type == "Div" and not first:
            return f"{_named(n)} of a constant by them, c / x, which is not affine in them"
        return (f"{_named(n)} with a constant of shape {list(value.shape)}: only one value for every {unit}, or one "
                f"for each on the {unit} axis, folds into the head, not a constant with an axis of its own (as a value "
                "per face of a batch fixed at export)")

    def constant_operand(self, n: onnx.NodeProto, x: str) -> tuple[np.ndarray, bool] | None:
        """The constant that a Mul, Div, Add or Sub applies to ``x``, and whether ``x`` comes first."""
        other = [i for i in n.input if i != x]
        if n.op_type not in SCALE_OR_SHIFT or len(other) != 1 or other[0] not in self.consts:
            return None
        return self.consts[other[0]], n.input[0] == x

    def activation(self, n: onnx.NodeProto, x: str) -> Activation | None:
        """Node ``n`` as an activation of ``x``, where it is one the head's map knows."""
        if n.op_type not in ACTIVATIONS:
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Clip":
            for key, i in (("min", 1), ("max", 2)):
                if len(n.input) > i and n.input[i]:
                    if n.input[i] not in self.consts:
                        return None
                    attrs[key] = float(self.consts[n.input[i]])
        return Activation(n.op_type, x, n.output[0], attrs)

    def gated(self, x: str) -> tuple[Activation, str] | None:
        """x · gate(x), spread over a gate and a Mul that both take ``x`` (SiLU, an unfused Hardswish)."""
        takers = self.consumers.get(x, [])
        gate = next((n for n in takers if n.op_type in GATES and list(n.input) == [x]), None)
        mul = next((n for n in takers if n.op_type == "Mul"), None)
        if gate is not None and mul is not None and sorted(mul.input) == sorted([x, gate.output[0]]) \
                and len(self.consumers.get(gate.output[0], [])) == 1:
            attrs = {a.name: helper.get_attribute_value(a) for a in gate.attribute}
            return Activation(gate.op_type, x, gate.output[0], attrs, gated=True), mul.output[0]
        return None

    def head_after(self, pool: onnx.NodeProto, nhwc: bool) -> Head | None:
        """The head that takes this pool's output to the model's output, or None where nothing does. Of several
        (a multi-task model's heads on one pool), the one ``the_classifier`` takes; two it cannot choose between
        are refused, naming their outputs: the first in node order had been hosted, a CelebA-style 'attractive'
        head taken for the gender classifier with adopt's status 0."""
        keeps_dims = next((helper.get_attribute_value(a) for a in pool.attribute if a.name == "keepdims"), 1)
        units = Classes(4, -1 if nhwc else -3) if keeps_dims else Classes(2)  # N×C×1×1, N×1×1×C, or N×C
        heads = self._walk(pool, nhwc, pool.output[0], [], units, None)
        # one wider than two classes: refused by adopt, saying so
        return self.the_classifier(heads, "its pooled features") or (heads or [None])[0]

    def the_classifier(self, heads: list[Head], fed_by: str) -> Head | None:
        """Of several heads, the one that can be the female/male classifier (two classes or fewer), None where none
        can; where several can, the only one of two outputs or through a softmax or sigmoid. An age regressor's
        bare value beside the gender head's probabilities had been refused as a second classifier; two that are
        each as likely (an 'attractive' head, an auxiliary gender head) are refused, naming their outputs.
        ``fed_by``: what feeds them, as the refusal says it."""
        classifiers = [h for h in heads if len(h.weight) <= 2]
        if len(classifiers) <= 1:
            return (classifiers or [None])[0]
        likely = [h for h in classifiers if len(h.weight) == 2 or h.squashed]
        if len(likely) != 1:
            raise BiasMirrorError(self.several_heads(classifiers, fed_by), self.path)
        return likely[0]

    def several_heads(self, heads: list[Head], fed_by: str) -> str:
        """Why several heads of two classes or fewer are refused, and how to export the one to host."""
        outputs = ", ".join(f"'{h.output}' ({len(h.weight)} output{'s' * (len(h.weight) > 1)})" for h in heads)
        return (f"{fed_by} feed {len(heads)} heads that could each be its female/male classifier, giving "
                f"its outputs {outputs}, and adopt cannot tell which is the gender classifier: export it giving "
                "the gender head's output alone, e.g. onnx.utils.extract_model(src, dst, input_names="
                f"{self.inputs}, output_names=['<its gender output>']), or a forward that returns that head alone")

    def _walk(self, pool: onnx.NodeProto, nhwc: bool, name: str, layers: list, units: Classes,
              width: int | None) -> list[Head]:
        # Every branch is followed and every head on them kept (a multi-task model has one per task; a model may
        # also give its pooled features as an embedding). Branches cannot meet again inside a head found here: a
        # merge takes two non-constant inputs, which no layer here does (the gate's Mul aside, whose derivative
        # counts both); the gradient check would show it if one did.
        # ``units``: where ``name`` keeps its units (features, then a layer's outputs), and ``width`` their
        # number once a linear layer has given it, to tell a constant of one value per unit from another.
        gated = self.gated(name)
        if gated is not None:
            return self._walk(pool, nhwc, gated[1], [*layers, gated[0]], units, width)
        found: list[Head] = []
        for taker in self.consumers.get(name, []):
            if taker.op_type in THROUGH:
                reshaped = Classes(self.rank_after(taker, units.rank), -1 if taker.op_type in RESHAPES else units.axis)
                found += self._walk(pool, nhwc, taker.output[0], layers, reshaped, width)
            elif (linear := self.linear(taker)) is not None and _fits(layers, linear[0].weight.shape[1]):
                found += self._after_linear(pool, nhwc, layers, taker, linear, units)
            elif (affine := self.elementwise(taker, name, units, width)) is not None:
                found += self._walk(pool, nhwc, taker.output[0], [*layers, affine], units, width)
            elif (act := self.activation(taker, name)) is not None:
                found += self._walk(pool, nhwc, taker.output[0], [*layers, act], units, width)
        return found

    def _after_linear(self, pool: onnx.NodeProto, nhwc: bool, layers: list, taker: onnx.NodeProto,
                      linear: tuple[Affine, str], units: Classes) -> list[Head]:
        """The heads through linear layer ``taker``: it as the output layer, where it gives an output, else those
        of the layers after it. An output wider than two classes that also feeds further layers is an embedding
        (pool → Linear(64, 64) given as an output → Linear(64, 2) → softmax): the walk goes on to the classifier
        after it, which had been refused as a head of 64 outputs; where none follows, it stays the head, which
        adopt refuses saying how many outputs it gives."""
        layer, out = linear
        out_units = Classes({"Gemm": 2, "Conv": 4}.get(taker.op_type, units.rank),
                            -3 if taker.op_type == "Conv" else -1)
        ended = self.output_layer(layer, out, out_units)
        if ended is not None and len(ended.layer.weight) <= 2:
            return [_head(pool, nhwc, layers, ended)]
        beyond = self._walk(pool, nhwc, out, [*layers, layer], out_units, len(layer.weight))
        return beyond or ([_head(pool, nhwc, layers, ended)] if ended is not None else [])

    def rank_after(self, n: onnx.NodeProto, rank: int | None) -> int | None:
        """The number of axes after a reshape-only node (THROUGH), where the graph tells it."""
        if n.op_type == "Flatten":
            return 2
        if n.op_type == "Reshape":
            shape = self.consts.get(n.input[1]) if len(n.input) > 1 else None
            return None if shape is None else int(np.size(shape))
        if n.op_type == "Squeeze":
            axes = int_list(n, "axes", 1, self.consts)
            return None if axes is None or rank is None else rank - len(axes)
        return rank

    def output_layer(self, layer: Affine, name: str, classes: Classes) -> _End | None:
        """The last linear layer (``layer``, whose output is ``name``) with what follows it folded in, where it
        becomes the model's output through a softmax or reshapes alone; None where nothing does. Temperature
        scaling (softmax(fc(x) / T)), logit adjustment (fc(x) − τ·log prior) and a DB-VAE's sigmoid(fc(x)[:, 0:1])
        had been refused as having no head; folded, they are one linear layer of the pooled features, whose CAM is
        exact.

        Where it becomes several outputs, the model's own probabilities are what it ships: a model giving its
        logits z and softmax(z / T) had been hosted with softmax(z), the walk stopping at the logits' output, its
        P(female) up to 0.19 from the model's while its check compared the logits. Two outputs that are not one
        map of the features (two calibrations) are refused, naming both: adopt cannot know which is meant, and an
        option to choose would be one more way to host the wrong one without a word. Of logits alone, those of one
        or two classes: a DB-VAE exported as its classifier's logit, latent mean and log-variance is hosted by the
        first."""
        ends = self.ends(layer, name, classes, name)
        shipped = [e for e in ends if e.squashed] or ends
        shipped = [e for e in shipped if len(e.layer.weight) <= 2] or shipped
        if not shipped:
            return None
        other = next((e for e in shipped[1:] if not _same_map(e.layer, shipped[0].layer)), None)
        if other is not None:
            what = "probabilities" if other.squashed else "logits (neither through a softmax or sigmoid)"
            # two choices of the layer's outputs read as these too: a DB-VAE's logit beside a latent of 1 or 2
            raise BiasMirrorError(f"its head gives two different sets of {what}, its outputs '{shipped[0].output}' "
                                  f"and '{other.output}' (say softmax(z) and a calibrated softmax(z / T), or a "
                                  "classifier's logit beside a DB-VAE's latent mean of one or two values), and adopt "
                                  "cannot tell which the model ships: export it with only the one to host (its "
                                  "logits may stay an output beside it; of a DB-VAE's encoder, its classifier logit "
                                  "alone, torch.sigmoid(fc(x)[:, 0:1]))", self.path)
        return shipped[0]

    def ends(self, layer: Affine, name: str, classes: Classes, origin: str, zeroed_by: str = "") -> list[_End]:
        """Every graph output ``layer`` (its output ``name``) becomes, through what folds into it and then TO_OUTPUT
        ops alone, one end each (the first found: the nearest the layer). ``origin``: the last linear layer's own
        output, for the reason a node does not fold (``unfolded``)."""
        found = [_End(layer, name, out, ops, zeroed_by) for out, ops in self.outputs_reached(name)]
        for taker in self.consumers.get(name, []):
            step = self.fold_step(taker, name, layer, classes)
            if step is None:
                self.stop(self.unfolded(taker, name, origin))
            else:
                zeroed = zeroed_by or (_named(taker) if np.any(layer.weight) and not np.any(step[0].weight) else "")
                found += self.ends(*step, origin, zeroed)
        unique: dict[str, _End] = {}
        for end in found:  # an output reached through a reshape is reached before it too
            unique.setdefault(end.output, end)
        return list(unique.values())

    def unfolded(self, n: onnx.NodeProto, x: str, origin: str) -> str | None:
        """Why node ``n`` of ``x``, after the last linear layer, does not fold into it, where it is one that stops
        the head (a graph output follows with no linear layer between): an op after the model's softmax or
        sigmoid, a constant of the wrong shape, a combination of two of its outputs, any other op. None where a
        further linear layer follows (an activation between two, or one a head never has, as GELU's Erf: the
        refusal lists what a head may hold)."""
        if n.op_type in SQUASHES:
            after = self.after_squash(n.output[0])
            if after is None or self.linear(after) is not None or not self.ends_without_linear(after.output[0]):
                return None
            return (f"its {n.op_type} is followed by {_named(after)}: only a constant scale, shift or choice of the "
                    f"logits before the {n.op_type} folds into its head, and the model's output must be the "
                    f"{n.op_type}'s own")
        if not self.ends_without_linear(n.output[0]):
            return None
        operand = self.constant_operand(n, x)
        if operand is not None:
            return f"its last linear layer's outputs go through {self.constant_refusal(n, operand, 'class')}"
        other = [i for i in n.input if i != x]
        if n.op_type in SCALE_OR_SHIFT and other and self.traces_to(other[0], origin):
            return (f"its last linear layer's outputs are combined with each other by {_named(n)}, which does not "
                    "fold into the layer: give its logits to a softmax instead (sigmoid(z1 − z0) is softmax(z)[:, 1])")
        return (f"its last linear layer's outputs go through {_named(n)}, which does not fold into the layer: only a "
                "constant scale or shift of its outputs, a constant choice of them (a Slice or Gather of the class "
                "axis) and reshapes may follow it, then a softmax or sigmoid")

    def after_squash(self, name: str) -> onnx.NodeProto | None:
        """The first node after a softmax or sigmoid's output ``name``, through TO_OUTPUT ops, that is not one."""
        for n in self.consumers.get(name, []):
            after = self.after_squash(n.output[0]) if n.op_type in TO_OUTPUT else n
            if after is not None:
                return after
        return None

    def fold_step(self, n: onnx.NodeProto, x: str, layer: Affine,
                  classes: Classes) -> tuple[Affine, str, Classes] | None:
        """``layer`` after node ``n`` of its output ``x``: a reshape, a constant scale or shift of every class or of
        each (one value on the class axis, adding no axis), or a constant choice of classes (a Slice or Gather of
        the class axis alone); None for any other node."""
        k = len(layer.weight)
        if n.op_type in THROUGH:
            reshaped = n.op_type in RESHAPES
            return layer, n.output[0], Classes(self.rank_after(n, classes.rank), -1 if reshaped else classes.axis)
        operand = self.constant_operand(n, x)
        if operand is not None:
            values = classes.per_class(operand[0], k)
            affine = None if values is None else scale_or_shift(n.op_type, values, operand[1])
            return None if affine is None else (Affine(*affine.fold(layer.weight, layer.bias)), n.output[0], classes)
        chosen = self.chosen_classes(n, x, classes, k)
        if chosen is None:
            return None
        rows, kept = chosen
        return Affine(layer.weight[rows], layer.bias[rows]), n.output[0], kept

    def chosen_classes(self, n: onnx.NodeProto, x: str, classes: Classes, k: int) -> tuple[np.ndarray, Classes] | None:
        """The classes a constant Slice or Gather of the class axis keeps, in order, and where they then lie."""
        if not n.input or n.input[0] != x or n.op_type not in ("Slice", "Gather"):
            return None
        if n.op_type == "Gather":
            axis = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "axis"), 0)
            if len(n.input) < 2 or n.input[1] not in self.consts or not classes.is_class_axis(axis):
                return None
            picked = self.consts[n.input[1]]
            if picked.ndim > 1 or not np.all((-k <= picked) & (picked < k)):
                return None
            one = picked.ndim == 0  # x[:, 0]: the class axis goes
            rank = None if classes.rank is None else classes.rank - one
            return np.ravel(picked) % k, Classes(rank, None if one else classes.axis)
        starts, ends = int_list(n, "starts", 1, self.consts), int_list(n, "ends", 2, self.consts)
        axes, steps = int_list(n, "axes", 3, self.consts), int_list(n, "steps", 4, self.consts) or [1]
        if starts is None or ends is None or len(starts) != 1 or axes is None or len(axes) != 1 \
                or len(steps) != 1 or steps[0] == 0 or not classes.is_class_axis(axes[0]):
            return None
        rows = np.arange(k)[slice(starts[0], ends[0], steps[0])]
        return (rows, classes) if len(rows) else None


def _head(pool: onnx.NodeProto, nhwc: bool, layers: list, end: _End) -> Head:
    out = end.layer
    if any(isinstance(layer, Activation) for layer in layers):
        return Head(pool.input[0], nhwc, out.weight.astype(np.float32), out.bias.astype(np.float32), end.logits,
                    pool.output[0], tuple(layers), end.output, end.to_output, end.zeroed_by)
    c = _channels(layers, out)
    w, b = np.eye(c), np.zeros(c)
    for layer in [*layers, out]:  # fold the affine chain into one layer: exact CAM
        w, b = layer.fold(w, b)
    return Head(pool.input[0], nhwc, w.astype(np.float32), np.asarray(b, np.float32), end.logits, pool.output[0],
                output=end.output, to_output=end.to_output, zeroed_by=end.zeroed_by)


def _fits(layers: Sequence, inputs: int) -> bool:
    """Whether the element-wise layers since the last linear one (before the first: on the pooled features, whose
    count only a linear layer tells) are one value for all of a linear layer's ``inputs``, or one for each."""
    since = []
    for layer in layers:
        since = [] if isinstance(layer, Affine) and layer.weight.ndim == 2 else [*since, layer]
    return all(layer.weight.size in (1, inputs) for layer in since if isinstance(layer, Affine))


def _channels(layers: Sequence, out: Affine) -> int:
    """The pooled feature's length: the first linear layer's input (element-wise layers before it keep it)."""
    return next(layer.weight.shape[1] for layer in [*layers, out] if isinstance(layer, Affine) and layer.weight.ndim == 2)


def find_head(graph: onnx.GraphProto, path: Path) -> Head:
    """The head after the last global average pool that leads to the output. Heads after different pools that give
    different outputs are chosen between as one pool's are: the last pool's had been hosted, right where the others
    reach no output (a squeeze-excitation block's), but a deep-supervision model's auxiliary gender head on an
    earlier layer's pool, exported beside the main head, was hosted in its place with adopt's status 0."""
    g = _Graph(graph, path)
    found, stopped = [], None
    for n in graph.node:
        nhwc = pool_layout(n, g.consts)
        if nhwc is None:
            continue
        g.stopped = None
        head = g.head_after(n, nhwc)
        if head is not None:
            found.append(head)
        stopped = g.stopped  # the last pool's: an earlier one's (a squeeze-excitation block's) is not the head's
    head_form = ("GlobalAveragePool or ReduceMean over the image axes, then Gemm, MatMul or 1×1 Conv layers with "
                 f"constant weights, with only {', '.join(sorted(ACTIVATIONS))}, batch norm or a constant scale "
                 "between them")
    if not found and stopped is not None:
        # the op that stopped it named: softmax(fc(x)) / T had been told it had no head at all
        raise BiasMirrorError(f"its global-average-pool → linear head cannot be hosted: {stopped}. (A head is "
                              f"{head_form}, then a softmax, a sigmoid or reshapes alone: without one the model has "
                              "no class-activation map, which Bias Mirror's classifiers show)", path)
    if not found:
        raise BiasMirrorError(f"found no global-average-pool → linear head that gives its output ({head_form}): "
                              "without one the model has no class-activation map, which Bias Mirror's classifiers "
                              "show", path)
    by_output = list({h.output: h for h in found}.values())  # the last pool's head of each output
    several = "its global average pools, one on an earlier layer than another (deep supervision's auxiliary heads),"
    return (len(by_output) > 1 and g.the_classifier(by_output, several)) or found[-1]


def cam_outputs(b: Builder, head: Head, prefix: str) -> None:
    """``probs`` and ``cam`` from the head: softmax of its output, and the map (exact CAM, or Grad-CAM)."""
    f = b.float(prefix + head.features)
    if head.nhwc:
        f = b.op("Transpose", [f], perm=[0, 3, 1, 2])
    if head.grad_cam:
        cam = _grad_cam(b, head, f, prefix)
    else:
        cam = b.op("Conv", [f, b.const(head.weight[:, :, None, None])])
    # N×K: a 1×1 Conv head (Keras' MobileNet: pool with keepdims, Conv, Flatten, Softmax) gives N×K×1×1, whose
    # softmax over axis 1 had been written as a 4-D ``probs`` the card refused. A Reshape, not a Flatten: the
    # wrapper's nodes run on CUDA, whose kernels the device check lists
    logits = b.op("Reshape", [b.float(prefix + head.logits), b.const(np.array([0, -1], np.int64))])
    if len(head.weight) == 1:  # one output: P(second label) = sigmoid, and the first label's map is its negative
        p = b.op("Sigmoid", [logits])
        b.op("Concat", [b.op("Sub", [b.const(np.float32(1)), p]), p], out="probs", axis=1)
        b.op("Concat", [b.op("Neg", [cam]), cam], out="cam", axis=1)
    else:
        b.op("Softmax", [logits], out="probs", axis=1)
        b.op("Identity", [cam], out="cam")


def _grad_cam(b: Builder, head: Head, f: str, prefix: str) -> str:
    # dy/dpool by the chain rule, from the output layer back: K×H constants until the first activation, then
    # N×K×H. Reshapes rather than Unsqueeze/ReduceSum, whose axes moved from attributes to inputs at opset 13.
    grad, k = b.const(head.weight), len(head.weight)
    for layer in reversed(head.layers):
        if isinstance(layer, Activation):
            d = b.op("Reshape", [layer.derivative(b, prefix), b.const(np.array([0, 1, -1], np.int64))])
            grad = b.op("Mul", [grad, d])
        elif layer.weight.ndim == 1:
            grad = b.op("Mul", [grad, b.const(layer.weight.astype(np.float32))])
        else:
            grad = b.op("MatMul", [grad, b.const(layer.weight.astype(np.float32))])
    b.op("Identity", [grad], out="bm/grad")  # named, so that the check can read it
    channels = _channels(head.layers, Affine(head.weight, head.bias))
    flat = b.op("Reshape", [f, b.const(np.array([0, channels, -1], np.int64))])
    cam = b.op("MatMul", ["bm/grad", flat])
    shape = b.op("Shape", [f])
    hw = b.op("Slice", [shape, b.const(np.array([2], np.int64)), b.const(np.array([4], np.int64))])
    n = b.op("Slice", [shape, b.const(np.array([0], np.int64)), b.const(np.array([1], np.int64))])
    return b.op("Reshape", [cam, b.op("Concat", [n, b.const(np.array([k], np.int64)), hw], axis=0)])
