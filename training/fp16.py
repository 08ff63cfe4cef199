"""FP16 variants of our ONNX models, kept only where they keep parity with their fp32 parent.

    python main.py train fp16 MODEL.onnx [--out PATH] [--images DIR] [--n 256]
                              [--provider auto|cpu|cuda|tensorrt] [--force] [--unchecked]

The weights and activations become float16 (onnxconverter-common); the graph's
uint8 image input, float32 condition/latent inputs and float32/uint8 outputs
keep their types, so ``inference.models.load_model`` treats the variant like its
parent. Parity is measured against the parent on real faces, on the provider
the variant is meant for (auto: the best one here):

- classifier: max over faces of |ΔP| ≤ 1e-2 (every label's probability);
- filter (and generator): output ≤ 2 grey levels. The gate is the *maximum*
  |Δ| over every pixel and channel of every face, the literal reading of the
  issue; the 99.9th percentile and the share of changed values are reported
  beside it to show whether a failure is a few pixels or the whole image.

ONNX Runtime's CPU provider has no fp16 kernels for most of these operators on
x86: it silently inserts casts and computes them in fp32 on fp16-rounded
weights. On the CPU the measured parity is therefore the cost of fp16 *storage*,
not of fp16 arithmetic; the card says which operators ran in fp32, and a GPU run
of this command is the real check. A provider that refuses an fp16 operator
(NOT_IMPLEMENTED) is reported as such, and the variant is not written unless
``--unchecked`` is given (its card then says parity unmeasured).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import re
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np
import onnx
import onnxruntime as ort

from inference.arg_checks import check_output_file, positive_int, refuse_empty, resolved, user_path
from inference.file_identity import file_hash
from inference.writing import written_whole
from inference.card import METADATA_KEY, ModelCard
from inference.datasets.folder import list_images
from inference.defaults import MODELS_DIR
from inference.errors import BiasMirrorError
from inference.images import read_rgb
from inference.models import RUN_ERRORS, OnnxModel, load_model, ort_reason
from inference.runtime import CPU, RuntimeConfig
from training.resume import command_line

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "datasets" / "utkface" / "UTKFace"
MAX_DPROB = 1e-2  # classifier: max |ΔP| over faces and labels
MAX_GREY = 2  # filter / generator: max |Δ| in grey levels over all output values
LATENT_SEED = 0  # a generator's parity latents
T = TypeVar("T")
_ORT_NOT_IMPLEMENTED = ort.capi.onnxruntime_pybind11_state.NotImplemented  # type: ignore[attr-defined]
_LOAD_ERRORS = (ort.capi.onnxruntime_pybind11_state.InvalidGraph,  # type: ignore[attr-defined]
                ort.capi.onnxruntime_pybind11_state.InvalidProtobuf)  # type: ignore[attr-defined]


class ProviderCannotRun(Exception):
    """The provider has no fp16 kernel for an operator of the variant."""

    def __init__(self, provider: str, op: str, detail: str):
        self.provider, self.op = provider, op
        super().__init__(f"the {provider} provider cannot run fp16 {op}; parity must be measured on a GPU ({detail})")


# --- conversion -------------------------------------------------------------

def convert(model: onnx.ModelProto, keep_fp32: Sequence[str] = ()) -> onnx.ModelProto:
    """An fp16 copy of ``model`` with its I/O types kept; ``keep_fp32`` op types stay fp32.

    The converter retypes every float tensor, including the output of a
    ``Cast(to=FLOAT)`` (our uint8 → float preprocessing), but leaves the cast's
    ``to`` attribute alone, which ORT refuses to load. Those casts are kept in
    fp32 (the converter then adds a cast to fp16 after them). They are blocked by
    node name, not by op type: the casts the converter inserts would themselves
    match a blocked op type and be wrapped again, forever.
    """
    from onnxconverter_common.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.ModelProto.FromString(model.SerializeToString())
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"fp16_node_{i}_{node.op_type}"
        seen.add(node.name)
    keep = set(keep_fp32)
    blocked = [
        n.name for n in model.graph.node
        if n.op_type in keep
        or (n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT for a in n.attribute))
    ]
    io = [(v.name, v.type.tensor_type.elem_type) for v in [*model.graph.input, *model.graph.output]]
    out = convert_float_to_float16(model, keep_io_types=True, op_block_list=list(DEFAULT_OP_BLOCK_LIST),
                                   node_block_list=blocked)
    _unwrap_blocked_outputs(out.graph, dict(io))
    got = [(v.name, v.type.tensor_type.elem_type) for v in [*out.graph.input, *out.graph.output]]
    if got != io:
        raise ValueError(f"the converter changed the graph's input/output types: {io} → {got}")
    return out


def _unwrap_blocked_outputs(graph: onnx.GraphProto, types: dict[str, int]) -> None:
    """A kept-fp32 node that writes a graph output (Softmax → probs) gets a cast to fp16
    after it, and the output turns fp16 despite keep_io_types: drop that cast."""
    for out in graph.output:
        if types[out.name] != onnx.TensorProto.FLOAT or out.type.tensor_type.elem_type != onnx.TensorProto.FLOAT16:
            continue
        cast = next(n for n in graph.node if out.name in n.output)
        if cast.op_type != "Cast":
            continue
        inner = cast.input[0]
        graph.node.remove(cast)
        for node in graph.node:
            for seq in (node.input, node.output):
                for i, name in enumerate(seq):
                    if name == inner:
                        seq[i] = out.name
        stale = [v for v in graph.value_info if v.name == inner]
        for v in stale:
            graph.value_info.remove(v)
        out.type.tensor_type.elem_type = onnx.TensorProto.FLOAT


def fp16_weights(model: onnx.ModelProto) -> bool:
    """Whether most of a model's floating-point weights (initializers and Constant nodes) are float16: a model made
    elsewhere at fp16, which `train adopt` cards as fp16 (it had carded one fp32)."""
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)
    tensors = [*model.graph.initializer, *(a.t for n in model.graph.node if n.op_type == "Constant"
                                            for a in n.attribute if a.name == "value")]
    sizes = {True: 0, False: 0}
    for t in tensors:
        if t.data_type in floats:
            sizes[t.data_type == onnx.TensorProto.FLOAT16] += int(np.prod(t.dims, dtype=np.int64))
    return sizes[True] > sizes[False]


def fp16_graph(model: onnx.ModelProto) -> bool:
    """Whether the converter takes the model for one converted already (a float16 weight, tensor or cast), which it
    refuses to convert again."""
    from onnxconverter_common.float16 import check_if_fp16_ready

    return bool(check_if_fp16_ready(model.graph))


def check_keep_fp32(model: onnx.ModelProto, keep_fp32: Sequence[str], path: object) -> None:
    """--keep-fp32 names op types; one the graph does not have would keep nothing, silently (a typo, or a node
    name where an op type is meant)."""
    ops = sorted({n.op_type for n in model.graph.node})
    unknown = [op for op in keep_fp32 if op not in ops]
    if unknown:
        raise BiasMirrorError(f"--keep-fp32: {', '.join(unknown)} is not an op type of this model; its op types are "
                              f"{', '.join(ops)}", path)


def with_card(model: onnx.ModelProto, card: ModelCard, path: object) -> onnx.ModelProto:
    card.validate(path)
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    model.metadata_props.add(key=METADATA_KEY, value=card.to_json())
    return model


def save(model: onnx.ModelProto, path: Path) -> None:
    """Write atomically: a killed run leaves no half-written model under the final name."""
    with written_whole(path) as part:
        onnx.save(model, str(part))


# what a card names as the command where no command line made the variant (a script calling make_variant)
CALLED = "training.fp16.make_variant"


def variant_card(parent: ModelCard, parent_path: Path, keep_fp32: Sequence[str], parity: dict,
                 command: str = CALLED) -> ModelCard:
    conversion = {
        "parent": parent_path.name,
        "parent_sha256": file_hash(parent_path),
        "converter": f"onnxconverter-common {importlib.metadata.version('onnxconverter-common')}",
        "kept_fp32": sorted(keep_fp32),
        "command": command,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return replace(parent, name=f"{parent.name}-fp16", precision="fp16",
                   training={**parent.training, "fp16": conversion},
                   metrics={**parent.metrics, "fp16_parity": parity})


# --- what the provider really runs --------------------------------------------

def cpu_fp32_ops(path: Path) -> list[str]:
    """Operator types ORT's CPU provider computes in fp32 in this fp16 model (it inserts casts around them).

    Read from the graph as the provider runs it (before optimisation fuses the
    casts away): tensors produced by a float cast the file does not have, and
    everything computed from them, are fp32.
    """
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    own = {n.name for n in onnx.load(str(path), load_external_data=False).graph.node}
    with tempfile.TemporaryDirectory() as tmp:
        so.optimized_model_filepath = str(Path(tmp) / "as_run.onnx")
        ort.InferenceSession(str(path), sess_options=so, providers=[CPU])
        graph = onnx.load(so.optimized_model_filepath).graph
    fp32: set[str] = set()
    ops: set[str] = set()
    for node in graph.node:
        if node.op_type == "Cast":
            to = next((a.i for a in node.attribute if a.name == "to"), None)
            if to == onnx.TensorProto.FLOAT and (node.name not in own or any(i in fp32 for i in node.input)):
                fp32.update(node.output)
        elif any(i in fp32 for i in node.input):
            ops.add(node.op_type)
            fp32.update(node.output)
    return sorted(ops)


def _not_implemented(exc: BaseException | None) -> tuple[str, str] | None:
    """(operator, first line) when ``exc`` (or its cause) is ORT's NOT_IMPLEMENTED."""
    while exc is not None:
        text = str(exc)
        if isinstance(exc, _ORT_NOT_IMPLEMENTED) or "NOT_IMPLEMENTED" in text:
            m = re.search(r"implementation for (\w+)\(", text)
            return (m.group(1) if m else "operator"), text.splitlines()[0][:200] if text else type(exc).__name__
        exc = exc.__cause__
    return None


def open_variant(path: Path, runtime: RuntimeConfig, provider_name: str, src: Path,
                 keep_fp32: Sequence[str] = ()) -> OnnxModel:
    try:
        return load_model(path, runtime=runtime)
    except Exception as exc:
        hit = _not_implemented(exc)
        if hit is not None:
            raise ProviderCannotRun(provider_name, hit[0], hit[1]) from exc
        if isinstance(exc, BiasMirrorError) and isinstance(exc.__cause__, RUN_ERRORS + _LOAD_ERRORS):
            raise invalid_conversion(exc.__cause__, path, src, keep_fp32) from exc
        raise


def invalid_conversion(exc: BaseException, trial: Path, src: Path, keep_fp32: Sequence[str] = ()) -> BiasMirrorError:
    """The converter's graph refused by ONNX Runtime, said of the source model with the op types to keep in fp32:
    it was reported as an unreadable file at a temporary path that no longer existed. The advice adds the op named
    to those kept already: naming it alone, keeping Einsum on a ResNet advised Gemm, and keeping Gemm Einsum."""
    reason = ort_reason(exc)
    ops = {n.name: n.op_type for n in onnx.load(str(trial), load_external_data=False).graph.node}
    named = {ops[m] for m in re.findall(r"\(([^()]+)\)", reason) if m in ops}
    if named - set(keep_fp32):
        advice = f"; try --keep-fp32 {','.join(sorted(named | set(keep_fp32)))}"
    elif named:
        advice = (f"; {', '.join(sorted(named))} already kept in fp32 (--keep-fp32 {','.join(keep_fp32)}): keep "
                  "the op types that feed it too")
    else:
        advice = "; try --keep-fp32 with the op types it names"
    return BiasMirrorError(f"cannot convert to fp16: the converted graph is invalid ({reason}){advice}", src)


# --- inputs -----------------------------------------------------------------

def spread_evenly(items: Sequence[T], n: int) -> list[T]:
    """``n`` of ``items`` spread evenly over them, first and last included (all of them where there are fewer)."""
    if len(items) <= n:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round()]


def sample_images(folder: Path, n: int) -> list[Path]:
    """``n`` images spread evenly over the folder's sorted listing (UTKFace sorts by age first)."""
    if not folder.is_dir():
        raise BiasMirrorError("no image folder to measure fp16 parity on; give one with --images DIR", folder)
    paths = list_images(folder)
    if not paths:
        raise BiasMirrorError("no images in the folder to measure fp16 parity on; give one with --images DIR", folder)
    return spread_evenly(paths, n)


def read_faces(paths: Sequence[Path], size: tuple[int, int], folder: Path) -> np.ndarray:
    faces = [f for f in (read_rgb(str(p), size[0]) for p in paths) if f is not None]
    if not faces:
        raise BiasMirrorError("none of the images could be decoded", folder)
    return np.stack(faces)


def model_inputs(model: OnnxModel, folder: Path, n: int) -> tuple[np.ndarray, str]:
    """Faces at the model's size, or for a generator fixed normal latents; and what they are, for the card and the
    report (the folder's name alone had been recorded: '' for `--images .`, and a folder for a generator it never
    fed)."""
    if model.card.kind == "generator":
        shape = (n, model.latent_dim)  # type: ignore[attr-defined]
        latents = np.random.default_rng(LATENT_SEED).standard_normal(shape).astype(np.float32)
        return latents, f"N(0,1) latents, seed {LATENT_SEED}"
    return read_faces(sample_images(folder, n), model.size, folder), str(folder.resolve())  # type: ignore[attr-defined]


def runner(model: OnnxModel, condition: str | None = None) -> Callable[[np.ndarray], list[np.ndarray]]:
    """The model run on a batch; a conditional filter under ``condition`` (None: its first)."""
    if model.card.kind == "classifier":
        return lambda x: list(model.predict(x))  # type: ignore[attr-defined]
    if model.card.kind == "filter":
        return lambda x: [model.apply(x, model.condition_rows(condition, len(x)))]  # type: ignore[attr-defined]
    return lambda x: [model.generate(x)]  # type: ignore[attr-defined]


def conditions(model: OnnxModel) -> list[str | None]:
    """Every condition a filter can be asked for (as `train adopt` checks them); [None] for a model with none."""
    return list(getattr(model, "condition_labels", ())) or [None]


def run_all(model: OnnxModel, x: np.ndarray, batch: int = 32, condition: str | None = None) -> list[np.ndarray]:
    run = runner(model, condition)
    parts = [run(x[i:i + batch]) for i in range(0, len(x), batch)]
    return [np.concatenate(p) for p in zip(*parts)]


# --- parity and speed ---------------------------------------------------------

def compare(kind: str, want: list[np.ndarray], got: list[np.ndarray]) -> dict:
    """Parity figures and the verdict against the issue's thresholds."""
    if kind == "classifier":
        dp = np.abs(got[0].astype(np.float64) - want[0].astype(np.float64)).max(axis=1)
        cam_scale = float(np.abs(want[1]).max()) or 1.0
        return {
            "n": int(len(dp)),
            "max_abs_dprob": float(dp.max()),
            "p99_abs_dprob": float(np.percentile(dp, 99)),
            "argmax_flips": int((got[0].argmax(1) != want[0].argmax(1)).sum()),
            "max_abs_dcam_relative": float(np.abs(got[1].astype(np.float64) - want[1]).max() / cam_scale),
            "limit": {"max_abs_dprob": MAX_DPROB},
            "passed": bool(dp.max() <= MAX_DPROB),
        }
    d = np.abs(got[0].astype(np.int16) - want[0].astype(np.int16))
    return {
        "n": int(len(d)),
        "max_abs_grey": int(d.max()),
        "p99_9_abs_grey": float(np.percentile(d, 99.9)),
        "share_changed": float((d > 0).mean()),
        "limit": {"max_abs_grey": MAX_GREY},
        "passed": bool(d.max() <= MAX_GREY),
    }


def compare_all(parent: OnnxModel, variant: OnnxModel, x: np.ndarray) -> dict:
    """Parity under every condition, the worst one's figures kept: checked under the first condition only, a
    conditional filter 13 grey levels off under its second was written with a card saying it passed."""
    by = {c: compare(parent.card.kind, run_all(parent, x, condition=c), run_all(variant, x, condition=c))
          for c in conditions(parent)}
    if list(by) == [None]:
        return by[None]
    gate = "max_abs_dprob" if parent.card.kind == "classifier" else "max_abs_grey"
    worst = max(by, key=lambda c: (not by[c]["passed"], by[c][gate]))
    return {**by[worst], "passed": all(r["passed"] for r in by.values()), "worst_condition": worst,
            f"{gate}_by_condition": {c: r[gate] for c, r in by.items()}}


def speed(parent: OnnxModel, variant: OnnxModel, x: np.ndarray, batches: Sequence[int] = (1, 16),
          repeats: dict[int, int] | None = None) -> dict:
    """Median ms per run of both models at each batch size, interleaved in one run, and fp32/fp16."""
    repeats = repeats or {1: 30, 16: 8}
    out = {}
    for b in batches:
        xb = x[np.arange(b) % len(x)]
        runs = [runner(parent), runner(variant)]
        for run in runs:
            for _ in range(3):
                run(xb)
        times: list[list[float]] = [[], []]
        for _ in range(repeats.get(b, 5)):
            for j, run in enumerate(runs):
                t = time.perf_counter()
                run(xb)
                times[j].append(time.perf_counter() - t)
        ms32, ms16 = (float(np.median(t)) * 1e3 for t in times)
        out[f"batch{b}"] = {"fp32_ms": round(ms32, 3), "fp16_ms": round(ms16, 3), "fp32_over_fp16": round(ms32 / ms16, 3)}
    return out


# --- the command --------------------------------------------------------------

def make_variant(src: str | Path, out: str | Path | None = None, images: str | Path = DEFAULT_IMAGES, n: int = 256,
                 provider: str = "auto", force: bool = False, unchecked: bool = False,
                 keep_fp32: Sequence[str] = (), echo: Callable[[str], None] = print, command: str = CALLED) -> Path:
    """Convert, measure, and write ``out`` only if parity holds (or ``force``/``unchecked`` says so). An empty MODEL
    or --images is refused: as Path(".") it was read as the current folder. ``~`` (``~user``) is expanded in each
    path, as for datasets: MODEL '~/m.onnx' had been "not found" while its default --out was written in the home
    folder, and '~nosuch/m.onnx' a traceback."""
    refuse_empty(src, "MODEL", "the fp32 model's .onnx file")
    refuse_empty(images, "--images", "a folder of face images, or leave --images out for the shared UTKFace copy")
    resolved(images, "--images")  # a link loop named as one, as a dataset's is: it had been "no image folder"
    src, images = user_path(src), user_path(images)
    out = src.with_name(f"{src.stem}_fp16.onnx") if out is None else out
    out = check_output_file(out, "--out")  # first: "~/m.onnx" is compared as the home folder's (it had replaced m.onnx)
    if out.resolve() == src.resolve():
        raise BiasMirrorError("the fp16 variant would overwrite its parent; give another --out", out)
    parent = load_model(src, runtime=RuntimeConfig(provider=provider))
    if parent.card.precision != "fp32":
        raise BiasMirrorError(f"this model is already {parent.card.precision}; convert its fp32 parent", src)
    if parent.info.warning:
        echo(f"warning: {parent.info.warning}")
    proto = onnx.load(str(src))
    if fp16_graph(proto):  # its card says fp32 (an adopted fp16 model's did): the converter's own refusal is unclear
        raise BiasMirrorError("its graph is already fp16 (it holds float16 weights or tensors) though its card says "
                              "fp32: there is nothing to convert; convert the fp32 model it was made from", src)
    check_keep_fp32(proto, keep_fp32, src)
    try:
        with warnings.catch_warnings(record=True) as clamped:
            warnings.simplefilter("always")
            fp16 = convert(proto, keep_fp32)
    except ValueError as exc:
        raise BiasMirrorError(f"cannot convert to fp16: {exc}", src) from exc
    if clamped:
        echo(f"converter: {len(clamped)} float32 constant(s) outside fp16's range were clamped (to ±1e-7 or ±1e4)")
    folder = images
    x, measured_on = model_inputs(parent, folder, n)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".fp16-") as tmp:
        trial = Path(tmp) / out.name
        onnx.save(with_card(fp16, variant_card(parent.card, src, keep_fp32, {"measured": False}, command), trial), str(trial))
        try:
            variant = open_variant(trial, RuntimeConfig(provider=provider), parent.provider, src, keep_fp32)
            try:
                measured = compare_all(parent, variant, x)
            except Exception as exc:
                hit = _not_implemented(exc)
                if hit is None:
                    raise
                raise ProviderCannotRun(variant.provider, hit[0], hit[1]) from exc
        except ProviderCannotRun as exc:
            if not unchecked:
                raise BiasMirrorError(f"{exc}; not written (--unchecked writes it with parity unmeasured)", src) from exc
            echo(f"warning: {exc}; writing it with parity UNMEASURED (--unchecked)")
            parity = {"measured": False, "reason": str(exc)}
        else:
            parity = {"measured": True, "provider": variant.provider, "images": measured_on, **measured}
            if variant.info.provider == CPU:
                ops = cpu_fp32_ops(trial)
                parity["cpu_fp32_ops"] = ops
                if ops:
                    parity["note"] = ("ONNX Runtime's CPU provider computed these operators in fp32 on fp16-rounded "
                                      "weights: this is the cost of fp16 storage; measure on a GPU for fp16 arithmetic")
            echo(report(parent, parity))
            perf = speed(parent, variant, x)
            echo(f"speed on {variant.provider} (median of warm runs, same process): "
                 + "; ".join(f"{k}: fp32 {v['fp32_ms']:.2f} ms, fp16 {v['fp16_ms']:.2f} ms, fp32/fp16 ×{v['fp32_over_fp16']:.2f}"
                             for k, v in perf.items()))
            if not parity["passed"]:
                if not force:
                    raise BiasMirrorError(f"fp16 variant fails parity: {figures(parity)}; not written (--force writes it anyway)", src)
                echo("warning: parity FAILED; writing it anyway (--force)")
        save(with_card(fp16, variant_card(parent.card, src, keep_fp32, parity, command), out), out)
    echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; parent {src.stat().st_size / 1e6:.1f} MB)")
    if out.resolve().parent == MODELS_DIR.resolve():
        # beside a default model it is one more default, which the app, run and audit then load unasked
        echo(f"note: {out.name} is in {MODELS_DIR}, so it is now one of the default models; move it elsewhere if it "
             "should not be")
    return out


def figures(parity: dict) -> str:
    keys = ("max_abs_dprob", "p99_abs_dprob", "argmax_flips", "max_abs_dcam_relative",
            "max_abs_grey", "p99_9_abs_grey", "share_changed")
    shown = ", ".join(f"{k} {parity[k]:.4g}" for k in keys if k in parity)
    worst = f" under its worst condition, {parity['worst_condition']}," if parity.get("worst_condition") else ""
    on = f" of {parity['images']}" if parity.get("images") else ""
    return f"{shown}{worst} over {parity['n']} inputs{on} on {parity['provider']} (limit {parity['limit']})"


def report(parent: OnnxModel, parity: dict) -> str:
    verdict = "PASS" if parity["passed"] else "FAIL"
    lines = [f"fp16 parity of {parent.path.name} ({parent.card.kind}): {verdict}: {figures(parity)}"]
    if parity.get("note"):
        lines.append(f"note: {parity['note']}: {', '.join(parity['cpu_fp32_ops'])}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an fp32 Bias Mirror ONNX model (classifier, filter or generator)")
    p.add_argument("--out", help="where to write the variant (default: <stem>_fp16.onnx next to the model)")
    p.add_argument("--images", default=str(DEFAULT_IMAGES),
                   help="a folder of face images to measure parity on (default: the shared UTKFace copy)")
    p.add_argument("--n", type=positive_int, default=256, help="how many images (spread over the folder) to measure on")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="measure parity and speed on this provider (auto: the best one here)")
    p.add_argument("--keep-fp32", default="", metavar="OPS",
                   help="comma-separated ONNX op types to keep in fp32, e.g. Softmax,InstanceNormalization")
    p.add_argument("--force", action="store_true", help="write the variant even when parity fails")
    p.add_argument("--unchecked", action="store_true",
                   help="write the variant even when the provider cannot run it (card: parity unmeasured)")


def main(args: argparse.Namespace) -> int:
    keep = [op.strip() for op in args.keep_fp32.split(",") if op.strip()]
    # the command as typed: sys.argv[0] had told main.py from anything else, and the console script (`bias-mirror`)
    # was recorded as this module's function
    make_variant(args.model, args.out, args.images, args.n, args.provider, args.force, args.unchecked, keep,
                 command=command_line(args))
    return 0
