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
Numbers are rounded (6 decimals for probabilities, 4 for colour) so that a
batch boundary moving on resume cannot change a report.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Collection

from ..errors import BiasMirrorError
from ..writing import writing, written_whole

log = logging.getLogger(__name__)
# Lines no audit reads any more are dropped once they outnumber this share of the lines still read: a rerun that
# left a few behind does not rewrite a large file for them, and a file grows to at most 1 + STALE_SHARE times what
# it holds (a rewrite of n lines comes only after n × STALE_SHARE stale ones were appended, so what is rewritten
# stays in proportion to what was appended).
STALE_SHARE = 0.25


class Component:
    def __init__(self, folder: Path, name: str):
        self.path = folder / f"{name}.jsonl"
        self.name = name
        self.data: dict[str, object] = {}
        self.lines = 0  # in the file: torn ones, and those of a key read again or no longer read, too
        if self.path.exists():
            with open(self.path, "rb") as fh:  # line by line in bytes: a damaged line is one line skipped
                for line in fh:
                    self.lines += 1
                    try:
                        row = json.loads(line.decode("utf-8"))
                        self.data[row["key"]] = row["value"]
                    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
                        # torn by an interrupted run, or damaged: a byte not UTF-8 had ended the audit in a
                        # traceback with status 1, which CI reads as a failed gate
                        continue
        self._fh = None

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str):
        return self.data.get(key)

    def _writing(self):
        # a full disk had given four chained tracebacks of "[Errno 28] No space left on device", naming no file
        return writing(self.path, "the audit's cache of measured faces",
                       "what was cached before is kept, and the next run goes on from it")

    def put(self, key: str, value) -> None:
        if key in self.data:
            return
        self.data[key] = value
        with self._writing():
            self._append(key, value)

    def _append(self, key: str, value) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A torn last line must not glue onto the next record.
            needs_newline = self.path.exists() and self.path.stat().st_size > 0 and not self.path.read_bytes().endswith(b"\n")
            self._fh = open(self.path, "a", encoding="utf-8")
            if needs_newline:
                self._fh.write("\n")
        self._fh.write(_line(key, value))
        self.lines += 1

    def compact(self, used: Collection[str], still_read: Callable[[str], bool]) -> bool:
        """Rewrites the file with only the keys in ``used`` (this audit's) and those ``still_read`` says another
        audit may read, where the other lines are more than STALE_SHARE of these; whether it did. ``still_read`` is
        asked only where the lines beyond ``used`` could be that many (it may have to look at files on disk)."""
        in_use = sum(key in used for key in self.data)
        if not self._worth_rewriting(self.lines - in_use, in_use):  # even were every other line stale
            return False
        kept = {key: value for key, value in self.data.items() if key in used or still_read(key)}
        if not self._worth_rewriting(self.lines - len(kept), len(kept)):
            return False
        self.close()  # appended to after the rename, it would write into the replaced file
        with self._writing(), written_whole(self.path) as part:
            with open(part, "w", encoding="utf-8") as fh:
                fh.writelines(_line(key, value) for key, value in kept.items())
        log.debug("%s: %d of %d lines no audit reads any more dropped", self.path, self.lines - len(kept), self.lines)
        self.data, self.lines = kept, len(kept)
        return True

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

    def component(self, name: str) -> Component:
        if name not in self.components:
            self.components[name] = Component(self.folder, name)
        return self.components[name]

    def flush(self) -> None:
        for c in self.components.values():
            c.flush()

    def close(self) -> None:
        for c in self.components.values():
            c.close()

    def compact(self, used: Collection[str], still_read: Callable[[str], bool]) -> None:
        """Each component rewritten without the lines no audit reads any more (see ``Component.compact``). One that
        cannot be rewritten (a full disk) stays as it was, with a warning: the audit's results are all cached, and
        only its report is left to write."""
        for c in self.components.values():
            try:
                c.compact(used, still_read)
            except BiasMirrorError as exc:
                log.warning("%s", exc)


def _line(key: str, value) -> str:
    return json.dumps({"key": key, "value": value}, sort_keys=True) + "\n"
