"""ModelCard: the one self-description every Bias Mirror ONNX file carries.

The card is a JSON string in the ONNX ``metadata_props`` under ``model_card``.
All three kinds of model share it:

- ``classifier``: uint8 RGB faces (N×H×W×3) → ``probs`` (N×K) and ``cam`` (N×K×h×w)
- ``filter``: uint8 RGB ``image`` → uint8 RGB ``filtered``, optionally with a ``condition`` input
- ``generator``: a float latent (N×D) → uint8 RGB face

Exporters write it and loaders check it, so a file that says it is a classifier
but has no ``cam`` output is refused at load time instead of failing mid-frame.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from . import strict_json
from .errors import BiasMirrorError

SCHEMA_VERSION = 1
METADATA_KEY = "model_card"
KINDS = ("classifier", "filter", "generator")
# The arithmetic a file's weights and activations are stored in. Optional in the
# JSON (cards written before it existed are fp32); an fp16 variant keeps the
# uint8/float32 inputs and outputs of its parent, so loaders treat both alike.
PRECISIONS = ("fp32", "fp16")
# ONNX names are single-assignment: a graph cannot have an input and an output
# both called "image", so a filter's output has its own name.
OUTPUT_NAMES = {"filter": "filtered", "generator": "image"}


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output. ``shape`` uses ``"N"`` for the dynamic batch axis."""

    name: str
    shape: list[Any]
    dtype: str
    layout: str | None = None  # "NHWC" for images
    color: str | None = None  # "RGB" for images
    labels: list[str] | None = None  # for a one-hot/float ``condition`` input


@dataclass(frozen=True)
class ModelCard:
    kind: str
    name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    labels: list[str] = field(default_factory=list)
    method: str = ""
    cam: dict[str, Any] | None = None  # {"output": "cam", "grid": [h, w]}
    direction: str | None = None  # filters: "A->B"
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    schema_version: int = SCHEMA_VERSION

    # --- convenience -------------------------------------------------------
    @property
    def image_input(self) -> TensorSpec | None:
        return next((t for t in self.inputs if t.layout == "NHWC"), None)

    @property
    def input_size(self) -> tuple[int, int] | None:
        spec = self.image_input
        return None if spec is None else (int(spec.shape[1]), int(spec.shape[2]))

    def output(self, name: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.name == name), None)

    def summary(self) -> str:
        size = self.input_size
        where = f"{size[0]}×{size[1]}" if size else ",".join(str(s) for s in self.inputs[0].shape)
        data = self.training.get("dataset", "?")
        parts = [f"{self.kind} '{self.name}'", where]
        if self.labels:
            parts.append("labels " + "/".join(self.labels))
        if self.direction:
            parts.append(self.direction)
        parts.append(f"trained on {data}")
        if self.precision != "fp32":
            parts.append(self.precision)
        acc = self.metrics.get("overall", {}).get("accuracy", {})
        if isinstance(acc, dict) and "value" in acc:
            parts.append(f"test accuracy {acc['value']:.3f}")
        return ", ".join(parts)

    # --- (de)serialisation --------------------------------------------------
    def to_json(self) -> str:
        return strict_json.dumps(asdict(self), sort_keys=True)  # a metric with no cases is null, not NaN

    @classmethod
    def from_json(cls, text: str, source: object = None) -> "ModelCard":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BiasMirrorError(f"the model card is not valid JSON ({exc})", source) from exc
        if not isinstance(raw, dict):
            raise BiasMirrorError("the model card is not a JSON object", source)
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BiasMirrorError(
                f"model card schema version {version!r} is not supported (this build reads {SCHEMA_VERSION});"
                " re-export the model with this version of Bias Mirror",
                source,
            )
        try:
            raw["inputs"] = [TensorSpec(**t) for t in raw["inputs"]]
            raw["outputs"] = [TensorSpec(**t) for t in raw["outputs"]]
            card = cls(**raw)
        except (KeyError, TypeError) as exc:
            raise BiasMirrorError(f"the model card is incomplete or has unknown fields ({exc})", source) from exc
        card.validate(source)
        return card

    def validate(self, source: object = None) -> None:
        """Check the card is coherent for its kind; raise BiasMirrorError if not."""

        def fail(msg: str) -> None:
            raise BiasMirrorError(f"invalid model card: {msg}", source)

        if self.kind not in KINDS:
            fail(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.precision not in PRECISIONS:
            fail(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if not self.inputs or not self.outputs:
            fail("it lists no inputs or no outputs")
        if self.kind in ("classifier", "filter"):
            img = self.image_input
            if img is None or img.dtype != "uint8" or len(img.shape) != 4 or img.shape[3] != 3:
                fail(f"a {self.kind} needs a uint8 N×H×W×3 image input")
        if self.kind == "classifier":
            if len(self.labels) < 2:
                fail("a classifier needs at least two labels")
            probs = self.output("probs")
            if probs is None:
                fail("a classifier needs a 'probs' output")
            if self.cam is None or self.output(self.cam.get("output", "")) is None:
                fail("a classifier needs a CAM output named in card.cam")
        if self.kind in ("filter", "generator"):
            name = OUTPUT_NAMES[self.kind]
            out = self.output(name)
            if out is None or out.dtype != "uint8" or out.layout != "NHWC":
                fail(f"a {self.kind} needs a uint8 NHWC output named '{name}'")
        if self.kind == "generator":
            lat = self.inputs[0]
            if lat.dtype != "float32" or len(lat.shape) != 2:
                fail("a generator needs a float32 N×D latent as its first input")


def classifier_card(
    name: str,
    size: int,
    labels: list[str],
    cam_grid: tuple[int, int],
    method: str,
    training: dict[str, Any],
    metrics: dict[str, Any],
    cam_formula: str = "sum_c w[k,c] * F[c] (raw, unnormalised)",
) -> ModelCard:
    """The card for a CAM classifier with the project's fixed I/O names."""
    k = len(labels)
    return ModelCard(
        kind="classifier",
        name=name,
        inputs=[TensorSpec("image", ["N", size, size, 3], "uint8", "NHWC", "RGB")],
        outputs=[
            TensorSpec("probs", ["N", k], "float32"),
            TensorSpec("cam", ["N", k, cam_grid[0], cam_grid[1]], "float32"),
        ],
        labels=list(labels),
        cam={"output": "cam", "grid": list(cam_grid), "formula": cam_formula},
        method=method,
        training=training,
        metrics=metrics,
    )


def filter_card(
    name: str,
    size: int,
    direction: str,
    method: str,
    training: dict[str, Any],
    metrics: dict[str, Any],
    condition_labels: list[str] | None = None,
) -> ModelCard:
    inputs = [TensorSpec("image", ["N", size, size, 3], "uint8", "NHWC", "RGB")]
    if condition_labels:
        inputs.append(TensorSpec("condition", ["N", len(condition_labels)], "float32", labels=list(condition_labels)))
    return ModelCard(
        kind="filter",
        name=name,
        inputs=inputs,
        outputs=[TensorSpec(OUTPUT_NAMES["filter"], ["N", size, size, 3], "uint8", "NHWC", "RGB")],
        direction=direction,
        method=method,
        training=training,
        metrics=metrics,
    )


def generator_card(
    name: str, latent_dim: int, size: int, method: str, training: dict[str, Any], metrics: dict[str, Any]
) -> ModelCard:
    return ModelCard(
        kind="generator",
        name=name,
        inputs=[TensorSpec("z", ["N", latent_dim], "float32")],
        outputs=[TensorSpec("image", ["N", size, size, 3], "uint8", "NHWC", "RGB")],
        method=method,
        training=training,
        metrics=metrics,
    )
