"""Reading a user's CSV: a file saved by a spreadsheet (BOM, another encoding) or not a CSV at all gets a
message naming the file, never a UnicodeDecodeError from deep inside the csv module."""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import BiasMirrorError


def read_csv_rows(path: str | Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """(column names, rows) of a UTF-8 CSV with a header line (a leading BOM is allowed); ``what`` names
    the file's role in messages ("the labels CSV")."""
    path = Path(path)
    if path.is_dir():
        raise BiasMirrorError(f"{what} is a folder; give the CSV file", path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            return [str(c).strip() for c in reader.fieldnames or []], rows
    except UnicodeDecodeError as exc:
        raise BiasMirrorError(f"{what} is not UTF-8 text (byte {exc.start}): save it as a UTF-8 CSV", path) from exc
    except csv.Error as exc:
        raise BiasMirrorError(f"{what} is not a readable CSV: {exc}", path) from exc
