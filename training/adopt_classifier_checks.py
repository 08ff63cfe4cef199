"""An adopted classifier checked on faces: its probabilities against the model's own output, its map against its
head (CAM's grid mean, or Grad-CAM's in-graph gradient against central differences), and its label order
(adopt_labels)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from inference.errors import BiasMirrorError
from training.adopt_head import Head
from training.adopt_labels import label_check, label_verdict
from training.adopt_run import Trial, run_alone
from training.adopt_wrap import PREFIX

MAX_DPROB = 1e-3
MAX_CAM_MISMATCH = 1e-3  # relative to the head's output scale
MAX_GRAD_ERROR = 2e-2  # a wrong derivative is off by tens of percent; float32 rounding leaves a few 1e-3 at worst
GRAD_STEPS = (1e-2, 3e-2, 1e-1, 3e-1)  # along a random direction, relative to the pooled features' RMS; a step that
# crosses a ReLU's kink spoils its face only, and the median is taken


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


def constant_head(head: Head) -> str | None:
    """Why the head gives every face the same output, where a constant after its last linear layer folds its
    weights to zero (logits × 0); None otherwise (a layer of zero weights itself is an untrained one's, as the
    label check says)."""
    if not head.zeroed_by:
        return None
    return (f"Its head's folded weights are all zero: {head.zeroed_by} after its last linear layer multiplies its "
            "outputs by 0, so its output does not depend on the face")


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


def classifier_checks(chosen: Trial, head: Head, model: onnx.ModelProto, src: Path, faces: np.ndarray,
                      genders: list[str | None], where: str, labels: list[str], force: bool,
                      echo: Callable[[str], None]) -> dict:
    """The wrapped classifier against the model run alone, its map against its head, and its label order."""
    probs, cam = chosen.got
    checks: dict = {"faces": where}
    # the output the head's path ends in, not the first: a model giving (probabilities, logits) had its
    # probabilities taken for logits and was refused
    names = [o.name for o in model.graph.output]
    checks["model_output_compared"] = head.output or names[0]
    own = run_alone(src, chosen.enc.encode(faces))[names.index(head.output) if head.output else 0]
    alone = as_probs(own, len(head.weight), head.to_output)
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
        label_verdict(labelled, labels, force, src, echo, constant_head(head))
    else:
        # faces without a gender label (a plain folder): a swapped order had been written without a word, every
        # P(female) it gives then 1 − the truth
        echo(f"warning: none of the faces it was checked on has a gender label, so the order --labels "
             f"{','.join(labels)} was not checked (nor --range, --mean, --std against right answers): give labelled "
             "faces with --dataset (utkface, celeba, fairface, or a folder with a labels CSV)")
        checks["labels"] = {"n": 0, "order": "not checked",
                            "note": "no face it was checked on had a gender label: the label order was not checked"}
    return {"checks": checks}
