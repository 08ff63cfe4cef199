"""Per-image results cached in ``OUT/cache`` so an interrupted audit resumes and reruns reuse work.

One JSON-lines file per *component*; each line is ``{"key": "image path|size|modification time (ns)", "value":
...}`` (a photo replaced under the same name is measured again):

- ``base-<mode>-<crop>``: the faces found and the original skin tone (no model involved);
- ``filter-<filter hash>-<mode>-<crop>``: filtered skin tone and the shift, per face;
- ``clf-<classifier hash>-<mode>-<crop>``: P(female), prediction and CAM focus on the originals;
- ``clf-<classifier hash>-on-<filter hash>-<mode>-<crop>``: the same on the filtered faces.

So a rerun with another classifier reuses the skin and filter-derived numbers
and the other classifiers' outputs (the filter itself runs again on the images
the new classifier has to see, because filtered images are not stored).
``mode`` is ``aligned`` or the detector; ``crop`` the pipeline's crop size. With a detector the names end in
``-max<N>``, the --max-faces the faces were found under: another cap finds other faces, measured again.
Lines are appended and flushed per batch; a torn last line (a killed run) is ignored.
An audit that read or computed all of its images rewrites the components it used without the lines no audit can
read any more (an image since changed or deleted: its key is gone for good), once those outnumber a quarter of the
others: a file touched by a checkout or a cloud re-sync had left one more line per image at every rerun, all read
into memory by each. The rewrite goes to a file of its own, renamed over the old one when whole, so a kill during it
leaves the cache as it was; an interrupted audit keeps its lines for the resume.
A component holds in memory the values of the images its audit reads only (``Cache.want``): the other lines are
counted as the file is read, their values never parsed, and read one at a time again by a compaction.
Numbers are rounded (6 decimals for probabilities, 4 for colour) so that a
batch boundary moving on resume cannot change a report.
"""
from __future__ import annotations

import json
import logging
from json.decoder import scanstring
from pathlib import Path
from typing import Callable, Collection, Iterator

from ..errors import BiasMirrorError
from ..writing import writing, written_whole

log = logging.getLogger(__name__)
# Lines no audit reads any more are dropped once they outnumber this share of the lines still read: a rerun that
# left a few behind does not rewrite a large file for them, and a file grows to at most 1 + STALE_SHARE times what
# it holds (a rewrite of n lines comes only after n × STALE_SHARE stale ones were appended, so what is rewritten
# stays in proportion to what was appended).
STALE_SHARE = 0.25


class Component:
    """One component's file, read when first used. Given ``wanted`` (the keys of the images its audit reads), it holds
    the values of those keys only: the rest stay on disk, counted, and are read again only by ``compact``. A --limit
    500 rerun into the --out of a 200,000-image audit had held every image's values (about 10 KB each parsed: 2.5 GB,
    23 s) to use 500 of them. ``wanted`` None: every key's value, for a caller that does not know its keys."""

    def __init__(self, folder: Path, name: str, wanted: Collection[str] | None = None):
        self.path = folder / f"{name}.jsonl"
        self.name = name
        # frozen: one set of an audit's keys shared by its components (frozenset() of a frozenset copies nothing)
        self._wanted: frozenset[str] | None = None if wanted is None else frozenset(wanted)
        self._data: dict[str, object] | None = None  # not read yet
        self._lines = 0  # in the file: torn ones, and those of a key read again or no longer read, too
        self._fh = None

    @property
    def data(self) -> dict[str, object]:
        """The values held: the wanted keys' (the last whole line of each, as on every reading)."""
        return self._loaded()

    @property
    def lines(self) -> int:
        self._loaded()  # counted as the file is read
        return self._lines

    def _loaded(self) -> dict[str, object]:
        if self._data is None:
            self._data, self._lines = self._read(self._wanted)
        return self._data

    def want(self, keys: Collection[str]) -> None:
        """Hold the values of ``keys`` too. Before the first use this only narrows what is read; after it, the keys
        not held yet are read from the file (``put``'s lines flushed first, so that the file is whole)."""
        if self._wanted is None and self._data is not None:
            return  # every value is held already
        keys = frozenset(keys)
        new = keys if self._wanted is None else keys - self._wanted
        self._wanted = keys if self._wanted is None else self._wanted | new
        if self._data is not None and new:
            self.flush()
            self._data.update(self._read(new)[0])

    def _read(self, keys: frozenset[str] | None) -> tuple[dict[str, object], int]:
        """The values of ``keys`` (all, where None) in the file, and its number of lines."""
        data: dict[str, object] = {}
        lines = 0
        if not self.path.exists():
            return data, lines
        with open(self.path, "rb") as fh:  # line by line in bytes: a damaged line is one line skipped
            for line in fh:
                lines += 1
                if keys is not None:
                    key = _key_of(line)
                    if key is not None and key not in keys:
                        continue  # not parsed: the value is what costs, in time and in memory
                row = _row(line)
                if row is not None and (keys is None or row[0] in keys):
                    data[row[0]] = row[1]
        return data, lines

    def _held(self, key: str) -> bool:
        if self._wanted is not None and key not in self._wanted:
            # a value not read is no "not cached": the audit would call its image unprocessed
            raise KeyError(f"{self.path}: {key!r} is not among the keys this component was read for")
        return key in self.data

    def __contains__(self, key: str) -> bool:
        return self._held(key)

    def get(self, key: str):
        return self.data.get(key) if self._held(key) else None

    def drop(self, key: str) -> None:
        """Forget ``key``'s value, to put a new one (a component keeps a key's first value; on reading, a file's last
        line wins). Its old line is left in the file, and not kept by ``compact``."""
        self.data.pop(key, None)

    def _writing(self):
        # a full disk had given four chained tracebacks of "[Errno 28] No space left on device", naming no file
        return writing(self.path, "the audit's cache of measured faces",
                       "what was cached before is kept, and the next run goes on from it")

    def put(self, key: str, value) -> None:
        if self._held(key):
            return
        self.data[key] = value
        with self._writing():
            self._append(key, value)

    def _append(self, key: str, value) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A torn last line must not glue onto the next record: its last byte, read alone (the whole file had
            # been read for it).
            needs_newline = False
            if self.path.exists() and self.path.stat().st_size > 0:
                with open(self.path, "rb") as fh:
                    fh.seek(-1, 2)
                    needs_newline = fh.read(1) != b"\n"
            self._fh = open(self.path, "a", encoding="utf-8")
            if needs_newline:
                self._fh.write("\n")
        self._fh.write(_line(key, value))
        self._lines += 1

    def compact(self, used: Collection[str], still_read: Callable[[str], bool]) -> bool:
        """Rewrites the file with only the keys in ``used`` (this audit's) and those ``still_read`` says another
        audit may read, where the other lines are more than STALE_SHARE of these; whether it did. ``still_read`` is
        asked only where the lines beyond ``used`` could be that many (it may have to look at files on disk), once
        for each key. The keys not held are read from the file (their keys, then the kept ones' values), one line at
        a time: their values are never all in memory."""
        in_use = sum(key in used for key in self.data)  # a key of ``used`` not held is one more: this is a floor
        if not self._worth_rewriting(self.lines - in_use, in_use):  # even were every other line stale
            return False
        kept = {key: value for key, value in self.data.items() if key in used or still_read(key)}
        self.flush()  # the lines put so far are read below
        others = {key: at for key, at in self._others().items() if key in used or still_read(key)}
        if not self._worth_rewriting(self.lines - len(kept) - len(others), len(kept) + len(others)):
            return False
        self.close()  # appended to after the rename, it would write into the replaced file
        with self._writing(), written_whole(self.path) as part:
            with open(part, "w", encoding="utf-8") as out:
                out.writelines(_line(key, value) for key, value in kept.items())
                out.writelines(_line(key, value) for key, value in self._values_at(sorted(others.values())))
        log.debug("%s: %d of %d lines no audit reads any more dropped", self.path,
                  self.lines - len(kept) - len(others), self.lines)
        self._data, self._lines = kept, len(kept) + len(others)
        return True

    def _others(self) -> dict[str, int]:
        """Where in the file the last whole line of each key not wanted begins (none where every key is)."""
        at: dict[str, int] = {}
        if self._wanted is None or not self.path.exists():
            return at
        with open(self.path, "rb") as fh:
            offset = 0
            for line in fh:
                # each line parsed, its value let go of: only a whole parse tells a torn or damaged line, which a
                # full load skips (a key whose every line is torn is no key)
                row = _row(line)
                if row is not None and row[0] not in self._wanted:  # a wanted key's value is held (or was dropped)
                    at[row[0]] = offset
                offset += len(line)
        return at

    def _values_at(self, offsets: list[int]) -> Iterator[tuple[str, object]]:
        with open(self.path, "rb") as fh:
            for offset in offsets:
                fh.seek(offset)
                row = _row(fh.readline())
                if row is None:  # the file changed under the rewrite: leave it as it is (written_whole)
                    raise OSError(f"{self.path} changed while it was rewritten")
                yield row

    @staticmethod
    def _worth_rewriting(stale: int, live: int) -> bool:
        return stale > 0 and stale > STALE_SHARE * live

    def flush(self) -> None:
        if self._fh is not None:
            with self._writing():
                self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None  # closed even where its last flush fails (the file is let go of either way)
            with self._writing():
                fh.close()


class Cache:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.components: dict[str, Component] = {}
        self.wanted: frozenset[str] | None = None  # every key, until ``want`` says which

    def component(self, name: str) -> Component:
        if name not in self.components:
            self.components[name] = Component(self.folder, name, self.wanted)
        return self.components[name]

    def want(self, keys: Collection[str]) -> None:
        """The keys of the images the audit reads: its components, made or to be made, hold only their values."""
        self.wanted = frozenset(keys) if self.wanted is None else self.wanted | frozenset(keys)
        for c in self.components.values():
            c.want(self.wanted)

    def flush(self) -> None:
        for c in self.components.values():
            c.flush()

    def close(self) -> None:
        for c in self.components.values():
            c.close()

    def compact(self, used: Collection[str], still_read: Callable[[str], bool]) -> None:
        """Each component rewritten without the lines no audit reads any more (see ``Component.compact``). One that
        cannot be rewritten (a full disk) stays as it was, with a warning: the audit's results are all cached, and
        only its report is left to write. ``still_read`` is asked once for a key, whatever the components holding
        it: each image is in every one (8 of them had asked 1.6 million times for 200,000 images)."""
        verdicts: dict[str, bool] = {}

        def asked_once(key: str) -> bool:
            if key not in verdicts:
                verdicts[key] = still_read(key)
            return verdicts[key]

        for c in self.components.values():
            try:
                c.compact(used, asked_once)
            except BiasMirrorError as exc:
                log.warning("%s", exc)


def _line(key: str, value) -> str:
    return json.dumps({"key": key, "value": value}, sort_keys=True) + "\n"


# How ``_line`` begins a line (sort_keys puts "key" first), and what follows its key: inside a JSON string a quote is
# escaped, so the first ', "value": ' of a line is the one after the key.
_HEAD, _AFTER_KEY = b'{"key": "', b', "value": '


def _key_of(line: bytes) -> str | None:
    """The key of a line as ``_line`` writes it, read without parsing its value; None for a line not so begun
    (written otherwise, torn, damaged), which only a whole parse can tell."""
    if not line.startswith(_HEAD):
        return None
    end = line.find(_AFTER_KEY, len(_HEAD))
    if end < 0:
        return None
    try:
        key, stop = scanstring(line[:end].decode("utf-8"), len(_HEAD))
    except (UnicodeDecodeError, ValueError):
        return None
    return key if stop == end else None


def _row(line: bytes) -> tuple[str, object] | None:
    """A line's key and value; None for a line torn by an interrupted run, or damaged (a byte not UTF-8 had ended
    the audit in a traceback with status 1, which CI reads as a failed gate)."""
    try:
        row = json.loads(line.decode("utf-8"))
        return row["key"], row["value"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return None
