"""Reading an ONNX model made elsewhere: its file (one whose Bias Mirror card the app takes is refused), its image
and condition inputs (or a generator's latent), and what they leave the options to say: the layout, the face size, a
uint8 input's range, and the names of a conditional filter's conditions with what the model takes for each."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import onnx
from onnx import TensorProto
from google.protobuf.message import DecodeError

from inference.card import METADATA_KEY
from inference.errors import BiasMirrorError
from inference.file_identity import file_hash
from inference.models import PYTORCH_FILE, external_data_files, is_pytorch_file, load_failure, load_model
from inference.runtime import RuntimeConfig
from inference.untrusted_text import terminal_safe
from training.adopt_encoding import Conditions, written_value


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
                                  "app, run and audit run classifiers and filters, and the Python API takes it as it "
                                  f"is (load_model({str(path)!r}).generate(z))", path)
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


def model_digest(path: Path) -> tuple[str, list[str]]:
    """The sha256 of the model at ``path`` with its weights: the .onnx file's bytes, then each external data file's
    it names, in name order (two filters differing only in their .data file had been given the same digest, of
    the .onnx stub alone); and those files' names, as the model gives them."""
    files = sorted(external_data_files(path))
    return file_hash(path, *(path.parent / f for f in files)), files


# Nodes of a model quantised to 8-bit integers: onnxruntime.quantization's QDQ (QuantizeLinear/DequantizeLinear
# around float ops), its QOperator format (QLinearConv, QLinearMatMul, QLinearAdd… of com.microsoft too) and its
# dynamic quantisation (DynamicQuantizeLinear, ConvInteger, MatMulInteger)
_QUANTISED_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger",
                  "QGemm", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}


def quantised(model: onnx.ModelProto) -> bool:
    """Whether the model computes in 8-bit integers (its card's precision int8): one quantised by
    onnxruntime.quantization had been carded fp32."""
    return any(n.op_type in _QUANTISED_OPS or n.op_type.startswith("QLinear") for n in model.graph.node)


# Nodes that draw random numbers: a VAE's reparameterisation (μ + σ·ε, torch.randn_like: RandomNormalLike), noise
# added to a latent, a sampled class. Its output changes from run to run, which no check, card or audit can stand on.
RANDOM_OPS = ("RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli", "Multinomial")
SAMPLED_BY_RUNS = "its output differs between two runs on the same input"


def random_nodes(model: onnx.ModelProto) -> list[str]:
    """Its nodes that draw random numbers, each as "OpType 'name'", those of its subgraphs (If, Loop) and local
    functions too."""
    graphs = [model.graph, *model.functions]
    found = []
    while graphs:
        graph = graphs.pop(0)
        for node in graph.node:
            if node.op_type in RANDOM_OPS:
                found.append(f"{node.op_type} '{node.name}'")
            for a in node.attribute:
                graphs.extend([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs))
    return found


def sampling_refusal(how: str) -> str:
    """Why a model that samples at random (``how``: its random nodes, or SAMPLED_BY_RUNS) is refused, and what to
    export instead: such a model had been refused as if its wrapper, or its export, differed from it."""
    return (f"the model samples at random ({how}): its output changes from run to run, so neither a wrapper nor an "
            "export can be checked against it, nor an audit repeated. Export its deterministic path (e.g. the mean of "
            "the latent: the decoder on μ, without the reparameterisation μ + σ·ε; noise added to a latent left out), "
            "with the model in eval mode")


def check_deterministic(model: onnx.ModelProto, path: Path) -> None:
    """Refuses a model whose graph draws random numbers, naming its nodes (three at most)."""
    nodes = random_nodes(model)
    if nodes:
        more = f" and {len(nodes) - 3} more" if len(nodes) > 3 else ""
        raise BiasMirrorError(sampling_refusal(", ".join(nodes[:3]) + more), path)


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
    """Its image input, and the condition input of a conditional filter: a batch of K-vectors (K fixed, or open and
    fixed by --conditions), or of single numbers or indices (N,), which --conditions gives values."""
    inputs = _fed_inputs(model)
    images = [i for i in inputs if len(dims_of(i)) == 4]
    others = [i for i in inputs if len(dims_of(i)) != 4]
    if len(inputs) == 2 and len(images) == 1 and len(dims_of(others[0])) in (1, 2):
        _check_not_latent(model, images[0], path)
        return images[0], others[0]
    if len(inputs) != 1:
        raise BiasMirrorError(f"it has {len(inputs)} inputs ({', '.join(f'{i.name} {dims_of(i)}' for i in inputs)}): "
                              "only a model that takes one image tensor (a filter: and one condition, a vector or a "
                              "number a face) can be adopted", path)
    if not images:
        hint = _LATENT_HINT if _is_latent(model, inputs[0]) else ""
        raise BiasMirrorError(f"its input '{inputs[0].name}' has shape {dims_of(inputs[0])}, not a batch of images "
                              f"(four axes){hint}", path)
    _check_not_latent(model, images[0], path)
    return images[0], None


def _fed_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Its graph inputs that are fed, not weights (an older exporter lists its initializers among them)."""
    weights = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


_LATENT_HINT = ": it looks like a generator's latent (noise in, a face out): adopt it with --kind generator"
_FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16)


def _is_latent(model: onnx.ModelProto, value: onnx.ValueInfoProto) -> bool:
    """A batch of float vectors, N×D or N×D×1×1 (a DCGAN's z; D not the 3 colours of a 1×1 image), into a model
    whose output is a batch of images: a classifier of feature vectors gives scores."""
    dims = dims_of(value)
    floats = value.type.tensor_type.elem_type in _FLOAT_TYPES
    gives_images = len(model.graph.output) == 1 and len(dims_of(model.graph.output[0])) == 4
    return floats and gives_images and (len(dims) == 2 or (len(dims) == 4 and dims[2:] == [1, 1] and dims[1] != 3))


def _check_not_latent(model: onnx.ModelProto, image: onnx.ValueInfoProto, path: Path) -> None:
    """A DCGAN's z (N×100×1×1) taken for an image had been told "cannot tell … whether colour is axis 1 or 3"."""
    if _is_latent(model, image):
        raise BiasMirrorError(f"its input '{image.name}' {dims_of(image)} is not a batch of images (each 1×1, of "
                              f"{dims_of(image)[1]} channels){_LATENT_HINT}", path)


def latent_input(model: onnx.ModelProto, path: Path) -> tuple[onnx.ValueInfoProto, int]:
    """A generator's one input, a batch of float latents N×D or N×D×1×1 (a DCGAN's z), and its length D."""
    inputs = _fed_inputs(model)
    if len(inputs) != 1:
        raise BiasMirrorError(f"it has {len(inputs)} inputs ({', '.join(f'{i.name} {dims_of(i)}' for i in inputs)}): "
                              "a generator takes one, a batch of latents (N×D, or N×D×1×1)", path)
    z = inputs[0]
    dims = dims_of(z)
    if z.type.tensor_type.elem_type not in _FLOAT_TYPES or not (len(dims) == 2 or dims[2:] == [1, 1]):
        raise BiasMirrorError(f"its input '{z.name}' is {_type_of(z)} {dims}, {_not_latent(dims)}; a generator takes "
                              "a batch of float latents, N×D or N×D×1×1", path)
    if dims[1] is None:
        raise BiasMirrorError(f"its latent input '{z.name}' {dims} leaves its length D open: re-export it with D "
                              "fixed (the card says how long a latent is)", path)
    return z, dims[1]


def _type_of(value: onnx.ValueInfoProto) -> str:
    return onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name


def _not_latent(dims: list[int | None]) -> str:
    if len(dims) == 4:
        return "a batch of images: a filter (image → image) is adopted with --kind filter"
    return "not a batch of float vectors" if len(dims) == 2 else "not N×D or N×D×1×1"


COLOUR_AXIS = {"NCHW": 1, "NHWC": 3}


def layout_of(value: onnx.ValueInfoProto, asked: str, path: Path) -> str:
    return image_layout(dims_of(value), asked, path)


def image_layout(dims: list[int | None], asked: str, path: Path, what: str = "input") -> str:
    """The layout of an image tensor of shape ``dims``, its ``what`` (a generator's: its output): --layout's, checked,
    or where it leaves it to auto, the one that puts colour on the axis of 3; of an output, where no axis has 3, on the
    axis of 1: a grey image, given as three alike (adopt_wrap), as a filter's is. A grey generator had been asked for
    --layout, then refused it."""
    if asked != "auto":
        check_colour_axis(dims, asked, path, what)
        return asked
    for colours in (3, 1) if what == "output" else (3,):
        nchw, nhwc = dims[1] == colours, dims[3] == colours
        if nchw != nhwc:
            return "NCHW" if nchw else "NHWC"
        if nchw:  # both: the other tells it no better
            break
    raise BiasMirrorError(f"cannot tell from its {what} shape {dims} whether colour is axis 1 or 3: give --layout",
                          path)


def check_colour_axis(dims: list[int | None], layout: str, path: Path, what: str = "input") -> None:
    """The axis ``layout`` puts colour on holds 3 (or is open): a wrong --layout had been told its input is not
    square ("its input is 3×48")."""
    axis = COLOUR_AXIS[layout]
    if dims[axis] in (3, None) or (what == "output" and dims[axis] == 1):  # an output of 1: grey (image_layout)
        return
    other = next((name for name, i in COLOUR_AXIS.items() if dims[i] == 3), None)
    hint = f": its axis {COLOUR_AXIS[other]} has 3, so give --layout {other} (or leave --layout out)" if other else \
        ": no axis of it has the 3 colours of an RGB image"
    raise BiasMirrorError(f"--layout {layout} puts colour on axis {axis} of its {what} {dims}, which has {dims[axis]}"
                          f"{hint}", path)


def size_of(value: onnx.ValueInfoProto, layout: str, asked: int | None, path: Path) -> int:
    return image_size(dims_of(value), layout, asked, path)


def image_size(dims: list[int | None], layout: str, asked: int | None, path: Path, what: str = "input") -> int:
    """The face size of an image tensor of shape ``dims`` in ``layout``, its ``what`` (a generator's: its output):
    its height and width, square and --size's where --size is given, or --size where the graph leaves them open."""
    h, w = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
    if h is None or w is None:
        if asked is None:
            raise BiasMirrorError(f"its {what} shape {dims} leaves the image size open: give --size", path)
        return asked
    if h != w:
        raise BiasMirrorError(f"its {what} is {h}×{w}: Bias Mirror's face crops are square", path)
    if asked is not None and asked != h:
        raise BiasMirrorError(f"its {what} is fixed at {h}×{w}, not --size {asked}", path)
    return h


def output_shapes(model: onnx.ModelProto, image: onnx.ValueInfoProto, layout: str,
                  size: int) -> dict[str, list[int | None]] | None:
    """Each output's shape, by name, with the image input fixed at ``size``, as shape inference gives it; None where
    it cannot tell (an op it does not know)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    fed = next(i for i in probe.graph.input if i.name == image.name)
    for a in ((2, 3) if layout == "NCHW" else (1, 2)):
        fed.type.tensor_type.shape.dim[a].dim_value = size
    try:
        outputs = onnx.shape_inference.infer_shapes(probe).graph.output
    except Exception:  # noqa: BLE001 - an op shape inference does not know: the wrapped model is checked on faces
        return None
    return {o.name: dims_of(o) for o in outputs}


def _is_face(dims: list[int | None], layout: str, size: int) -> bool:
    """A batch of 3-colour images at ``size`` (an axis the graph leaves open may be)."""
    if len(dims) != 4:
        return False
    h, w = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
    return dims[COLOUR_AXIS[layout]] in (3, None) and h in (size, None) and w in (size, None)


def filter_output(model: onnx.ModelProto, shapes: dict[str, list[int | None]] | None, layout: str, size: int,
                  src: Path, echo: Callable[[str], None]) -> str:
    """The output of a filter that is its face: its one output, or of several (an image and a mask) the one 4-D
    image of 3 colours at its input's size, said, the others dropped from the graph. Refused, each named with its
    shape, where none or several are: "a filter should have one output" had left no way forward. ``shapes``: as
    inferred (``output_shapes``), or None: as the graph declares them."""
    names = [o.name for o in model.graph.output]
    if len(names) == 1:
        return names[0]
    shapes = shapes or {o.name: dims_of(o) for o in model.graph.output}
    faces = [n for n in names if _is_face(shapes.get(n, []), layout, size)]
    listed = ", ".join(f"'{n}' {shapes.get(n)}" for n in names)
    if len(faces) != 1:
        which = "none is" if not faces else f"{len(faces)} are"
        raise BiasMirrorError(f"it has {len(names)} outputs ({listed}) and {which} a face, a batch of 3-colour "
                              f"images of {size}×{size} in {layout}: a filter gives back one. Re-export it giving "
                              "the filtered image alone (return it alone from forward, with output_names=['y']), or "
                              "cut the graph at that output: onnx.utils.extract_model(IN, OUT, [input names], "
                              "[output name])", src)
    # the names are the foreign graph's own: an escape sequence in one would be obeyed by the terminal
    echo(terminal_safe(f"it has {len(names)} outputs ({listed}): '{faces[0]}', the one that is a face, taken; the "
                       "others left out"))
    kept = [o for o in model.graph.output if o.name == faces[0]]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    return faces[0]


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


def parse_conditions(entries: Sequence[str], src: Path) -> tuple[list[str], list[tuple[float, ...]] | None]:
    """--conditions as given: names alone (each fed one-hot), or each NAME=VALUE, a value being the model's
    condition for it, one number or several separated by ':' (female=1,male=0; blond=1:0:1). Refused: some with a
    value and some without, values of different lengths, a number that is not finite, the same value twice."""
    names = [e.partition("=")[0].strip() for e in entries]
    valued = ["=" in e for e in entries]
    if any(valued) and not all(valued):
        bare = names[valued.index(False)]
        raise BiasMirrorError(f"--conditions: give every condition a value (e.g. female=1,male=0) or none (each fed "
                              f"one-hot): '{bare}' has none", src)
    if "" in names:
        raise BiasMirrorError(f"--conditions: a condition has no name ({','.join(entries)}): NAME or NAME=VALUE",
                              src)
    if not any(valued):
        return names, None
    values = [_condition_value(e, src) for e in entries]
    lengths = {n: len(v) for n, v in zip(names, values)}
    if len(set(lengths.values())) > 1:
        raise BiasMirrorError("--conditions: each value is the model's whole condition, of one length; "
                              + ", ".join(f"{n} has {k}" for n, k in lengths.items()), src)
    first: dict[tuple[float, ...], str] = {}
    for name, value in zip(names, values):
        if first.setdefault(value, name) != name:
            raise BiasMirrorError(f"--conditions: {first[value]} and {name} give the model the same value "
                                  f"({written_value(value)}): each condition needs one of its own", src)
    return names, values


def _condition_value(entry: str, src: Path) -> tuple[float, ...]:
    name, _, text = entry.partition("=")
    try:
        value = tuple(float(v) for v in text.split(":"))
    except ValueError:
        value = ()
    if not value or not all(math.isfinite(v) for v in value):
        raise BiasMirrorError(f"--conditions: {entry!r}: the value of {name.strip()} should be finite numbers, one for "
                              "each entry of the model's condition, separated by ':' (e.g. female=1, or "
                              "smiling=0:1:0)", src)
    return value


_INTEGER_TYPES = (TensorProto.INT64, TensorProto.INT32, TensorProto.INT16, TensorProto.INT8, TensorProto.UINT8,
                  TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64, TensorProto.BOOL)


def _example(names: Sequence[str], width: int, integer: bool) -> str:
    """--conditions with a value for each of ``names`` (c0, c1 where none are given), as a model of ``width``
    numbers a face takes them: indices 0, 1… for an integer input, else 1 then 0 for one number, one-hot for
    several."""
    names = list(names) or ["c0", "c1"]
    if integer or width == 1:
        values = [str(i) for i in range(len(names))] if integer else [str(int(i == 0)) for i in range(len(names))]
    else:
        values = [":".join(str(int(i == j)) for j in range(width)) for i in range(len(names))]
    return ",".join(f"{n}={v}" for n, v in zip(names, values))


def check_conditions(src_cond: onnx.ValueInfoProto | None, kind: str, conditions: list[str],
                     src: Path) -> Conditions | None:
    """A second input is a filter's condition, and ``--conditions`` names each of its entries (fed one-hot), or
    gives each condition the value the model takes for it (a number, a vector, an index)."""
    if src_cond is None:
        if conditions:
            raise BiasMirrorError("--conditions names a conditional filter's conditions, and this model takes no "
                                  "condition input", src)
        return None
    dims = dims_of(src_cond)
    rank, k = len(dims), (dims[1] if len(dims) == 2 else 1)
    integer = src_cond.type.tensor_type.elem_type in _INTEGER_TYPES
    shape = "(N,)" if rank == 1 else f"[N, {k or 'K'}]"
    if kind != "filter":
        raise BiasMirrorError(f"it takes a second input, '{src_cond.name}' {shape}: only a filter may take a "
                              "condition", src)
    names, values = parse_conditions(conditions, src)
    if len(set(names)) != len(names):
        raise BiasMirrorError(f"--conditions names a condition twice ({','.join(names)}): name each once", src)
    if values is None and k == 1:  # rank 1 too
        raise BiasMirrorError(_needs_values(src_cond.name, shape, names, integer), src)
    if values is None:
        return _one_hot(src_cond.name, k, names, src)
    width = len(values[0])
    if k is not None and width != k:
        raise BiasMirrorError(f"its condition input '{src_cond.name}' {shape} takes {k} number(s) a face: give each "
                              f"condition {k}, separated by ':' (e.g. --conditions {_example(names, k, integer)}); "
                              f"{names[0]} has {width}", src)
    fractions = [f"{n}={written_value(v)}" for n, v in zip(names, values) if not all(x.is_integer() for x in v)]
    if integer and fractions:
        raise BiasMirrorError(f"its condition input '{src_cond.name}' {shape} is an integer index: "
                              f"{', '.join(fractions)} is not a whole number (e.g. --conditions "
                              f"{_example(names, width, True)})", src)
    return Conditions(tuple(names), tuple(values), rank, integer)


def _needs_values(name: str, shape: str, names: list[str], integer: bool) -> str:
    """Why names alone, fed one-hot, cannot be a condition that is one number or index a face: with one name it is
    always 1 (a 0/1 CVAE's other value never runs); with more they are too many."""
    what, each = ("an integer index", "its index") if integer else ("one number a face", "its value")
    example = _example(names if len(names) > 1 else [*names, "other"] if names else [], 1, integer)
    why = "" if not names else f" (names alone are fed one-hot, {len(names)} numbers a face)" if len(names) > 1 else \
        " (one name alone, fed one-hot, is always 1: the model's other values never run)"
    return (f"its condition input '{name}' {shape} is {what}, not a one-hot row: give each condition {each}, e.g. "
            f"--conditions {example}{why}")


def _one_hot(name: str, k: int | None, names: list[str], src: Path) -> Conditions:
    """Names alone: each entry of a K-vector, fed one-hot."""
    if k is None:  # exported with the condition's axis open: --conditions says how many there are
        if not names:
            raise BiasMirrorError(f"its second input '{name}' [N, K] looks like a condition whose K is left "
                                  "open: name its entries, in order and each once, with --conditions (e.g. "
                                  "--conditions female,male), or give each its value (e.g. female=1:0,male=0:1)", src)
        return Conditions(tuple(names))
    if len(names) != k:
        raise BiasMirrorError(f"its second input '{name}' [N, {k}] looks like a condition: name its {k} "
                              f"entries, in order and each once, with --conditions (e.g. --conditions "
                              f"{','.join(f'c{i}' for i in range(k))}), or give each condition its value (e.g. "
                              f"--conditions {_example(names, k, False)})" + (f"; {len(names)} given" if names else ""),
                              src)
    return Conditions(tuple(names))
