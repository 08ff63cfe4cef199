"""The GPU path as far as a machine without a GPU can check it.

The wheel-parts scripts round-trip a small fake wheel; doctor's library
reading, install hints and probe model are checked against ORT and onnx
themselves; the bench runs every new option on tiny models and must never
time the CPU under a GPU label. No test here asserts a wall-clock figure.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import main
from tests.conftest import REPO, utk_images

SCRIPTS = [REPO / "scripts" / "ort_gpu_parts", REPO / "scripts" / "device_ort_gpu_install", REPO / "scripts" / "device_measure"]
WHEEL_NAME = "onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl"


# --- scripts ---------------------------------------------------------------
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_executable_and_parse(script):
    assert os.access(script, os.X_OK), f"{script} is not executable"
    out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("step", ["quick", "inference", "full256", "ahead", "depth", "soak", "train", "fp16", "compile",
                                  "haar"])
def test_every_measuring_command_is_one_main_py_accepts(step):
    """The device steps cannot run here, but each command they would run must parse as the CLI stands today."""
    out = subprocess.run(["bash", str(SCRIPTS[2]), step, "--dry-run"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "OUT": "/device/out"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines
    for line in lines:
        words = line.split()
        argv = words[words.index("main.py") + 1:]
        args = main.build_parser(argv).parse_args(argv)  # exits (failing the test) on an unknown or bad option
        if argv[:2] == ["bench", "train"]:  # values checked only when it runs: check them as a GPU run would
            import torch

            from training.bench_train import parse_compile_modes, pick_variants, variants

            parse_compile_modes(args.compile)
            pick_variants(variants(torch.device("cuda", 0)), args.variants)
        if argv[:2] == ["bench", "detect"]:  # a phase split the cascade refuses would cost a GPU call
            from inference.bench_detect import parse_detectors
            from inference.runtime import RuntimeConfig

            parse_detectors(args.detectors, RuntimeConfig(provider="cpu"))
        assert not any(w.startswith("gpu_out") for w in words)  # results go to $OUT


def test_measuring_without_a_step_or_its_data_says_what_is_missing(tmp_path):
    out = subprocess.run(["bash", str(SCRIPTS[2])], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "give a step" in out.stderr
    out = subprocess.run(["bash", str(SCRIPTS[2]), "train"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "OUT": str(tmp_path), "MEASURE_DATA": str(tmp_path / "UTKFace")})
    assert out.returncode == 2 and f"{tmp_path / 'UTKFace'}: not on this machine" in out.stderr


def test_a_measuring_call_ends_inside_its_deadline_and_says_what_it_skipped(tmp_path):
    """A device call is cut at 600 s and then brings back nothing it did not finish writing: a command still
    running at the deadline is sent SIGTERM (our commands then write what they have), the rest are skipped."""
    import time

    stub = tmp_path / "python"  # stands in for every measuring command: ignores its arguments and runs long
    stub.write_text("#!/usr/bin/env bash\ntrap 'echo got TERM; exit 130' TERM\necho started\n"
                    "for i in $(seq 600); do sleep 0.1; done\necho ran to the end\n")
    stub.chmod(0o755)
    (tmp_path / "faces").mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": str(stub), "MEASURE_FACES": str(tmp_path / "faces"),
           "ORT_GPU_SITE": str(tmp_path / "none"), "MEASURE_DEADLINE": "3", "MEASURE_MIN_LEFT": "1"}
    t0 = time.monotonic()
    done = subprocess.run(["bash", str(SCRIPTS[2]), "ahead"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - t0 < 30  # not the stub's 60 s
    assert "== bench_ahead STOPPED at this call's deadline (3 s)" in done.stdout
    log = (out / "bench_ahead.log").read_text().splitlines()
    assert log[0] == "started" and log[-1] == "got TERM" and "ran to the end" not in log
    skipped = (out / "skipped.txt").read_text()
    for name in ("bench_chain_off", "bench_overlap_off", "bench_skin_threads_auto"):
        assert f"== {name} SKIPPED" in skipped and f"== {name} SKIPPED" in done.stdout
        assert not (out / f"{name}.log").exists()


def _split(tmp_path: Path, size: int, **extra_env: str) -> tuple[Path, Path, bytes, subprocess.CompletedProcess]:
    wheel = tmp_path / "wheel" / WHEEL_NAME
    wheel.parent.mkdir()
    data = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    wheel.write_bytes(data)
    parts = tmp_path / ".ortgpu"
    env = {**os.environ, "ORT_GPU_WHEEL": str(wheel), "ORT_GPU_PARTS_DIR": str(parts), "PART_MB": "1",
           "FACES_COUNT": "0", "OPENCV": "0", "EXTRA_WHEELS": "", **extra_env}
    out = subprocess.run(["bash", str(SCRIPTS[0])], capture_output=True, text=True, env=env, timeout=120)
    return wheel, parts, data, out


def _device(parts: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ORT_GPU_PARTS_DIR": str(parts)}
    return subprocess.run(["bash", str(SCRIPTS[1]), *args], capture_output=True, text=True, env=env, timeout=120)


def test_wheel_parts_round_trip(tmp_path):
    size = int(2.5 * 2**20)
    _, parts, data, out = _split(tmp_path, size)
    assert out.returncode == 0, out.stderr
    names = sorted(p.name for p in parts.glob("part-*"))
    assert names == ["part-00", "part-01", "part-02"]
    assert [(parts / n).stat().st_size for n in names] == [2**20, 2**20, size - 2 * 2**20]
    manifest = (parts / "manifest").read_text().split("\n")
    assert manifest[0].split() == ["wheel", WHEEL_NAME, str(size), hashlib.sha256(data).hexdigest()]
    # One part per call, the last call installs.
    for k, n in enumerate(names, 1):
        assert f"call {k}/3: carry [\"{parts}/manifest\", \"{parts}/{n}\"]" in out.stdout
    assert out.stdout.index("call 3/3") < out.stdout.index("device_ort_gpu_install > $OUT/install.log")
    # then the measuring calls, in the order docs/gpu.md gives them, each with what it must carry
    measuring = [ln.split()[-1] for ln in out.stdout.splitlines() if "command: bash scripts/device_measure" in ln]
    assert measuring == ["quick", "haar", "full256", "ahead", "inference", "train", "compile", "depth", "soak", "fp16"]
    after = out.stdout[out.stdout.index("device_ort_gpu_install > $OUT/install.log"):]
    assert after.index('carry [".gpudata"]') < after.index("device_measure train")
    status = _device(parts, "--status")
    assert status.returncode == 0 and status.stdout.count("  ok      part-") == 3
    back = tmp_path / "back.whl"
    done = _device(parts, "--assemble-only", str(back))
    assert done.returncode == 0, done.stderr
    assert back.read_bytes() == data


def test_opencv_parts_go_first_and_extras_ride_with_the_last_part(tmp_path):
    # The device image's OpenCV 5 has no Haar cascade: an OpenCV 4 wheel is carried and installed before ORT.
    cv = tmp_path / "opencv_python_headless-4.14.0.94-cp37-abi3-manylinux_2_28_x86_64.whl"
    cv_data = np.random.default_rng(1).integers(0, 256, int(1.5 * 2**20), dtype=np.uint8).tobytes()
    cv.write_bytes(cv_data)
    extra = tmp_path / "onnxconverter_common-1.16.0-py2.py3-none-any.whl"
    extra.write_bytes(b"zip")
    _, parts, _, out = _split(tmp_path, int(2.5 * 2**20), OPENCV="1", OPENCV_WHEEL=str(cv), EXTRA_WHEELS=str(extra))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    calls = [ln.strip() for ln in lines if ln.strip().startswith("call ")]
    assert [c.split(":")[0] for c in calls] == [f"call {k}/5" for k in range(1, 6)]
    assert calls[0] == f'call 1/5: carry ["{parts}/cv/manifest", "{parts}/cv/part-00"]'
    stripped = [ln.strip() for ln in lines]
    assert stripped[stripped.index(calls[1]) + 1].endswith("device_ort_gpu_install --install-wheel")
    assert calls[4] == f'call 5/5: carry ["{parts}/manifest", "{parts}/part-02", "{parts}/extra"]'
    assert (parts / "extra" / extra.name).read_bytes() == b"zip"
    back = tmp_path / "cv_back.whl"
    done = _device(parts / "cv", "--assemble-only", str(back))
    assert done.returncode == 0, done.stderr
    assert back.read_bytes() == cv_data


def test_missing_and_corrupt_parts_are_named(tmp_path):
    _, parts, _, out = _split(tmp_path, int(2.5 * 2**20))
    assert out.returncode == 0, out.stderr
    p1 = parts / "part-01"
    raw = bytearray(p1.read_bytes())
    raw[100] ^= 0xFF
    p1.write_bytes(bytes(raw))
    (parts / "part-02").unlink()
    done = _device(parts, "--assemble-only", str(tmp_path / "back.whl"))
    assert done.returncode != 0
    assert "corrupt part-01 (carried by call 2)" in done.stderr
    assert "missing part-02 (carried by call 3)" in done.stderr
    assert "ok      part-00" in done.stderr
    assert not (tmp_path / "back.whl").exists()


def test_parts_script_refuses_a_missing_wheel(tmp_path):
    env = {**os.environ, "ORT_GPU_WHEEL": str(tmp_path / WHEEL_NAME), "ORT_GPU_PARTS_DIR": str(tmp_path / "p")}
    out = subprocess.run(["bash", str(SCRIPTS[0])], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and str(tmp_path / WHEEL_NAME) in out.stderr


# --- layering ---------------------------------------------------------------
def test_inference_never_imports_torch():
    for path in (REPO / "inference").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                root = name.split(".")[0]
                assert root not in ("torch", "torchvision", "training", "PySide6", "gui"), f"{path}: imports {name}"
    code = "import sys, inference.bench, inference.gpu, inference.doctor; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# --- doctor -------------------------------------------------------------------
def test_probe_model_is_a_valid_onnx_identity_conv():
    import onnx
    import onnxruntime as ort

    from inference.gpu import probe_model

    data = probe_model()
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], x)


def test_elf_needed_matches_readelf():
    import onnxruntime as ort

    from inference.gpu import elf_needed

    lib = next((Path(ort.__file__).parent / "capi").glob("onnxruntime_pybind11_state*.so"))
    needed = elf_needed(lib)
    assert "libc.so.6" in needed
    if shutil.which("readelf"):
        out = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True).stdout
        want = [ln.split("[")[1].rstrip("]") for ln in out.splitlines() if "(NEEDED)" in ln]
        assert needed == want
    assert elf_needed(Path(__file__)) == []  # not an ELF file


def test_install_hints_follow_the_build():
    from inference.gpu import OrtBuild, install_hint

    cu13 = OrtBuild("onnxruntime-gpu", "1.31.1", "13.0", "", Path("."),
                    {"cuda": ["nvidia-cuda-runtime~=13.0"], "cudnn": ["nvidia-cudnn-cu13~=9.0"]})
    assert install_hint("libcudnn.so.9", cu13) == 'pip install "nvidia-cudnn-cu13~=9.0"'
    assert install_hint("libcudart.so.13", cu13) == 'pip install "nvidia-cuda-runtime~=13.0"'
    assert install_hint("libcublasLt.so.13", cu13) == 'pip install "nvidia-cublas"'
    assert install_hint("libnvinfer.so.10", cu13) == 'pip install "tensorrt-cu13-libs>=10,<11"'
    assert "driver" in install_hint("libcuda.so.1", cu13)
    cu12 = OrtBuild("onnxruntime-gpu", "1.20.0", "12.4", "", Path("."), {})
    assert install_hint("libcublas.so.12", cu12) == 'pip install "nvidia-cublas-cu12"'
    assert install_hint("libcudnn.so.9", cu12) == 'pip install "nvidia-cudnn-cu12"'


def test_failure_reason_picks_the_loader_error():
    from inference.gpu import failure_reason

    log = ("2026-11-23 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] ... FAIL : Failed to load library "
           "/x/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file\n"
           "2026-11-23 [W:onnxruntime:Default, onnxruntime_pybind_state.cc:1295] Failed to create "
           "CUDAExecutionProvider. Require cuDNN 9.* and CUDA 13.*. Please install all dependencies\n")
    assert failure_reason(log) == "libcublasLt.so.13: cannot open shared object file"
    assert failure_reason(log.splitlines()[1]).startswith("Failed to create CUDAExecutionProvider")
    assert failure_reason("") is None


def test_doctor_reports_the_gpu_path(capsys):
    assert main.main(["doctor", "--cameras", "0"]) == 0
    out = capsys.readouterr().out
    assert "GPU path" in out
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert "CUDA provider (libonnxruntime_providers_cuda.so) needs:" in out
        assert "libcudnn.so." in out and "CUDA session on a tiny Conv model:" in out
        assert "CUDA graphs" in out
    else:
        assert "CPU-only build" in out


def test_the_replay_check_catches_a_replay_that_returns_stale_results(monkeypatch):
    """doctor's CUDA-graph check (needs a GPU to mean anything) run on the CPU: right results pass, and a
    binding that kept giving the first run's answer, as a replay reading stale inputs would, is caught."""
    import onnxruntime as ort

    from inference import gpu

    session = ort.InferenceSession(gpu.probe_model(), providers=["CPUExecutionProvider"])
    assert gpu.replay_check(session) is None

    class Stale(gpu.FixedBinding):
        def run(self, feeds):
            self.first = getattr(self, "first", None) or super().run(feeds)
            return self.first

    monkeypatch.setattr(gpu, "FixedBinding", Stale)
    assert gpu.replay_check(session) == "run 2 of 3 gave a wrong result"


# --- bench ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("faces")
    for p in utk_images(8):
        shutil.copy(p, d / p.name)
    return d


def test_timing_filter_is_labelled_untrained(tmp_path):
    from inference.models import load_model
    from training.timing_filter import export_timing_filter

    path = export_timing_filter("smoke", tmp_path / "t.onnx")
    model = load_model(path, "filter")
    assert model.card.training["timing_only"] is True and model.card.training["preset"]["preset"] == "smoke"
    assert "timing only" in model.name and "UNTRAINED" in model.card.method
    out = model.apply(np.zeros((2, 32, 32, 3), np.uint8))
    assert out.shape == (2, 32, 32, 3) and out.dtype == np.uint8


def test_bench_providers_and_face_counts_on_cpu(tiny_models, faces_dir, tmp_path, capsys):
    from training.timing_filter import export_timing_filter

    filt = export_timing_filter("smoke", tmp_path / "timing.onnx")
    report = tmp_path / "bench.json"
    code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--classifier", str(tiny_models["classifier2"]), "--filter", str(filt),
                      "--providers", "cpu,cuda", "--faces", "1,2", "--frames", "3", "--warmup", "1",
                      "--baseline-device", "cpu", "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0
    assert "UNTRAINED" in out and "issue #11 targets" in out and "goals, not measurements" in out
    data = json.loads(report.read_text())
    assert data["faces"] == [1, 2] and data["filter"]["timing_only"] is True
    assert "'smoke' 32 px" in data["baseline"]  # the baseline runs the same generator as the filter
    rows = data["results"]
    for faces in (1, 2):
        for variant in ("filter", "plain"):
            cpu = [r for r in rows if (r["provider"], r["faces"], r["variant"]) == ("cpu", faces, variant)]
            eager = [r for r in rows if (r["provider"], r["faces"], r["variant"]) == ("eager", faces, variant)]
            assert len(cpu) == 1 and len(eager) == 1
            assert cpu[0]["status"] == "ok" and 1 <= cpu[0]["frames"] <= 3
            assert cpu[0]["vs_eager"] == pytest.approx(cpu[0]["fps"] / eager[0]["fps"])
            assert {"p50", "p99"} <= set(cpu[0]["latency_ms"]["end_to_end"])
    # CUDA is either really CUDA for every model, or reported unavailable with a reason — never the CPU under its name.
    # 2 providers × 2 counts × 2 variants, then 2 × 2 eager: as the plan line said before the run
    assert data["complete"] is True and data["stopped"] is None and data["measured"] == data["configurations"] == 12
    assert "12 configurations" in out and "[12/12]" in out
    cuda = data["providers"]["cuda"]
    if cuda["status"] == "ok":
        assert set(cuda["models"].values()) == {"CUDA"}
    else:
        assert cuda["status"].startswith("unavailable: ") and len(cuda["status"]) > len("unavailable: ") + 5
        assert all(r["status"] == cuda["status"] and r["fps"] == 0 for r in rows if r["provider"] == "cuda")


def test_bench_on_a_video_measures_its_frames_as_filmed_and_refuses_face_counts(tiny_models, faces_dir, tmp_path,
                                                                                capsys):
    """The same one-face clip was measured three times and its rows said 1, 4 and 16 faces per frame."""
    import cv2

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    for face in sorted(faces_dir.iterdir())[:3]:
        writer.write(cv2.resize(cv2.imread(str(face)), (320, 240)))
    writer.release()
    argv = ["bench", "--source", str(clip), "--classifier", str(tiny_models["classifier"]), "--no-filter",
            "--providers", "cpu", "--frames", "3", "--warmup", "0", "--no-baseline", "--json", str(tmp_path / "b.json")]
    assert main.main([*argv, "--faces", "1,4,16"]) == 2
    assert "--faces tiles face images from a folder onto each frame" in capsys.readouterr().err
    assert main.main(argv) == 0
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "b.json").read_text())["results"]
    assert [r["faces"] for r in rows] == [0]
    assert any(line.split()[:1] == ["video"] and "onnx CPU" in line for line in out.splitlines())
    assert "frames with a video's own frames, resized;" in out and "0 face(s)" not in out


def test_bench_profiles_each_rows_host_work_apart_from_its_figures(tiny_models, faces_dir, tmp_path, capsys):
    folder = tmp_path / "profiles"
    code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--filter", str(tiny_models["identity"]), "--no-baseline", "--providers", "cpu",
                      "--faces", "1,2", "--frames", "3", "--warmup", "1", "--profile-host", str(folder),
                      "--profile-frames", "4"])
    out = capsys.readouterr().out
    assert code == 0
    files = sorted(folder.glob("*.txt"))
    assert len(files) == 4 == out.count("host profile (4 frames)")  # 2 face counts × 2 variants, a file each
    report = (folder / "onnx_cpu_classifiers_filter_detect_ahead_2_face_s.txt").read_text()
    lines = report.splitlines()
    assert lines[0].startswith("onnx CPU: classifiers + filter, detect ahead, 2 face(s): 4 frames profiled")
    assert re.match(r"inside ONNX Runtime's runs: \d+\.\d+ ms a frame", lines[1])
    host = lines[2:lines.index("")]
    assert any("pipeline.py" in line and "analyse_crops" in line for line in host)
    assert not any("pybind11_state.run" in line for line in host)  # the models' time is not host time
    assert "function calls" in report  # cProfile's own table follows


def test_a_profile_folder_that_is_a_file_is_refused_before_any_model_loads(tiny_models, faces_dir, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("")
    code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--no-filter", "--no-baseline", "--profile-host", str(taken)])
    assert code == 2 and "--profile-host names a file" in capsys.readouterr().err


@pytest.mark.parametrize("flag,value,needle", [("--faces", "0,x", "--faces"), ("--providers", "cpu,gpu", "--providers"),
                                               ("--resolution", "640", "--resolution"),
                                               ("--detect-depth", "0", "--detect-depth"),
                                               ("--detect-depth", "1,17", "--detect-depth")])
def test_bench_bad_options_are_one_line_errors(flag, value, needle, tiny_models, faces_dir, capsys):
    code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--no-filter", "--no-baseline", flag, value])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bench_times_each_detection_depth_beside_one_after_the_other(tiny_models, faces_dir, tmp_path):
    report = tmp_path / "bench.json"
    code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--no-filter", "--no-baseline", "--providers", "cpu", "--faces", "2", "--frames", "4",
                      "--warmup", "1", "--detect-ahead", "both", "--detect-depth", "1,3", "--json", str(report)])
    assert code == 0
    rows = json.loads(report.read_text())["results"]
    assert [r["name"].split(": ", 1)[1] for r in rows] == [
        "classifiers only", "classifiers only, detect ahead", "classifiers only, detect 3 ahead"]
    assert all(r["status"] == "ok" and r["frames"] == 4 for r in rows)
    assert len({r["faces_seen"] for r in rows}) == 1  # the same faces found, however far ahead


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_bench_stopped_midway_reports_and_keeps_what_it_measured(how, tiny_models, faces_dir, tmp_path, monkeypatch,
                                                               capsys):
    """A device call or CI job that runs out of time sends SIGTERM: the rows done are in the table and the JSON,
    which was already on disk after each row, and the exit status says it was cut short."""
    import os
    import signal

    from inference import bench

    report = tmp_path / "bench.json"
    real_measure, calls, seen_on_disk = bench.measure, [], []

    def measure(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            seen_on_disk.append(json.loads(report.read_text()))
            if how == "ctrl-c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)
        return real_measure(*a, **kw)

    monkeypatch.setattr(bench, "measure", measure)
    code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--no-filter", "--no-baseline", "--providers", "cpu", "--faces", "1,2,3,4", "--frames", "2",
                      "--warmup", "0", "--seconds", "5", "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 130
    assert [len(d["results"]) for d in seen_on_disk] == [2] and seen_on_disk[0]["complete"] is False
    data = json.loads(report.read_text())
    assert data["complete"] is False and data["stopped"] == "interrupted after 2 of 4 configurations"
    assert [r["faces"] for r in data["results"]] == [1, 2] and all(r["status"] == "ok" for r in data["results"])
    assert "interrupted after 2 of 4 configurations" in out and "(2 of 4 configurations)" in out
    assert "about 0.4 min of measuring" in out  # 4 × 5 s × 1.25, said before the first row
    table = out[out.index("frames/s"):]
    assert "classifiers only" in table and not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back as it was


def test_a_gpu_provider_failing_midway_is_a_row_and_the_rest_is_still_measured(tiny_models, faces_dir, tmp_path,
                                                                                monkeypatch):
    """A provider that started and then failed while measuring (CUDA out of memory, a CUDA graph it could not
    record) ends its own rows with the reason; the CPU rows after it are still measured. ("auto" stands in for a
    GPU provider here: it is not the CPU row, whose failures are errors.)"""
    from inference import bench
    from inference.errors import BiasMirrorError

    real_measure, calls = bench.measure, []

    def measure(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise BiasMirrorError("out of GPU memory running a batch of 2 (stub)", "tiny.onnx")
        return real_measure(*a, **kw)

    monkeypatch.setattr(bench, "measure", measure)
    report = tmp_path / "bench.json"
    code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--no-filter", "--no-baseline", "--providers", "auto,cpu", "--faces", "1,2,3", "--frames", "2",
                      "--warmup", "0", "--json", str(report)])
    assert code == 0
    data = json.loads(report.read_text())
    auto = [r for r in data["results"] if r["provider"] == "auto"]
    assert [(r["faces"], r["status"]) for r in auto] == [
        (1, "ok"), (2, "unavailable: failed while measuring: tiny.onnx: out of GPU memory running a batch of 2 (stub)")]
    assert [r["status"] for r in data["results"] if r["provider"] == "cpu"] == ["ok"] * 3
    assert data["measured"] == data["configurations"] == 6 and data["complete"] is True
    assert data["providers"]["auto"]["status"].startswith("failed: ")


def test_bench_soak_cut_short_says_how_long_it_ran(tiny_models, faces_dir, tmp_path):
    import os
    import signal
    import threading

    report = tmp_path / "bench.json"
    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                          "--no-filter", "--no-baseline", "--providers", "cpu", "--faces", "1", "--frames", "2",
                          "--warmup", "0", "--soak", "120", "--json", str(report)])
    finally:
        timer.cancel()
    data = json.loads(report.read_text())
    assert code == 130 and data["complete"] is False
    assert data["soak"]["interrupted"] is True and 0 < data["soak"]["seconds"] < 120 and data["soak"]["frames"] > 0
    assert len(data["results"]) == 1 and data["results"][0]["status"] == "ok"


def test_bench_cuda_graph_rows_are_labelled_and_never_timed_without_them(tiny_models, faces_dir, tmp_path, monkeypatch):
    """`--providers cuda-graph` times CUDA replaying CUDA graphs; where any model runs without them (no GPU here,
    or ORT refused them) its rows say why instead of timing something else under that name."""
    from inference import bench_models

    report = tmp_path / "bench.json"
    code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--no-filter", "--no-baseline", "--providers", "cpu,cuda-graph", "--faces", "1", "--frames", "2",
                      "--warmup", "0", "--json", str(report)])
    assert code == 0
    rows = {r["provider"]: r for r in json.loads(report.read_text())["results"]}
    assert rows["cpu"]["status"] == "ok"
    assert rows["cuda-graph"]["name"] == "onnx CUDA graphs" and rows["cuda-graph"]["status"].startswith("unavailable: ")
    # models on the right provider, but one without its graphs: refused by name
    loaded = bench_models.load_for(SimpleNamespace(classifier=[str(tiny_models["classifier"])], filter=None, no_filter=True,
                                            threads=1), "cpu")[0]
    model = loaded.classifiers[0]
    model.info.provider, model.info.warning = "CUDAExecutionProvider", "CUDA graphs refused (FAIL: nodes off CUDA)"
    monkeypatch.setattr(bench_models, "load_selection", lambda *a: ([model], None))
    got, reason = bench_models.load_for(SimpleNamespace(classifier=None, filter=None, no_filter=True, threads=1), "cuda-graph")
    assert got is None and reason == "tiny-a: CUDA graphs refused (FAIL: nodes off CUDA)"
    model.info.cuda_graph = True
    got, reason = bench_models.load_for(SimpleNamespace(classifier=None, filter=None, no_filter=True, threads=1), "cuda-graph")
    assert got is not None and reason is None


def test_gpu_memory_is_read_from_nvidia_smi_output():
    from inference.bench_machine import parse_memory_used

    assert parse_memory_used("1536\n80000\n") == 1536.0  # the first GPU
    assert parse_memory_used("[N/A]\n") is None and parse_memory_used("") is None


def test_bench_records_gpu_memory_per_gpu_row_and_over_the_soak(tiny_models, faces_dir, tmp_path, monkeypatch, capsys):
    """With a GPU reported (stubbed here), every non-CPU row and the soak (on the first provider) carry
    nvidia-smi's memory figures."""
    from inference import bench

    readings = iter(range(1000, 100000, 100))  # MiB, growing with every reading
    monkeypatch.setattr(bench, "gpu_name", lambda: "Stub GPU, 580.0")
    monkeypatch.setattr(bench, "gpu_memory_used_mib", lambda: float(next(readings)))
    report = tmp_path / "bench.json"
    code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--no-filter", "--no-baseline", "--providers", "auto,cpu", "--faces", "1,2", "--frames", "2",
                      "--warmup", "0", "--soak", "0.2", "--json", str(report)])
    assert code == 0
    data = json.loads(report.read_text())
    rows = [r for r in data["results"] if r["status"] == "ok"]
    assert all(r["gpu_memory_mib"] is None for r in rows if r["provider"] == "cpu")
    auto = [r["gpu_memory_mib"] for r in rows if r["provider"] == "auto"]
    assert auto == [100.0, 200.0]  # above the reading taken before any model was loaded
    assert data["soak"]["gpu_start_mib"] == 1300.0 and data["soak"]["gpu_end_mib"] == 1400.0
    assert "GPU memory 1300 → 1400 MiB" in capsys.readouterr().out


def test_the_latency_goal_counts_a_frames_own_detection_when_it_was_found_ahead():
    """Found a frame ahead, a face comes out every few ms while each frame waited for its own detection too: 200
    frames/s with 4 ms between frames but 12 ms from detection to result misses p99 ≤ 10 ms."""
    from inference.bench_measure import Measurement
    from inference.bench_targets import TARGETS, target_lines

    def row(between, own, fps=210.0, provider="cuda"):
        q = lambda v: {"p50": v, "p95": v, "p99": v}  # noqa: E731
        return Measurement(f"onnx CUDA {between}/{own}", 300, fps, {"end_to_end": q(between), "total": q(own)},
                           provider=provider, faces=1, variant="filter", faces_seen=1.0)

    lines = target_lines([row(4.0, 12.0), row(4.0, 9.0), row(11.0, 8.0), row(4.0, 5.0, fps=150.0),
                          row(4.0, 5.0, provider="cpu")],
                         tuple(TARGETS["resolution"]), TARGETS["filter_px"], TARGETS["classifiers"])
    assert lines[1:] == [
        "  onnx CUDA 4.0/12.0 at 1 face(s): 210.0 frames/s, p99 4.0 ms between frames, 12.0 ms a frame's own "
        "detection and analysis — misses the target",
        "  onnx CUDA 4.0/9.0 at 1 face(s): 210.0 frames/s, p99 4.0 ms between frames, 9.0 ms a frame's own "
        "detection and analysis — meets the target",
        "  onnx CUDA 11.0/8.0 at 1 face(s): 210.0 frames/s, p99 11.0 ms between frames — misses the target",
        "  onnx CUDA 4.0/5.0 at 1 face(s): 150.0 frames/s, p99 4.0 ms between frames, 5.0 ms a frame's own "
        "detection and analysis — misses the target"]


@pytest.mark.parametrize("given, timed", [(1, 1), (3, 3)])
def test_the_eager_baseline_runs_as_many_classifiers_as_the_rows_it_is_compared_with(given, timed, tiny_models,
                                                                                       faces_dir, monkeypatch, capsys):
    """It always ran two ResNet-18s: a bench of one classifier printed 3.9× eager for doing half the work."""
    import training.eager_baseline as eager

    made = []

    class Counting:
        def __init__(self, with_filter, threads, device, generator, filter_size, classifiers=2):
            made.append(classifiers)
            self.label = f"counting ×{classifiers}"

        def __call__(self, frame):
            return {}, 1

    monkeypatch.setattr(eager, "EagerBaseline", Counting)
    models = [a for _ in range(given) for a in ("--classifier", str(tiny_models["classifier"]))]
    assert main.main(["bench", "--source", str(faces_dir), *models, "--no-filter", "--providers", "cpu",
                      "--frames", "1", "--warmup", "0"]) == 0
    assert made == [timed] and f"counting ×{timed}" in capsys.readouterr().out


def test_bench_notes_rows_whose_faces_were_not_found(tiny_models, tmp_path, capsys):
    """A folder whose faces the detector misses printed frames/s and ratios as if the models had run."""
    walls = tmp_path / "walls"
    walls.mkdir()
    cv2.imwrite(str(walls / "wall.png"), np.full((200, 200, 3), 120, np.uint8))
    assert main.main(["bench", "--source", str(walls), "--classifier", str(tiny_models["classifier"]), "--no-filter",
                      "--providers", "cpu", "--frames", "1", "--warmup", "0", "--no-baseline"]) == 0
    assert "found 0.00 a frame: its figures time the models on those only (none: no model ran)" in \
        capsys.readouterr().out


def test_doctor_does_not_advise_installing_the_onnxruntime_gpu_it_runs_on():
    """With onnxruntime-gpu installed and no GPU, it asked for "an NVIDIA driver, onnxruntime-gpu, and …"."""
    from inference.doctor import cpu_only_advice

    assert "onnxruntime-gpu," not in cpu_only_advice(True) and "is installed" in cpu_only_advice(True)
    assert "an NVIDIA GPU and its driver, onnxruntime-gpu," in cpu_only_advice(False)


# --- fallbacks, the TensorRT cache and the driver (review 2) ---------------------------------------------------------
def _first_provider_session(made):
    """A stand-in for ORT's session that runs on the first provider it is given, recording what it was given."""
    def session(model, sess_options=None, providers=(), **kwargs):  # as ORT's: enable_fallback=0
        made.append(providers)
        first = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
        return SimpleNamespace(get_providers=lambda: [first])
    return session


def test_a_tensorrt_cache_folder_that_cannot_be_made_skips_tensorrt_and_says_where(tiny_models, tmp_path, monkeypatch):
    """With a GPU visible, auto and tensorrt put TensorRT first, and its engine cache folder's mkdir stopped run, app
    and bench ("error: /sys/x: Operation not permitted") even where TensorRT is not installed."""
    from inference import runtime
    from inference.runtime import CPU, CUDA, TRT, RuntimeConfig

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache folder would be under a file
    made: list = []
    monkeypatch.setattr(runtime.ort, "InferenceSession", _first_provider_session(made))
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [TRT, CUDA, CPU])
    monkeypatch.setattr(runtime, "preload_gpu_libraries", lambda tensorrt=False: [])
    for provider in ("auto", "tensorrt"):
        info = runtime.create_session(tiny_models["classifier"], RuntimeConfig(provider=provider), gpus=1)
        assert info.provider == CUDA and not any(isinstance(p, tuple) and p[0] == TRT for p in made[-1])
        assert info.warning == info.skipped
        assert info.warning.startswith(f"TensorRT skipped: its engine cache folder {blocker}/bias-mirror/tensorrt is "
                                       "unusable (it cannot be created: Not a directory)")
        assert "set XDG_CACHE_HOME to a writable folder" in info.warning


def test_bench_reports_tensorrt_without_its_cache_as_unavailable_and_goes_on(tiny_models, faces_dir, tmp_path,
                                                                             monkeypatch):
    from inference import bench, runtime

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(runtime, "cuda_device_count", lambda: 1)  # a machine with a driver: TensorRT comes first
    report = tmp_path / "bench.json"
    code = main.main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--no-filter", "--no-baseline", "--providers", "tensorrt,cpu", "--faces", "1", "--frames", "1",
                      "--warmup", "0", "--json", str(report)])
    assert code == 0
    rows = {r["provider"]: r for r in json.loads(report.read_text())["results"]}
    assert rows["tensorrt"]["status"].startswith(f"unavailable: TensorRT skipped: its engine cache folder {blocker}")
    assert rows["cpu"]["status"] == "ok"


def test_whatever_stops_a_gpu_providers_models_loading_is_its_rows_reason(monkeypatch):
    """bench_models.load_for caught BiasMirrorError alone: ORT's own errors or an OSError ended the whole bench."""
    from inference import bench_models

    args = SimpleNamespace(classifier=None, filter=None, no_filter=True, threads=1)

    def fails(*a):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : stub\nmore")

    monkeypatch.setattr(bench_models, "load_selection", fails)
    assert bench_models.load_for(args, "cuda") == (None, "RuntimeError: [ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : stub")
    monkeypatch.setattr(bench_models, "load_selection", lambda *a: (_ for _ in ()).throw(PermissionError(13, "denied", "/x")))
    assert bench_models.load_for(args, "tensorrt") == (None, "PermissionError: [Errno 13] denied: '/x'")
    with pytest.raises(RuntimeError):  # on the CPU, where the models were checked first, it is an error
        monkeypatch.setattr(bench_models, "load_selection", fails)
        bench_models.load_for(args, "cpu")


def test_run_says_each_fallback_once_for_every_model_it_holds_for(tiny_models, faces_dir, tmp_path, monkeypatch, capsys,
                                                                   caplog):
    """`run --provider cuda` without a GPU said each model's fallback twice (the runtime's log, then run's own
    line), and named the ONNX Haar cascade "an in-memory model"."""
    import logging

    from inference import runtime

    monkeypatch.setattr(runtime, "cuda_device_count", lambda: 0)
    caplog.set_level(logging.WARNING)
    assert main.main(["run", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                      "--classifier", str(tiny_models["classifier2"]), "--no-filter", "--provider", "cuda",
                      "--haar-runtime", "onnxruntime", "--max-frames", "1", "--out", str(tmp_path / "x.csv")]) == 0
    out = capsys.readouterr()
    said = [*out.out.splitlines(), *out.err.splitlines(), *(r.getMessage() for r in caplog.records)]
    fallback = [line for line in said if "no CUDA GPU is visible" in line]
    assert fallback == ["warning: tiny-a, tiny-b and the Haar cascade: no CUDA GPU is visible: running on the CPU "
                        "(asked for cuda)"], fallback


def test_ort_own_provider_failure_text_goes_to_the_debug_log_and_its_reason_into_one_line(tiny_models, monkeypatch,
                                                                                           capfd, caplog):
    """Where the CUDA libraries fail to load, ORT printed per model its coloured [E:…]/[W:…] lines on stderr and a
    five-line "EP Error … Falling back … retrying" block with the provider options on stdout."""
    import logging

    from inference import runtime
    from inference.runtime import CPU, CUDA, TRT, RuntimeConfig

    def session(model, sess_options=None, providers=(), **kwargs):  # as ORT's: enable_fallback=0
        os.write(2, b"\x1b[1;31m2026-12-06 [E:onnxruntime:Default, provider_bridge_ort.cc:2430 operator()] FAIL : "
                    b"Failed to load library /x/capi/libonnxruntime_providers_tensorrt.so with error: libnvinfer.so.10: "
                    b"cannot open shared object file: No such file or directory\n\x1b[m\n")
        print("*************** EP Error ***************")
        print(f"EP Error RegisterTensorRTPluginsAsCustomOps Please install TensorRT libraries\n when using {providers}")
        print("Falling back to ['CUDAExecutionProvider', 'CPUExecutionProvider'] and retrying.")
        print("****************************************")
        os.write(2, b"\x1b[1;31m2026-12-06 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] FAIL : "
                    b"Failed to load library /x/capi/libonnxruntime_providers_cuda.so with error: "
                    b"/x/capi/libonnxruntime_providers_cuda.so: undefined symbol: cuTensorMapEncodeTiled\n\x1b[m\n"
                    b"\x1b[0;93m2026-12-06 [W:onnxruntime:Default, onnxruntime_pybind_state.cc:1295 "
                    b"CreateExecutionProviderFactoryInstance] Failed to create CUDAExecutionProvider. Require cuDNN 9.* "
                    b"and CUDA 13.*.\x1b[m\n")
        return SimpleNamespace(get_providers=lambda: [CPU])

    monkeypatch.setattr(runtime.ort, "InferenceSession", session)
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [TRT, CUDA, CPU])
    monkeypatch.setattr(runtime, "preload_gpu_libraries", lambda tensorrt=False: [])
    caplog.set_level(logging.DEBUG, logger="inference.runtime")
    info = runtime.create_session(tiny_models["classifier"], RuntimeConfig(provider="auto"), gpus=1)
    seen = capfd.readouterr()
    assert "EP Error" not in seen.out + seen.err and "onnxruntime:Default" not in seen.out + seen.err
    assert info.provider == CPU
    assert info.warning == ("TensorRT (libnvinfer.so.10: cannot open shared object file: No such file or directory) and "
                            "CUDA (libonnxruntime_providers_cuda.so: undefined symbol: cuTensorMapEncodeTiled) could not "
                            "start; running on CPU (`python main.py doctor` says why)")
    debug = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    assert "Falling back to ['CUDAExecutionProvider', 'CPUExecutionProvider']" in debug and "\x1b[" not in debug
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [f"c1.onnx: {info.warning}"]


class _FakeDriver:
    """libcuda as ctypes sees it: cuDriverGetVersion answers ``code`` (0: the version), cuInit ``init``."""

    def __init__(self, version: int, code: int = 0, init: int = 0):
        self.version, self.code, self.init = version, code, init

    def cuDriverGetVersion(self, ref):
        ref._obj.value = self.version
        return self.code

    def cuInit(self, flags):
        return self.init

    def cuDeviceGetCount(self, ref):
        ref._obj.value = 0 if self.init else 1
        return self.init


@pytest.mark.parametrize("driver, said, advice", [
    (_FakeDriver(0, code=34, init=34), "did not answer — cuDriverGetVersion answered CUDA error 34 "
     "(CUDA_ERROR_STUB_LIBRARY): a stub or broken driver", "did not answer"),
    (_FakeDriver(12040), "supports CUDA 12.4; this onnxruntime-gpu needs 13.0: update the NVIDIA driver",
     "the NVIDIA driver supports CUDA 12.4; this onnxruntime-gpu needs 13.0: update the NVIDIA driver"),
    (_FakeDriver(13020), "supports CUDA 13.2; this onnxruntime-gpu needs 13.0: enough", None),
], ids=["stub", "old", "new"])
def test_doctor_asks_the_driver_which_cuda_it_runs(driver, said, advice, monkeypatch, capsys):
    """doctor said libcuda.so.1 "found" for a stub (cuInit 34) or a driver too old for the build, then the CUDA
    session failed with "undefined symbol: cuTensorMapEncodeTiled" and the advice listed nothing missing."""
    import ctypes

    from inference import doctor, gpu

    real = ctypes.CDLL
    monkeypatch.setattr(ctypes, "CDLL", lambda name, *a, **k: driver if str(name).startswith("libcuda.so")
                        else real(name, *a, **k))
    build = gpu.OrtBuild("onnxruntime-gpu", "1.31.1", "13.0", "", gpu.ort_build().capi_dir, {})
    monkeypatch.setattr(gpu, "ort_build", lambda: build)
    monkeypatch.setattr(doctor, "ort_build", lambda: build, raising=False)
    assert main.main(["doctor", "--cameras", "0", "--no-gpu-probe"]) == 0
    out = capsys.readouterr().out
    assert f"NVIDIA driver (libcuda.so.1): {said}" in out
    arrows = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("→")]
    if advice:
        assert advice in arrows[0]
    else:
        assert not any("NVIDIA driver" in a for a in arrows)


def test_run_names_every_model_in_a_fallback_where_two_files_share_a_name(tiny_models, faces_dir, tmp_path,
                                                                          monkeypatch, capsys):
    """The fallbacks were matched to models by file name: a/model.onnx and b/model.onnx were one entry, and the
    line named one of the two models."""
    import shutil

    from inference import runtime

    for folder, model in (("a", "classifier"), ("b", "classifier2")):
        (tmp_path / folder).mkdir()
        shutil.copy(tiny_models[model], tmp_path / folder / "model.onnx")
    monkeypatch.setattr(runtime, "cuda_device_count", lambda: 0)
    assert main.main(["run", "--source", str(faces_dir), "--classifier", str(tmp_path / "a" / "model.onnx"),
                      "--classifier", str(tmp_path / "b" / "model.onnx"), "--no-filter", "--provider", "cuda",
                      "--max-frames", "1", "--out", str(tmp_path / "x.csv")]) == 0
    fallback = [line for line in capsys.readouterr().err.splitlines() if "no CUDA GPU is visible" in line]
    assert fallback == ["warning: tiny-a and tiny-b: no CUDA GPU is visible: running on the CPU (asked for cuda)"], \
        fallback


@pytest.mark.parametrize("stderr", ["none", "closed"])
def test_a_gpu_session_is_made_without_a_stderr(tiny_models, stderr, tmp_path):
    """Capturing ORT's output flushed sys.stderr and duplicated fd 2 first: under pythonw (sys.stderr None) or with
    2>&- every session that tried a GPU provider raised instead of falling back to the CPU."""
    script = ("import sys\nfrom inference.runtime import RuntimeConfig, create_session\n"
              + ("sys.stderr = None\n" if stderr == "none" else "")
              + f"info = create_session({str(tiny_models['classifier'])!r}, RuntimeConfig(provider='cuda'), gpus=1)\n"
              "print('made on', info.provider)\n")
    cmd = [sys.executable, "-c", script] if stderr == "none" else ["bash", "-c", '"$0" -c "$1" 2>&-', sys.executable,
                                                                     script]
    done = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True,
                          timeout=120, **({"stderr": subprocess.DEVNULL} if stderr == "none" else {}))
    assert done.returncode == 0 and "made on CPUExecutionProvider" in done.stdout, done.stdout


def test_the_app_leaves_ort_output_uncaptured_as_its_workers_print_meanwhile():
    """fd 2 and sys.stdout are the process's: in the app a worker's lines printed while a model loaded went into that
    model's debug log."""
    import argparse

    from gui.app_cli import app_runtime

    args = argparse.Namespace(provider="cuda", threads=2)
    assert app_runtime(args).capture_ort_output is False and app_runtime(args).provider == "cuda"
