"""What a user types to start Bias Mirror, for the commands its hints, help texts, reports and model cards give.

`python main.py …` in a checkout; the console script's own name (`bias-mirror …`) once pip installed it, where no
main.py is at hand: a hint naming main.py sent an installed user to a file they do not have. main.py sets it for the
length of one main() call; a test or a script calling a command's code directly gets the checkout's form.
"""
from __future__ import annotations

import contextvars

CHECKOUT = "python main.py"
# A context, not an argument: the hints are said deep inside commands (a model loader, an exporter) that the
# command line never reaches otherwise.
PROGRAM: contextvars.ContextVar[str] = contextvars.ContextVar("PROGRAM", default=CHECKOUT)


def program() -> str:
    """`python main.py` or the console script's name (`bias-mirror`), as this process was started."""
    return PROGRAM.get()
