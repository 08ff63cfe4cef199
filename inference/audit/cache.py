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
Numbers are rounded (6 decimals for probabilities, 4 for colour) so that a
batch boundary moving on resume cannot change a report.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..writing import writing


class Component:
    def __init__(self, folder: Path, name: str):
        self.path = folder / f"{name}.jsonl"
        self.name = name
        self.data: dict[str, object] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                        self.data[row["key"]] = row["value"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # torn line from an interrupted run
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
        self._fh.write(json.dumps({"key": key, "value": value}, sort_keys=True) + "\n")

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
