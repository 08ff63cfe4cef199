"""scripts/pack_faces and scripts/ort_gpu_parts, run on folders under tmp_path: what they remove, which faces they
stage, and whether the device calls they print reach what they staged. Each script runs as it would by hand."""
from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
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
