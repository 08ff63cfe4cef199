"""JSON that every reader accepts: a value that is not a finite number is written as null.

Python's ``json`` writes NaN and Infinity as bare tokens, which are not JSON: browsers, ``jq`` and most other
languages refuse the whole document. Metrics have honest NaNs (a false-positive rate for a group with no
negatives), so every file this project writes for others to read goes through here.
"""
from __future__ import annotations

import json
import math
from typing import Any


def finite(x: Any, digits: int | None = None) -> Any:
    """``x`` with every non-finite float (NumPy scalars included) as None, tuples as lists, keys as strings;
    floats rounded to ``digits`` where given."""
    if hasattr(x, "item") and getattr(x, "ndim", None) == 0:
        x = x.item()  # a NumPy scalar
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        return x if digits is None else round(x, digits)
    if isinstance(x, dict):
        return {str(k): finite(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v, digits) for v in x]
    return x


def dumps(x: Any, digits: int | None = None, **kwargs: Any) -> str:
    """``json.dumps`` of ``finite(x, digits)``; refuses (rather than writes) anything non-finite left."""
    return json.dumps(finite(x, digits), allow_nan=False, **kwargs)
