"""JSON that every reader accepts: a value that is not a finite number is written as null.

Python's ``json`` writes NaN and Infinity as bare tokens, which are not JSON: browsers, ``jq`` and most other
languages refuse the whole document. Metrics have honest NaNs (a false-positive rate for a group with no
negatives), so every file this project writes for others to read goes through here.
"""
from __future__ import annotations

import json
import math
from typing import Any


def measured(x: Any) -> bool:
    """A figure that was measured: not None (how these files write one that was not) and not NaN (its form in
    memory, and in files written before them)."""
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def as_printed(v, digits: int | None):
    """``v`` rounded to the ``digits`` it is printed with (None: as measured), so that no word says more than the
    digits beside it: a mirror filter's group mean printed "0.00" had been called "darker"; and rounded before its
    sign is printed, so that a value shown as zero has no minus ("−0.0"). Not measured: ``v`` as it is."""
    return v if digits is None or not measured(v) else round(v, digits) + 0.0


def finite(x: Any, significant: int | None = None) -> Any:
    """``x`` with every non-finite float (NumPy scalars included) as None, tuples as lists, keys as strings;
    floats kept to ``significant`` digits where given. Significant digits, not decimals: a p-value of 3e-12
    rounded to 10 decimals would read 0."""
    if hasattr(x, "item") and getattr(x, "ndim", None) == 0:
        x = x.item()  # a NumPy scalar
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        return x if significant is None else float(f"{x:.{significant}g}")
    if isinstance(x, dict):
        return {str(k): finite(v, significant) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v, significant) for v in x]
    return x


def dumps(x: Any, significant: int | None = None, **kwargs: Any) -> str:
    """``json.dumps`` of ``finite(x, significant)``; refuses (rather than writes) anything non-finite left."""
    return json.dumps(finite(x, significant), allow_nan=False, **kwargs)
