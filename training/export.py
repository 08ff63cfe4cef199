"""ONNX export for every model kind, with the card embedded and a parity check.

Pre- and post-processing live inside the graph (uint8 NHWC in; softmax and
raw CAM, or uint8 images, out) so the runtime never has to know how a model
was normalised.

A filter's or generator's graph is told the range its network works in
(``value_range``, and a filter's ``output_range`` where its output's differs:
one of adopt's RANGES, symmetric [-1, 1] by default, as the CycleGAN and GAN
trainers take and give faces; a VAE's sigmoid decoder gives unit [0, 1]). The
card records it (``training.pixels``), and ``export`` refuses a range that
reads the network's output as it does not give it (``check_range``) where
another range reads it plausibly; a graph that samples at random is refused
as one (``check_deterministic``).
"""
from __future__ import annotations

import contextlib
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import onnx
import torch
from torch import nn

from inference import strict_json
from inference.card import METADATA_KEY, ModelCard
from inference.errors import BiasMirrorError
from inference.program_name import program
from inference.writing import Staged, write_failure, writing, written_whole
from training.adopt_encoding import RANGES, Conditions

OPSET = 17


class ClassifierGraph(nn.Module):
    """uint8 N×H×W×3 → (probs N×K, raw cam N×K×h×w)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor):
        logits, cam = self.net.forward_with_cam(self.net.preprocess(image))
        return torch.softmax(logits, dim=1), cam


DEFAULT_RANGE = "symmetric"  # [-1, 1]: the range the project's trainers (CycleGAN's tanh) take and give faces in


def range_named(name: str) -> tuple[float, float]:
    """The bounds of one of adopt's RANGES, by name."""
    if name not in RANGES:
        raise ValueError(f"a value range is one of {', '.join(RANGES)}, not {name!r}")
    return RANGES[name]


def to_model_range(image_uint8_nhwc: torch.Tensor, value_range: str = DEFAULT_RANGE) -> torch.Tensor:
    """uint8 NHWC → float NCHW in ``value_range`` (a name of RANGES). Written as x / 127.5 − 1 is for [-1, 1], so that
    the trainers' graphs are the ones exported before the range could be given."""
    lo, hi = range_named(value_range)
    return image_uint8_nhwc.permute(0, 3, 1, 2).float() / (255 / (hi - lo)) - (-lo)


def to_uint8_image(x: torch.Tensor, value_range: str = DEFAULT_RANGE) -> torch.Tensor:
    """float NCHW in ``value_range`` → uint8 NHWC, clipped to it and rounded. Clipped by whole numbers where its bounds
    are (every range's are), as x.clamp(-1, 1) was: float bounds number the traced graph's values otherwise, and the
    trainers' graphs would differ from those exported before the range could be given."""
    lo, hi = (int(b) if b.is_integer() else b for b in range_named(value_range))
    return ((x.clamp(lo, hi) + (-lo)) * (255 / (hi - lo))).round().permute(0, 2, 3, 1).to(torch.uint8)


def _interval(name: str) -> str:
    lo, hi = RANGES[name]
    return f"[{lo:g}, {hi:g}] ({name})"


class ImageToImageGraph(nn.Module):
    """uint8 face (+ optional float condition) → uint8 face. ``value_range``: the range (a name of RANGES) the network
    takes faces in, and gives them in unless ``output_range`` names its output's own (a [-1, 1] input and a
    sigmoid's [0, 1] output). Every face had been fed in [-1, 1]: a CVAE trained on [0, 1] gave each pixel darker
    than mid-grey back as 128, and was audited as lightening skin by 8° ITA.

    The card's condition is float32 N×K, a one-hot row a face over its K labels. ``conditions`` (adopt's, its names
    the card's labels in order): what each stands for in the network's own terms, where it takes a 0/1 scalar or an
    nn.Embedding index rather than the row; the graph maps the row onto it as adopt's wrapper does
    (``Conditions.inner``). Exported as it was, such a CVAE had been refused by the loader alone."""

    def __init__(self, net: nn.Module, conditional: bool = False, value_range: str = DEFAULT_RANGE,
                 output_range: str | None = None, conditions: Conditions | None = None):
        super().__init__()
        self.net, self.conditional = net, conditional or conditions is not None
        self.value_range, self.output_range = value_range, output_range or value_range
        self.conditions = conditions
        for name in (self.value_range, self.output_range):  # refused here, not once the export has run
            range_named(name)

    def forward(self, image: torch.Tensor, *condition: torch.Tensor):
        return to_uint8_image(self.network(to_model_range(image, self.value_range), *condition), self.output_range)

    def network(self, x: torch.Tensor, *condition: torch.Tensor) -> torch.Tensor:
        """The network's output on faces ``x`` in its range and the card's one-hot ``condition`` rows."""
        if not self.conditional:
            return self.net(x)
        table = None if self.conditions is None else self.conditions.table
        if table is not None:
            c, rest = condition[0], condition[1:]
            values = torch.from_numpy(table).to(c.device)
            # as Conditions.inner: an index is the row's largest entry's, a value the row times the table
            condition = (values[c.argmax(1)] if self.conditions.integer else c.float() @ values, *rest)
        return self.net(x, *condition)

    def conditions_record(self) -> dict | None:
        """The card's record of what each condition is fed as (``training.conditions``), as adopt's
        ``adopted.conditions`` says it; None where the network takes the one-hot row itself."""
        if self.conditions is None or self.conditions.values is None:
            return None
        c = self.conditions
        dtype = "int64" if c.integer else "float32"
        how = "the value of the one-hot row's largest entry" if c.integer else "the one-hot row times the values"
        shape = "(N,)" if c.rank == 1 else f"[N, {c.width}]"
        return {"input": f"the network's condition {dtype} {shape}, fed {how}", "values": c.record()}

    def pixels(self) -> dict[str, str]:
        """The card's record of its range (``training.pixels``), as adopt's ``adopted.input``/``output`` say it."""
        return {"input": f"uint8 RGB faces mapped onto {_interval(self.value_range)}",
                "output": f"{_interval(self.output_range)} clipped and mapped onto 0..255"}


class GeneratorGraph(nn.Module):
    """float latent N×D → uint8 face. ``value_range``: the range (a name of RANGES) of the faces the network gives: a
    DCGAN's tanh [-1, 1], a VAE decoder's sigmoid [0, 1] (written as [-1, 1], its faces had lain in 128..255).

    ``latent_shape``: the network's latent a face, where it is not the card's D (a DCGAN as PyTorch's tutorial
    writes it takes D×1×1); the card's N×D latent is reshaped to it, as adopt's wrapper does. ``export`` gives it
    from an example latent in that shape."""

    def __init__(self, net: nn.Module, value_range: str = DEFAULT_RANGE, latent_shape: Sequence[int] | None = None):
        super().__init__()
        self.net, self.value_range = net, value_range
        self.latent_shape = None if latent_shape is None else tuple(int(d) for d in latent_shape)
        range_named(value_range)

    def forward(self, z: torch.Tensor):
        return to_uint8_image(self.network(z), self.value_range)

    def network(self, z: torch.Tensor) -> torch.Tensor:
        """The network's output on the card's latents ``z`` (N×D)."""
        return self.net(z if self.latent_shape is None else z.reshape(-1, *self.latent_shape))

    def pixels(self) -> dict[str, str]:
        """The card's record of its range (``training.pixels``)."""
        return {"output": f"{_interval(self.value_range)} clipped and mapped onto 0..255"}


# The plausibility check of a filter's or generator's range (``check_range``): on noise faces (every grey level, so
# each half of a range alike) or latents drawn from N(0, 1), the network run as its graph runs it.
PROBE_FACES, PROBE_LATENTS = 4, 16
# A reading of the output that puts less than this share of it on one side of mid-grey (by over a grey level) is
# lopsided: a sigmoid's [0, 1] read as [-1, 1] lies wholly above it, every pixel darker than mid-grey given back as 128.
# Lopsided, flat or much past its bounds (adopt's FLAT_SPREAD_GREY and BEYOND_SHARE), a reading is refused where
# another reads the output plausibly (within its bounds too: adopt's PAST_BOUNDS_SHARE) and, of a filter, lies
# WRONG_RANGE_GREY nearer the faces it was given (adopt's). A network implausible under every reading (a filter that
# blacks faces out) is exported as it is.
ONE_SIDED_SHARE = 0.01


@dataclass(frozen=True)
class _Reading:
    """The network's output, fed faces in ``value_range`` and read in ``output_range``: ``why`` it is implausible so
    (None: it is not), the share of it past the range's bounds, and (a filter's) how far it lies from the faces, in
    mean grey levels."""

    value_range: str
    output_range: str
    why: str | None
    past: float
    apart: float = math.nan

    def plausible(self) -> bool:
        # adopt's modules, imported where used here, load ONNX Runtime, which export loads only to run a model
        from training.adopt_filter_checks import PAST_BOUNDS_SHARE

        return self.why is None and self.past <= PAST_BOUNDS_SHARE

    def said(self) -> str:
        return f"fed as {_interval(self.value_range)} and read as {_interval(self.output_range)}"


def _judged(raw: np.ndarray, value_range: str, output_range: str, faces: np.ndarray | None = None) -> _Reading:
    """``raw`` (the network's output, N×3×H×W) read in ``output_range``; ``faces`` (N×H×W×3): those it was given."""
    from training.adopt_filter_checks import BEYOND_SHARE, FLAT_SPREAD_GREY

    if not np.isfinite(raw).all():  # the parity check says so in its own words
        return _Reading(value_range, output_range, "it is not finite", 1.0)
    lo, hi = RANGES[output_range]
    grey = (raw.astype(np.float32) - np.float32(lo)) * np.float32(255 / (hi - lo))
    past = float(((grey < -1) | (grey > 256)).mean())
    n, h, w, c = faces.shape if faces is not None else (0, 0, 0, 0)
    apart = math.nan if grey.shape != (n, c, h, w) else \
        float(np.abs(np.clip(np.round(grey), 0, 255).transpose(0, 2, 3, 1) - faces).mean())
    below, above = float((grey < 126.5).mean()), float((grey > 128.5).mean())
    why = (f"{past:.0%} of it lies past the range's bounds" if past > BEYOND_SHARE else
           "every face is one grey, edge to edge" if np.percentile(grey, 99) - np.percentile(grey, 1) <= FLAT_SPREAD_GREY
           else f"{'none' if below == 0 else f'{below:.1%}'} of it lies below mid-grey" if below < ONE_SIDED_SHARE
           else f"{'none' if above == 0 else f'{above:.1%}'} of it lies above mid-grey" if above < ONE_SIDED_SHARE
           else None)
    return _Reading(value_range, output_range, why, past, apart)


def _probe_conditions(example: Sequence[torch.Tensor], n: int) -> list[tuple[torch.Tensor, ...]]:
    """The conditions a conditional filter is tried under: each one-hot row of a float N×K condition, as the card's
    condition input is fed; else the example's own, repeated."""
    if not example:
        return [()]
    c, rest = example[0], tuple(t[torch.arange(n) % len(t)] for t in example[1:])
    if c.is_floating_point() and c.dim() == 2:
        return [(torch.eye(c.shape[1])[k].expand(n, -1), *rest) for k in range(c.shape[1])]
    return [(c[torch.arange(n) % len(c)], *rest)]


def _arguments(reading: _Reading, given: str) -> str:
    """What to pass the graph for ``reading``, its value range being ``given`` as it is."""
    said = [f"value_range='{reading.value_range}'"] if reading.value_range != given else []
    if reading.output_range != reading.value_range:
        said.append(f"output_range='{reading.output_range}'")
    return ", ".join(said) or f"output_range='{reading.output_range}'"


def _span(raw: np.ndarray) -> str:
    return f"the network gave {float(raw.min()):.3g} to {float(raw.max()):.3g}"


def _check_filter_range(graph: ImageToImageGraph, example: Sequence[torch.Tensor], path: Path) -> None:
    """A filter's output, fed and read in its ranges, plausible, or refused where another reading is (``_Reading``).
    The alternatives run only where it is not."""
    faces = np.random.default_rng(0).integers(0, 256, (PROBE_FACES, *example[0].shape[1:]), dtype=np.uint8)
    conditions = _probe_conditions(example[1:], PROBE_FACES) if graph.conditional else [()]
    every = np.concatenate([faces] * len(conditions))

    def raw(value_range: str) -> np.ndarray:
        x = to_model_range(torch.from_numpy(faces), value_range)
        return np.concatenate([graph.network(x, *c).float().numpy() for c in conditions])

    outputs = {graph.value_range: raw(graph.value_range)}
    given = _judged(outputs[graph.value_range], graph.value_range, graph.output_range, every)
    if given.why is None or given.why == "it is not finite" or math.isnan(given.apart):
        return
    from training.adopt_filter_checks import WRONG_RANGE_GREY

    outputs.update({r: raw(r) for r in RANGES if r not in outputs})
    readings = [_judged(outputs[r], r, o, every) for r in RANGES for o in RANGES
                if (r, o) != (graph.value_range, graph.output_range)]
    better = [r for r in readings if r.plausible() and r.apart + WRONG_RANGE_GREY < given.apart]
    if better:
        best = min(better, key=lambda r: r.apart)
        raise BiasMirrorError(
            f"not exported: its output on {PROBE_FACES} noise faces, {given.said()}, is not a face: {given.why} "
            f"({_span(outputs[graph.value_range])}), so that range is not the network's. {best.said()[0].upper()}"
            f"{best.said()[1:]}, it lies {best.apart:.1f} grey levels from the faces it was given, against "
            f"{given.apart:.1f}: pass {_arguments(best, graph.value_range)} to ImageToImageGraph (a VAE or CVAE trained "
            "on [0, 1] images, with a sigmoid decoder, works in unit [0, 1])", path)


def _check_generator_range(graph: GeneratorGraph, example: Sequence[torch.Tensor], path: Path) -> None:
    """A generator's output, read in its range, plausible, or refused where another range reads it so (no faces
    tell how near: any plausible one)."""
    from training.adopt_run import LATENT_SEED, latents

    shape = tuple(example[0].shape[1:])
    z = latents(PROBE_LATENTS, int(np.prod(shape))).reshape(PROBE_LATENTS, *shape)
    raw = graph.network(torch.from_numpy(z)).float().numpy()
    given = _judged(raw, graph.value_range, graph.value_range)
    if given.why is None or given.why == "it is not finite":
        return
    other = next((r for r in RANGES if r != graph.value_range and _judged(raw, r, r).plausible()), None)
    if other is not None:
        raise BiasMirrorError(
            f"not exported: its output on {PROBE_LATENTS} latents drawn from N(0, 1) (seed {LATENT_SEED}), read as "
            f"{_interval(graph.value_range)}, is not a face: {given.why} ({_span(raw)}), so that range is not the "
            f"network's. Read as {_interval(other)} it is: pass value_range='{other}' to GeneratorGraph (a VAE's "
            "decoder with a sigmoid gives unit [0, 1], a DCGAN's tanh symmetric [-1, 1])", path)


def check_range(graph: nn.Module, example: Sequence[torch.Tensor], path: Path) -> None:
    """A filter's or generator's range plausible for its network (``_Reading``); any other graph has none."""
    if isinstance(graph, ImageToImageGraph):
        _check_filter_range(graph, example, path)
    elif isinstance(graph, GeneratorGraph):
        _check_generator_range(graph, example, path)


def check_deterministic(path: Path, named: Path) -> None:
    """The exported graph at ``path`` draws no random numbers (adopt's reading of its nodes); ``named``: the file the
    error names. A CVAE exported with its reparameterisation had been refused by the parity check as an export that
    does not match PyTorch."""
    from training.adopt_read import check_deterministic as deterministic

    deterministic(onnx.load(str(path)), named)


# The card's records of the graph itself (``training.<key>``), which ``export`` writes and a card written again for
# the same graph keeps: its range (``pixels``) and what each condition is fed as (``conditions``)
GRAPH_RECORDS = ("pixels", "conditions")


def _with_pixels(card: ModelCard, graph: nn.Module) -> ModelCard:
    """``card`` with the graph's records (a filter's or generator's range, a filter's conditions' values), where it
    has them."""
    records = {}
    for key, method in (("pixels", "pixels"), ("conditions", "conditions_record")):
        record = getattr(graph, method, lambda: None)()
        if record is not None:
            records[key] = record
    return replace(card, training={**card.training, **records}) if records else card


def _graph_records(model: onnx.ModelProto) -> dict[str, dict]:
    """The ``GRAPH_RECORDS`` of the card embedded in ``model``, where it has them."""
    text = next((p.value for p in model.metadata_props if p.key == METADATA_KEY), None)
    try:
        training = json.loads(text).get("training") if text else None
    except (ValueError, AttributeError):
        return {}
    if not isinstance(training, dict):
        return {}
    return {k: training[k] for k in GRAPH_RECORDS if isinstance(training.get(k), dict)}


def write_card(path: str | Path, card: ModelCard) -> None:
    """Embed (or replace) the card in an ONNX file's metadata. The graph's records (``training.pixels``, a filter's
    ``training.conditions``, written by ``export``) are kept where ``card`` has none: they are the graph's, and a
    trainer's card written again with its metrics does not repeat them."""
    model = onnx.load(str(path))
    kept = {k: v for k, v in _graph_records(model).items() if k not in card.training}
    if kept:
        card = replace(card, training={**card.training, **kept})
    card.validate(path)
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    model.metadata_props.add(key=METADATA_KEY, value=card.to_json())
    with written_whole(path) as part:
        onnx.save(model, str(part))


def export_left(place: Path, export_to: str | None = None, also: tuple[Path, ...] = (),
                record: str = "metrics.json") -> str:
    """What an export stopped or failed before its files were put in place leaves: the model at ``place`` as it
    was (the one exported before, with its card, and the ``record`` beside it where there is one), or none; the
    models ``also`` exported with it as they were; and no copy at ``export_to``. Said as the export begins, before
    anything is put in place."""
    if place.exists():
        beside = f" and {record}" if (place.parent / record).exists() else ""
        said = f"{place} is still the model exported before, with its own card{beside}"
    else:
        said = f"no model was put in place ({place} does not exist yet)"
    said += "".join(f", {p.name} is as it was" for p in also if p.exists())
    return said + (f", and nothing was copied to {export_to}" if export_to else "")


def stage_copy(staged, src: str | Path, place: str | Path, what: str, kept: str) -> BiasMirrorError | None:
    """The --export-to copy of ``src`` staged (an inference.writing.Staged) to go in place at ``place`` with the
    run's own files; where it cannot be written, nothing of it is left staged and its error is returned (``kept``
    after the reason), not raised: the copy is the optional part, and the run's own model and metrics go in place
    without it. A copy that could not be written had kept the run's model from being put in place at all, and the
    `--resume` advised then failed on the same copy."""
    try:
        staged.copy(src, place)
    except OSError as exc:
        return write_failure(exc, place, what, kept)
    return None


def copy_not_made(trainer: str, out: Path, model: Path, placed: str, export_to: str, export_only: bool = False
                  ) -> str:
    """What a failed --export-to copy leaves (``placed``: the run's files, put in place all the same) and the
    commands that make the copy: ``cp`` once the place can be written, or an export again with the copy elsewhere
    (a plain --resume keeps the run's --export-to and would try the same place again)."""
    again = (f"{program()} train {trainer} --out {out} " + ("--export-only" if export_only else "--resume"))
    return (f"{placed} all the same; only the copy is missing. Make it by hand once {export_to} can be written "
            f"(`cp {model} {export_to}`), or export again and copy elsewhere: `{again} --export-to OTHER.onnx` "
            f"(`{again} --export-to ''` makes no copy; training is done: it trains nothing more)")


@contextlib.contextmanager
def staged_export(left: str, again: str) -> Iterator[Staged]:
    """A trainer's export staged (an inference.writing.Staged): its files go in place together, by
    ``place_with_record``; a stop before then says what it leaves (``left``, from ``export_left``) and how to
    finish (``again``), and what was staged is removed."""
    staged = Staged()
    try:
        yield staged
    except KeyboardInterrupt:
        if not staged.placed:
            print(f"stopped during the export: {left}; {again}", file=sys.stderr)
        else:  # held back while they were put in place: they are, and the stop had been the only word said
            print(f"stopped as the export ended: {', '.join(map(str, staged.in_place))} in place, whole",
                  file=sys.stderr)
        raise
    finally:
        staged.discard()


def place_with_record(staged: Staged, record: Path, payload: dict, what: str, kept: str) -> None:
    """``payload`` written as the run's ``record`` (metrics.json, ``what`` it holds), then every staged file put in
    place, the old record first removed: never a model beside another model's record."""
    with writing(record, what, kept):
        staged.path(record).write_text(strict_json.dumps(payload, indent=1), encoding="utf-8")
    staged.put_in_place(stale=(record,))


def export(
    graph: nn.Module,
    example: Sequence[torch.Tensor],
    input_names: Sequence[str],
    output_names: Sequence[str],
    path: str | Path,
    card: ModelCard,
) -> Path:
    """Export ``graph`` with a dynamic batch axis and embed ``card`` (with a filter's or generator's range, its
    ``pixels``). Refused before it is put in place (a model there before stays as it was): a graph that samples at
    random, a range that reads the network's output as it does not give it (``check_range``), and a file the loader
    would refuse (``check_loads``). ``example``: the graph's inputs; a generator's latent may be given in its
    network's own shape (N×D×1×1), from which the card's N×D is reshaped. The caller's network is left in its own
    mode, on its own device: a snapshot exported mid-training had left BatchNorm frozen for the rest of the run."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph, example = _as_exported(graph, example, path)
    dynamic = {n: {0: "N"} for n in [*input_names, *output_names]}
    with _evaluated_on_cpu(graph), written_whole(path) as part, torch.no_grad():
        torch.onnx.export(
            graph, tuple(example), str(part), input_names=list(input_names), output_names=list(output_names),
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )
        onnx.checker.check_model(str(part))
        check_deterministic(part, path)  # first: a network that samples reads as no range
        check_range(graph, example, path)
        card = _with_pixels(card, graph)
        write_card(part, card)
        check_loads(part, path, card, graph)
    return path


def _as_exported(graph: nn.Module, example: Sequence[torch.Tensor], path: Path
                 ) -> tuple[nn.Module, list[torch.Tensor]]:
    """A generator whose example latent is in its network's shape (N×D×1×1), as a graph that takes the card's N×D
    and reshapes it (the caller's network in it, not a copy); any other graph as it is. A filter told its
    conditions' values is given the card's one-hot rows as its example condition, or refused: the network's own
    condition traced through the mapping had been a raw error."""
    example = list(example)
    if isinstance(graph, GeneratorGraph) and graph.latent_shape is None and example and example[0].dim() > 2:
        z = example[0]
        graph = GeneratorGraph(graph.net, graph.value_range, latent_shape=z.shape[1:])
        example[0] = z.reshape(len(z), -1)
    conditions = getattr(graph, "conditions", None)
    if isinstance(conditions, Conditions) and conditions.values is not None:
        k = len(conditions.names)
        c = example[1] if len(example) > 1 else None
        if c is None or not c.is_floating_point() or tuple(c.shape[1:]) != (k,):
            given = "none" if c is None else f"{c.dtype} {list(c.shape)}"
            raise BiasMirrorError(
                f"not exported: its conditions' values are given ({conditions.written()}), so the graph takes the "
                f"card's condition, float32 [N, {k}] one-hot rows, and export's example condition is one of those "
                f"(e.g. torch.eye({k})), not the network's own ({given})", path)
    return graph, example


@contextlib.contextmanager
def _evaluated_on_cpu(graph: nn.Module) -> Iterator[nn.Module]:
    """``graph`` in eval mode on the CPU for the block, then each of its modules in its own mode and each tensor on
    its own device again. Its parameters stay the same objects, so an optimiser's still are the network's. Not a
    deep copy: a network holding a computed tensor (weight or spectral norm's weight) cannot be copied."""
    modes = [(m, m.training) for m in graph.modules()]
    params = [(p, p.device) for p in graph.parameters()]
    buffers = [(m, name, b.device) for m in graph.modules() for name, b in m.named_buffers(recurse=False)]
    try:
        yield graph.eval().cpu()
    finally:
        for p, device in params:
            if p.device != device:
                p.data = p.data.to(device)
                if p.grad is not None:
                    p.grad = p.grad.to(device)
        for m, name, device in buffers:
            b = getattr(m, name)
            if isinstance(b, torch.Tensor) and b.device != device:
                setattr(m, name, b.to(device))
        for m, training in modes:
            m.training = training


def check_loads(part: Path, path: Path, card: ModelCard, graph: nn.Module | None = None) -> None:
    """The exported file at ``part`` opened and checked against its card as the loader does (``load_model``), or
    refused naming ``path`` and what differs. The card had been checked only against itself: a latent named otherwise,
    a size or latent the network has not, a DCGAN's N×D×1×1 latent or a CVAE's scalar condition had been exported
    with exit 0, and every later load refused the file."""
    from inference.models import load_model
    from inference.runtime import RuntimeConfig

    try:
        model = load_model(part, card.kind, RuntimeConfig(provider="cpu", threads=1))
    except BiasMirrorError as exc:
        raise BiasMirrorError(f"not exported: the loader would refuse it: {exc.message}. "
                              f"{_how_to_match(exc.message, card, graph)}", path) from exc
    del model  # its session: the file is put in place next


def _quoted(name: str, said: str) -> bool:
    return f"'{name}'" in said


def _how_to_match(said: str, card: ModelCard, graph: nn.Module | None) -> str:
    """What makes the graph the card's, for the loader's reason ``said``."""
    condition = next((s for s in card.inputs if s.labels), None)
    if condition is not None and _quoted(condition.name, said):
        labels = ", ".join(condition.labels or ())
        return (f"The card's condition '{condition.name}' is float32 {condition.shape}: one one-hot row a face over "
                f"its labels ({labels}), as run, the audit and the app feed it, and the example's condition is that "
                "row. A network that takes a 0/1 scalar or an nn.Embedding index is wrapped by "
                "ImageToImageGraph(net, conditional=True, conditions=Conditions(names, values, rank, integer)) "
                "(training.adopt_encoding), each label's value in the network's terms: e.g. values ((0.0,), (1.0,)) "
                "for an N×1 scalar, or ((0,), (1,)) with rank=1, integer=True for an index")
    latent = card.inputs[0] if card.kind == "generator" else None
    if latent is not None and _quoted(latent.name, said):
        return (f"The card's latent '{latent.name}' is float32 {latent.shape}: a generator_card of the network's own "
                "latent size, named as the card names it; a network that takes N×D×1×1 (a DCGAN's) is given "
                "GeneratorGraph(net, latent_shape=(D, 1, 1)), or export's example latent in that shape")
    ins, outs = (", ".join(f"'{s.name}' {s.shape}" for s in specs) for specs in (card.inputs, card.outputs))
    return (f"Export with the card's input and output names and a card of the network's own size: the card takes "
            f"{ins} and gives {outs}")


def _all_finite(x) -> bool:
    """Whether every float tensor in ``x`` (a tensor, or a tuple or list of them) is finite."""
    if isinstance(x, torch.Tensor):
        return not x.is_floating_point() or bool(torch.isfinite(x).all())
    if isinstance(x, (tuple, list)):
        return all(_all_finite(v) for v in x)
    return True


def parity(graph: nn.Module, path: str | Path, inputs: Sequence[np.ndarray]) -> dict[str, float]:
    """Max |PyTorch − ONNX Runtime| per output on the given inputs; NaN for an output that is not finite on either
    side, which ``check_parity`` refuses. A uint8 image hides a NaN network (NaN casts to a grey level), so the
    network's own float output (``graph.net``'s, where it is called) counts too: every output is NaN if it is not
    finite. ``inputs``: the graph's, as ``graph`` takes them (a latent in the network's N×D×1×1, as export's example
    may be, is flattened for the file's N×D). The network is left in its own mode and on its own device."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {i.name: _as_fed(x, i.shape) for i, x in zip(sess.get_inputs(), inputs)})
    inner_finite = []
    net = getattr(graph, "net", None)
    hook = (net.register_forward_hook(lambda _m, _i, out: inner_finite.append(_all_finite(out)))
            if isinstance(net, nn.Module) else None)
    try:
        with torch.no_grad(), _evaluated_on_cpu(graph):
            want, again = (_outputs(graph(*[torch.from_numpy(x) for x in inputs])) for _ in range(2))
    finally:
        if hook is not None:
            hook.remove()
    if not all(np.array_equal(w.numpy(), a.numpy(), equal_nan=True) for w, a in zip(want, again)):
        # the graph exported is deterministic (export refuses random nodes): the difference is the network's, whose
        # draw at export the file holds as a constant, and nothing should load
        from training.adopt_read import SAMPLED_BY_RUNS, sampling_refusal

        Path(path).unlink(missing_ok=True)
        raise BiasMirrorError(f"not exported: {sampling_refusal(SAMPLED_BY_RUNS + ' in PyTorch')}", path)
    out_names = [o.name for o in sess.get_outputs()]
    diffs = {}
    for n, g, w in zip(out_names, got, want):
        g, w = g.astype(np.float64), w.numpy().astype(np.float64)
        finite = all(inner_finite) and bool(np.isfinite(g).all() and np.isfinite(w).all())
        diffs[n] = float(np.abs(g - w).max()) if finite else math.nan
    return diffs


def _as_fed(x: np.ndarray, shape: list) -> np.ndarray:
    """``x`` as the exported graph takes it: a latent given in the network's own shape (N×D×1×1), as export's
    example may be, flattened to the card's N×D."""
    return x.reshape(len(x), -1) if x.ndim > len(shape) == 2 else x


def _outputs(got) -> tuple[torch.Tensor, ...]:
    return tuple(got) if isinstance(got, (tuple, list)) else (got,)


def check_parity(diffs: dict[str, float], limits: dict[str, float], path: str | Path,
                 place: str | Path | None = None) -> None:
    """Refuses an export at ``path`` whose outputs are not finite (removing it) or differ from PyTorch's beyond
    ``limits``. ``place``: where ``path`` (written beside it) was to go; the error names it, and says it is left
    as it was."""
    # A NaN figure fails no comparison (nan > limit is False): a classifier trained to NaN had been exported, with
    # exit status 0, as "parity: max|Δprobs| nan", and a filter's uint8 output hid its NaN altogether.
    path = Path(path)
    named = path if place is None else Path(place)
    broken = sorted(k for k, v in diffs.items() if not math.isfinite(v))
    if broken:
        path.unlink(missing_ok=True)  # a model of NaN weights is no model: nothing should load it
        kept = path.parent / "last.pt"
        left = ("this file was removed" if place is None else
                "the model there from before is left as it was" if named.exists() else "nothing was written here")
        raise BiasMirrorError(
            f"not exported: the model's outputs ({', '.join(broken)}) on the parity inputs are not finite (NaN or "
            "infinite), so its training diverged (a loss of NaN in the log); train again with a lower --lr. The "
            + (f"checkpoint {kept} is kept" if kept.exists() else "checkpoint is kept") + f"; {left}",
            named)
    bad = {k: v for k, v in diffs.items() if k in limits and v > limits[k]}
    if bad:
        raise BiasMirrorError(f"ONNX export does not match PyTorch: {bad} exceeds {limits}", named)
