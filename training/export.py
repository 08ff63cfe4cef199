"""ONNX export for every model kind, with the card embedded and a parity check.

Pre- and post-processing live inside the graph (uint8 NHWC in; softmax and
raw CAM, or uint8 images, out) so the runtime never has to know how a model
was normalised.
"""
from __future__ import annotations

import contextlib
import math
import sys
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

OPSET = 17


class ClassifierGraph(nn.Module):
    """uint8 N×H×W×3 → (probs N×K, raw cam N×K×h×w)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor):
        logits, cam = self.net.forward_with_cam(self.net.preprocess(image))
        return torch.softmax(logits, dim=1), cam


def to_unit_range(image_uint8_nhwc: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC → float NCHW in [-1, 1], as generators expect."""
    return image_uint8_nhwc.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8_image(x: torch.Tensor) -> torch.Tensor:
    """float NCHW in [-1, 1] → uint8 NHWC, rounded."""
    return ((x.clamp(-1, 1) + 1.0) * 127.5).round().permute(0, 2, 3, 1).to(torch.uint8)


class ImageToImageGraph(nn.Module):
    """uint8 face (+ optional float condition) → uint8 face."""

    def __init__(self, net: nn.Module, conditional: bool = False):
        super().__init__()
        self.net, self.conditional = net, conditional

    def forward(self, image: torch.Tensor, *condition: torch.Tensor):
        x = to_unit_range(image)
        y = self.net(x, *condition) if self.conditional else self.net(x)
        return to_uint8_image(y)


class GeneratorGraph(nn.Module):
    """float latent N×D → uint8 face."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor):
        return to_uint8_image(self.net(z))


def write_card(path: str | Path, card: ModelCard) -> None:
    """Embed (or replace) the card in an ONNX file's metadata."""
    card.validate(path)
    model = onnx.load(str(path))
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
    """Export ``graph`` with a dynamic batch axis and embed ``card``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = graph.eval().cpu()
    dynamic = {n: {0: "N"} for n in [*input_names, *output_names]}
    with written_whole(path) as part, torch.no_grad():
        torch.onnx.export(
            graph, tuple(example), str(part), input_names=list(input_names), output_names=list(output_names),
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )
        onnx.checker.check_model(str(part))
        write_card(part, card)
    return path


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
    finite."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    got = sess.run(None, dict(zip(names, inputs)))
    inner_finite = []
    net = getattr(graph, "net", None)
    hook = (net.register_forward_hook(lambda _m, _i, out: inner_finite.append(_all_finite(out)))
            if isinstance(net, nn.Module) else None)
    try:
        with torch.no_grad():
            want = graph.eval().cpu()(*[torch.from_numpy(x) for x in inputs])
    finally:
        if hook is not None:
            hook.remove()
    want = want if isinstance(want, (tuple, list)) else (want,)
    out_names = [o.name for o in sess.get_outputs()]
    diffs = {}
    for n, g, w in zip(out_names, got, want):
        g, w = g.astype(np.float64), w.numpy().astype(np.float64)
        finite = all(inner_finite) and bool(np.isfinite(g).all() and np.isfinite(w).all())
        diffs[n] = float(np.abs(g - w).max()) if finite else math.nan
    return diffs


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
