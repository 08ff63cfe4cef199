"""Sources read damaged input as far as it goes and say what was wrong, naming the file."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from inference.errors import BiasMirrorError
from inference.datasets.sample import IMAGE_EXTENSIONS
from inference.sources import VIDEO_EXTENSIONS, VideoSource, open_source
from tests.conftest import REPO, utk_images

# an AVI cut short may have lost frames mid-file too, and its demuxer says nothing of where (tests/test_sources_damaged_video.py)
AVI_NUMBERING = "; if frames were lost before its end, the frames after them are numbered early"


def _clip(path: Path, frames: int = 30) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for i in range(frames):  # noise, so every MJPG frame is the same few kilobytes
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    return path.read_bytes()


def _read_all(source: VideoSource) -> tuple[int, list[str]]:
    good, warnings = 0, []
    for frame in source:
        if frame.image is None:
            warnings.append(frame.warning)
        else:
            good += 1
    return good, warnings


def test_a_cut_off_video_says_it_ended_early(tmp_path):
    source = VideoSource(_cut(tmp_path))
    good, warnings = _read_all(source)
    assert 0 < good < 15 and warnings == []
    assert source.end_warning == f"cut.avi ended after {good} of 30 frames (truncated or damaged?){AVI_NUMBERING}"
    complete = VideoSource(tmp_path / "whole.avi")
    assert _read_all(complete) == (30, []) and complete.end_warning is None


def _damaged(tmp_path: Path) -> Path:
    whole = bytearray(_clip(tmp_path / "whole.avi"))
    # each MJPG frame begins with a JPEG start marker; zeros over all of frame 12 leave FFmpeg nothing to decode
    starts = [i for i in range(len(whole) - 1) if whole[i : i + 2] == b"\xff\xd8"]
    assert len(starts) == 30
    whole[starts[12] : starts[13] - 8] = bytes(starts[13] - 8 - starts[12])
    damaged = tmp_path / "damaged.avi"
    damaged.write_bytes(bytes(whole))
    return damaged


def _cut(tmp_path: Path) -> Path:
    whole = _clip(tmp_path / "whole.avi")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole[: len(whole) // 4])
    return cut


def test_one_damaged_frame_is_skipped_and_the_rest_read(tmp_path):
    source = VideoSource(_damaged(tmp_path))
    assert _read_all(source) == (29, ["damaged.avi: frame 12 could not be decoded; skipped"])
    assert source.end_warning is None


def test_undecodable_frames_at_a_videos_end_are_said_and_a_loop_that_cannot_reopen_its_file_too(tmp_path):
    """The last two of 30 frames undecodable had ended the video with no word (a count two short passed as an
    estimate's error), and a --loop video deleted as it played ended as a plain end."""
    whole = bytearray(_clip(tmp_path / "whole.avi"))
    starts = [i for i in range(len(whole) - 1) if whole[i : i + 2] == b"\xff\xd8"]
    for k in (28, 29):
        end = starts[k + 1] - 8 if k + 1 < len(starts) else whole.index(b"\xff\xd9", starts[k]) + 2
        whole[starts[k] : end] = bytes(end - starts[k])
    (tmp_path / "end.avi").write_bytes(bytes(whole))
    source = VideoSource(tmp_path / "end.avi")
    good, _ = _read_all(source)
    assert good == 28 and source.end_warning == f"end.avi ended after 28 of 30 frames (truncated or damaged?){AVI_NUMBERING}"
    looped = VideoSource(tmp_path / "whole.avi", loop=True)
    assert all(looped.read() is not None for _ in range(30))
    (tmp_path / "whole.avi").unlink()
    assert looped.read() is None and looped.end_warning == "whole.avi could not be opened again to loop (moved or deleted?)"


@pytest.mark.parametrize("name, n, declared, said", [
    ("clip.mkv", 10, 12, None), ("clip.webm", 10, 12, None),
    ("clip.mp4", 98, 100, "clip.mp4 ended after 98 of 100 frames (truncated or damaged?)")])
def test_a_whole_video_whose_container_estimates_its_count_a_frame_or_two_over_is_not_called_damaged(
        tmp_path, monkeypatch, name, n, declared, said):
    """A Matroska or WebM file's frame count is duration × fps, a frame or two over a whole file's: strict counting
    (needed for an AVI's exact one) had called short whole clips "truncated or damaged?"."""
    import inference.sources as sources

    class Estimated:  # n frames at 30 fps with the decoder's times; the container says `declared`
        def __init__(self, *_):
            self.i = 0

        def isOpened(self):
            return True

        def read(self):
            self.i += 1
            return (True, np.zeros((8, 8, 3), np.uint8)) if self.i <= n else (False, None)

        def get(self, prop):
            return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_COUNT: float(declared),
                    cv2.CAP_PROP_POS_MSEC: 1000 * (self.i - 1) / 30}.get(prop, 0.0)

        def release(self):
            pass

    monkeypatch.setattr(sources.cv2, "VideoCapture", Estimated)
    source = VideoSource(tmp_path / name)
    # an MP4 indexes its frames: two short are two lost, said (as up to 2 % of a long one's had not been)
    assert _read_all(source) == (n, []) and source.end_warning == said


def test_a_truncated_jpeg_given_alone_is_refused_not_read_as_a_one_frame_video(tmp_path):
    """FFmpeg's MJPEG decoder opened a cut-off JPEG as a video of one frame, its missing rows filled in: its face
    measured (P(female) 0.78 where the whole photo gives 0.95), exit 0. The same file in a folder was refused."""
    data = utk_images(1)[0].read_bytes()
    for name in ("cut.jpg", "cut.JPG", "cut.bin"):
        (tmp_path / name).write_bytes(data[: len(data) * 9 // 10])
        with pytest.raises(BiasMirrorError, match=rf"{name}: cannot be read as an image or a video"):
            open_source(str(tmp_path / name))


def test_run_counts_a_damaged_frame_and_reports_a_short_video(tmp_path, tiny_models, capsys):
    for video in (_damaged(tmp_path), _cut(tmp_path)):
        assert main.main(["run", "--source", str(video), "--out", str(tmp_path / "rows.csv"),
                          "--classifier", str(tiny_models["classifier"]), "--no-filter"]) == 0
    out = capsys.readouterr().err  # run's warnings and status on stderr: stdout is for --out -
    assert "warning: damaged.avi: frame 12 could not be decoded; skipped" in out
    assert "29 frame(s)" in out and "1 unreadable frame(s) skipped" in out
    assert "warning: cut.avi ended after" in out and "of 30 frames (truncated or damaged?)" + AVI_NUMBERING in out


def test_the_app_keeps_a_short_videos_warning(qtbot, tmp_path):
    from gui.workers import CaptureThread, Mailbox

    capture = CaptureThread(VideoSource(_cut(tmp_path)), Mailbox())
    capture._interval = lambda: 0.0  # no need to play it at its frame rate
    warned, ended = [], []
    capture.warning.connect(warned.append)
    capture.ended.connect(ended.append)
    capture.run()  # on this thread: the signals reach the lists directly
    assert len(ended) == 1 and ended[0].startswith("cut.avi ended after") and warned == []  # no frame was skipped


def test_tiff_is_an_image_in_folders_single_files_and_the_open_dialog(tmp_path):
    tiffs = tmp_path / "tiffs"
    tiffs.mkdir()
    face = np.full((40, 30, 3), 120, np.uint8)
    for name in ("a.tif", "b.TIFF"):
        assert cv2.imwrite(str(tiffs / name), face)
    assert [f.image.shape for f in open_source(str(tiffs))] == [face.shape] * 2
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "a.png"), face)
    cv2.imwrite(str(mixed / "b.tiff"), face)
    assert [f.name for f in open_source(str(mixed))] == ["a.png", "b.tiff"]
    assert [f.name for f in open_source(str(tiffs / "a.tif"))] == ["a.tif"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BiasMirrorError, match=r"no images found \(.*\.tif, \.tiff"):
        open_source(str(empty))

    from gui.main_window import OPEN_FILTER

    offered = OPEN_FILTER.split("(")[1].split(")")[0].split()  # the dialog offers what the sources open, no more
    assert sorted(offered) == sorted(f"*{ext}" for ext in (*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS))


@pytest.fixture
def open_tmp():
    """A folder another user can reach: pytest's own tmp_path sits under a folder only root may enter."""
    d = Path(tempfile.mkdtemp(prefix="bm-perm-"))
    d.chmod(0o755)
    yield d
    for p in [d, *d.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.rmtree(d)


def _as_unprivileged(*specs: Path) -> tuple[list[str], str]:
    """What open_source says of each spec, and logs, to a user without root's right to read anything."""
    code = ("import sys\nsys.path.insert(0, sys.argv[1])\n"
            "from inference.errors import BiasMirrorError\nfrom inference.sources import open_source\n"
            "for spec in sys.argv[2:]:\n"
            "    try:\n        print([f.warning for f in open_source(spec)])\n"
            "    except BiasMirrorError as exc:\n        print(exc)\n")
    # root reads whatever the permissions say; checking them needs a user they apply to
    drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
    done = subprocess.run([*drop, sys.executable, "-c", code, str(REPO), *map(str, specs)], capture_output=True,
                          text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines(), done.stderr


def test_permission_denied_is_said_naming_the_path(open_tmp):
    locked_dir = open_tmp / "locked"
    locked_dir.mkdir()
    face = np.full((40, 30, 3), 120, np.uint8)
    cv2.imwrite(str(locked_dir / "a.jpg"), face)
    folder = open_tmp / "faces"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), face)
    cv2.imwrite(str(folder / "b_locked.jpg"), face)
    (folder / "sub").mkdir()
    cv2.imwrite(str(folder / "sub" / "c.jpg"), face)
    _clip(open_tmp / "locked.avi", 3)
    (open_tmp / "locked.bin").write_bytes(bytes(range(256)))  # no image to OpenCV's probe, which cannot open it
    for p in (locked_dir, folder / "b_locked.jpg", folder / "sub", open_tmp / "locked.avi", open_tmp / "locked.bin"):
        p.chmod(0)
    said, logged = _as_unprivileged(locked_dir, folder, folder / "b_locked.jpg", open_tmp / "locked.avi",
                                    open_tmp / "locked.bin")
    assert said[0] == f"{locked_dir}: permission denied (this folder cannot be listed)"
    assert said[1] == str([None, f"{folder / 'b_locked.jpg'}: permission denied; skipped"])
    assert said[2] == f"{folder / 'b_locked.jpg'}: permission denied"  # a lone file is refused, not a run of nothing
    assert said[3] == f"{open_tmp / 'locked.avi'}: permission denied"
    assert said[4] == f"{open_tmp / 'locked.bin'}: permission denied"  # not "another kind of file"
    assert f"{folder / 'sub'}: permission denied; the images in it are skipped" in logged


def test_a_folder_source_leaves_hidden_folders_out(tmp_path):
    face = np.full((40, 30, 3), 120, np.uint8)
    for rel in ("a.jpg", "sub/b.jpg", ".cache/c.jpg", "sub/.git/d.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / rel), face)
    assert [f.name for f in open_source(str(tmp_path))] == ["a.jpg", "sub/b.jpg"]  # named within the folder
    hidden = tmp_path / ".cache"  # named itself, a hidden folder is opened
    assert [f.name for f in open_source(str(hidden))] == ["c.jpg"]


def test_a_looped_folder_none_of_whose_images_can_be_read_ends_with_a_note(tmp_path):
    """It spun without end: 149,000 'skipped' warnings in 8 s, the log rotated away, the window waiting for frames."""
    from inference.sources import ImageListSource

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"bad{i}.jpg")
        paths[-1].write_bytes(b"not a jpeg %d" % i)
    source = ImageListSource(paths, "bad", loop=True)
    frames = [source.read() for _ in range(4)]
    assert all(f.image is None for f in frames[:3]) and frames[3] is None
    assert source.end_warning == "none of the 3 image(s) in bad could be read"
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.full((8, 8, 3), 100, np.uint8))
    looping = ImageListSource([paths[0], good], "mixed", loop=True)
    assert [looping.read().image is None for _ in range(6)] == [True, False] * 3  # one readable image keeps it going


def _portrait_as_a_phone_saves_it(path: Path) -> np.ndarray:
    """An upright 40×24 picture stored sideways with EXIF orientation 6 ("turn 90° clockwise to show"), as phones
    save portrait photos; returns the upright pixels every viewer shows."""
    from PIL import Image

    upright = np.zeros((40, 24, 3), np.uint8)
    upright[:10] = (255, 0, 0)  # a red band on top (RGB), so a rotation either way is told apart
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif.tobytes())
    return upright


def test_a_phone_photo_is_read_upright_by_the_sources_as_by_training(tmp_path):
    """Its EXIF orientation was ignored by the sources (IMREAD_UNCHANGED) and applied by training and the aligned
    audit (IMREAD_COLOR): a portrait photo came in on its side in `run`, the app and a detecting audit, and no face
    was found in it."""
    from inference.images import read_rgb

    upright = _portrait_as_a_phone_saves_it(tmp_path / "photo.jpg")
    for source in (open_source(str(tmp_path)), open_source(str(tmp_path / "photo.jpg"))):
        frame = source.read().image
        assert frame.shape == (40, 24, 3)
        assert frame[:10, :, 2].mean() > 200 and frame[30:, :, 2].mean() < 50  # red (BGR) on top
        assert np.abs(frame[..., ::-1].astype(int) - read_rgb(str(tmp_path / "photo.jpg"))).max() == 0


def test_a_folder_named_by_digits_is_a_folder_and_a_bare_number_a_camera(tmp_path, monkeypatch):
    """A folder "2024" of photos had been opened as camera 2024 ("no camera could be opened at index 2024"), and
    an output written into it was not refused as written into an input."""
    from inference.arg_checks import check_output_file
    from inference.sources import camera_index

    (tmp_path / "2024").mkdir()
    cv2.imwrite(str(tmp_path / "2024" / "a.jpg"), np.full((20, 20, 3), 90, np.uint8))
    monkeypatch.chdir(tmp_path)
    assert [f.name for f in open_source("2024")] == ["a.jpg"]
    assert camera_index("2024") is None and camera_index("0") == 0 and camera_index(1) == 1 and camera_index("²") is None
    with pytest.raises(BiasMirrorError, match="an input folder"):
        check_output_file("2024/rows.csv", "--out", "2024")


class _VariableRateCapture:
    """A stand-in for cv2.VideoCapture of a phone's variable-rate video: frames at the given times (seconds), a
    header declaring ``declared`` frames at ``fps`` (Matroska estimates duration × fps)."""

    def __init__(self, times, fps, declared):
        self.times, self.fps, self.declared, self.i = times, fps, declared, 0

    def isOpened(self):  # noqa: N802 — OpenCV's name
        return True

    def read(self):
        if self.i >= len(self.times):
            return False, None
        self.i += 1
        return True, np.full((8, 8, 3), 50, np.uint8)

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_COUNT: self.declared,
                cv2.CAP_PROP_POS_MSEC: 1000 * self.times[self.i - 1] if self.i else 0.0}.get(prop, 0.0)

    def release(self):
        pass


def test_a_variable_rate_videos_frames_take_the_decoders_times_and_a_whole_one_is_not_called_truncated(
        tmp_path, monkeypatch):
    """video_s was the frame number ÷ the average rate (frame 9 at 2.1 s, at 0.9 s in the file), and a whole
    Matroska file whose header estimated 70 frames for its 30 was said to be truncated."""
    import inference.sources as sources

    times = [0.1 * i for i in range(10)] + [1.0 + 0.5 * i for i in range(10)] + [6.0 + 0.1 * i for i in range(10)]
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda path: _VariableRateCapture(times, 10.0, 70))
    video = VideoSource(tmp_path / "phone.mkv")
    got = [f.video_s for f in video]
    assert got == pytest.approx(times) and video.end_warning is None
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda path: _VariableRateCapture(times[:12], 10.0, 70))
    cut = VideoSource(tmp_path / "cut.mkv")
    assert len(list(cut)) == 12 and cut.end_warning == "cut.mkv ended after 12 of 70 frames (truncated or damaged?)"


def test_a_looped_video_starts_again_and_a_video_under_an_unlisted_extension_is_not_read_as_an_image(
        tmp_path, monkeypatch):
    """--loop was accepted with a video and dropped; a camcorder's .mts was read whole into memory as an image
    first (1.3 GB for a 640 MB file) before it was tried as a video."""
    import inference.sources as sources

    clip = tmp_path / "clip.avi"
    _clip(clip, frames=3)
    looped = open_source(str(clip), loop=True)
    assert [looped.read().name for _ in range(5)] == ["clip.avi#0", "clip.avi#1", "clip.avi#2", "clip.avi#0",
                                                      "clip.avi#1"]
    mts = tmp_path / "camcorder.mts.unlisted"
    mts.write_bytes(clip.read_bytes())

    def whole_file(*a, **k):
        raise AssertionError("read whole as an image")

    monkeypatch.setattr(sources, "read_image_checked", whole_file)
    assert isinstance(open_source(str(mts)), VideoSource)


def test_a_video_frame_is_paced_by_its_time_in_the_file(monkeypatch):
    """Frames were held 1 / the average rate each: a variable-rate video played slow, then fast."""
    from types import SimpleNamespace

    import gui.workers as workers

    clock, waits = [100.0], []
    monkeypatch.setattr(workers.time, "monotonic", lambda: clock[0])
    capture = workers.CaptureThread(SimpleNamespace(name="v", live=False, fps=5.0), workers.Mailbox())
    monkeypatch.setattr(capture, "_sleep", lambda s: (waits.append(round(s, 3)), clock.__setitem__(0, clock[0] + s)))
    for video_s in (0.0, 0.1, 0.6, 0.7, 0.0, 0.1, 6.1, 6.2, 6.3):  # looped back at 0.0; then a gap of 6 s
        capture._wait_for_its_time(video_s)
    # the last frame before the loop shown for one frame's time (1/5 s) too, the loop's clock started from its
    # first; a 6 s gap waited 2 s, and the frames after it 0.1 s apart again, not 2 s each
    assert waits == [0.1, 0.5, 0.1, 0.2, 0.1, 2.0, 0.1, 0.1]


def test_bench_reads_a_video_as_run_does_and_fits_its_frames_without_stretching(tmp_path):
    """bench refused a video whose first frame was damaged, which run reads, and stretched every frame to
    --resolution: a portrait phone video squeezed into 640×480 showed no face."""
    from inference.bench_frames import make_frames

    whole = bytearray(_clip(tmp_path / "whole.avi"))
    starts = [i for i in range(len(whole) - 1) if whole[i : i + 2] == b"\xff\xd8"]
    whole[starts[0] : starts[1] - 8] = bytes(starts[1] - 8 - starts[0])
    (tmp_path / "first_damaged.avi").write_bytes(bytes(whole))
    assert len(make_frames(str(tmp_path / "first_damaged.avi"), 1, (64, 48), 5)) == 5
    portrait = tmp_path / "portrait.avi"
    writer = cv2.VideoWriter(str(portrait), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 64))
    for _ in range(2):
        writer.write(np.full((64, 48, 3), 230, np.uint8))
    writer.release()
    frame = make_frames(str(portrait), 1, (64, 48), 1)[0]
    assert frame.shape == (48, 64, 3)
    assert abs(int(frame[:, :13].mean()) - 110) <= 2 and frame[:, 16:48].mean() > 200  # its own shape (36×48), on grey


def test_a_paused_video_delivers_no_frame_until_play(qtbot):
    """The frame waiting its turn was delivered at its time while paused: the view went on and a recording got it."""
    import time

    import gui.workers as workers
    from inference.sources import Frame, Source

    class TwoFrames(Source):
        name, fps, i = "v", 1.0, 0

        def read(self):
            self.i += 1
            if self.i > 2:
                return None
            return Frame(np.zeros((4, 4, 3), np.uint8), self.i - 1, time.monotonic(), f"v#{self.i - 1}",
                         video_s=float(self.i - 1))

    box = workers.Mailbox()
    capture = workers.CaptureThread(TwoFrames(), box)
    capture.start()
    try:
        qtbot.waitUntil(lambda: box.pending(), timeout=5000)
        capture.set_paused(True)
        assert box.take().name == "v#0"
        qtbot.wait(1500)  # past the second frame's time
        assert not box.pending()
        resumed = time.monotonic()
        capture.set_paused(False)
        qtbot.waitUntil(lambda: box.pending(), timeout=5000)
        held = box.take()
        assert held.name == "v#1" and held.timestamp >= resumed  # its capture time is its release, not its read
    finally:
        capture.stop()
        capture.wait(2000)


def _signed_tiffs(folder: Path) -> Path:
    """A folder of two photographs and two signed-integer TIFFs (int16 as OpenCV writes it, int32 as PIL does), which
    OpenCV decodes under the sources' flags into pixels no frame can be made of."""
    from PIL import Image


    folder.mkdir()
    first, second = (cv2.imread(str(p)) for p in utk_images(3)[1:])  # a face the detector finds in each
    cv2.imwrite(str(folder / "a_ok.jpg"), first)
    cv2.imwrite(str(folder / "z_ok.jpg"), second)
    face = first
    assert cv2.imwrite(str(folder / "s16.tif"), face.astype(np.int16) * 100)
    Image.fromarray(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY).astype(np.int32) * 100, "I").save(folder / "int32.tif")
    return folder


def test_a_signed_integer_tiff_is_skipped_with_its_reason_and_the_other_images_read(tmp_path, tiny_models, capsys):
    """An int16/int32 TIFF decoded fine and was refused later, by the pipeline, with "frames of int32 pixels are not
    supported" and no file name: it stopped the whole `run` and `audit` (exit 2, the later images never read),
    where the sources promise that a bad image is reported and skipped."""
    import json

    folder = _signed_tiffs(tmp_path / "depth")
    frames = list(open_source(str(folder)))
    assert [f.name for f in frames if f.image is not None] == ["a_ok.jpg", "z_ok.jpg"]
    said = {f.name: f.warning for f in frames if f.image is None}
    for name, dtype in (("int32.tif", "int32"), ("s16.tif", "int16")):
        assert said[name] == (f"{folder / name}: its pixels are {dtype}: only 8- or 16-bit unsigned and float32/64 "
                              "pixels can be analysed; skipped")
    with pytest.raises(BiasMirrorError, match=r"s16\.tif: its pixels are int16: only 8- or 16-bit") as refused:
        open_source(str(folder / "s16.tif"))  # alone, refused with its reason, not called corrupt
    assert "corrupt" not in str(refused.value)

    models = ["--classifier", str(tiny_models["classifier"]), "--no-filter"]
    assert main.main(["run", "--source", str(folder), "--out", str(tmp_path / "rows.csv"), *models]) == 0
    out = capsys.readouterr().err
    assert f"warning: {folder / 's16.tif'}: its pixels are int16" in out and f"warning: {folder / 'int32.tif'}" in out
    assert "2 frame(s)" in out and "2 unreadable frame(s) skipped" in out
    rows = (tmp_path / "rows.csv").read_text()
    assert "a_ok.jpg" in rows and "z_ok.jpg" in rows  # the image after the refused ones was read too

    assert main.main(["audit", "--dataset", f"folder:{folder}", "--out", str(tmp_path / "audit"), "--no-html",
                      "--no-progress", *models]) == 0
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    assert report["images"]["n_with_faces"] == 2
    assert {u["file"]: u["error"] for u in report["images"]["unreadable"]} == {
        name: f"its pixels are {dtype}: only 8- or 16-bit unsigned and float32/64 pixels can be analysed"
        for name, dtype in (("int32.tif", "int32"), ("s16.tif", "int16"))}


def test_a_file_the_header_probe_refuses_is_not_read_whole(tmp_path, monkeypatch):
    """An 800 MB file of no known kind was refused only after it was read whole into memory (1.8 GB at the peak),
    though OpenCV had already said from its first bytes that it is no image; and the JPEG check copied every file
    whole to look at its first two bytes."""
    from inference import images

    blob = tmp_path / "weights.bin"
    blob.write_bytes(bytes(range(256)) * 64)
    read: list[str] = []
    fromfile = np.fromfile
    monkeypatch.setattr(np, "fromfile", lambda file, *a, **k: read.append(str(file)) or fromfile(file, *a, **k))
    with pytest.raises(BiasMirrorError, match="cannot be read as an image or a video"):
        open_source(str(blob))
    assert read == []  # refused by the probe, never read
    photo = tmp_path / "photo.jpg"  # an image is still read (and decoded) as before
    cv2.imwrite(str(photo), np.full((16, 16, 3), 99, np.uint8))
    assert [f.image.shape for f in open_source(str(photo))] == [(16, 16, 3)] and set(read) == {str(photo)}

    class NoCopies(np.ndarray):
        def tobytes(self, *args, **kwargs):
            raise AssertionError("the whole buffer was copied")

    def view(data: bytes) -> np.ndarray:
        return np.frombuffer(data, np.uint8).view(NoCopies)

    whole = photo.read_bytes()
    assert not images.truncated_jpeg(view(bytes(range(256)) * 64))  # no JPEG: judged by its first two bytes
    assert not images.truncated_jpeg(view(whole))
    assert images.truncated_jpeg(view(whole[:-40]))  # its end marker cut off: still found out, without a copy
    assert not images.truncated_jpeg(view(whole + b"a motion photo's video"))


def _heic(path: Path) -> Path:
    """The start of an iPhone's HEIC: its ftyp box (brand heic; mif1 among the compatible ones, as AVIF's lists it)."""
    path.write_bytes(b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heicmiaf" + b"\x00\x00\x00\x10meta" + bytes(200))
    return path


def test_a_heic_photo_is_refused_by_name_not_read_as_a_video_and_an_avif_still_opens(tmp_path, monkeypatch, capsys):
    """OpenCV's FFmpeg opened an iPhone's tiled HEIC as a one-frame video of its first 512×512 tile: "no face found",
    exit 0. An AVIF, which OpenCV reads, lists mif1 among its brands too: it is no HEIC."""
    import inference.sources as sources

    monkeypatch.setattr(sources, "_has_a_video_frame", lambda path: True)  # as FFmpeg answers for a real HEIC
    for name in ("IMG_0001.HEIC", "photo.heif", "renamed.jpg"):
        with pytest.raises(BiasMirrorError, match=rf"{name}: is a HEIC/HEIF photo, which cannot be read here .*"
                                                  r"convert it to JPEG"):
            open_source(str(_heic(tmp_path / name)))
    out = tmp_path / "rows.csv"
    out.write_text("precious\n")
    models = ["--classifier", str(REPO / "resources" / "models" / "resnet10_balanced.onnx"), "--no-filter"]
    assert main.main(["run", "--source", str(tmp_path / "IMG_0001.HEIC"), "--out", str(out), *models]) == 2
    assert "IMG_0001.HEIC: is a HEIC/HEIF photo" in capsys.readouterr().err and out.read_text() == "precious\n"
    if cv2.haveImageWriter(".avif"):
        face = np.full((40, 30, 3), 120, np.uint8)
        assert cv2.imwrite(str(tmp_path / "a.avif"), face)
        assert b"mif1" in (tmp_path / "a.avif").read_bytes()[:64]
        assert [f.image.shape for f in open_source(str(tmp_path / "a.avif"))] == [face.shape]


def test_a_raw_photo_given_alone_is_refused_by_name_not_read_as_its_preview(tmp_path):
    """A DNG is a TIFF whose first image is a small preview: OpenCV read that, and its faces were measured as the
    photo's. A folder passes RAW files over by name; one given alone is refused by name too."""
    preview = np.full((171, 256, 3), 120, np.uint8)
    for name in ("photo.dng", "IMG_0001.CR2"):
        cv2.imwrite(str(tmp_path / "preview.tif"), preview)
        (tmp_path / "preview.tif").rename(tmp_path / name)
        assert cv2.imread(str(tmp_path / name)).shape == preview.shape  # what it had been read as
        with pytest.raises(BiasMirrorError, match=rf"{name}: is a camera RAW photo, which cannot be read here .*"
                                                  r"convert it to JPEG or PNG"):
            open_source(str(tmp_path / name))


def test_a_folders_heic_photos_are_named_as_skipped_and_a_gif_is_read(tmp_path, caplog):
    """An iPhone's export (JPEGs and HEICs) lost its HEICs without a word; files that are no photos stay unnamed."""
    face = np.full((40, 30, 3), 120, np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), face)
    cv2.imwrite(str(tmp_path / "b.gif"), face)
    _heic(tmp_path / "IMG_0001.HEIC")
    (tmp_path / "raw.dng").write_bytes(b"II*\x00")
    for other in ("labels.csv", "notes.txt", ".DS_Store", "IMG_0001.aae", "a.xmp", "._IMG_0002.HEIC"):
        (tmp_path / other).write_bytes(b"x")
    with caplog.at_level("WARNING"):
        frames = list(open_source(str(tmp_path)))
    assert [(f.name, f.image.shape) for f in frames] == [("a.jpg", face.shape), ("b.gif", face.shape)]
    assert (f"{tmp_path}: 2 photo(s) of a type that cannot be read here, skipped, e.g. IMG_0001.HEIC (HEIC), "
            "raw.dng (RAW); convert them (e.g. to JPEG) to include them") in caplog.text
    assert not any(other in caplog.text for other in ("labels.csv", "notes", "DS_Store", ".aae", ".xmp", "_IMG_0002"))
    for readable in ("a.jpg", "b.gif"):
        (tmp_path / readable).unlink()
    with pytest.raises(BiasMirrorError, match=r"no images found \(.*\); only 2 photo\(s\) of a type that cannot be "
                                              r"read here \(HEIC, RAW\): convert them"):
        open_source(str(tmp_path))


@pytest.mark.skipif(not cv2.haveImageWriter(".avif"), reason="this OpenCV writes no AVIF")
def test_a_10_bit_avif_is_read_at_its_brightness_alone_and_in_a_folder(tmp_path):
    """OpenCV gives a 10-bit AVIF its own range (0..1023) under the frame flags: shifted to 8 bits as a 16-bit PNG
    is, a phone's HDR photo had been a near-black frame, and a folder's AVIFs were passed over for it."""
    from inference.frame_depth import as_bgr_uint8

    face = cv2.imread(str(utk_images(1)[0]))
    assert cv2.imwrite(str(tmp_path / "hdr.avif"), face.astype(np.uint16) * 4, [cv2.IMWRITE_AVIF_DEPTH, 10])
    assert cv2.imwrite(str(tmp_path / "plain.avif"), face)
    alone = [f.image for f in open_source(str(tmp_path / "hdr.avif"))]
    in_folder = {f.name: f.image for f in open_source(str(tmp_path))}
    assert sorted(in_folder) == ["hdr.avif", "plain.avif"]
    for image in (alone[0], in_folder["hdr.avif"], in_folder["plain.avif"]):
        assert np.abs(as_bgr_uint8(image).astype(int) - face).mean() < 4  # as the pipeline takes a frame


@pytest.mark.skipif(not cv2.haveImageWriter(".avif"), reason="this OpenCV writes no AVIF")
def test_a_10_bit_avif_whose_major_brand_is_mif1_is_read_at_its_brightness_too(tmp_path):
    """An encoder may name mif1 the major brand and avif a compatible one: such a file had still been near black."""
    from inference.frame_depth import as_bgr_uint8

    face = cv2.imread(str(utk_images(1)[0]))
    assert cv2.imwrite(str(tmp_path / "hdr.avif"), face.astype(np.uint16) * 4, [cv2.IMWRITE_AVIF_DEPTH, 10])
    data = bytearray((tmp_path / "hdr.avif").read_bytes())
    assert data[8:12] == b"avif" and b"avif" in data[16:32]  # also among the compatible brands
    data[8:12] = b"mif1"
    (tmp_path / "mif1.avif").write_bytes(bytes(data))
    image = next(iter(open_source(str(tmp_path / "mif1.avif")))).image
    assert np.abs(as_bgr_uint8(image).astype(int) - face).mean() < 4


def test_a_camera_whose_backend_raises_when_unplugged_is_lost_and_retried_not_ended(monkeypatch):
    """A backend that raises cv2.error for an unplugged camera (where OpenCV's default read answers False) had ended
    the capture for good, with a traceback in the log, instead of the lost-and-retried a failed read gets."""
    import inference.sources as sources
    from inference.sources import CameraSource

    class Camera:
        plugged = True

        def __init__(self, *_):
            if not Camera.plugged:
                raise cv2.error("the device is gone")

        def isOpened(self):
            return True

        def set(self, *_):
            return True

        def read(self):
            if not Camera.plugged:
                raise cv2.error("select() timeout")
            return True, np.zeros((8, 8, 3), np.uint8)

        def release(self):
            pass

    monkeypatch.setattr(sources.cv2, "VideoCapture", Camera)
    camera = CameraSource(0)
    assert camera.read().image is not None and not camera.lost
    Camera.plugged = False
    frame = camera.read()
    assert frame.image is None and frame.warning == "the camera stopped delivering frames" and camera.lost
    assert camera.reopen() is False  # still gone: tried again later
    Camera.plugged = True
    assert camera.reopen() and camera.read().image is not None


def test_opencv_is_quieted_until_the_last_thread_leaves_and_its_level_then_restored():
    """Two threads quieting OpenCV at once, the first leaving first, had left it silenced for the rest of the
    process: the second had saved "silent" as the level to put back. Interleaved here as two threads would."""
    from inference.sources import quiet_opencv

    log = cv2.utils.logging
    before = log.getLogLevel()
    first, second = quiet_opencv(), quiet_opencv()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert log.getLogLevel() == log.LOG_LEVEL_SILENT  # the second still reads a file
    second.__exit__(None, None, None)
    assert log.getLogLevel() == before
