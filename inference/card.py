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
from typing import Any, Callable, Iterator

from . import strict_json
from .card_fields import PROPORTION, CardNotes, card_interval, spells_a_number
from .errors import BiasMirrorError
from .untrusted_text import not_in_a_name, one_line

SCHEMA_VERSION = 1
METADATA_KEY = "model_card"
KINDS = ("classifier", "filter", "generator")
# The arithmetic a file's weights and activations are stored in. Optional in the
# JSON (cards written before it existed are fp32); an fp16 variant keeps the
# uint8/float32 inputs and outputs of its parent, so loaders treat both alike, as
# they do an adopted model quantised to int8 elsewhere (its wrapper's too).
PRECISIONS = ("fp32", "fp16", "int8")
# How deep a card's JSON may nest: far deeper than any card needs (those trained here nest 6 deep), far shallower
# than Python's recursion limit. A card nested 600-990 deep parsed, then every command that wrote or printed it
# (train fp16's to_json, doctor --cards' strict_json) ended in a RecursionError, the limit being shared with the
# caller's own stack; refused as it is read, its file named.
MAX_CARD_DEPTH = 64
# How large a card's JSON may be, in UTF-8 bytes: the cards shipped and trained here weigh about 9-11 kB, adopted ones
# the same (11 kB the largest seen), so this leaves some 90 times their room. A card of 1,200 texts of 9,000
# characters (10.8 MB, each text within MAX_TEXT_CHARS) had loaded, then kept the app's Card dialog building for
# 97 s on the GUI thread and made `doctor --cards` write a line of 10.8 MB.
MAX_CARD_BYTES = 1_000_000
# How long a card's names may be (its model's, its labels', its inputs' and outputs'): each is drawn in the audit's
# figures and the app's checkboxes, and a model shared with a name of 20,000 characters had made a figure 120,442 px
# wide (34 s of the audit), one of a million a figure not finished in 10 minutes. 256: any run folder's name fits.
MAX_NAME_CHARS = 256
# How long any other text in a card may be (a method, a training command, a dataset's description, a key): far
# longer than a card written here needs, bounded all the same.
MAX_TEXT_CHARS = 10_000
# The largest face (px a side) a model may take or give: a card declaring 50000×50000 over a graph that said the
# same loaded, then the audit died allocating its first resize ("an unexpected error in Bias Mirror itself").
# The trainers' largest is 512; `train adopt --size` has the same bound.
MAX_FACE_SIZE = 1024
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
        return next((t for t in self.inputs if t.layout == "NHWC" and len(t.shape) == 4), None)

    @property
    def input_size(self) -> tuple[int, int] | None:
        spec = self.image_input
        return None if spec is None else (int(spec.shape[1]), int(spec.shape[2]))

    def output(self, name: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.name == name), None)

    def input(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)

    def summary(self, notes: CardNotes | None = None) -> str:
        """One line: kind, name, input, labels, training data and test accuracy. ``notes``: the reading of the
        card this is part of (``card_fields``), which says an accuracy of no type read as a number; a fresh one,
        naming no file, where not given."""
        data = self.training.get("dataset", "?")
        parts = [f"{self.kind} '{self.name}'", self._shape_words()]
        if self.labels:
            parts.append("labels " + "/".join(self.labels))
        if self.direction:
            parts.append(self.direction)
        parts.append(f"trained on {data}")
        if self.precision != "fp32":
            parts.append(self.precision)
        acc = overall_accuracy(self.metrics)
        if acc is not None:  # read as the Markdown reads it: "0.97" had been "not measured" here, 0.97 there
            value = card_interval(CardNotes() if notes is None else notes, "metrics.overall.accuracy", acc,
                                  within=PROPORTION)[0]
            if value is None and strict_json.measured(acc.get("value")):  # written, but no accuracy: not unmeasured
                parts.append(f"test accuracy not shown ({accuracy_not_shown(acc.get('value'))})")
            else:
                parts.append(f"test accuracy {figure(value, '.3f')}")
        # one line wherever it is printed (doctor, the audit's models, a tooltip's line): a direction or a dataset
        # is free text, and a newline in it would start a line of the card's own words
        return one_line(", ".join(parts))

    def _shape_words(self) -> str:
        """Its faces' size; a generator's latent and the faces it gives ("latent 100 → 64×64"), not the shape of the
        latent alone ("N,100", which said nothing of the faces); else its first input's shape."""
        size = self.input_size
        if size:
            return f"{size[0]}×{size[1]}"
        face = self.output(OUTPUT_NAMES["generator"]) if self.kind == "generator" else None
        latent = self.inputs[0].shape
        if face is not None and len(face.shape) == 4 and len(latent) == 2:
            return f"latent {latent[1]} → {face.shape[1]}×{face.shape[2]}"
        return ",".join(str(s) for s in latent)

    def check_text(self, source: object = None, said: str = "invalid model card") -> None:
        """Its names and texts within their caps (``validate``'s first check), refused as ``said``: the card adopt
        would write is checked so before its checks run."""

        def fail(msg: str) -> None:
            raise BiasMirrorError(f"{said}: {msg}", source)

        _check_text(self, fail)

    # --- (de)serialisation --------------------------------------------------
    def to_json(self) -> str:
        return strict_json.dumps(asdict(self), sort_keys=True)  # a metric with no cases is null, not NaN

    @classmethod
    def from_json(cls, text: str, source: object = None) -> "ModelCard":
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_CARD_BYTES:
            raise BiasMirrorError(f"the model card is {size:,} bytes of JSON, more than the {MAX_CARD_BYTES:,} a card "
                                  "may have (a card written by Bias Mirror has about 10,000): re-export the model with "
                                  "a shorter card", source)
        try:
            raw = json.loads(text)
        except RecursionError as exc:  # arrays or objects nested past Python's recursion limit: a traceback had
            raise BiasMirrorError("the model card is not readable JSON: it is nested too deeply", source) from exc
        except ValueError as exc:  # JSONDecodeError, or a number of more digits than Python converts
            raise BiasMirrorError(f"the model card is not valid JSON ({exc})", source) from exc
        if _nesting_depth(raw) > MAX_CARD_DEPTH:
            raise BiasMirrorError(f"the model card is not readable JSON: it is nested too deeply (more than "
                                  f"{MAX_CARD_DEPTH} levels; a card needs a few)", source)
        if not isinstance(raw, dict):
            raise BiasMirrorError("the model card is not a JSON object", source)
        _check_schema_version(raw.get("schema_version"), source)
        try:
            raw["inputs"] = _tensor_specs(raw["inputs"], "inputs", source)
            raw["outputs"] = _tensor_specs(raw["outputs"], "outputs", source)
            card = cls(**raw)
        except (KeyError, TypeError) as exc:
            raise BiasMirrorError(f"the model card is incomplete or has unknown fields ({exc})", source) from exc
        card.validate(source)
        return card

    def validate(self, source: object = None) -> None:
        """Check the card is coherent for its kind; raise BiasMirrorError if not."""

        def fail(msg: str) -> None:
            raise BiasMirrorError(f"invalid model card: {msg}", source)

        self.check_text(source)  # first: the checks after it quote the card's text
        if self.kind not in KINDS:
            fail(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.precision not in PRECISIONS:
            fail(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        _check_fields(self, fail)
        if not self.inputs or not self.outputs:
            fail("it lists no inputs or no outputs")
        if self.kind in ("classifier", "filter"):
            img = self.image_input
            if img is None or img.dtype != "uint8" or img.shape[3] != 3 or img.color not in (None, "RGB"):
                fail(f"a {self.kind} needs a uint8 N×H×W×3 RGB image input")
        _check_sizes(self, fail)
        if self.kind == "classifier":
            if len(self.labels) < 2:
                fail("a classifier needs at least two labels")
            probs = self.output("probs")
            if probs is None:
                fail("a classifier needs a 'probs' output")
            cam = None if self.cam is None else self.output(self.cam.get("output", ""))
            if cam is None:
                fail("a classifier needs a CAM output named in card.cam")
            _check_classifier_shapes(self, probs, cam, fail)  # type: ignore[arg-type]
        if self.kind in ("filter", "generator"):
            name = OUTPUT_NAMES[self.kind]
            out = self.output(name)
            # an RGB face, as every consumer reads it: a generator of 4 or 1 channels, or BGR, had loaded
            if out is None or out.dtype != "uint8" or out.layout != "NHWC" or out.shape[3] != 3 \
                    or out.color not in (None, "RGB"):
                fail(f"a {self.kind} needs a uint8 N×H×W×3 RGB (NHWC) output named '{name}'")
        if self.kind == "generator":
            lat = self.inputs[0]
            if lat.dtype != "float32" or len(lat.shape) != 2:
                fail("a generator needs a float32 N×D latent as its first input")
        _check_inputs_fed(self, fail)


def accuracy_not_shown(value: Any) -> str:
    """Why a card's overall accuracy ``value``, written but refused (``card_interval``), is not shown: a word is not a
    number; 1.7, or a value outside its own interval, is none an accuracy can have."""
    if not spells_a_number(value):
        return "its card's figure is not a number"
    return "its card's figure is not a proportion from 0 to 1 within its interval"


def figure(x: Any, spec: str) -> str:
    """A card's figure formatted, or "not measured": a run without test faces records its accuracy as null, and
    formatting that None crashed every command that printed the card."""
    return format(x, spec) if strict_json.measured(x) and isinstance(x, (int, float)) else "not measured"


def _nesting_depth(value: Any) -> int:
    """How deep ``value`` (parsed JSON) nests its arrays and objects (a number or string: 0), counted without
    recursing, so that a card of any depth is measured."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def overall_accuracy(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """A classifier card's overall test accuracy entry ({"value", "lo", "hi", "n"}), where it has one."""
    overall = metrics.get("overall")
    acc = overall.get("accuracy") if isinstance(overall, dict) else None
    return acc if isinstance(acc, dict) else None


def _check_schema_version(version: Any, source: object) -> None:
    """A card from a newer Bias Mirror asks for an upgrade, not a re-export with this (older) one."""
    if version == SCHEMA_VERSION and type(version) is int:
        return
    if type(version) is int and version > SCHEMA_VERSION:
        advice = "upgrade Bias Mirror to read it"
    else:
        advice = "re-export the model with this version of Bias Mirror"
    raise BiasMirrorError(f"model card schema version {version!r} is not supported (this build reads "
                          f"{SCHEMA_VERSION}); {advice}", source)


def _tensor_specs(raw: Any, field_name: str, source: object) -> list[TensorSpec]:
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise BiasMirrorError(f"invalid model card: '{field_name}' must be a list of objects", source)
    return [TensorSpec(**t) for t in raw]


def _is_count(x: Any) -> bool:
    """A positive whole number, and not a bool (JSON true would pass for 1)."""
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def _is_sequence(x: Any) -> bool:
    return isinstance(x, (list, tuple))


def _check_labels(labels: Any, where: str, fail: Callable[[str], None]) -> None:
    """Labels are a list of distinct names: a string "fm" was read as the labels f and m."""
    if not _is_sequence(labels) or not all(isinstance(x, str) and x for x in labels):
        fail(f"{where} must be a list of names (strings), not {labels!r}")
    if len(set(labels)) != len(labels):
        fail(f"{where} {list(labels)} name one label twice")


def _check_tensor(spec: TensorSpec, role: str, fail: Callable[[str], None]) -> None:
    """A tensor's axes: the batch first (a name such as "N"), then positive whole numbers or names."""
    where = f"{role} '{spec.name}'"
    if not isinstance(spec.name, str) or not spec.name:
        fail(f"an {role} has no name")
    for key in ("dtype", "layout", "color"):
        value = getattr(spec, key)
        if value is not None and not isinstance(value, str):
            fail(f"{where}: '{key}' must be a string, not {value!r}")
    if not _is_sequence(spec.shape) or not spec.shape:
        fail(f"{where}: 'shape' must be a list of axes, not {spec.shape!r}")
    if not isinstance(spec.shape[0], str) or not spec.shape[0]:
        fail(f"{where}: the first axis is the batch and must be a name such as \"N\", not {spec.shape[0]!r}")
    if not all(_is_count(d) or (isinstance(d, str) and d) for d in spec.shape[1:]):
        fail(f"{where}: an axis after the batch must be a positive whole number or a name; shape {list(spec.shape)}")
    if spec.layout == "NHWC" and len(spec.shape) != 4:  # a 2-D latent said to be NHWC had crashed doctor's summary
        fail(f"{where} is said to be NHWC (an image batch) but has shape {list(spec.shape)}")
    if spec.labels is not None:
        _check_labels(spec.labels, f"{where}: 'labels'", fail)
        if len(spec.shape) != 2 or spec.shape[1] != len(spec.labels):
            fail(f"{where} has {len(spec.labels)} labels but its shape is {list(spec.shape)}")


def _check_sized(spec: TensorSpec | None, axes: tuple[int, ...], fail: Callable[[str], None]) -> None:
    """The axes the runtime reads as sizes are positive whole numbers: a word or a negative image size passed
    where the graph's axes are symbolic, then crashed the resize."""
    if spec is None:
        return
    if len(spec.shape) <= max(axes) or not all(_is_count(spec.shape[a]) for a in axes):
        fail(f"'{spec.name}' has shape {list(spec.shape)}: its sizes (axes {', '.join(map(str, axes))}) must be "
             "positive whole numbers")


def _check_face_size(spec: TensorSpec | None, fail: Callable[[str], None]) -> None:
    """A face (N×H×W×3, its sizes already checked to be whole numbers) of at most ``MAX_FACE_SIZE`` px a side."""
    if spec is not None and max(spec.shape[1], spec.shape[2]) > MAX_FACE_SIZE:
        fail(f"'{spec.name}' has shape {list(spec.shape)}: a face of {spec.shape[1]}×{spec.shape[2]} px is larger "
             f"than the {MAX_FACE_SIZE}×{MAX_FACE_SIZE} Bias Mirror takes; re-export the model at a smaller size")


def _check_sizes(card: "ModelCard", fail: Callable[[str], None]) -> None:
    """Image sizes, the latent's length and the numbers of labels and conditions."""
    if card.kind != "generator":
        _check_sized(card.image_input, (1, 2, 3), fail)
        _check_face_size(card.image_input, fail)
    else:
        _check_sized(card.inputs[0], (1,), fail)
    if card.kind in OUTPUT_NAMES:
        _check_sized(card.output(OUTPUT_NAMES[card.kind]), (1, 2, 3), fail)
        _check_face_size(card.output(OUTPUT_NAMES[card.kind]), fail)
    _check_sized(card.input("condition"), (1,), fail)
    if card.kind == "classifier":
        _check_sized(card.output("probs"), (1,), fail)


_JSON_NAMES = {str: "a string", dict: "an object"}
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,), "name": (str,), "method": (str,), "precision": (str,), "training": (dict,), "metrics": (dict,),
    "direction": (str, type(None)), "cam": (dict, type(None)),
}


def _opening(text: str) -> str:
    """The start of a text too long to quote, quoted."""
    return repr(text[:40]) + "…"


def _quoted(text: str) -> str:
    """``text`` quoted on one line (repr escapes its controls and bidirectional overrides), its start alone where it
    is long."""
    return repr(text) if len(text) <= 40 else _opening(text)


def _names(card: "ModelCard") -> Iterator[tuple[str, Any]]:
    """(where, text) of each name the card gives: its own, its labels', its tensors' and their labels'."""
    yield "its name", card.name
    yield from _listed(card.labels, "its labels", "label")
    for role, specs in (("input", card.inputs), ("output", card.outputs)):
        for i, spec in enumerate(specs):
            yield f"{role} {i + 1}'s name", spec.name
            yield from _listed(spec.labels, f"{role} {i + 1}'s labels", f"{role} {i + 1}'s label")
            yield from _listed(spec.shape, f"{role} {i + 1}'s shape", f"{role} {i + 1}'s axis")


def _listed(names: Any, whole: str, each: str) -> Iterator[tuple[str, Any]]:
    """(where, name) of each of ``names``; of ``names`` itself where it is a text (the type checks refuse that, but
    quote it)."""
    if isinstance(names, str):
        yield whole, names
    elif _is_sequence(names):
        yield from ((f"{each} {i + 1}", name) for i, name in enumerate(names))


def _texts(card: "ModelCard") -> Iterator[tuple[str, str]]:
    """(where, text) of each text in the card's other fields and the keys of its objects, as deep as they nest
    (walked, not recursed)."""
    stack: list[tuple[str, Any]] = [(key, getattr(card, key)) for key in ("method", "direction", "cam", "training",
                                                                           "metrics")]
    stack += [(f"{role} '{spec.name}'.{key}", getattr(spec, key)) for role, specs in (("input", card.inputs),
              ("output", card.outputs)) for spec in specs for key in ("dtype", "layout", "color")]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            yield where, value
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and len(key) > MAX_TEXT_CHARS:
                    yield f"a key in {where}", key
                stack.append((f"{where}.{key if len(str(key)) <= 40 else _opening(str(key))}", item))
        elif isinstance(value, list):
            stack.extend((f"{where}.{i}", item) for i, item in enumerate(value))


def _check_text(card: "ModelCard", fail: Callable[[str], None]) -> None:
    """Names of at most ``MAX_NAME_CHARS`` characters, on one line of plain text, any other text of at most
    ``MAX_TEXT_CHARS``: a name is drawn in figures whose width it sets, and every text is shown where the card is."""
    for where, name in _names(card):
        if isinstance(name, str) and len(name) > MAX_NAME_CHARS:
            fail(f"{where} is {len(name):,} characters long ({_opening(name)}); a name may have at most "
                 f"{MAX_NAME_CHARS}")
        found = not_in_a_name(name) if isinstance(name, str) else None
        if found is not None:
            # a name opens lines of the audit, doctor and the app: "resnet10\nship gate: PASSED …" had printed a
            # forged PASSED line after the real FAILED one, and broke doctor --cards' "## name" heading
            fail(f"{where} holds the character {found[1]} (at character {found[0] + 1} of {_quoted(name)}); a name "
                 "must be one line of plain text, without line breaks, tabs, control characters or bidirectional "
                 "overrides")
    for where, text in _texts(card):
        if len(text) > MAX_TEXT_CHARS:
            fail(f"{where} is a text of {len(text):,} characters ({_opening(text)}); a card's text may have at "
                 f"most {MAX_TEXT_CHARS:,}")


def _check_fields(card: "ModelCard", fail: Callable[[str], None]) -> None:
    """Every field of the type the loaders read it as: "training": "oops" loaded, then crashed the summary."""
    for key, types in _FIELD_TYPES.items():
        value = getattr(card, key)
        if not isinstance(value, types):
            fail(f"'{key}' must be {' or '.join('null' if t is type(None) else _JSON_NAMES[t] for t in types)}, "
                 f"not {value!r}"[:300])
    if card.labels or card.kind == "classifier":
        _check_labels(card.labels, "'labels'", fail)
    for role, specs in (("input", card.inputs), ("output", card.outputs)):
        for spec in specs:
            _check_tensor(spec, role, fail)


def _check_classifier_shapes(card: "ModelCard", probs: TensorSpec, cam: TensorSpec,
                             fail: Callable[[str], None]) -> None:
    """probs N×K and cam N×K×h×w, K the number of labels and h×w card.cam's grid: a third label over two columns
    of probabilities loaded, then failed mid-run."""
    k = len(card.labels)
    if len(probs.shape) != 2 or probs.shape[1] != k:
        fail(f"output 'probs' has shape {list(probs.shape)} but the card has {k} labels (N×{k} expected)")
    if len(cam.shape) != 4 or cam.shape[1] != k:
        fail(f"output '{cam.name}' has shape {list(cam.shape)} but the card has {k} labels (N×{k}×h×w expected)")
    grid = card.cam.get("grid") if card.cam else None  # type: ignore[union-attr]
    if not _is_sequence(grid) or list(grid) != list(cam.shape[2:]):
        fail(f"cam 'grid' {grid!r} is not the {cam.name} output's h×w {list(cam.shape[2:])}")


def _check_inputs_fed(card: "ModelCard", fail: Callable[[str], None]) -> None:
    """Only the inputs the runtime feeds (the image or latent, and a filter's 'condition'): any other would be
    missing at every run."""
    first = card.inputs[0] if card.kind == "generator" else card.image_input
    fed = {first.name, *(["condition"] if card.kind == "filter" else [])}  # type: ignore[union-attr]
    extra = [t.name for t in card.inputs if t.name not in fed]
    if extra:
        fail(f"it lists input(s) {extra} that a {card.kind} is never fed (it takes "
             + ("its image and optionally a 'condition')" if card.kind == "filter" else "one input)"))


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
