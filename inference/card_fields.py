"""Typed reads of a model card's informational fields, as loosely as a card written by hand or by another tool
types them: ``training.filters.min_age``, a filter's target ``marginals``, ``training.composition``,
``metrics.overall`` / ``by`` / ``gaps`` and the figures in them.

``ModelCard.validate`` checks what every command needs (kind, inputs, outputs, labels, cam). These fields only say
how the model was trained and measured, and a command that reads one must not stop on it: ``"min_age": "18"`` had
crashed ``train evaluate`` with a TypeError, a target share of ``"0.33"`` the audit, ``"by": "x"`` the app's card
dialog. A number given as a numeric string is taken as the number; anything else is ignored, with a warning that
names the model file and the field. What is said goes into a ``CardNotes`` the caller makes for one reading of one
card (one command's use of a model, one render of the card dialog, one card in ``doctor --cards``): each field is
warned of once in it however often that reading reads it, and the card dialog and ``doctor --cards`` list its
``said`` beside the card. A field a command cannot go on without (``needed_card_number``) is an error instead.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from .errors import BiasMirrorError
from .untrusted_text import one_line

log = logging.getLogger(__name__)
_SHOWN_CHARS = 60  # of a value quoted in a warning: a whole per-group record had filled the terminal


class CardNotes:
    """What one reading of the card of ``source`` (its model file; None where the caller has none) said of its
    fields of no type they are read as. Kept by the caller for as long as that reading lasts, not in the module:
    kept for the process, what was said of a file had grown for as long as the app ran, been shared by every
    command and test, and shown in a second card dialog warnings from an earlier one. One reading is one thread's
    (the card dialog renders on the GUI thread), so it takes no lock."""

    def __init__(self, source: object = None) -> None:
        self.source = source
        self._said: dict[str, str] = {}  # field → what was said of it, in the order said

    def warn(self, field: str, value: Any, wanted: str) -> None:
        """Says (a log warning) that the card has ``field`` as ``value``, not ``wanted``, and that it is ignored;
        once per field however often this reading reads it."""
        self.warn_that(field, f"is {_shown(value)}, not {wanted}")

    def warn_that(self, field: str, what: str) -> None:
        """Says that the card's ``field`` ``what`` (its words: "is 0.5 [0.6, 0.9], not lo ≤ value ≤ hi") and that it
        is ignored; once per field, as ``warn``."""
        if field in self._said:
            return
        said = one_line(f"{field} {what}: ignored")  # a key of the card's in ``field`` may hold a newline
        self._said[field] = f"its card's {said}"
        if self.source is None:
            log.warning("a model card's %s", said)
        else:
            log.warning("%s: its card's %s", self.source, said)

    @property
    def said(self) -> list[str]:
        """The warnings said of the card so far, in the order they were said."""
        return list(self._said.values())


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 1] + "…"


def card_object(notes: CardNotes, field: str, value: Any) -> dict | None:
    """``value`` where it is a JSON object; None where it is absent (null), and where it is anything else (warned)."""
    if isinstance(value, dict):
        return value
    if value is not None:
        notes.warn(field, value, "an object")
    return None


def card_records(notes: CardNotes, field: str, value: Any) -> dict[Any, dict]:
    """An object of records (``metrics.by``'s groupings, a grouping's groups): its entries that are objects
    themselves; the others are left out, each warned of. Empty where ``value`` is not an object (warned)."""
    found = card_object(notes, field, value) or {}
    records = {}
    for key, record in found.items():
        if isinstance(record, dict):
            records[key] = record
        elif record is not None:
            notes.warn(f"{field}.{key}", record, "an object")
    return records


def card_names(notes: CardNotes, field: str, value: Any) -> list[str] | None:
    """``value`` where it is a list of names (strings): a composition's ``by``; None where it is absent (null or
    empty), and where it is anything else (warned): ``"gender"`` had been read as the names g, e, n, d, e, r."""
    if not value:
        return None
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return value
    notes.warn(field, value, "a list of names")
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


def _wanted(whole: bool, within: tuple[float, float] | None) -> str:
    """What a figure read with ``whole`` and ``within`` must be, in the words a warning or an error says it."""
    wanted = "a whole number" if whole else "a number"
    if within is None:
        return wanted
    if within[1] == math.inf:  # a count: "from 0 to inf" said nothing a reader uses
        return wanted + f" of at least {within[0]:g}"
    return wanted + f" from {within[0]:g} to {within[1]:g}"


def _fitting_number(value: Any, whole: bool, within: tuple[float, float] | None) -> int | float | None:
    """``value`` as ``card_number`` reads it where it fits (finite, whole where ``whole``, in ``within``); None
    where it does not."""
    number = _as_number(value)
    fits = number is not None and math.isfinite(number) and (not whole or number.is_integer()) \
        and (within is None or within[0] <= number <= within[1])
    if not fits:
        return None
    if isinstance(value, (int, float)) and not whole:
        return value
    return int(number) if whole or number.is_integer() else number  # type: ignore[union-attr]  # "18" reads 18


def card_number(notes: CardNotes, field: str, value: Any, *, whole: bool = False,
                within: tuple[float, float] | None = None) -> int | float | None:
    """A card's figure as a number ("18" reads 18, "0.33" 0.33): an int where ``whole`` (18.0 reads 18), and only
    where it lies in ``within``. None where it was not measured (null, or NaN as a writer not ours leaves it), and
    where it is anything else: a word, a list, true, an infinity, a fraction where ``whole``, a figure outside
    ``within`` (warned)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    number = _fitting_number(value, whole, within)
    if number is None:
        notes.warn(field, value, _wanted(whole, within))
    return number


def needed_card_number(notes: CardNotes, field: str, value: Any, needed_for: str, *, whole: bool = False,
                       within: tuple[float, float] | None = None) -> int | float:
    """A card's figure a command cannot go on without, read as ``card_number`` reads it ("18" reads 18); where it
    is anything else (null included) a BiasMirrorError naming the file, the field and ``needed_for`` (what the
    command needs it for): ignored with a warning, the command would go on to other figures than it means."""
    number = None if value is None else _fitting_number(value, whole, within)
    if number is None:
        raise BiasMirrorError(f"its card's {field} is {_shown(value)}, not {_wanted(whole, within)}, and "
                              f"{needed_for}", notes.source)
    return number


# A share, a rate or an accuracy (and the bounds of its 95% CI): 1.7, or a bound of -3, is no figure a model measured,
# and had been shown as given where a word in its place was warned of.
PROPORTION = (0.0, 1.0)
COUNT = (0.0, math.inf)  # read whole: a number of faces, never -4


def spells_a_number(value: Any) -> bool:
    """Whether ``value`` is a number or a string that spells one, whatever its size: "high" is not; 1.7 is (the
    summary says which it was of a figure it does not show)."""
    return _as_number(value) is not None


def card_count(notes: CardNotes, field: str, value: Any) -> int | None:
    """A card's count (a number of faces): ``card_number`` read whole and at least 0."""
    return card_number(notes, field, value, whole=True, within=COUNT)  # type: ignore[return-value]


def card_interval(notes: CardNotes, field: str, record: dict, *, within: tuple[float, float] | None = None
                  ) -> tuple[int | float | None, int | float | None, int | float | None]:
    """``record``'s "value", "lo" and "hi" (a figure and its 95% CI) each read by ``card_number`` in ``within``, and
    all three None (warned, at ``field``) where those given are out of order (lo ≤ value ≤ hi): a value outside its
    own interval is not one to show, whichever of them is wrong."""
    figures = tuple(card_number(notes, f"{field}.{key}", record.get(key), within=within)
                    for key in ("value", "lo", "hi"))
    value, lo, hi = figures
    present = [x for x in (lo, value, hi) if x is not None]
    if present != sorted(present):
        shown = ["?" if x is None else f"{x:g}" for x in figures]
        notes.warn_that(field, f"is {shown[0]} [{shown[1]}, {shown[2]}], not lo ≤ value ≤ hi")
        return None, None, None
    return figures  # type: ignore[return-value]


def card_flag(notes: CardNotes, field: str, value: Any) -> bool:
    """A card's yes or no: True only where it is JSON true. Absent (null) and false are no; anything else is no as
    well, warned of: "timing_only": "false" had been read as yes (a non-empty string), and bench called a trained
    filter UNTRAINED."""
    if value is not None and not isinstance(value, bool):
        notes.warn(field, value, "true or false")
    return value is True
