"""Crowd scenes (review 2026-12, "crowd"): the session summary's work per tick, and the GPU batch buckets a filter's
doubled classifier batch needs."""
from __future__ import annotations

from array import array

import numpy as np
import pytest

NAMES = ("cls-a", "cls-b", "cls-c", "cls-d")


# --- helpers: frames made of FaceResults, as the inference thread hands them to SessionStats.add ---------------------

# test_app's: a face's and a frame's results as the inference thread hands them over, the summary as it was computed
# before it kept rows, and equality to the last bit
from tests.test_app import _plain_summary as _summary_as_before, _same  # noqa: E402
from tests.test_app import _stats_face as _face, _stats_frame as _frame  # noqa: E402


def _crowd_frame(rng: np.random.Generator, tids, level: dict[int, float]):
    """One frame of a crowd: each face's shifts drift (a random walk, as a face's frames are nearly alike), with
    now and then a missing or NaN value."""
    faces = []
    for tid in tids:
        level[tid] = level.get(tid, float(rng.normal(0, 5))) + float(rng.normal(0, 0.3))
        ita = None if rng.random() < 0.05 else (float("nan") if rng.random() < 0.02 else level[tid])
        ps = {n: (float("nan") if rng.random() < 0.02 else level[tid] / 100 + float(rng.normal(0, 0.01)))
              for n in NAMES if rng.random() < 0.97}
        faces.append(_face(int(tid), ita, ps))
    return _frame(faces)


def _counting_arrays(stats, tids, copied: list[tuple[int, bool]]) -> None:
    """Gives each of ``tids`` value arrays that record every slice taken of them (its length, and whether the
    stats' lock was held): what summary() copies, and where."""

    class Counting(array):
        def __getitem__(self, key):
            got = super().__getitem__(key)
            if isinstance(key, slice):
                copied.append((len(got), stats._lock.locked()))
            return got

    for tid in tids:
        stats.delta_ita[tid] = Counting("d")
        for name in NAMES:
            stats.delta_p[tid][name] = Counting("d")


# --- bug 2: the session summary's work per tick --------------------------------------------------------------------

def test_the_summary_copies_under_the_lock_only_the_values_added_since_the_last_call():
    """Each tick copied every value of every face seen since the last one, under the lock the inference thread
    needs for each frame: 50-100 ms a tick with 20 faces after 15-60 minutes, growing with the session. Only the
    values added since the last call are to be copied."""
    from gui.recording import SessionStats

    rng, level = np.random.default_rng(3), {}
    stats, copied = SessionStats(), []
    tids = range(1, 21)
    _counting_arrays(stats, tids, copied)
    for _ in range(300):
        stats.add(_crowd_frame(rng, tids, level))
    stats.summary()
    before = sum(len(stats.delta_ita[t]) + sum(len(stats.delta_p[t][n]) for n in NAMES) for t in tids)
    for _ in range(15):  # half a second at 30 frames/s: every face of the crowd changed
        stats.add(_crowd_frame(rng, tids, level))
    after = sum(len(stats.delta_ita[t]) + sum(len(stats.delta_p[t][n]) for n in NAMES) for t in tids)
    copied.clear()
    rows = stats.summary()
    under_lock = sum(n for n, locked in copied if locked)
    assert under_lock == after - before, (under_lock, after - before)
    assert _same(rows, _summary_as_before(stats))


def test_a_summary_call_reads_a_bounded_number_of_values_and_each_face_waits_its_turn(monkeypatch):
    """series_mean_ci reads a face's whole series (its ∛n runs move with every value), so the work of one call is
    bounded by a number of values, the faces left over waiting for the next calls, longest waiting first: in a
    crowd every face changes at every tick."""
    import gui.recording as recording

    rng, level = np.random.default_rng(4), {}
    stats = recording.SessionStats()
    tids = list(range(1, 21))
    for _ in range(300):
        stats.add(_crowd_frame(rng, tids, level))
    budget = 3000  # about two faces' five series of 300 values
    monkeypatch.setattr(recording, "SUMMARY_VALUES_PER_CALL", budget, raising=False)
    real, read = recording.series_mean_ci, []
    monkeypatch.setattr(recording, "series_mean_ci", lambda values, *a, **k: read.append(len(values)) or
                        real(values, *a, **k))
    turns: list[set[int]] = []
    last: dict[int, dict] = {}
    for _ in range(30):
        stats.add(_crowd_frame(rng, tids, level))  # every face, at every tick
        biggest = max(len(stats.delta_ita[t]) + sum(len(stats.delta_p[t][n]) for n in NAMES) for t in tids)
        read.clear()
        rows = stats.summary()
        assert sum(read) < budget + biggest, sum(read)  # the budget, overrun by one face at most
        firsts = {r["track_id"]: r for r in rows if r["classifier"] == NAMES[0]}
        turns.append({t for t, r in firsts.items() if last.get(t) is not r})
        last = firsts
    # round robin: two or three faces a call (the budget, overrun by one), so each face again every seven to ten
    # calls; none sooner, none later
    assert all(2 <= len(done) <= 3 for done in turns), turns
    for i in range(len(turns) - 6):
        window = [t for done in turns[i:i + 6] for t in done]
        assert len(window) == len(set(window)), (i, turns[i:i + 6])
    for i in range(len(turns) - 12):
        assert set().union(*turns[i:i + 12]) == set(tids), (i, turns[i:i + 12])


def test_the_summary_numbers_are_those_of_the_code_before_on_a_recorded_crowd_series(monkeypatch):
    """A 20-face crowd recorded through SessionStats.add, faces leaving and new ones coming, a few values missing
    or NaN, the summary asked at each half second with a small per-call budget: every row it returns is to the last
    bit series_mean_ci of the first n values of its face (n: the row's own), and once it has caught up the rows
    are those the code before this change gave."""
    import gui.recording as recording
    from inference.metrics import series_mean_ci

    rng, level = np.random.default_rng(5), {}
    stats = recording.SessionStats()
    monkeypatch.setattr(recording, "SUMMARY_VALUES_PER_CALL", 4000, raising=False)
    tids = list(range(1, 21))
    for tick in range(60):
        if tick % 15 == 14:  # a few leave, new ones come
            tids = tids[3:] + [max(tids) + k for k in range(1, 4)]
        for _ in range(15):
            stats.add(_crowd_frame(rng, tids, level))
        for r in stats.summary():
            tid, ita, p = r["track_id"], r["delta_ita"], r["delta_p_female"]
            assert _same(ita, series_mean_ci(stats.delta_ita[tid][:ita["n"]])), (tick, tid)
            if r["classifier"]:
                assert _same(p, series_mean_ci(stats.delta_p[tid][r["classifier"]][:p["n"]])), (tick, tid)
    rows = None
    for _ in range(100):  # caught up: nothing left waiting
        rows, previous = stats.summary(), rows
        if previous is not None and len(rows) == len(previous) and all(a is b for a, b in zip(rows, previous)):
            break
    assert _same(rows, _summary_as_before(stats))


def test_the_hidden_summary_computes_nothing_and_computes_once_shown(qtbot):
    """The summary was computed at every tick, the tab raised or not (64 ms of a 108 ms tick with 16 faces and
    four classifiers, the tab not even raised)."""
    from gui.recording import SessionStats
    from gui.session_summary import SessionSummary

    stats = SessionStats()
    for tid in range(1, 6):
        stats.add(_frame([_face(tid, 1.0 * tid, {"cls-a": 0.01 * tid})]))
    calls = []
    real = stats.summary
    stats.summary = lambda: calls.append(1) or real()
    summary = SessionSummary(lambda: None)
    qtbot.addWidget(summary)
    summary.refresh(stats)  # never shown
    assert calls == [] and summary.table.rowCount() == 0
    summary.show()
    qtbot.waitExposed(summary)
    summary.refresh(stats)
    assert calls == [1] and summary.table.rowCount() == 5
    summary.hide()
    stats.add(_frame([_face(9, 2.0, {"cls-a": 0.5})]))
    summary.refresh(stats)
    assert calls == [1]


# --- bug 4: the batch sizes a filter's doubled classifier batch needs ---------------------------------------------

@pytest.fixture
def padded(monkeypatch):
    """Models that pad their batches to buckets as on CUDA and TensorRT (the CPU computes the same numbers)."""
    from inference.models import OnnxModel

    monkeypatch.setattr(OnnxModel, "pads_batches", property(lambda self: True))


def _pipeline(tiny_models, with_filter: bool, min_crop: int, max_faces: int):
    from inference.models import load_model
    from inference.pipeline import FramePipeline, PipelineConfig
    from inference.runtime import RuntimeConfig

    rt = RuntimeConfig(provider="cpu", threads=1)
    cls = load_model(tiny_models["classifier"], "classifier", rt)
    flt = load_model(tiny_models["darken"], "filter", rt) if with_filter else None
    config = PipelineConfig(min_crop=min_crop, max_faces=max_faces, device_chain="off", overlap_skin="off")
    return FramePipeline([cls], flt, None, config), cls, flt


def _asked(model) -> list[int]:
    asked, real = [], model._run

    def spy(feeds, outputs):
        asked.append(len(next(iter(feeds.values()))))
        return real(feeds, outputs)
    model._run = spy
    return asked


def test_with_a_filter_the_classifiers_are_prepared_for_the_crops_and_their_references(padded, tiny_models):
    """With a filter whose reference is resampled, each classifier's first call has the crops and their references:
    2 × faces rows. prepare() made buckets up to max_faces only, so the first frame of more than half max_faces
    made a session mid-stream (60-640 ms a bucket on an H100)."""
    from inference.batching import bucket

    pipeline, cls, flt = _pipeline(tiny_models, with_filter=True, min_crop=112, max_faces=5)  # 32 px filter
    pipeline.prepare()
    prepared_cls, prepared_flt = set(cls._by_batch), set(flt._by_batch)
    assert bucket(2 * 5) in prepared_cls and bucket(5) in prepared_flt and bucket(2 * 5) not in prepared_flt
    asked = _asked(cls)
    crops = np.random.default_rng(0).integers(0, 255, (5, 112, 112, 3), np.uint8)
    pipeline.analyse_crops(crops, {})
    assert asked == [10, 5]  # crops + references, then the filtered faces
    assert set(cls._by_batch) == prepared_cls and set(flt._by_batch) == prepared_flt  # no session made mid-stream


def test_without_a_resampled_reference_the_classifiers_are_prepared_for_max_faces(padded, tiny_models):
    """A filter at the crops' own size (no reference rides along) and no filter at all: max_faces rows at most."""
    from inference.batching import bucket

    for with_filter in (True, False):
        pipeline, cls, _ = _pipeline(tiny_models, with_filter=with_filter, min_crop=32, max_faces=5)
        pipeline.prepare()
        prepared = set(cls._by_batch)
        assert max(prepared) == bucket(5), (with_filter, prepared)
        asked = _asked(cls)
        pipeline.analyse_crops(np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3), np.uint8), {})
        assert max(asked) == 5 and set(cls._by_batch) == prepared
