"""A model card as Markdown, for docs/models.md and the app's card dialog alike.

Its metrics, compositions and target shares are read type-checked (``card_fields``): a card written by hand or by
another tool with ``"by": "x"`` or a figure ``"x"`` had stopped ``doctor --cards`` with the model called UNUSABLE,
though every command runs it. What is of no type this reads is left out and listed under the card as a warning.
"""
from __future__ import annotations

import math
from itertools import islice
from typing import Sequence

from . import strict_json
from .card import MAX_TEXT_CHARS, ModelCard, accuracy_not_shown, figure, overall_accuracy
from .card_fields import (PROPORTION, CardNotes, card_count, card_interval, card_names, card_number, card_object,
                          card_records)
from .metrics import group_order
from .program_name import program
from .untrusted_text import one_line


def _num(x) -> str:
    """Three decimals, or a dash for a figure not measured."""
    return f"{x:.3f}" if strict_json.measured(x) else "–"


def _fixed(x, spec: str, missing: str = "?") -> str:
    """A figure read by ``card_number`` (a finite number, or None) in ``spec``; ``missing`` where None. Each figure
    of a card is formatted so: one formatted raw, a whole number of 400 digits, had stopped ``doctor --cards`` with
    an OverflowError."""
    return missing if x is None else format(x, spec)


def _finite(v) -> bool:
    """A number that is finite as a float: an infinity, or a whole number of 400 digits (which no float holds), is
    no value a model is fed."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _cell(group) -> str:
    """A group's name as a table cell: "female|Asian" unescaped split its row into one column more than the header."""
    return str(group).replace("|", "\\|") or "(no label)"


def _figure(notes: CardNotes, field: str, record: dict, key: str,
            within: tuple[float, float] | None = None) -> str:
    """``record[key]`` as ``_num`` writes it, read as a number (``card_fields.card_number``) in ``within``."""
    return _num(card_number(notes, f"{field}.{key}", record.get(key), within=within))


def _rate_cell(notes: CardNotes, field: str, record: dict, key: str) -> str:
    """An FPR or FNR cell: a dash where the group had no face it could be measured on (n 0), as where no record;
    a dash too (warned) where its figure is no rate (1.7) or lies outside its own interval."""
    rate = card_object(notes, f"{field}.{key}", record.get(key)) or {}
    n = card_count(notes, f"{field}.{key}.n", rate.get("n"))
    return "–" if not n else _num(card_interval(notes, f"{field}.{key}", rate, within=PROPORTION)[0])


def _metric_rows(by: dict, grouping: str, notes: CardNotes) -> list[str]:
    rows = [f"| {grouping} | n | accuracy [95% CI] | FPR | FNR |", "|---|---|---|---|---|"]
    field = f"metrics.by.{grouping}"
    groups = card_records(notes, field, by.get(grouping))
    for g, m in sorted(groups.items(), key=lambda item: group_order(item[0])):
        where = f"{field}.{g}"
        a = card_object(notes, f"{where}.accuracy", m.get("accuracy")) or {}
        acc = [_num(x) for x in card_interval(notes, f"{where}.accuracy", a, within=PROPORTION)]
        n = card_count(notes, f"{where}.n", m.get("n"))
        fpr, fnr = (_rate_cell(notes, where, m, key) for key in ("fpr", "fnr"))
        rows.append(f"| {_cell(g)} | {'?' if n is None else n} | {acc[0]} [{acc[1]}, {acc[2]}] | {fpr} | {fnr} |")
    return rows


def _precision_lines(card: ModelCard, notes: CardNotes) -> list[str]:
    if card.precision == "fp32":
        return ["- precision: fp32"]
    conv = card_object(notes, "training.fp16", card.training.get("fp16")) or {}
    if not conv:  # fp16 as it was made (an adopted model's weights), not converted here from a parent
        return [f"- precision: {card.precision}, as the model was made (not converted by Bias Mirror: no fp32 parent "
                "to measure parity with)"]
    sha = str(conv.get("parent_sha256", "?"))[:16]
    lines = [f"- precision: {card.precision}, converted from `{conv.get('parent', '?')}` (sha256 {sha}…) "
             f"with {conv.get('converter', '?')}; the test metrics below are the parent's"]
    p = card_object(notes, "metrics.fp16_parity", card.metrics.get("fp16_parity")) or {}
    if not p.get("measured"):
        lines.append(f"- parity with the parent: UNMEASURED ({p.get('reason', 'no reason recorded')})")
        return lines
    keys = ("max_abs_dprob", "argmax_flips", "max_abs_grey", "p99_9_abs_grey")
    read = {k: card_number(notes, f"metrics.fp16_parity.{k}", p.get(k)) for k in keys}
    figures = ", ".join(f"{k} {v:.4g}" for k, v in read.items() if v is not None)
    verdict = "passes" if p.get("passed") else "FAILS"
    if p.get("worst_condition"):
        figures += f" (its worst condition, {p['worst_condition']}, of every condition measured)"
    on = f" of {p['images']}" if p.get("images") else ""  # which faces (or latents) it was measured on
    lines.append(f"- parity with the parent on {p.get('n', '?')} inputs{on} ({p.get('provider', '?')}): {figures}; "
                 f"{verdict} {p.get('limit', {})}")
    if p.get("cpu_fp32_ops"):
        lines.append("- measured on the CPU provider, which computed " + ", ".join(p["cpu_fp32_ops"])
                     + " in fp32: fp16 storage only, not fp16 arithmetic")
    return lines


def _distillation_lines(training: dict, notes: CardNotes) -> list[str]:
    # A distilled model's errors lean on its teachers', so whoever compares it with them must see which they were.
    d = training.get("distillation")
    if not d:
        return []
    teachers = ", ".join(f"{t.get('name', '?')} (`{t.get('path', '?')}`, sha256 {str(t.get('sha256', '?'))[:16]}…)"
                         for t in d.get("teachers", []))
    agree = card_number(notes, "training.distillation.teacher_label_agreement", d.get("teacher_label_agreement"),
                        within=PROPORTION)
    agreement = f"; the teachers agree with {agree:.1%} of the training labels" if agree is not None else ""
    return [f"- distilled from {teachers}, weight {d.get('weight', '?')}{agreement}"]


def _adoption_lines(training: dict, notes: CardNotes | None = None, conditions: Sequence[str] = (),
                    kind: str | None = None) -> list[str]:
    # A model made elsewhere carries no training record of ours: what it is, and how its input is fed (a generator's
    # output read: its --range, the one thing its adoption was told), is all we know. Its checks are its card's
    # words: `train adopt` writes them into the card as plain JSON, signed by nothing, and anyone who hands the file
    # on can write "label order checked … right on 97.3%" there. So each is said as the card's claim, not as ours.
    a = training.get("adopted")
    if not a:
        return []
    notes = CardNotes() if notes is None else notes
    checks = a.get("checks", {})
    side = "output" if kind == "generator" else "input"  # a generator's card records its output; "its input: ?" read
    lines = [f"- made elsewhere, not trained by Bias Mirror: `{a.get('from', '?')}` (sha256 {str(a.get('sha256', '?'))[:16]}…) "
             f"wrapped as it is; its {side}: {a.get(side, '?')} (range {a.get('range_chosen', '?')})"]
    lines += _condition_value_lines(a, notes, conditions)
    if "mean_change_grey_by_condition" in checks:
        field = "training.adopted.checks.mean_change_grey_by_condition"
        changes = {k: card_number(notes, f"{field}.{k}", v) for k, v in checks["mean_change_grey_by_condition"].items()}
        lines.append(f"- {CLAIMED}checked against the model run alone under each condition; mean change of the "
                     "face: " + ", ".join(f"{k} {_fixed(v, '.1f')} grey levels" for k, v in changes.items()))
    if checks.get("labels", {}).get("order") == "not checked":
        # no claim in the model's favour: said as ever
        lines.append(f"- label order not checked: {checks['labels'].get('note', 'no labelled faces')}")
    elif "labels" in checks:
        c, field = checks["labels"], "training.adopted.checks.labels"
        right, swapped = (card_number(notes, f"{field}.{k}", c.get(k), within=PROPORTION)
                          for k in ("accuracy", "accuracy_labels_swapped"))
        n = card_count(notes, f"{field}.n", c.get("n"))
        lines.append(f"- {CLAIMED}label order checked on {_fixed(n, 'd')} labelled faces: right on "
                     f"{_fixed(right, '.1%')}, {_fixed(swapped, '.1%')} with the labels swapped"
                     + (f"; {c['note']}" if c.get("note") else ""))  # not confirmed, or written with --force
    lines.append(f"- no per-group figures: `{program()} audit` measures them")
    return lines


# How an adopted model's checks are introduced: its card's words, which Bias Mirror cannot tell from a vendor's
# (`audit` measures a classifier's label order itself, on the labelled faces it is given).
CLAIMED = "its card says: "


def _condition_value_lines(adopted: dict, notes: CardNotes, order: Sequence[str]) -> list[str]:
    """What an adopted filter's model takes for each condition (--conditions NAME=VALUE), in ``order`` (its card's
    conditions, as the one-hot row has them; the JSON's keys are sorted): the card had listed the names alone, and
    whoever audits a CVAE fed female=-1 must see it was not fed 1."""
    field = "training.adopted.conditions"
    record = card_object(notes, field, adopted.get("conditions"))
    values = card_object(notes, f"{field}.values", record.get("values")) if record else None
    if not record or not values:
        return []
    names = sorted(values, key=lambda name: order.index(name) if name in order else len(order))
    given = ", ".join(f"{name}={_condition_value(notes, f'{field}.values.{name}', values[name])}" for name in names)
    return [f"- conditions as the model takes them: its input {record.get('input', '?')}; {given}"]


def _condition_value(notes: CardNotes, field: str, value) -> str:
    """A condition's value as --conditions gives it: a number, or a vector's numbers separated by ':'."""
    numbers = value if isinstance(value, list) else [value]
    if numbers and all(_finite(v) for v in numbers):
        return ":".join(f"{v:g}" for v in numbers)
    notes.warn(field, value, "a number or a list of numbers")
    return "?"


def _accuracy_line(o: dict, metrics: dict, notes: CardNotes) -> str:
    """The overall test accuracy, or "not measured" (its value is null) and why: a split without faces, or faces
    none of which got a finite prediction (a model trained to NaN) — the latter had been called the former."""
    on = metrics.get("evaluated_on")
    on = on if isinstance(on, dict) else {}
    split = on.get("split", "test")
    value, lo, hi = card_interval(notes, "metrics.overall.accuracy", o, within=PROPORTION)
    if value is None and strict_json.measured(o.get("value")):  # written, but not as an accuracy can be (warned)
        return f"Test accuracy not shown: {accuracy_not_shown(o.get('value'))}."
    if value is None:
        n = on.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            return f"Test accuracy not measured: no faces in the {split} split."
        return (f"Test accuracy not measured: the {split} split has {n} faces, but none got a finite prediction "
                "(the model's outputs are NaN, as when its training diverged, or its images could not be read).")
    n = card_count(notes, "metrics.overall.accuracy.n", o.get("n"))
    return (f"Test accuracy {figure(value, '.4f')} [{figure(lo, '.4f')}, {figure(hi, '.4f')}] "
            f"on {_fixed(n, 'd')} faces ({split} split).")


def _composition_text(c: dict, notes: CardNotes, field: str = "training.composition") -> str:
    """A composition record ({mode, by, achieved, …}) as "(MODE over A × B): cell n, …", or "N images" where it is
    over no labels (a folder domain's: it had read "(none over ?):  243"), and the unreadable images left out."""
    achieved = card_object(notes, f"{field}.achieved", c.get("achieved")) or {}
    left_out, unreadable = c.get("left_out_no_label"), c.get("unreadable")
    by = card_names(notes, f"{field}.by", c.get("by"))
    if by:
        text = (f"({c.get('mode', '?')} over {' × '.join(by)}): "
                + (", ".join(f"{k} {v}" for k, v in sorted(achieved.items())) or "no faces"))
    else:
        text = f"{sum(v for v in achieved.values() if isinstance(v, int))} images (no labels to compose over)"
    return (text + (f"; {left_out} face(s) left out for want of a label" if left_out else "")
            + (f"; {unreadable} unreadable image(s) left out, not trained on" if unreadable else ""))


def _schedule_lines(training: dict, notes: CardNotes) -> list[str]:
    # A filter exported before its schedule's end (--export-only of a stopped run) is not what its command trains:
    # its card said so in its JSON alone ("finished": false), and the Markdown gave its iterations as if whole.
    s = training.get("schedule")
    lines = ["- schedule: " + _schedule_text(s, notes)] if isinstance(s, dict) else []
    if training.get("finished") is False:
        lines.append(f"- NOT FINISHED: {training.get('stopped_early') or 'exported before its schedule ended'}")
    return lines


def _schedule_text(s: dict, notes: CardNotes) -> str:
    """A CycleGAN's schedule record as "N epoch(s) at learning rate LR, then M of linear decay to 0; …"."""
    lr = _fixed(card_number(notes, "training.schedule.lr", s.get("lr")), "g", "?")  # 10**400 had stopped doctor
    text = (f"{s.get('n_epochs', '?')} epoch(s) at learning rate {lr}, then {s.get('n_epochs_decay', '?')} of linear "
            f"decay to 0; {s.get('iters_per_epoch', '?')} batch(es) of {s.get('batch_size', '?')} image(s) an epoch")
    return text + (f" ({s['batches_drawn']})" if s.get("batches_drawn") else "")


def _data_lines(training: dict, notes: CardNotes) -> list[str]:
    """How the run took its faces (``faces``: whole images as aligned faces, which `train evaluate --aligned`
    measures alike) and where its dataset moved (``dataset_moves``: on a resume, or before a comparison's later
    variant began): its command names the first place, so without them the Markdown named a folder the model was
    not last trained from, and not how its faces were taken."""
    lines = []
    faces = training.get("faces")
    if isinstance(faces, str):
        lines.append(f"- faces: {faces}")
    elif faces is not None:
        notes.warn("training.faces", faces, "a text")
    moves = training.get("dataset_moves")
    if moves is not None and not isinstance(moves, list):
        notes.warn("training.dataset_moves", moves, "a list")
        moves = None
    said = [_move_text(notes, f"training.dataset_moves.{i}", move) for i, move in enumerate(moves or [])]
    if any(said):
        lines.append("- dataset moved: " + "; ".join(text for text in said if text))
    return lines


def _move_text(notes: CardNotes, field: str, move) -> str | None:
    """One move of ``dataset_moves`` as "`FROM` → `TO` at step N"; None (warned) where it is no object."""
    move = card_object(notes, field, move)
    if move is None:
        return None
    step = card_number(notes, f"{field}.at_step", move.get("at_step"), whole=True)
    return (f"`{move.get('from', '?')}` → `{move.get('to', '?')}`" + ("" if step is None else f" at step {step}"))


def _averaging_lines(training: dict, notes: CardNotes) -> list[str]:
    # --swa-epochs: the model shipped is not the last weights trained, and whoever reads the card must know it
    w = training.get("weight_averaging")
    if not isinstance(w, dict):
        return []
    epochs = w.get("epochs", "?")
    line = (f"- weight averaging (SWA): the exported model is the average of {w.get('snapshots', '?')} snapshots of "
            f"its weights over the last {epochs} epoch(s) (after the {training.get('epochs', '?')} one-cycle "
            f"epoch(s), at a constant learning rate {w.get('lr', '?')}), batch-norm statistics re-estimated")
    if "val_accuracy_averaged" in w or "val_accuracy_last" in w:
        averaged, last = (card_number(notes, f"training.weight_averaging.{k}", w.get(k), within=PROPORTION)
                          for k in ("val_accuracy_averaged", "val_accuracy_last"))
        line += (f"; validation accuracy {figure(averaged, '.4f')} averaged, "
                 f"{figure(last, '.4f')} for the last weights")
    return [line]


def _domain_lines(training: dict, notes: CardNotes) -> list[str]:
    # A filter's two training populations, as the classifier's "training composition" line gives its one
    lines = []
    for key, label in (("domain_a", "A"), ("domain_b", "B")):
        d = training.get(key)
        if not isinstance(d, dict):
            continue
        line = f"- domain {label}: {d.get('name', '?')}, {d.get('n_train', '?')} training faces"
        c = card_object(notes, f"training.{key}.composition", d.get("composition"))
        if c is not None:
            line += f"; composition {_composition_text(c, notes, f'training.{key}.composition')}"
        lines.append(line + _age_bands_text(d))
    overlap = training.get("domain_overlap")
    if isinstance(overlap, dict) and overlap.get("photographs_in_both_domains_training"):
        lines.append(f"- {overlap['photographs_in_both_domains_training']} photograph(s) trained on in both domains "
                     f"(near-identical images under two names), kept {overlap.get('kept', '')}".rstrip())
    elif isinstance(overlap, dict) and any((overlap.get("images_in_both_domains") or {}).values()):
        both, left = overlap["images_in_both_domains"], overlap.get("left_out_of_training") or {}
        lines.append(f"- {both.get('A', '?')} image(s) of domain A and {both.get('B', '?')} of domain B are one "
                     f"photograph in both folders: left out of training ({left.get('A', '?')} of A's, "
                     f"{left.get('B', '?')} of B's)")
    near = overlap.get("near_identical") if isinstance(overlap, dict) else None
    if isinstance(near, dict) and any((near.get("images") or {}).values()):
        lines.append(f"- {near['images'].get('A', '?')} image(s) of domain A and {near['images'].get('B', '?')} of "
                     f"domain B are near-identical across the folders (an edit or a re-save), kept "
                     f"{near.get('kept', '')}".rstrip())
    return lines


def _age_bands_text(domain: dict) -> str:
    """A domain of ages drawn from a dataset that gives them as bands (FairFace's): the bands it holds, and those
    left out for straddling its ages ("ages 20-35" holds 20-29 alone), where a reader would take the name's range."""
    bands, left_out = domain.get("age_bands"), domain.get("age_bands_left_out")
    text = f"; age bands {', '.join(map(str, bands))}" if isinstance(bands, list) and bands else ""
    if isinstance(left_out, dict) and left_out:
        text += "; left out: " + ", ".join(f"{band} ({why})" for band, why in left_out.items())
    return text


def _filter_group_rows(metrics: dict, notes: CardNotes) -> list[str]:
    """A filter's held-out shifts per gender × race cell (metrics.by_gender_race), where its card has them."""
    by = card_object(notes, "metrics.by_gender_race", metrics.get("by_gender_race"))
    if not by:
        return []
    rows = ["Held-out shifts per gender × race (filtered − original; ΔITA° > 0 is a higher ITA: lighter skin, "
            "or less yellow where L* > 50; ΔITA over the faces "
            "whose skin was measured before and after, ΔP(female) over all):", "",
            "| gender × race | faces | skin measured | mean ΔITA° | mean ΔP(female) |", "|---|---|---|---|---|"]
    for g, m in sorted(by.items(), key=lambda item: group_order(item[0])):
        where = f"metrics.by_gender_race.{g}"
        m = card_object(notes, where, m) or {}  # a row of "?" still: the cell was there
        # ΔP(female) is a difference of two probabilities: from -1 to 1
        shifts = (f"{_figure(notes, where, m, 'mean_delta_ita')} | "
                  f"{_figure(notes, where, m, 'mean_delta_p_female', (-1, 1))}")
        n, skin = (_fixed(card_count(notes, f"{where}.{k}", m.get(k)), "d") for k in ("n", "n_skin_measured"))
        rows.append(f"| {_cell(g)} | {n} | {skin} | {shifts} |")
    if "classifier" not in metrics:  # a column of dashes alone had not said why
        rows += ["", "ΔP(female) not measured: no classifier was given to measure it with (`train cyclegan "
                     "--classifier`)."]
    return rows + [""]


# The training fields the lines above show, each in its own words; any other (a research trainer's latent prior, a
# DB-VAE's debiasing settings) is listed as the app's card dialog lists it (``_other_lines``): they had been left out.
SHOWN_TRAINING = {"dataset", "command", "resumes", "exported_by", "commit", "date", "fp16", "distillation", "adopted",
                  "epochs", "n_train", "iterations", "preset", "schedule", "finished", "stopped_early", "composition",
                  "faces", "dataset_moves", "weight_averaging", "domain_a", "domain_b", "domain_overlap"}
# How much of a field nested too deep for one line is shown, as JSON: as much as the metrics' JSON below
MAX_NESTED_CHARS = 4000
# How much of a list of records of plain fields (a card's amendments) is shown in words: more, as they are read whole
# (an amendment of a text as long as a card may hold, and another); bounded all the same.
MAX_RECORDS_CHARS = 2 * MAX_TEXT_CHARS


def _other_lines(training: dict) -> list[str]:
    """The card's other training fields, each as "- key: value", in the card's order."""
    return [f"- {key.replace('_', ' ')}: {_value_text(value)}" for key, value in training.items()
            if key not in SHOWN_TRAINING]


def _value_text(value) -> str:
    """A field's value on one line, as the card dialog shows it (gui.model_panel._fmt): a figure to 4 significant
    digits, a null as not measured, a list of plain values joined by commas, an object of them as "key: value" each;
    one nested deeper as its JSON, cut at MAX_NESTED_CHARS; a list or an object of plain values is cut there too."""
    if value is None or isinstance(value, float):  # a figure not measured is null on a card
        return figure(value, ".4g")
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return _cut(", ".join(_value_text(v) for v in _first(value)))
    if isinstance(value, dict) and all(not isinstance(v, (dict, list)) for v in value.values()):
        return _fields_text(value)
    if value and isinstance(value, list) and all(isinstance(v, dict) and not any(isinstance(x, (dict, list))
                                                                                   for x in v.values()) for v in value):
        # records of plain fields (a card's amendments): each in words; as JSON they had been one escaped string
        # ("\u00d7" for ×)
        return _cut(" | ".join(_fields_text(v, MAX_RECORDS_CHARS) for v in _first(value, MAX_RECORDS_CHARS)),
                    MAX_RECORDS_CHARS)
    if isinstance(value, (dict, list)):
        text = strict_json.dumps(value, sort_keys=True, ensure_ascii=False)
        return f"`{text[:MAX_NESTED_CHARS]}`" + ("…" if len(text) > MAX_NESTED_CHARS else "")
    return " ".join(str(value).split())  # on one line: a newline in it would end the list item


def _fields_text(record: dict, limit: int = MAX_NESTED_CHARS) -> str:
    """An object of plain values as "key: value; …", cut at ``limit``."""
    return _cut("; ".join(f"{k}: {_value_text(v)}" for k, v in _first(record.items(), limit)), limit)


def _first(items, limit: int = MAX_NESTED_CHARS) -> list:
    """As many of ``items`` as could fill ``limit`` characters (each shows at least one): a list of 1,200 texts of
    9,000 characters had been joined whole, 10.8 MB on one line of `doctor --cards`."""
    return list(islice(items, limit + 1))


def _cut(text: str, limit: int = MAX_NESTED_CHARS) -> str:
    """``text`` (a list's or an object's items joined, of ``_first``) at most ``limit`` long, "…" where cut: joined
    by a separator, ``limit`` + 1 items are longer than that, so an item left out is a cut shown."""
    return text if len(text) <= limit else text[:limit] + "…"


def _warning_lines(notes: CardNotes) -> list[str]:
    """What the card holds of no type it is read as (``card_fields``): said under it, the model still usable."""
    return [f"- WARNING: {said}" for said in notes.said]


def card_markdown(card: ModelCard, file_name: str, size_mb: float, notes: CardNotes | None = None) -> str:
    """``notes``: this reading of the card, whose warnings of fields of no type this reads (each naming its file)
    are listed at the section's end, with any said in it before; where not given, a reading of its own that names
    ``file_name``."""
    notes = CardNotes(file_name) if notes is None else notes
    t, m = card.training, card.metrics
    lines = [f"## {card.name} (`{file_name}`, {size_mb:.1f} MB)", "", card.summary(notes), "",
             f"- method: {card.method}", f"- command: `{t.get('command', '?')}`",
             *(f"- then resumed: `{r}`" for r in t.get("resumes", [])),
             *([f"- exported again from its checkpoint: `{t['exported_by']}`"] if "exported_by" in t else []),
             f"- commit {t.get('commit', '?')}, {t.get('date', '?')}"]
    condition = next((t for t in card.inputs if t.name == "condition"), None)
    if condition is not None:
        lines.append(f"- conditions (its one-hot `condition` input, chosen with --condition or in the app): "
                     f"{', '.join(condition.labels or [])}")
    lines += _precision_lines(card, notes)
    lines += _distillation_lines(t, notes)
    lines += _adoption_lines(t, notes, (condition.labels or ()) if condition is not None else (), card.kind)
    for key in ("epochs", "n_train", "iterations", "preset"):
        if key in t:
            lines.append(f"- {key.replace('_', ' ')}: {t[key]}")
    lines += _schedule_lines(t, notes)
    composition = card_object(notes, "training.composition", t.get("composition"))
    if composition is not None:
        lines.append(f"- training composition {_composition_text(composition, notes)}")
    lines += _data_lines(t, notes)
    lines += _averaging_lines(t, notes)
    lines += _domain_lines(t, notes)
    lines += _other_lines(t)
    block: list[str] = []  # the metrics as JSON, where no table shows them
    o = overall_accuracy(m) if card.kind == "classifier" else None
    if o is not None:
        lines += ["", _accuracy_line(o, m, notes), ""]
        by = card_records(notes, "metrics.by", m.get("by"))
        for grouping, groups in by.items():
            if groups:  # a model with no finite prediction has no group: a table of headers alone says nothing
                lines += _metric_rows(by, grouping, notes) + [""]
    elif m:
        groups = _filter_group_rows(m, notes) if card.kind == "filter" else []
        if groups:
            m = {k: v for k, v in m.items() if k != "by_gender_race"}  # the table above: not again, cut at 4000
        lines += ["", *groups]
        block = ["```json", strict_json.dumps(m, indent=1, sort_keys=True)[:4000], "```", ""]
    warnings = _warning_lines(notes)
    # each line one line: a card's free text (its method, a dataset's name, a group's) holding a newline had started
    # a line of its own words after it, "## …" a heading of the document. The JSON block's lines are JSON's (a
    # newline in a text is "\n" there); the warnings are written on one line (``CardNotes``).
    return "\n".join([*map(one_line, lines), *block, *(warnings + [""] if warnings else [])])
