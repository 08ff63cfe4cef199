"""scripts/pack_faces and scripts/ort_gpu_parts, run on folders under tmp_path: what they remove, which faces they
stage, and whether the device calls they print reach what they staged. Each script runs as it would by hand."""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.fp16 import spread_evenly

REPO = Path(__file__).resolve().parents[1]
PACK_FACES = REPO / "scripts" / "pack_faces"
ORT_GPU_PARTS = REPO / "scripts" / "ort_gpu_parts"


def _faces(folder: Path, ages: range) -> dict[str, bytes]:
    """Tiny JPEGs named as UTKFace names them (age first, so the listing sorts by age); their names and bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for age in ages:
        ok, jpg = cv2.imencode(".jpg", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
        assert ok
        (folder / f"{age}_{age % 2}_{age % 5}_20170116.jpg.chip.jpg").write_bytes(jpg.tobytes())
    return _contents(folder)


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _pack(n: int, dest: Path, src: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(PACK_FACES), str(n), "8", str(dest), str(src)], capture_output=True, text=True,
                          timeout=120)


# --- pack_faces --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dest_of", [
    pytest.param(lambda src: src, id="DEST is SRC"),
    pytest.param(lambda src: src.parent, id="DEST holds SRC"),
    pytest.param(lambda src: src / "packed", id="DEST inside SRC"),
    pytest.param(lambda src: src.parent / ".." / src.parent.name / src.name, id="DEST is SRC spelled another way"),
])
def test_pack_faces_refuses_a_dest_that_overlaps_its_source_and_leaves_it_whole(dest_of, tmp_path):
    """`pack_faces 4 64 UTKFace UTKFace` emptied the dataset and said "0 faces"; DEST one folder above SRC deleted
    it, then failed on the missing folder: the script ran `rm -rf DEST` before looking at what DEST was."""
    src = tmp_path / "data" / "UTKFace"
    before = _faces(src, range(20, 30))
    dest = dest_of(src)
    out = _pack(3, dest, src)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert str(dest) in out.stderr and str(src) in out.stderr
    assert _contents(src) == before


def test_pack_faces_refuses_a_symlink_to_its_source(tmp_path):
    src = tmp_path / "UTKFace"
    before = _faces(src, range(20, 30))
    link = tmp_path / "pack"
    link.symlink_to(src)
    out = _pack(3, link, src)
    assert out.returncode == 2 and str(src) in out.stderr, (out.stdout, out.stderr)
    assert _contents(src) == before


def test_pack_faces_removes_nothing_from_a_folder_it_did_not_make(tmp_path):
    src = tmp_path / "UTKFace"
    _faces(src, range(20, 30))
    dest = tmp_path / "someone_elses"
    before = _faces(dest, range(60, 63))
    out = _pack(3, dest, src)
    assert out.returncode == 2 and str(dest) in out.stderr, (out.stdout, out.stderr)
    assert _contents(dest) == before


def test_pack_faces_replaces_its_own_pack_and_nothing_else(tmp_path):
    src = tmp_path / "UTKFace"
    faces = _faces(src, range(20, 40))
    dest = tmp_path / ".gpudata" / "UTKFace"
    first = _pack(8, dest, src)
    assert first.returncode == 0, first.stderr
    assert len(list(dest.glob("*.jpg"))) == 8
    again = _pack(3, dest, src)
    assert again.returncode == 0, again.stderr
    packed = sorted(p.name for p in dest.glob("*.jpg"))
    assert len(packed) == 3 and set(packed) <= set(faces)
    # a file someone put beside the pack: the next run refuses rather than delete it, and removes nothing
    (dest / "mine.jpg").write_bytes(b"not the script's")
    kept = _contents(dest)
    out = _pack(5, dest, src)
    assert out.returncode == 2 and "mine.jpg" in out.stderr, (out.stdout, out.stderr)
    assert _contents(dest) == kept


# --- ort_gpu_parts -----------------------------------------------------------------------------------------------

def _parts(tmp_path: Path, wheel: Path, faces_from: Path | None, faces_count: int = 4,
           **extra_env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ORT_GPU_WHEEL": str(wheel), "ORT_GPU_PARTS_DIR": str(tmp_path / "ortgpu"), "PART_MB": "1",
           "FACES_FROM": str(faces_from or tmp_path / "no_faces"), "FACES_COUNT": str(faces_count), "OPENCV": "0",
           "EXTRA_WHEELS": "", **extra_env}
    return subprocess.run(["bash", str(ORT_GPU_PARTS)], capture_output=True, text=True, env=env, timeout=120)


def _fake_wheel(tmp_path: Path, parts: float) -> Path:
    """Random bytes under an onnxruntime-gpu wheel's name, cut into about ``parts`` parts of 1 MiB."""
    wheel = tmp_path / "onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_27_x86_64.whl"
    wheel.write_bytes(np.random.default_rng(0).integers(0, 256, int(parts * 2**20), dtype=np.uint8).tobytes())
    return wheel


def _commands(stdout: str) -> list[str]:
    return [ln.split("command: ", 1)[1] for ln in stdout.splitlines() if "command: " in ln]


def _on_the_device(command: str, **env: str) -> subprocess.CompletedProcess:
    """A printed command run as the device tool runs it: in the repository root, by bash."""
    return subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_printed_calls_reach_a_custom_parts_folder_and_its_faces(tmp_path):
    """With ORT_GPU_PARTS_DIR set, the printed calls said `bash scripts/device_ort_gpu_install --status` and
    `bash scripts/device_measure full256` bare, and those read .ortgpu and .ortgpu/faces, where nothing was carried."""
    _faces(tmp_path / "faces_from", range(20, 30))
    out = _parts(tmp_path, _fake_wheel(tmp_path, 2.5), tmp_path / "faces_from")
    assert out.returncode == 0, out.stderr
    parts, staged = tmp_path / "ortgpu", str(tmp_path / "ortgpu" / "faces")
    commands = _commands(out.stdout)
    install = [c for c in commands if "device_ort_gpu_install" in c]
    measure = [c for c in commands if "device_measure" in c]
    assert install and measure
    for command in install:
        assert command.startswith(f"ORT_GPU_PARTS_DIR={parts} bash scripts/device_ort_gpu_install"), command
    statuses = [c for c in install if c.endswith("--status")]
    assert statuses
    for command in statuses:
        done = _on_the_device(command)
        assert done.returncode == 0, done.stderr
        assert "missing" not in done.stdout and "ok      part-00" in done.stdout, done.stdout
    # every step that reads faces reads the staged ones (--dry-run prints its commands and runs nothing)
    read_faces = 0
    for command in measure:
        listed = _on_the_device(command + " --dry-run").stdout
        sources = re.findall(r"--(?:source|images) (\S+)", listed)
        assert all(s == staged for s in sources), (command, sources)
        read_faces += bool(sources)
    assert read_faces


def test_staged_faces_are_spread_evenly_over_the_folder(tmp_path):
    """The first 64 files in sort order were staged for the bench and the CUDA fp16 parity check: UTKFace sorts by
    age first, so that was 46 children of 10 and 18 people of 100 to 105."""
    names = sorted(_faces(tmp_path / "faces_from", range(10, 50)))
    count = 7
    out = _parts(tmp_path, _fake_wheel(tmp_path, 1.5), tmp_path / "faces_from", faces_count=count)
    assert out.returncode == 0, out.stderr
    staged = sorted(p.name for p in (tmp_path / "ortgpu" / "faces").iterdir())
    assert staged == sorted(spread_evenly(names, count))
    assert names[0] in staged and names[-1] in staged


def test_more_faces_asked_than_the_folder_holds_stages_them_all(tmp_path):
    names = sorted(_faces(tmp_path / "faces_from", range(10, 15)))
    out = _parts(tmp_path, _fake_wheel(tmp_path, 1.5), tmp_path / "faces_from", faces_count=len(names) + 3)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "ortgpu" / "faces").iterdir()) == names


def _real_wheel(folder: Path, padding: int) -> Path:
    """A small installable pure-Python wheel, padded with stored random bytes so that it takes several parts."""
    name, version = "probe_wheel", "0.1"
    files = {
        f"{name}/__init__.py": b"PROBE = True\n",
        f"{name}/padding.bin": np.random.default_rng(1).integers(0, 256, padding, dtype=np.uint8).tobytes(),
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                             b"Tag: py3-none-any\n",
    }
    record = f"{name}-{version}.dist-info/RECORD"
    lines = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
             f"{len(data)}" for path, data in files.items()]
    files[record] = ("\n".join([*lines, f"{record},,"]) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def test_a_second_wheel_cut_into_its_own_folder_installs_with_install_wheel(tmp_path):
    """docs/gpu.md's recipe for a TensorRT wheel: cut it with ORT_GPU_PARTS_DIR=.ortgpu/trt, carry its parts with
    the --status calls printed, then install it with --install-wheel (as OpenCV 4 is)."""
    wheel = _real_wheel(tmp_path, int(1.5 * 2**20))
    trt = tmp_path / "ortgpu" / "trt"
    out = _parts(tmp_path, wheel, None, faces_count=0, ORT_GPU_PARTS_DIR=str(trt))
    assert out.returncode == 0, out.stderr
    statuses = [c for c in _commands(out.stdout) if c.endswith("device_ort_gpu_install --status")]
    assert statuses
    for command in statuses:
        done = _on_the_device(command)
        assert done.returncode == 0 and str(trt) in done.stdout and "missing" not in done.stdout, done.stdout
    site = tmp_path / "site"
    done = _on_the_device(f"ORT_GPU_PARTS_DIR={trt} bash scripts/device_ort_gpu_install --install-wheel",
                          ORT_GPU_SITE=str(site), PYTHON=sys.executable)
    assert done.returncode == 0, done.stderr
    assert (site / "probe_wheel" / "__init__.py").read_text() == "PROBE = True\n"


# --- the calls the install names, the measuring call's status, and what the calls carry (review of 2026-12) ------

DEVICE_INSTALL = REPO / "scripts" / "device_ort_gpu_install"
DEVICE_MEASURE = REPO / "scripts" / "device_measure"


def _call_carrying(stdout: str, path: Path) -> int:
    """The number of the printed call whose carry list names ``path``."""
    calls = re.findall(r"call (\d+)/\d+: carry \[(.*)\]", stdout)
    numbers = [int(k) for k, carried in calls if f'"{path}"' in carried]
    assert len(numbers) == 1, (path, calls)
    return numbers[0]


def test_a_missing_or_corrupt_part_names_the_call_that_carries_it_after_opencvs(tmp_path):
    """The install counted onnxruntime-gpu's parts from call 1, but OpenCV's calls come first: it sent the operator
    to redo an OpenCV call for a missing onnxruntime-gpu part."""
    cv = tmp_path / "opencv_python_headless-4.14.0.94-cp37-abi3-manylinux_2_28_x86_64.whl"
    cv.write_bytes(np.random.default_rng(2).integers(0, 256, int(1.5 * 2**20), dtype=np.uint8).tobytes())
    out = _parts(tmp_path, _fake_wheel(tmp_path, 2.5), None, faces_count=0, OPENCV="1", OPENCV_WHEEL=str(cv))
    assert out.returncode == 0, out.stderr
    parts = tmp_path / "ortgpu"
    corrupt, missing = parts / "part-00", parts / "part-01"
    raw = bytearray(corrupt.read_bytes())
    raw[0] ^= 0xFF
    corrupt.write_bytes(bytes(raw))
    missing.unlink()
    done = _on_the_device(f"ORT_GPU_PARTS_DIR={parts} bash scripts/device_ort_gpu_install --status")
    assert done.returncode == 0, done.stderr
    assert f"corrupt part-00 (carried by call {_call_carrying(out.stdout, corrupt)})" in done.stdout, done.stdout
    assert f"missing part-01 (carried by call {_call_carrying(out.stdout, missing)})" in done.stdout, done.stdout
    # OpenCV's own parts keep the numbers of the calls that carry them
    (parts / "cv" / "part-00").unlink()
    done = _on_the_device(f"ORT_GPU_PARTS_DIR={parts / 'cv'} bash scripts/device_ort_gpu_install --status")
    assert f"missing part-00 (carried by call {_call_carrying(out.stdout, parts / 'cv' / 'part-00')})" in done.stdout


def test_a_manifest_without_a_wheel_line_is_named_not_a_silent_exit(tmp_path):
    """Under set -e the `read` of the missing line ended the install with status 1 before its message."""
    parts = tmp_path / "ortgpu"
    parts.mkdir()
    (parts / "manifest").write_text("part part-00 3 abc 1\n")
    done = _on_the_device(f"ORT_GPU_PARTS_DIR={parts} bash scripts/device_ort_gpu_install --status")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"{parts / 'manifest'}: no 'wheel' line" in done.stderr


def _measure(tmp_path: Path, step: str, stub_body: str, **extra_env: str) -> subprocess.CompletedProcess:
    """scripts/device_measure STEP with every python command replaced by a stub running ``stub_body``."""
    stub = tmp_path / "python"
    stub.write_text(f"#!/usr/bin/env bash\n{stub_body}\n")
    stub.chmod(0o755)
    for folder in ("faces", "data/UTKFace"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": str(stub), "MEASURE_FACES": str(tmp_path / "faces"),
           "MEASURE_DATA": str(tmp_path / "data" / "UTKFace"), "ORT_GPU_SITE": str(tmp_path / "no_site"), **extra_env}
    return subprocess.run(["bash", str(DEVICE_MEASURE), step], capture_output=True, text=True, env=env, timeout=120)


def test_a_measuring_call_whose_command_failed_exits_1_after_running_the_rest(tmp_path):
    """It ended 0 whatever its commands did, so the device tool's status said success for a call that measured
    nothing."""
    done = _measure(tmp_path, "inference", 'case "$*" in *doctor*) exit 3 ;; esac; echo measured')
    assert done.returncode == 1, (done.stdout, done.stderr)
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("== inference FAILED") and "doctor" in last, last
    assert "bench_default" not in last  # it ran after the failure, and did not fail
    assert (tmp_path / "out" / "bench_default.log").read_text() == "measured\n"


def test_a_measuring_call_whose_commands_all_ran_exits_0(tmp_path):
    done = _measure(tmp_path, "quick", "exit 0")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "none failed" in done.stdout.strip().splitlines()[-1]


def test_commands_skipped_for_want_of_time_are_named_last_but_are_no_failure(tmp_path):
    done = _measure(tmp_path, "quick", "exit 3", MEASURE_DEADLINE="0")
    assert done.returncode == 0, (done.stdout, done.stderr)
    skipped = re.findall(r"^== (\S+) SKIPPED", done.stdout, re.M)
    assert skipped
    last = done.stdout.strip().splitlines()[-1]
    assert "skipped for want of time" in last and all(name in last for name in skipped), last


def test_the_packed_faces_the_calls_carry_are_asked_for_before_the_first_device_call(tmp_path):
    """The quick, haar, train and compile calls carried .gpudata, which a clean clone does not have and nothing
    printed said how to make: quick then failed on the device with status 2, after the machine had started."""
    faces_from = tmp_path / "faces_from"
    _faces(faces_from, range(20, 30))
    data = tmp_path / "gpudata" / "UTKFace"
    out = _parts(tmp_path, _fake_wheel(tmp_path, 1.5), faces_from, MEASURE_DATA=str(data))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    pack = [ln.strip() for ln in lines if ln.strip().startswith("bash scripts/pack_faces")]
    assert len(pack) == 1, out.stdout
    assert out.stdout.index(pack[0]) < out.stdout.index("call 1/")
    packed = _on_the_device(pack[0])  # run here, as the note says
    assert packed.returncode == 0, packed.stderr
    assert sorted(p.name for p in data.iterdir() if p.suffix == ".jpg") == sorted(_contents(faces_from))
    again = _parts(tmp_path, _fake_wheel(tmp_path, 1.5), faces_from, MEASURE_DATA=str(data))
    assert again.returncode == 0, again.stderr
    assert "pack_faces" not in again.stdout
    # and the calls that carry it reach it
    train = next(c for c in _commands(again.stdout) if c.endswith("device_measure train"))
    assert f'carry ["{data.parent}"]' in again.stdout
    listed = _on_the_device(train + " --dry-run").stdout
    assert re.findall(r"--data utkface:(\S+)", listed) and all(
        d == str(data) for d in re.findall(r"--data utkface:(\S+)", listed)), listed


def test_a_parts_folder_in_the_repository_that_git_does_not_ignore_is_refused(tmp_path):
    """Every file there would travel with every device call: 243 MiB of parts against the 64 MiB a call carries."""
    inside = REPO / "docs" / f"parts-{uuid.uuid4().hex}"  # a name no earlier run left behind
    try:
        out = _parts(tmp_path, _fake_wheel(tmp_path, 1.5), None, ORT_GPU_PARTS_DIR=str(inside))
        assert out.returncode == 2, (out.stdout, out.stderr)
        assert str(inside) in out.stderr and "does not ignore" in out.stderr
        assert not inside.exists()
    finally:  # a script that wrote there anyway must not leave parts in the checkout
        shutil.rmtree(inside, ignore_errors=True)


def test_a_parts_folder_git_ignores_or_outside_the_repository_is_accepted(tmp_path):
    # a missing wheel stops the script right after the folder checks, before anything is written
    for folder in (f".ortgpu/parts-{uuid.uuid4().hex}", str(tmp_path / "parts")):
        out = _parts(tmp_path, tmp_path / "no.whl", None, ORT_GPU_PARTS_DIR=folder)
        assert out.returncode == 2 and "no onnxruntime-gpu wheel found" in out.stderr, (folder, out.stderr)
        assert not (REPO / folder).exists()
