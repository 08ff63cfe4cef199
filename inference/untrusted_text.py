"""Text that others wrote (a model card, an ONNX graph's names, a photo's file name, a labels CSV's cells) as it
leaves Bias Mirror: on a terminal, and in a CSV that a spreadsheet opens. Both read some text as commands: an
escape sequence in a card's name had set the terminal's title, cleared the screen and could overwrite the ship
gate's FAILED line; a file name of "=HYPERLINK(…)" became a live link in faces.csv, and a race label "=1+1" showed
as 2. The files we write (report.json, the HTML, the cache) keep the text as it was: only its display is guarded."""
from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

# C0 controls but newline and tab (ESC starts every sequence; CR and BS rewrite what was shown), DEL, C1 controls
# (a terminal that takes 8-bit controls reads 0x9b as ESC [), the bidirectional embeddings, overrides and isolates
# (U+202E shows "gpj.exe" as "exe.jpg", and each reorders all the text after it), and lone surrogates, a file name's
# bytes that are not UTF-8 (written raw they are those bytes, 0x9b among them; a strict stream stops on them).
# The bidi marks U+200E, U+200F and U+061C are kept: right-to-left names carry them, and each moves only the
# punctuation beside it, not a run of text.
_NOT_SHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a file name's byte that is not UTF-8, as ``rows.printable`` shows it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# What a name (a model's, a label's, a condition's, a tensor's) may not hold: all the above, and newline and tab too,
# and the line and paragraph separators U+2028 and U+2029 (Qt's labels and Python's splitlines break lines at them).
# A name is shown on one line (a summary, a heading, the audit's lines that open with it): "resnet10\nship gate:
# PASSED" had printed a forged PASSED line under the audit's real FAILED one.
_NOT_IN_A_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_LINE_BREAKS = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped_in_line(match: re.Match[str]) -> str:
    return _LINE_BREAKS.get(match.group()) or _escaped(match)


def not_in_a_name(text: str) -> tuple[int, str] | None:
    """Where ``text`` first holds what no name may (a control character, newline and tab included, a bidirectional
    override or isolate, a lone surrogate): its index and the character as a visible escape ("\\n", "\\u202e");
    None where it holds none."""
    found = _NOT_IN_A_NAME.search(text)
    return None if found is None else (found.start(), _escaped_in_line(found))


def one_line(text: str) -> str:
    """``text`` as ``terminal_safe`` shows it, its newlines, carriage returns and tabs written as "\\n", "\\r", "\\t"
    as well: for a card's free text (a method, a dataset's name) where it is printed within one line, as a summary or
    a list item, whose end a newline in it would fake."""
    return _NOT_IN_A_NAME.sub(_escaped_in_line, text)


def terminal_safe(text: str) -> str:
    """``text`` as a terminal can show it without obeying it: each control character but newline and tab, and each
    bidirectional override, written as a visible escape ("\\x1b", "\\u202e"). Every other character is kept: é,
    中文 and emoji are shown as they are."""
    return _NOT_SHOWN.sub(_escaped, text)


def say(text: str, file: TextIO | None = None, end: str = "\n", flush: bool = False) -> None:
    """print ``text`` as ``terminal_safe`` shows it, to ``file`` (sys.stdout as it is at the call, so that a
    redirection made after import is followed)."""
    print(terminal_safe(text), file=sys.stdout if file is None else file, end=end, flush=flush)


def elided(text: object, limit: int) -> str:
    """Each line of ``text`` in at most ``limit`` characters: a longer one keeps its start and its end around '…'
    (a model's name opens a figure's title and what it shows ends it; numbered copies of a name differ at the end).
    A long name had widened the GUI's side panel past the screen, and run off a figure's edge."""
    return "\n".join(_elided_line(line, limit) for line in str(text).split("\n"))


def _elided_line(line: str, limit: int) -> str:
    if len(line) <= limit:
        return line
    head = (limit - 1) // 2
    return line[:head] + "…" + line[len(line) - (limit - 1 - head):]


class TerminalSafeFormatter(logging.Formatter):
    """A log line as ``terminal_safe`` shows it, its traceback too: a warning quotes card names and file names."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


# What makes a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a formula (OWASP's list), and the
# apostrophe that marks text: a cell that began with one has one more, so that a script strips exactly one.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_text(text: str) -> str:
    """A text cell of a CSV we write, as a spreadsheet takes it for text, never a formula: a leading ' where it
    begins with =, +, -, @, a tab, a carriage return or ' (the spreadsheet's mark for text). Only for text: the
    numbers a writer formats (-0.5) are passed as numbers, and stay numbers."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
