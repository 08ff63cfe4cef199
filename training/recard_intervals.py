"""Amend shipped model cards from their own record, where today's code computes what they state otherwise.

    python -m training.recard_intervals [--dataset KIND:PATH] [--dry-run] MODEL.onnx [MODEL.onnx ...]

The default models' checkpoints are not shipped, so their cards cannot be written again by exporting. What today's
code computes from the card's own record alone is amended in place, and nothing else:

- a classifier's 95 % intervals (accuracy, FPR and FNR, overall and per group): each recomputed with
  ``inference.metrics.proportion`` from the card's own count (successes = value × n, checked to give the value back
  exactly). Cards written before fed1f6f hold Wilson's score interval, which every command had since stopped
  printing (the modified Wilson), so `train evaluate` and the audit did not reproduce the published bounds;
- a CycleGAN filter's ``training.domain_overlap`` and ``metrics.evaluated_faces``, which cards written since 7aabf7f
  record: its domains are rebuilt from the card's recipe, seed and dataset (``build_domains``), checked to give the
  card's training compositions and held-out faces, and the two facts taken from them as the trainer takes them.

Only the ONNX metadata changes: the model is written whole beside itself, read back, and put in place only where
everything but its metadata is byte for byte what it was. Each amended card says so in ``training.amendments``
(date, commit, what changed, this command). A card that names an amended file by its sha256 (a filter's
``metrics.classifier``, an fp16 variant's parent) is pointed at the new file when it is among those given, and the
move recorded; one not given is named, since its hash then names no file. Run again, it finds nothing to amend.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import re
import shlex
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import onnx
from scipy import stats

from inference.card import METADATA_KEY, ModelCard
from inference.errors import BiasMirrorError
from inference.file_identity import file_hash
from inference.metrics import PROPORTION_INTERVAL as INTERVAL, proportion
from inference.models import read_card
from inference.writing import written_whole
from training.provenance import provenance

MODULE = "training.recard_intervals"
PROPORTIONS = ("accuracy", "fpr", "fnr")  # binary_metrics' proportions; mean_p_female is a mean, its t interval
SHA_KEYS = ("sha256", "parent_sha256")  # where a card names another model file by its bytes
# Bounds closer than this are one interval computed twice (the stored Wilson bounds and scipy's today differ in the
# 16th digit): a card is amended for an interval that moved, not for rounding.
SAME = 1e-9


@dataclass
class Amended:
    """One file's card as it will be written, and what changed in it, in words."""

    path: Path
    card: ModelCard
    what: list[str] = field(default_factory=list)


def _proportion_records(metrics: dict) -> Iterator[tuple[str, dict]]:
    """(where, {value, lo, hi, n}) of each proportion a classifier card stores, overall and per group."""
    rows = [("overall", metrics.get("overall"))]
    rows += [(f"{grouping}/{g}", row) for grouping, groups in (metrics.get("by") or {}).items()
             if isinstance(groups, dict) for g, row in groups.items()]
    for where, row in rows:
        for key in PROPORTIONS:
            record = row.get(key) if isinstance(row, dict) else None
            if isinstance(record, dict) and record.get("n"):
                yield f"{where}.{key}", record


def _count(where: str, record: dict, path: Path) -> int:
    """The successes behind a stored proportion: refused where value × n is no whole count, which no interval from
    the card's own record could then be."""
    n, value = record["n"], record["value"]
    k = round(value * n)
    if k / n != value:
        raise BiasMirrorError(f"{where}: its value {value!r} over n {n} is no count of successes "
                              f"({value * n!r}): its interval cannot be recomputed from the card", path)
    return k


def _wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval, the one cards held before fed1f6f: only to say what the amended bounds had been."""
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def recomputed_intervals(metrics: dict, path: Path) -> tuple[dict, list[str], int, bool]:
    """(metrics with each proportion's interval the one ``proportion`` gives its count, the intervals that moved
    (beyond ``SAME``) as "where k/n: [lo, hi] → [lo, hi]", how many proportions there are, whether every stored one
    had been Wilson's score interval)."""
    new = copy.deepcopy(metrics)
    changed, total, all_wilson = [], 0, True
    for where, record in _proportion_records(new):
        total += 1
        k, n = _count(where, record, path), record["n"]
        now, then = proportion(k, n), _wilson(k, n)
        all_wilson &= abs(then[0] - record["lo"]) < SAME and abs(then[1] - record["hi"]) < SAME
        if abs(now["lo"] - record["lo"]) >= SAME or abs(now["hi"] - record["hi"]) >= SAME:
            changed.append(f"{where} {k}/{n}: [{record['lo']:.4f}, {record['hi']:.4f}] → [{now['lo']:.4f}, "
                           f"{now['hi']:.4f}]")
        record["lo"], record["hi"] = now["lo"], now["hi"]
    return new, changed, total, all_wilson


def amend_intervals(item: Amended) -> None:
    card = item.card
    if card.kind != "classifier" or not isinstance(card.metrics.get("overall"), dict):
        return
    metrics, changed, total, all_wilson = recomputed_intervals(card.metrics, item.path)
    if not changed:  # a card of today's intervals is left alone, its file's sha256 with it
        return
    item.card = replace(card, metrics={**metrics, "proportion_interval": INTERVAL})
    had = "Wilson's score interval (each bound checked)" if all_wilson else "another interval than Wilson's"
    item.what.append(
        f"the 95% intervals of its {total} proportions (accuracy, FPR and FNR, overall and per group) recomputed from "
        f"the card's own counts (successes = value × n) with inference.metrics.proportion, the modified Wilson "
        f"interval every command has computed since fed1f6f; {len(changed)} changed, from {had}: "
        + "; ".join(changed) + ". Values and n unchanged; metrics.proportion_interval names the method")


def _asked_eval_faces(training: dict) -> int:
    """The --eval-faces of the command that measured the card (an export's, else the training's): the trainer's
    default where it gives none."""
    from training.tasks.cyclegan import EVAL_FACES

    command = training.get("exported_by") or training.get("command") or ""
    found = re.search(r"--eval-faces[ =](\d+)", command)
    return int(found.group(1)) if found else EVAL_FACES


def _trained(samples, composition: dict) -> dict[str, int] | int:
    """What a domain's card says it trained on, drawn again from ``samples``: its faces per cell of the
    composition's own labels, or their number where it composes over none."""
    from training.data.compose import cell_of

    if not composition.get("by"):
        return len(samples)
    counts: dict[str, int] = {}
    for s in samples:
        cell = cell_of(s, tuple(composition["by"]))
        counts[cell] = counts.get(cell, 0) + 1
    return counts


def amend_filter_facts(item: Amended, dataset: str | None) -> None:
    """A CycleGAN filter's domain overlap and held-out faces, where its card lacks them and its domains rebuilt
    from its record give back the card's compositions and held-out faces."""
    card = item.card
    t, m = card.training, card.metrics
    if card.kind != "filter" or t.get("recipe") not in ("engineer", "aging"):
        return
    if "domain_overlap" in t and "evaluated_faces" in m:
        return
    from training.tasks.cyclegan import build_domains
    from training.tasks.cyclegan_report import evaluated_faces, held_out_people

    spec = dataset or t["dataset"]
    domains = build_domains({"seed": t["seed"], "min_domain_size": 1, "recipe": t["recipe"], "dataset": spec})
    for key, domain in (("domain_a", domains.a), ("domain_b", domains.b)):
        record = t.get(key) or {}
        composition = record.get("composition") or {}
        said = composition.get("achieved") if composition.get("by") else record.get("n_train")
        again = _trained(domain.train, composition)
        if said != again:
            raise BiasMirrorError(f"{spec}: rebuilt from its recipe and seed, {key} is not the one its card trained "
                                  f"on ({again} against {said}): nothing amended", item.path)
    asked = _asked_eval_faces(t)
    faces, people = held_out_people(domains, asked, t["seed"], card.input_size[0], None)
    races = {}
    for s in people:
        races[s.race or ""] = races.get(s.race or "", 0) + 1
    if len(faces) != m.get("n_faces") or races != {r: v["n"] for r, v in (m.get("by_race") or {}).items()}:
        raise BiasMirrorError(f"{spec}: its held-out faces drawn again are not the ones its card measured "
                              f"({len(faces)} faces, {races}): nothing amended", item.path)
    training, metrics, what = dict(t), dict(m), []
    if "domain_overlap" not in t and domains.overlap:
        training["domain_overlap"] = domains.overlap
        what.append(f"training.domain_overlap added ({domains.overlap.get('photographs_in_both_domains_training')} "
                    "photograph(s) trained on in both domains)")
    if "evaluated_faces" not in m:
        metrics["evaluated_faces"] = evaluated_faces(domains, asked, t["seed"])
        what.append(f"metrics.evaluated_faces added (its {len(faces)} held-out faces drawn again by that rule)")
    if what:
        item.card = replace(card, training=training, metrics=metrics)
        item.what.append(", ".join(what) + f", as cards written since 7aabf7f record them: its domains rebuilt from "
                         f"its recipe ({t['recipe']}), seed ({t['seed']}) and dataset ({spec}) give back its "
                         "domains' compositions and its held-out faces")


def _sha_references(value: Any, where: str = "") -> Iterator[tuple[dict, str, str]]:
    """(object, key, where) of each sha256 a card's record gives (``SHA_KEYS``), however deep."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if key in SHA_KEYS and isinstance(child, str):
                    yield item, key, f"{at}.{key}".lstrip(".")
                else:
                    stack.append((child, f"{at}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{at}.{i}") for i, child in enumerate(item))


def named_hashes(card: ModelCard) -> set[str]:
    return {obj[key] for part in (card.training, card.metrics) for obj, key, _ in _sha_references(part)}


UNWRITTEN = "its sha256 once amended"  # a --dry-run's stand-in for a file's new sha256: nothing is written


def repoint(item: Amended, moved: dict[str, tuple[str, Path]]) -> None:
    """The card's sha256 of a file amended here (``moved``: old → (new, path)) made the new one's."""
    training, metrics = copy.deepcopy(item.card.training), copy.deepcopy(item.card.metrics)
    said = []
    for name, part in (("training", training), ("metrics", metrics)):
        for obj, key, where in _sha_references(part):
            if obj[key] in moved:
                new, path = moved[obj[key]]
                said.append(f"{name}.{where} {obj[key][:16]}… → {new if new == UNWRITTEN else new[:16] + '…'} "
                            f"({path.name}'s card was amended, its graph and weights unchanged: the same model)")
                obj[key] = new
    if said:
        item.card = replace(item.card, training=training, metrics=metrics)
        item.what.append("re-pointed " + "; ".join(said))


def _without_card(model: onnx.ModelProto) -> bytes:
    """The model's bytes but for its metadata: its graph, weights, opsets and versions."""
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.metadata_props[:]
    return bare.SerializeToString()


def write_amended(item: Amended, command: str) -> str:
    """Writes ``item``'s card, with its amendment recorded, into its file; returns the file's new sha256. Put in
    place only where the file read back is the same model but for its card."""
    amendment = {**provenance(), "what": "; ".join(item.what), "command": command}
    card = replace(item.card, training={**item.card.training,
                                        "amendments": [*item.card.training.get("amendments", []), amendment]})
    card.validate(item.path)
    model = onnx.load(str(item.path))
    before = _without_card(model)
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    model.metadata_props.add(key=METADATA_KEY, value=card.to_json())
    with written_whole(item.path) as part:
        onnx.save(model, str(part))
        again = onnx.load(str(part))
        if _without_card(again) != before:
            raise BiasMirrorError("written again, the model is not byte for byte what it was but for its card: "
                                  "left as it was", item.path)
        if read_card(part) != card:
            raise BiasMirrorError("written again, its card does not read back as written: left as it was", item.path)
    print(f"{item.path}: amended (graph and weights unchanged, sha256 of all but the card "
          f"{hashlib.sha256(before).hexdigest()[:16]}…): {amendment['what']}")
    return file_hash(item.path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", type=Path, help="the ONNX files whose cards to amend")
    p.add_argument("--dataset", default=None,
                   help="KIND:PATH of the dataset a filter's domains are rebuilt from (default: its card's)")
    p.add_argument("--dry-run", action="store_true", help="say what would be amended, write nothing")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    command = shlex.join(["python", "-m", MODULE, *argv])
    try:
        items = [Amended(path, read_card(path)) for path in args.models]
        for item in items:
            amend_intervals(item)
            amend_filter_facts(item, args.dataset)
        hashes = {item.path: file_hash(item.path) for item in items}
        moved: dict[str, tuple[str, Path]] = {}
        pending = list(items)
        while pending:  # a file first, then the cards that name it by its bytes
            given = {hashes[i.path] for i in pending}
            ready = [i for i in pending if not named_hashes(i.card) & (given - {hashes[i.path]})]
            if not ready:  # two given files naming each other's bytes: no order writes both truthfully
                raise BiasMirrorError("the cards given name each other's files by sha256: " + ", ".join(
                    str(i.path) for i in pending))
            for item in ready:
                repoint(item, moved)
                if not item.what:
                    print(f"{item.path}: nothing to amend")
                elif args.dry_run:
                    print(f"{item.path}: would be amended: {'; '.join(item.what)}")
                    # as a written one: the cards naming it would be re-pointed too, and a dry run says so
                    moved[hashes[item.path]] = (UNWRITTEN, item.path)
                else:
                    moved[hashes[item.path]] = (write_amended(item, command), item.path)
            pending = [i for i in pending if i not in ready]
        _name_stale_references(args.models, moved)
    except BiasMirrorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _name_stale_references(given: list[Path], moved: dict[str, tuple[str, Path]]) -> None:
    """Cards beside the amended files, not given, that name an amended file by its old sha256."""
    if not moved:
        return
    named = {p.resolve() for p in given}
    for folder in {p.resolve().parent for p in given}:
        for other in sorted(folder.glob("*.onnx")):
            if other.resolve() in named:
                continue
            try:
                stale = named_hashes(read_card(other)) & set(moved)
            except BiasMirrorError:
                continue
            for old in stale:
                print(f"warning: {other} names {moved[old][1].name} by its sha256 before this amendment "
                      f"({old[:16]}…): give it too to point it at the amended file", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
