"""An audit at CelebA's scale (200,000 images).

A ``--limit 500`` rerun into the --out of a 200k audit had read the whole ``OUT/cache`` into memory (339 MB on
disk, 2.46 GB peak, 23 s to load) to use 500 of its images: a component holds the values of the keys its audit reads
only, and still keeps, compacts and reads back everything else as a full load would.

A Ctrl-C (or SIGTERM) during a dataset's first look (its thumbnails, its copies' digests) had kept nothing: stopped
at 184,370 of 200,000 thumbnails, the rerun read all 200,000 again. What was read is kept, and the next run reads
only the rest.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.audit import cache as cache_module
from inference.audit.cache import Cache, Component, _line
from inference.datasets import copies, near_identical
from inference.file_identity import file_stats

KEYS = [f"/data/img{i:04d}.jpg|100|{i}" for i in range(400)]


def _value(i: int) -> dict:
    return {"error": None, "faces": [{"box": [0, 0, i, i], "p": round(i / 401, 6)}]}


def _written(folder: Path, name: str = "base-x", torn: bool = True) -> Path:
    """A component file of 400 keys, one of them written twice (the later line wins on reading), a damaged line,
    and a torn last line (a killed run)."""
    path = folder / f"{name}.jsonl"
    lines = [_line(k, _value(i)) for i, k in enumerate(KEYS)]
    lines.insert(50, _line(KEYS[70], {"first": True}))  # KEYS[70] again below: its later line is its value
    lines.insert(60, "damaged, no JSON\n")
    text = "".join(lines) + ('{"key": "' + KEYS[3] + '", "value": {"err' if torn else "")
    path.write_text(text, encoding="utf-8")
    return path


def test_a_component_holds_only_the_values_of_the_keys_its_audit_reads(tmp_path):
    _written(tmp_path)
    full = Component(tmp_path, "base-x")
    wanted = {KEYS[i] for i in (0, 3, 70, 399)} | {"/data/never-cached.jpg|1|1"}
    only = Component(tmp_path, "base-x", wanted)
    assert len(full.data) == len(KEYS)
    assert set(only.data) == wanted - {"/data/never-cached.jpg|1|1"}  # the others' values are not held
    for key in wanted:
        assert (key in only) == (key in full) and only.get(key) == full.get(key)
    assert only.get(KEYS[70]) == _value(70)  # the later of its two lines, as a full load reads it
    assert only.lines == full.lines == len(KEYS) + 3  # the twice-written, the damaged and the torn line


def test_a_key_not_wanted_is_not_answered_as_missing(tmp_path):
    """A value the component did not read is no "not cached": an audit would have called its image unprocessed."""
    _written(tmp_path)
    only = Component(tmp_path, "base-x", {KEYS[0]})
    with pytest.raises(KeyError):
        only.get(KEYS[1])


def test_the_cache_reads_each_component_for_the_keys_it_is_told(tmp_path):
    """The Collector makes its components before it knows its images: they are read when first asked."""
    _written(tmp_path)
    cache = Cache(tmp_path)
    comp = cache.component("base-x")
    cache.want(KEYS[:5])
    assert comp.get(KEYS[4]) == _value(4) and len(comp.data) == 5
    cache.want(KEYS[:10])  # more keys, once read: the new ones read too
    assert comp.get(KEYS[9]) == _value(9) and len(comp.data) == 10
    assert cache.component("base-x") is comp


def test_appending_after_a_torn_line_starts_a_line_of_its_own(tmp_path):
    path = _written(tmp_path)
    comp = Component(tmp_path, "base-x", {KEYS[0], "new"})
    comp.put("new", {"faces": []})
    comp.put(KEYS[0], {"not": "kept"})  # a key held keeps its first value, and is not written twice
    comp.close()
    assert path.read_text(encoding="utf-8").endswith('"value": {"err\n' + _line("new", {"faces": []}))
    again = Component(tmp_path, "base-x")
    assert again.get("new") == {"faces": []} and again.get(KEYS[0]) == _value(0) and len(again.data) == len(KEYS) + 1


def test_compaction_keeps_the_lines_of_keys_not_held(tmp_path):
    """The keys another audit still reads keep their values (the last line of each), those no audit reads go, and
    the torn, damaged and superseded lines with them."""
    _written(tmp_path)
    mine = set(KEYS[:10])
    comp = Component(tmp_path, "base-x", mine | {"new"})
    gone = set(KEYS[100:])  # changed or deleted since: 300 stale keys, more than a quarter of the 100 read
    asked = []

    def still_read(key: str) -> bool:
        asked.append(key)
        return key not in gone

    assert comp.compact(mine, still_read)
    assert set(asked) == set(KEYS[10:]) and len(asked) == len(KEYS) - 10  # each other key asked once
    assert len(comp.data) == 10 and comp.lines == 100
    after = Component(tmp_path, "base-x")
    assert after.lines == 100 and after.data == {k: _value(i) for i, k in enumerate(KEYS[:100])}
    comp.put("new", {"faces": []})  # appended to the rewritten file
    comp.close()
    assert Component(tmp_path, "base-x").get("new") == {"faces": []}


def test_compaction_leaves_a_file_whose_other_keys_are_still_read(tmp_path):
    path = _written(tmp_path, torn=False)
    was = path.read_bytes()
    comp = Component(tmp_path, "base-x", set(KEYS[:10]))
    assert not comp.compact(set(KEYS[:10]), lambda key: True)
    assert path.read_bytes() == was


def test_each_key_is_asked_about_once_for_all_components(tmp_path):
    """Every image is in every component: whether another audit reads it is asked once, not once per component."""
    for name in ("base-x", "clf-x"):
        _written(tmp_path, name, torn=False)
    cache = Cache(tmp_path)
    cache.want(KEYS[:10])
    for name in ("base-x", "clf-x"):
        cache.component(name)
    asked = []

    def still_read(key: str) -> bool:
        asked.append(key)
        return True

    cache.compact(set(KEYS[:10]), still_read)
    assert sorted(asked) == sorted(KEYS[10:])  # the others, each once (this audit's are kept unasked)


def test_a_dropped_key_is_not_kept_by_compaction(tmp_path):
    """A key dropped to be measured again (an image that could not be opened) is not brought back from its old
    line: the old code's in-memory dict had lost it too."""
    _written(tmp_path, torn=False)
    comp = Component(tmp_path, "base-x", set(KEYS[:10]))
    comp.drop(KEYS[0])
    assert KEYS[0] not in comp
    assert comp.compact(set(KEYS[:10]), lambda key: False)
    assert set(Component(tmp_path, "base-x").data) == set(KEYS[1:10])


def test_a_stop_during_a_compaction_of_keys_not_held_leaves_the_file(tmp_path, monkeypatch):
    path = _written(tmp_path)
    was = path.read_bytes()
    comp = Component(tmp_path, "base-x", set(KEYS[:10]))
    real, written = cache_module._line, []

    def stopped(key, value):
        if len(written) == 15:  # past the held keys, into the others
            raise KeyboardInterrupt
        written.append(key)
        return real(key, value)

    monkeypatch.setattr(cache_module, "_line", stopped)
    with pytest.raises(KeyboardInterrupt):
        comp.compact(set(KEYS[:10]), lambda key: False if key in KEYS[20:] else True)
    assert path.read_bytes() == was and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_collector_reads_only_its_images_from_a_large_cache(tmp_path):
    """A --limit rerun into the --out of a large audit: the collector's components hold its images' values only,
    the other images' lines stay on disk (their folder out of reach: kept), and nothing is measured again."""
    from inference.audit.collect import Collector, ModelSet, file_key

    images = tmp_path / "imgs"
    images.mkdir()
    paths = []
    for i in range(3):
        (images / f"{i}.jpg").write_bytes(b"x" * (i + 1))
        paths.append(str(images / f"{i}.jpg"))
    name = Collector(ModelSet({}, None), Cache(tmp_path / "cache"), progress=False).base.name
    others = [f"{tmp_path}/away/{i}.jpg|10|{i}" for i in range(300)]  # another audit's, its folder gone
    theirs = {k: {"error": None, "n_found": 1, "faces": []} for k in others}
    mine = {file_key(p): {"error": None, "n_found": 0, "faces": [], "i": i} for i, p in enumerate(paths)}
    (tmp_path / "cache").mkdir()
    path = tmp_path / "cache" / f"{name}.jsonl"
    path.write_text("".join(_line(k, v) for k, v in {**theirs, **mine}.items()), encoding="utf-8")
    was = path.read_bytes()
    cache = Cache(tmp_path / "cache")
    collector = Collector(ModelSet({}, None), cache, progress=False)
    collector.run(paths)
    assert collector.computed == 0
    assert collector.base.data == mine  # 3 values held, not 303
    cache.close()
    assert path.read_bytes() == was


# --- the first look at a dataset, stopped midway ---

FILES = 12
STOP_AT = 5


@pytest.fixture
def folder(tmp_path) -> Path:
    """FILES images of one file size (so their digests are all read), each telling itself apart."""
    where = tmp_path / "faces"
    where.mkdir()
    rng = np.random.default_rng(0)
    for i in range(FILES):
        cv2.imwrite(str(where / f"{i:02d}.bmp"), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return where


def _stats(folder: Path) -> dict[str, tuple[int, int]]:
    stats = file_stats(sorted(str(p) for p in folder.iterdir()))
    assert len({size for size, _ in stats.values()}) == 1
    return stats


def _counting(module, name: str, monkeypatch, stop_at: int | None) -> list[str]:
    """``module.name`` patched to list the files it reads, and to be stopped (as a Ctrl-C or a SIGTERM is) when
    it has read ``stop_at``."""
    real, read = getattr(module, name), []

    def reader(path, *more):
        if stop_at is not None and len(read) == stop_at:
            raise KeyboardInterrupt("signal 15")
        read.append(path)
        return real(path, *more)

    monkeypatch.setattr(module, name, reader)
    return read


def test_thumbnails_read_before_a_stop_are_kept(folder, tmp_path, monkeypatch):
    stats, cache_dir = _stats(folder), tmp_path / "cache"
    with monkeypatch.context() as m:
        first = _counting(near_identical, "thumbnail", m, STOP_AT)
        with pytest.raises(KeyboardInterrupt):
            near_identical.thumbnails(stats, str(folder), cache_dir, progress=False)
    assert len(first) == STOP_AT
    with monkeypatch.context() as m:
        second = _counting(near_identical, "thumbnail", m, None)
        kept, thumbs = near_identical.thumbnails(stats, str(folder), cache_dir, progress=False)
    assert sorted(second) == sorted(set(stats) - set(first))  # only what the stopped run had not read
    assert kept == list(stats) and len(thumbs) == FILES
    assert np.array_equal(thumbs, np.stack([near_identical.thumbnail(p) for p in kept]))
    with monkeypatch.context() as m:
        third = _counting(near_identical, "thumbnail", m, None)
        near_identical.thumbnails(stats, str(folder), cache_dir, progress=False)
    assert third == []  # the partial file, extended, is now whole


def test_digests_read_before_a_stop_are_kept(folder, tmp_path, monkeypatch):
    stats, cache_dir = _stats(folder), tmp_path / "cache"
    with monkeypatch.context() as m:
        first = _counting(copies, "file_hash", m, STOP_AT)
        with pytest.raises(KeyboardInterrupt):
            copies.content_groups(stats, str(folder), cache_dir, progress=False)
    assert len(first) == STOP_AT
    with monkeypatch.context() as m:
        second = _counting(copies, "file_hash", m, None)
        assert copies.content_groups(stats, str(folder), cache_dir, progress=False) == []
    assert sorted(second) == sorted(set(stats) - set(first))
    saved = json.loads(next((cache_dir / "digests").iterdir()).read_text(encoding="utf-8"))["files"]
    assert len(saved) == FILES
    with monkeypatch.context() as m:
        third = _counting(copies, "file_hash", m, None)
        copies.content_groups(stats, str(folder), cache_dir, progress=False)
    assert third == []
