"""`main.py audit`'s per-image cache (OUT/cache/*.jsonl) keeps no lines that no audit reads any more: a photo whose
file dates changed (a checkout, a cloud re-sync) had left one more line per image at every rerun, all of them read
into memory by each audit. An audit that read or computed all of its images drops them; an interrupted one keeps
its lines for the resume; another dataset's lines in the same OUT stay; a kill during the rewrite leaves the cache
as it was.

The faces are real UTKFace images; the models are the tiny random-weight ones of conftest.
"""
from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for conftest, as in test_audit.py

from conftest import utk_images  # noqa: E402

from inference.audit import cache as cache_module  # noqa: E402
from inference.audit import cli as audit_cli  # noqa: E402
from inference.audit.cache import STALE_SHARE, Cache, Component  # noqa: E402

IMAGES = 8  # per folder
STOP_AFTER = 2  # images an interrupted audit computes


@pytest.fixture(scope="module")
def faces() -> list[Path]:
    return utk_images(2 * IMAGES)


def folder_of(faces: list[Path], where: Path) -> Path:
    where.mkdir(parents=True)
    for p in faces:
        shutil.copy(p, where / p.name)
    return where


def audit(folder: Path, out: Path, models: dict, *extra: str) -> tuple[bytes, dict]:
    """report.json as written, and run.json, of an aligned audit with a filter (every kind of cache component)."""
    parser = argparse.ArgumentParser()
    audit_cli.add_arguments(parser)
    args = parser.parse_args(["--dataset", f"folder:{folder}", "--aligned", "--classifier", str(models["classifier"]),
                              "--filter", str(models["darken"]), "--out", str(out), "--no-html", "--no-progress",
                              "--threads", "1", *extra])
    audit_cli.main(args)
    return (out / "report.json").read_bytes(), json.loads((out / "run.json").read_text())


def touch(files: list[Path]) -> None:
    """Later modification times, the bytes as they were (what a checkout or a re-sync does)."""
    for f in files:
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def lines_per_component(out: Path) -> dict[str, int]:
    return {f.name: len(f.read_text(encoding="utf-8").splitlines()) for f in sorted((out / "cache").glob("*.jsonl"))}


def test_touched_images_leave_one_line_each_and_the_report_is_unchanged(faces, tmp_path, tiny_models):
    folder = folder_of(faces[:IMAGES], tmp_path / "in")
    out = tmp_path / "out"
    before, _ = audit(folder, out, tiny_models)
    components = lines_per_component(out)
    assert len(components) == 4 and set(components.values()) == {IMAGES}  # base, filter, clf, clf-on-filter
    touch(sorted(folder.iterdir()))
    measured_again, run = audit(folder, out, tiny_models)
    assert run["images_computed"] == IMAGES
    assert lines_per_component(out) == components  # the touched images' old lines are gone
    from_compacted, run = audit(folder, out, tiny_models)
    assert run["images_computed"] == 0
    assert measured_again == before and from_compacted == before


def test_a_few_stale_lines_are_left_until_they_are_a_real_share(faces, tmp_path, tiny_models):
    """A rerun that leaves a few lines behind does not rewrite the file for them."""
    folder = folder_of(faces[:IMAGES], tmp_path / "in")
    out = tmp_path / "out"
    audit(folder, out, tiny_models)
    base = next((out / "cache").glob("base-*.jsonl"))
    file_before = base.stat().st_ino
    images = sorted(folder.iterdir())
    tolerated = int(STALE_SHARE * IMAGES)
    assert 0 < tolerated < IMAGES
    touch(images[:tolerated])
    audit(folder, out, tiny_models)
    assert lines_per_component(out)[base.name] == IMAGES + tolerated and base.stat().st_ino == file_before
    touch(images[tolerated:tolerated + 1])  # one more: now more than the share
    audit(folder, out, tiny_models)
    assert set(lines_per_component(out).values()) == {IMAGES}


def test_an_interrupted_audit_keeps_its_lines_and_the_finished_one_drops_the_old(faces, tmp_path, tiny_models,
                                                                                  monkeypatch):
    from inference.pipeline import FramePipeline

    folder = folder_of(faces[:IMAGES], tmp_path / "in")
    out = tmp_path / "out"
    before, _ = audit(folder, out, tiny_models)
    touch(sorted(folder.iterdir()))
    real = FramePipeline.process_images

    def stopped(self, paths, batch=32):
        for k, item in enumerate(real(self, paths, batch)):
            if k == STOP_AFTER:
                raise KeyboardInterrupt
            yield item

    with monkeypatch.context() as m:
        m.setattr(FramePipeline, "process_images", stopped)
        with pytest.raises(KeyboardInterrupt):
            audit(folder, out, tiny_models, "--batch", "1")
    assert set(lines_per_component(out).values()) == {IMAGES + STOP_AFTER}  # nothing dropped, nothing lost
    resumed, run = audit(folder, out, tiny_models, "--batch", "1")
    assert run["images_computed"] == IMAGES - STOP_AFTER
    assert set(lines_per_component(out).values()) == {IMAGES} and resumed == before


def test_another_datasets_lines_stay_and_a_deleted_images_go(faces, tmp_path, tiny_models):
    """The components are shared by every audit of an OUT with the same models and mode, whatever its dataset,
    split or limit: an image this audit did not list is kept while its file is unchanged, or out of reach (its
    folder gone: a drive not mounted, a dataset moved), and dropped once deleted or changed."""
    mine = folder_of(faces[:IMAGES], tmp_path / "mine")
    other = folder_of(faces[IMAGES:], tmp_path / "other")
    out = tmp_path / "out"
    audit(other, out, tiny_models)
    audit(mine, out, tiny_models)
    away = other.rename(tmp_path / "away")
    images = sorted(mine.iterdir())
    images[0].unlink()
    touch(images[1:])
    audit(mine, out, tiny_models)
    assert set(lines_per_component(out).values()) == {2 * IMAGES - 1}
    away.rename(other)
    _, run = audit(other, out, tiny_models)
    assert run["images_computed"] == 0
    touch(sorted(other.iterdir()))
    audit(other, out, tiny_models)
    assert set(lines_per_component(out).values()) == {2 * IMAGES - 1}  # its old lines gone, mine kept


def _component_with_stale_lines(folder: Path) -> tuple[Component, set[str]]:
    """A component of two live keys and two stale ones, after a torn last line (a killed run)."""
    comp = Component(folder, "base-x")
    for key in ("live-1", "live-2", "stale-1", "stale-2"):
        comp.put(key, {"faces": []})
    comp.close()
    with open(comp.path, "a", encoding="utf-8") as fh:
        fh.write('{"key": "torn", "val')
    return Component(folder, "base-x"), {"live-1", "live-2"}


def test_a_torn_line_is_dropped_with_the_stale_ones(tmp_path):
    comp, live = _component_with_stale_lines(tmp_path)
    assert comp.compact(live, lambda key: False)
    assert set(Component(tmp_path, "base-x").data) == live
    assert comp.path.read_text(encoding="utf-8").count("\n") == len(live)
    comp.put("new", {"faces": []})  # appended to the rewritten file, not the replaced one
    comp.close()
    assert set(Component(tmp_path, "base-x").data) == live | {"new"}


def test_a_stop_during_the_rewrite_leaves_the_cache_as_it_was(tmp_path, monkeypatch):
    comp, live = _component_with_stale_lines(tmp_path)
    was = comp.path.read_bytes()
    real = cache_module._line
    written = []

    def stopped_midway(key, value):
        if written:
            raise KeyboardInterrupt
        written.append(key)
        return real(key, value)

    monkeypatch.setattr(cache_module, "_line", stopped_midway)
    with pytest.raises(KeyboardInterrupt):
        comp.compact(live, lambda key: False)
    assert comp.path.read_bytes() == was
    assert [p.name for p in tmp_path.iterdir()] == [comp.path.name]  # no half-written file left beside it


def test_a_rewrite_the_disk_refuses_is_a_warning_naming_the_file(tmp_path, monkeypatch, caplog):
    """The audit's results are all cached by then: only its report is left to write, and the cache stays whole."""
    comp, live = _component_with_stale_lines(tmp_path)
    was = comp.path.read_bytes()
    cache = Cache(tmp_path)
    cache.components[comp.name] = comp

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "_line", full)
    with caplog.at_level(logging.WARNING, logger=cache_module.__name__):
        cache.compact(live, lambda key: False)
    assert f"{comp.path}: could not write the audit's cache of measured faces (No space left on device)" in caplog.text
    assert comp.path.read_bytes() == was
