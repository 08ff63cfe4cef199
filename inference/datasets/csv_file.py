"""Reading a user's CSV: a file saved by a spreadsheet (BOM, another encoding) or not a CSV at all gets a
message naming the file, never a UnicodeDecodeError from deep inside the csv module."""
from __future__ import annotations

import contextlib
import csv
import io
import logging
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Iterator, Sequence

from ..errors import BiasMirrorError
from ..untrusted_text import spreadsheet_text
from .sample import nfc

log = logging.getLogger(__name__)


# The columns the readers look up, found whatever their case: a spreadsheet's "File,Gender,Race,Age" had its labels
# dropped without a word (every image unlabelled), or was refused as having no 'file' column.
KNOWN_COLUMNS = ("file", "gender", "race", "age", "split", "group")


def _column_name(name: str) -> str:
    """A header's name less the spaces and any quotes still around it (in '"file" , "gender"' the csv module keeps
    the space after the closing quote: "file "), a known column's in lower case."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].strip()
    return name.lower() if name.lower() in KNOWN_COLUMNS else name


def _delimiter(fh) -> tuple[str, int]:
    """(the header's separator, the lines before the header), ``fh`` left at the header. Excel's "sep=;" first line
    names the separator (it had been read as the header, and the file refused as having no 'file' column); else ';'
    or a tab where the header has no comma but one of those (a European Excel saves "CSV" with semicolons, which had
    read as one column and "no 'file' column"), else ','."""
    first = fh.readline()
    hint = first.rstrip("\r\n")
    if len(hint) == 5 and hint[:4].lower() == "sep=":
        return hint[4], 1
    fh.seek(0)
    if "," not in first:
        for other in (";", "\t"):
            if other in first:
                return other, 0
    return ",", 0


def _without_extra_cells(path: Path, rows: list[tuple[int, dict]]) -> list[tuple[int, dict[str, str]]]:
    """``rows`` less the cells beyond the header's columns (csv.DictReader keeps them under the key None), with a
    warning naming the rows where any is not empty: an unquoted comma in a value (Smith, John) had moved the rest of
    the row and dropped its last cell without a word. An empty one (a trailing separator) says nothing."""
    extra = [f"line {number} ({', '.join(map(repr, row[None]))})" for number, row in rows
             if any((cell or "").strip() for cell in row.get(None) or [])]
    if extra:
        log.warning("%s: %d row(s) have more cells than the header has columns (an unquoted comma in a value? quote "
                    "it), the extra cells not read: %s", path, len(extra), "; ".join(extra[:3])
                    + (" …" if len(extra) > 3 else ""))
    return [(number, {k: v for k, v in row.items() if k is not None}) for number, row in rows]


def _values_in_nfc(path: Path, rows: list[tuple[int, dict[str, str]]]) -> list[tuple[int, dict[str, str]]]:
    """``rows`` with every value but the file name in Unicode NFC (``nfc``), and a warning naming the values typed in
    two spellings, now read as one: "Ärzte" typed on macOS (decomposed) and on Windows (composed) had been two groups
    that print alike, every table, interval and gate computed on halves of one. File names stay as written: the
    readers match them in NFC and refuse a file listed in two spellings."""
    spellings: dict[tuple[str, str], set[str]] = defaultdict(set)
    out = []
    for number, row in rows:
        composed = {}
        for column, value in row.items():
            if column != "file" and isinstance(value, str):
                spellings[column, nfc(value.strip())].add(value.strip())
                value = nfc(value)
            composed[column] = value
        out.append((number, composed))
    merged = [(column, value, sorted(seen - {value})[0])
              for (column, value), seen in spellings.items() if len(seen) > 1]
    if merged:
        log.warning("%s: %d label(s) typed in two Unicode spellings, alike on screen (composed, and decomposed as "
                    "macOS stores accents), are each read as one, e.g. %s", path, len(merged),
                    "; ".join(f"{column} {value!r} (also as {ascii(other)})" for column, value, other in merged[:3]))
    return out


class _Lines:
    """A CSV file's lines as the csv module reads them, counted (from ``before``, the lines read before), with the
    line the row being read began on: its first that is not blank, as the csv module passes blank lines over, and
    ``row_text``, the text of the row last read (``_file_as_written`` reads it again)."""

    def __init__(self, fh, before: int):
        self.fh, self.number, self.began = fh, before, 0
        self.row_text, self._row_lines = "", []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self.fh)
        self.number += 1
        self._row_lines.append(line)
        if not self.began and line.strip("\r\n"):
            self.began = self.number
        return line

    def row_read(self, path: Path, what: str) -> int:
        """The line of the row just read, where it is on one line; else refused naming the line it began on: a stray
        quote ('13.jpg,"20-29,Female') opens a value the csv module runs on to the next quote, often none in a label
        file, and every later row had been read as part of that one value, their images warned of as not in the CSV
        and the line to blame named nowhere. A quoted value with a line break in it (csv.writer and pandas write a
        file name holding one so) is refused alike: it cannot be told from a stray quote's, and a row is one line."""
        began, self.began = self.began, 0
        self.row_text, self._row_lines = "".join(self._row_lines), []
        if began and self.number > began:
            raise BiasMirrorError(f"{what}'s line {began} has a quote (\") that no quote closes on that line, so its "
                                  f"value runs on to line {self.number}, every line between read as part of it: a "
                                  f"stray quote? remove it (or close it on line {began}); a row is one line, so a "
                                  "value cannot hold a line break either: a file name with a line break cannot be "
                                  "listed, rename the file (or leave its row out)", path)
        return self.number


@contextlib.contextmanager
def _opened_csv(path: Path, what: str) -> Iterator[tuple[_Lines, str]]:
    """``path``'s lines (``_Lines``) and its separator, a BOM and a "sep=" line read past; a folder, text that is
    not UTF-8 and what the csv module cannot read are said naming the file, also where raised while it is read."""
    if path.is_dir():
        raise BiasMirrorError(f"{what} is a folder; give the CSV file", path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            delimiter, before = _delimiter(fh)
            yield _Lines(fh, before), delimiter
    except UnicodeDecodeError as exc:
        raise BiasMirrorError(f"{what} is not UTF-8 text (byte {exc.start}): save it as a UTF-8 CSV", path) from exc
    except csv.Error as exc:
        raise BiasMirrorError(f"{what} is not a readable CSV: {exc}", path) from exc


def _numbered_rows(path: Path, what: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(column names, (row number, row) pairs); a row's number is its line in the file, the header being 1 (2 after
    a "sep=" line). A row over more than one line is refused (``_Lines.row_read``)."""
    with _opened_csv(path, what) as (lines, delimiter):
        # skipinitialspace: in '"file", "gender"' / '"a.jpg", "Male"' the space kept each value's quotes in it
        # ('"Male"' not understood, every label lost) while the header's names were cleaned of theirs
        reader = csv.DictReader(lines, delimiter=delimiter, skipinitialspace=True)
        columns = [_column_name(str(c)) for c in reader.fieldnames or []]
        lines.row_read(path, what)
        twice = sorted({c for c in columns if columns.count(c) > 1 and c in KNOWN_COLUMNS})
        if twice:
            raise BiasMirrorError(f"{what} has column {twice[0]!r} twice (its name in two cases or spellings); "
                                  "keep one", path)
        rows = [(lines.row_read(path, what), _with_file_as_written(
            {_column_name(k) if isinstance(k, str) else k: v for k, v in row.items()}, columns, lines.row_text,
            delimiter)) for row in reader]
        return columns, _values_in_nfc(path, _without_extra_cells(path, rows))


def _with_file_as_written(row: dict, columns: list[str], row_text: str, delimiter: str) -> dict:
    """``row`` with its file name as ``_file_as_written`` reads it from ``row_text``, the row's lines."""
    if "file" not in columns or not isinstance(row.get("file"), str) or " " not in row_text:
        return row
    return {**row, "file": _file_as_written(row["file"], columns.index("file"), row_text, delimiter)}


def _file_as_written(read: str, index: int, row_text: str, delimiter: str) -> str:
    """The file name ``read`` (the row's cell ``index`` read with skipinitialspace) with the spaces it began with:
    skipinitialspace drops them, and " lead space.jpg", a real file's name as csv.writer and pandas write it
    (unquoted), had named no file, its row "not in the folder". Taken from the row read without skipinitialspace,
    only where that reads the row into as many cells and this one is ``read`` after its spaces: where a quoted value
    follows a space ('a.jpg, "Smith, John"') the two readings differ, and ``read`` stands. Whether the spaces are
    the name's or a spreadsheet's padding is told by the folder (``file_name_readings``)."""
    skipped = next((cells for cells in csv.reader(io.StringIO(row_text), delimiter=delimiter,
                                                  skipinitialspace=True) if cells), [])
    raw = next((cells for cells in csv.reader(io.StringIO(row_text), delimiter=delimiter) if cells), [])
    if len(raw) != len(skipped) or index >= len(raw) or skipped[index] != read:
        return read
    return raw[index] if raw[index].lstrip(" ") == read else read


def _unmarked(name: str) -> str:
    """``name`` less the ' that our CSVs put before a text cell a spreadsheet would run as a formula
    (``spreadsheet_text``: faces.csv writes "-5.jpg" as "'-5.jpg"), where it is that mark; else ``name``."""
    return name[1:] if name.startswith("'") and spreadsheet_text(name[1:]) == name else name


def file_name_readings(name: str) -> list[str]:
    """The file names a CSV's file cell ``name`` may mean besides its own spelling: less the ' that faces.csv marks
    a would-be formula with ("'=HYPERLINK(1).jpg"), less the spaces a spreadsheet pads a cell with (" b.jpg" in
    "male, b.jpg"), or both. For a cell that names no file as written: a file named "'-5.jpg" or " lead.jpg" is named by its own
    spelling, and where the readings name more than one file the cell names none (the readers' rule)."""
    readings = (_unmarked(name), name.strip(), _unmarked(name.strip()))
    return list(dict.fromkeys(r for r in readings if r and r != name))


def csv_lines(path: str | Path, what: str) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each row of a CSV, the header first, read as ``_numbered_rows`` reads one (a BOM, a "sep="
    line, ';' or tab separators, a row over more than one line refused) but one row at a time, as plain lists, blank
    lines passed over: Kaggle's CelebA list_attr_celeba.csv has 202,599 rows of 41 cells, hundreds of megabytes
    held at once as dicts."""
    path = Path(path)
    with _opened_csv(path, what) as (lines, delimiter):
        for cells in csv.reader(lines, delimiter=delimiter, skipinitialspace=True):
            number = lines.row_read(path, what)
            if cells:
                yield number, cells


def read_csv_rows(path: str | Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """(column names, rows) of a UTF-8 CSV with a header line (a leading BOM is allowed); ``what`` names
    the file's role in messages ("the labels CSV")."""
    columns, rows = _numbered_rows(Path(path), what)
    return columns, [row for _, row in rows]


def read_rows_by_file(path: str | Path, what: str, compared: Sequence[str] | None = None,
                      nameless: list[int] | None = None,
                      lines: dict[str, int] | None = None) -> tuple[list[str], dict[str, dict[str, str]]]:
    """As ``read_csv_rows``, keyed by the 'file' column. A file on two rows that disagree (in ``compared``, else in
    any column) is refused with both row numbers: keeping either row silently would mislabel or regroup an image.
    A repeat with the same values is kept once, with a warning. ``nameless`` and ``lines``: as ``keyed_by_file``."""
    path = Path(path)
    columns, rows = _numbered_rows(path, what)
    return columns, keyed_by_file(rows, columns, path, what, compared, nameless, lines)


def keyed_by_file(rows: Sequence[tuple[int, dict[str, str]]], columns: Sequence[str], path: Path, what: str,
                  compared: Sequence[str] | None = None, nameless: list[int] | None = None,
                  lines: dict[str, int] | None = None) -> dict[str, dict[str, str]]:
    """``read_rows_by_file``'s rule for (line number, row) pairs of a label list that is not a CSV (CelebA's).
    Rows without a file name list nothing and are not keyed: their line numbers go to ``nameless`` for the caller
    to report, else they are warned about here (keyed under "", all but the first had gone uncounted). ``lines``
    gets each file's line (its first row's), for a caller that names the row of a value it cannot read."""
    by_file: dict[str, tuple[int, dict[str, str]]] = {}
    repeats, unnamed = [], []
    for number, row in rows:
        # its leading spaces kept: " lead.jpg" and "lead.jpg" may be two files (``file_name_readings`` reads past
        # padding where no file bears it), and stripped, the first could not be labelled. Trailing ones are padding:
        # an image's name ends in its extension
        name = (row.get("file") or "").rstrip()
        if "/" in name:  # "./a.jpg" and "sub//a.jpg" name the files the folder lists as "a.jpg" and "sub/a.jpg"
            name = PurePosixPath(name).as_posix()
        if not name.strip():
            unnamed.append(number)
            continue
        if name not in by_file:
            by_file[name] = (number, row)
            continue
        first, kept = by_file[name]
        for column in compared or [c for c in columns if c != "file"]:
            was, now = (kept.get(column) or "").strip(), (row.get(column) or "").strip()
            if was != now:
                raise BiasMirrorError(f"{what} lists {name!r} on rows {first} and {number} with different {column} "
                                      f"({was!r}, then {now!r}); keep one row per file", path)
        repeats.append(f"{name} (rows {first} and {number})")
    if repeats:
        log.warning("%s: %d row(s) repeat a file with the same values, each file kept once, e.g. %s", path,
                    len(repeats), "; ".join(repeats[:3]))
    if nameless is not None:
        nameless.extend(unnamed)
    elif unnamed:
        log.warning("%s: %d row(s) name no file and are skipped (line(s) %s)", path, len(unnamed),
                    ", ".join(map(str, unnamed[:5])) + (" …" if len(unnamed) > 5 else ""))
    if lines is not None:
        lines.update((name, number) for name, (number, _) in by_file.items())
    return {name: row for name, (_, row) in by_file.items()}
