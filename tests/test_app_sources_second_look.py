"""What a source says of itself reaches the app's window, among its warnings and not as skipped frames: a folder's
photos of a type not read (as it opens), an HDR video's colour, a pause in a recording's times (as it plays); and a
capture left to finish a read when the app quits ends without a word from its thread."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")

import shiboken6  # noqa: E402

from gui.workers import CaptureThread, Mailbox  # noqa: E402
from tests.test_app import WAIT, make_window, models  # noqa: E402,F401  (fixtures: used by name)
from tests.test_sources import _heic  # noqa: E402
from tests.test_sources_damaged_video import _video  # noqa: E402
from tests.test_sources_second_look import BT2020, HLG, _folder, _mp4, _tagged, _without_frames  # noqa: E402


def _ended(w) -> bool:
    return w.view.note.endswith("open another source with Ctrl+O")


def test_a_folders_photos_of_a_type_not_read_are_among_the_windows_warnings(qtbot, make_window, tmp_path):
    """The window said "end of heic" and its warnings were empty: the listing's warning reached the log alone."""
    folder = _folder(tmp_path / "heic", 1)
    _heic(folder / "photo.HEIC")
    (folder / "raw.dng").write_bytes(b"II*\x00")
    w = make_window(str(folder))
    said = f"{folder}: 2 photo(s) of a type that cannot be read here, skipped"
    assert any(text.startswith(said) for text in w._warnings)
    qtbot.waitUntil(lambda: _ended(w), timeout=WAIT)
    assert w._skipped == 0 and "unreadable" not in w.view.note


def test_a_pause_found_as_a_video_plays_and_an_hdr_videos_colour_reach_the_window(qtbot, make_window, tmp_path):
    paused = _without_frames(_video(tmp_path / "whole.mkv"), "paused.mkv", voided=True)
    w = make_window(str(paused))
    qtbot.waitUntil(lambda: _ended(w), timeout=WAIT)
    assert any(text.startswith("paused.mkv: no frames between") for text in w._warnings)
    assert w._skipped == 0 and "unreadable" not in w.view.note  # no frame of it was skipped, nor counted as one
    hlg = _tagged(_mp4(tmp_path / "plain.mp4"), "hlg.mp4", BT2020, HLG, BT2020)
    w = make_window(str(hlg))
    assert any(text.startswith("hlg.mp4: an HDR video (BT.2020 primaries, HLG transfer") for text in w._warnings)


class _ReadUnderWay:
    """A video source whose read is under way until ``done`` is set, and then finds the file's end."""
    name, live, fps, passes, end_warning = "slow.mp4", False, 10.0, 0, None

    def __init__(self) -> None:
        self.reading, self.done, self.closed = threading.Event(), threading.Event(), threading.Event()

    def read(self):
        self.reading.set()
        self.done.wait(WAIT / 1000)
        return None

    def close(self) -> None:
        self.closed.set()


def test_a_capture_whose_qobject_is_deleted_while_it_reads_ends_without_a_word_from_its_thread(monkeypatch):
    """Quitting waits STOP_WAIT_MS for a capture in a read, then leaves it to finish; at the interpreter's exit
    PySide deletes every QObject Python owns, this one too, and the thread's last emits raised "RuntimeError:
    Signal source has been deleted" (seen at the end of this file's run, its window's capture slow to stop)."""
    raised = []
    monkeypatch.setattr(threading, "excepthook", raised.append)
    source = _ReadUnderWay()
    capture = CaptureThread(source, Mailbox())
    capture.start()
    assert source.reading.wait(WAIT / 1000)
    capture.stop()
    shiboken6.delete(capture)  # as PySide's exit does, the thread still in its read
    source.done.set()  # the read ends: the source is closed and `finished` emitted, from the thread
    assert capture.wait(WAIT) and source.closed.is_set()
    assert [str(hook.exc_value) for hook in raised] == []
