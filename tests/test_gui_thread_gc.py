"""Cyclic garbage is collected on the GUI thread only while the app runs (gui.gui_thread_gc)."""
from __future__ import annotations

import gc
import threading

import pytest

import main
from gui.gui_thread_gc import garbage_collected_on_gui_thread

from .conftest import utk_images


class _Marks:
    """Kept in a reference cycle, so that only the cyclic collector frees it; says on which thread that was."""

    def __init__(self, where: list[int]):
        self.where = where
        self.me = self

    def __del__(self):
        self.where.append(threading.get_ident())


def _drop_a_cycle_and_allocate(where: list[int], kept: list) -> None:
    """What a source-opening thread does: leaves garbage in a cycle, then allocates (and keeps) well past gen 0's
    threshold."""
    _Marks(where)
    kept.extend([i] for i in range(50_000))


def _on_a_thread(where: list[int], kept: list) -> int:
    worker = threading.Thread(target=_drop_a_cycle_and_allocate, args=(where, kept))
    worker.start()
    worker.join()
    return worker.ident


def test_without_it_a_worker_thread_collects_the_cycle():
    """The premise: automatic collection frees a cycle on the thread that allocates, here a worker."""
    assert gc.isenabled()
    where: list[int] = []
    worker = _on_a_thread(where, [])
    assert where == [worker]


def test_within_it_the_gui_thread_collects_what_a_worker_left(qtbot):
    gui = threading.get_ident()
    where: list[int] = []
    with garbage_collected_on_gui_thread(interval_s=0.05):
        assert not gc.isenabled()
        kept: list = []
        _on_a_thread(where, kept)
        assert where == []  # the worker's allocations collected nothing
        qtbot.waitUntil(lambda: where != [], timeout=10_000)  # the GUI thread's timer did, once past the threshold
        assert where == [gui]
    assert not gc.isenabled()  # tests/conftest.py's use for tests with a window is the outer one, still in force


def test_an_inner_use_leaves_the_outer_in_force(qapp):
    assert gc.isenabled()
    with garbage_collected_on_gui_thread():
        with garbage_collected_on_gui_thread():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_it_is_refused_off_the_gui_thread(qapp):
    raised: list[BaseException] = []

    def enter() -> None:
        try:
            with garbage_collected_on_gui_thread():
                pass
        except RuntimeError as exc:
            raised.append(exc)

    t = threading.Thread(target=enter)
    t.start()
    t.join()
    assert raised and "GUI thread" in str(raised[0])


def test_the_app_runs_its_session_without_automatic_collection(monkeypatch, capsys):
    from gui.main_window import MainWindow

    seen: list[bool] = []
    real_show = MainWindow.show
    monkeypatch.setattr(MainWindow, "show", lambda self: (seen.append(gc.isenabled()), real_show(self))[1])
    assert gc.isenabled()
    code = main.main(["app", "--source", str(utk_images(1)[0]), "--max-seconds", "1"])
    capsys.readouterr()
    assert code == 0 and seen == [False]
    assert gc.isenabled()
