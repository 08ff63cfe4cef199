"""Typed reads of a model card's informational fields, as loosely as a card written by hand or by another tool
types them: ``training.filters.min_age``, a filter's target ``marginals``, ``training.composition``,
``metrics.overall`` / ``by`` / ``gaps`` and the figures in them.

``ModelCard.validate`` checks what every command needs (kind, inputs, outputs, labels, cam). These fields only say
how the model was trained and measured, and a command that reads one must not stop on it: ``"min_age": "18"`` had
crashed ``train evaluate`` with a TypeError, a target share of ``"0.33"`` the audit, ``"by": "x"`` the app's card
dialog. A number given as a numeric string is taken as the number; anything else is ignored, with a warning that
names the model file and the field, once per file and field however many commands or redraws read it. What was
said of a file stays listed (``said_of``), so the card dialog and ``doctor --cards`` can show it beside the card.
"""
from __future__ import annotations

import logging
import math
import threading
from typing import Any

log = logging.getLogger(__name__)
_SHOWN_CHARS = 60  # of a value quoted in a warning: a whole per-group record had filled the terminal

_lock = threading.Lock()  # the app's card dialog reads on the GUI thread, its workers elsewhere
_said: dict[str, dict[str, str]] = {}  # file → field → what was said of it


def _key(source: object) -> str:
    return "" if source is None else str(source)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 1] + "…"


def warn_once(source: object, field: str, value: Any, wanted: str) -> None:
    """Says (a log warning) that the card of ``source`` has ``field`` as ``value``, not ``wanted``, and that it is
    ignored; once per file and field."""
    said = f"{field} is {_shown(value)}, not {wanted}: ignored"
    # a caller not given the file tells one card from another by the value alone
    said_as = field if source is not None else said
    with _lock:
        fields = _said.setdefault(_key(source), {})
        if said_as in fields:
            return
        fields[said_as] = f"its card's {said}"
    if source is None:
        log.warning("a model card's %s", said)
    else:
        log.warning("%s: its card's %s", source, said)


def said_of(source: object) -> list[str]:
    """The warnings said of the card of ``source`` so far, in the order they were said."""
    with _lock:
        return list(_said.get(_key(source), {}).values())


def card_object(source: object, field: str, value: Any) -> dict | None:
    """``value`` where it is a JSON object; None where it is absent (null), and where it is anything else (warned)."""
    if isinstance(value, dict):
        return value
    if value is not None:
        warn_once(source, field, value, "an object")
    return None


def card_records(source: object, field: str, value: Any) -> dict[Any, dict]:
    """An object of records (``metrics.by``'s groupings, a grouping's groups): its entries that are objects
    themselves; the others are left out, each warned of. Empty where ``value`` is not an object (warned)."""
    found = card_object(source, field, value) or {}
    records = {}
    for key, record in found.items():
        if isinstance(record, dict):
            records[key] = record
        elif record is not None:
            warn_once(source, f"{field}.{key}", record, "an object")
    return records


def card_names(source: object, field: str, value: Any) -> list[str] | None:
    """``value`` where it is a list of names (strings): a composition's ``by``; None where it is absent (null or
    empty), and where it is anything else (warned): ``"gender"`` had been read as the names g, e, n, d, e, r."""
    if not value:
        return None
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return value
    warn_once(source, field, value, "a list of names")
    return None


def _as_number(value: Any) -> float | None:
    """``value`` as a float where it is a number or a string that spells one ("18", " 0.33 "); None otherwise (a
    bool is no number, though Python counts True as 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        return None
    except OverflowError:  # a whole number of 400 digits: no figure a card means
        return math.inf


def card_number(source: object, field: str, value: Any, *, whole: bool = False,
                within: tuple[float, float] | None = None) -> int | float | None:
    """A card's figure as a number ("18" reads 18, "0.33" 0.33): an int where ``whole`` (18.0 reads 18), and only
    where it lies in ``within``. None where it was not measured (null, or NaN as a writer not ours leaves it), and
    where it is anything else: a word, a list, true, an infinity, a fraction where ``whole``, a figure outside
    ``within`` (warned)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    number = _as_number(value)
    wanted = "a whole number" if whole else "a number"
    if within is not None:
        wanted += f" from {within[0]:g} to {within[1]:g}"
    fits = number is not None and math.isfinite(number) and (not whole or number.is_integer()) \
        and (within is None or within[0] <= number <= within[1])
    if not fits:
        warn_once(source, field, value, wanted)
        return None
    if isinstance(value, (int, float)) and not whole:
        return value
    return int(number) if whole or number.is_integer() else number  # type: ignore[union-attr]  # "18" reads 18
