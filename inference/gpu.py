"""What ONNX Runtime's GPU providers need, whether this machine has it, and why a provider does not start.

The truth comes from the installed onnxruntime itself: the shared libraries
its CUDA and TensorRT provider libraries link against (read from their ELF
headers), the CUDA version it was built for, the extras its wheel declares,
and, last, a session created on a tiny Conv model with the provider asked
for. ORT lists CUDA and TensorRT as available whenever onnxruntime-gpu is
installed; only a created session's ``get_providers()`` says whether one runs.
ORT writes the reason a provider failed to load to the process's stderr
(file descriptor 2), so the probe captures that descriptor while it runs.
"""
from __future__ import annotations

import ctypes
import re
import struct
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from .fixed_binding import FixedBinding
from .runtime import (CPU, CUDA, SHORT, TRT, RuntimeConfig, captured_fd2, create_session, cuda_device_count,  # noqa: F401
                      failure_reason, nvidia_library_dirs, ort_cuda_version, ort_output_captured, preload_gpu_libraries)

PROVIDER_LIBRARIES = {CUDA: "libonnxruntime_providers_cuda.so", TRT: "libonnxruntime_providers_tensorrt.so"}
# glibc / libstdc++ / the loader: on every Linux, never the reason a provider fails.
_SYSTEM = re.compile(r"^(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[-\w]*)\.so")


# --- the build -------------------------------------------------------------
@dataclass
class OrtBuild:
    package: str  # onnxruntime or onnxruntime-gpu (the distribution the imported module belongs to)
    version: str
    cuda_version: str | None  # "13.0" for a CUDA build
    build_info: str
    capi_dir: Path
    extras: dict[str, list[str]] = field(default_factory=dict)  # wheel extra → requirements (e.g. "cudnn": [...])

    @property
    def cuda_major(self) -> str | None:
        return self.cuda_version.split(".")[0] if self.cuda_version else None


def ort_build() -> OrtBuild:
    try:
        from onnxruntime.capi import build_and_package_info as info  # type: ignore[attr-defined]

        package = getattr(info, "package_name", "onnxruntime")
    except ImportError:
        package = "onnxruntime"
    cuda_version = ort_cuda_version()
    extras: dict[str, list[str]] = {}
    try:
        for req in metadata.requires(package) or []:
            m = re.match(r"^(.*?);\s*extra\s*==\s*[\"']([\w-]+)[\"']", req)
            if m:
                extras.setdefault(m.group(2), []).append(m.group(1).strip())
    except metadata.PackageNotFoundError:
        pass
    build = ort.get_build_info() if hasattr(ort, "get_build_info") else ""
    return OrtBuild(package, ort.__version__, cuda_version or None, build, Path(ort.__file__).parent / "capi", extras)


# macOS has no CUDA and onnxruntime-gpu no macOS wheel: pyproject installs the CPU build there, and advice to swap it
# for onnxruntime-gpu had uninstalled the working runtime before an install that failed
NO_CUDA_ON_MACOS = "macOS has no CUDA (nor onnxruntime-gpu a macOS wheel), so this is the build to keep"


def cuda_builds_exist(platform: str | None = None) -> bool:
    """Whether onnxruntime-gpu can be installed on ``platform``, a ``sys.platform`` (this one's where None)."""
    return (platform or sys.platform) != "darwin"


def elf_needed(path: str | Path) -> list[str]:
    """DT_NEEDED entries of an ELF64 little-endian shared library (what the loader must find)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return []
        shoff, = struct.unpack_from("<Q", head, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
        fh.seek(shoff)
        table = fh.read(shentsize * shnum)
        sections = [struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)]
        dynamic = next((s for s in sections if s[1] == 6), None)  # SHT_DYNAMIC
        if dynamic is None:
            return []
        strtab = sections[dynamic[6]]  # sh_link → .dynstr
        fh.seek(dynamic[4])
        entries = fh.read(dynamic[5])
        fh.seek(strtab[4])
        strings = fh.read(strtab[5])
    out = []
    for i in range(0, len(entries) - 15, 16):
        tag, val = struct.unpack_from("<qQ", entries, i)
        if tag == 0:
            break
        if tag == 1:  # DT_NEEDED
            out.append(strings[val: strings.index(b"\0", val)].decode())
    return out


# --- the libraries ----------------------------------------------------------
@dataclass
class Library:
    soname: str
    provider: str  # CUDAExecutionProvider / TensorrtExecutionProvider
    how: str  # "linked" (DT_NEEDED) or "loaded at run time"
    where: str | None  # a folder, "loader path", or None when missing
    install: str  # what provides it

    @property
    def found(self) -> bool:
        return self.where is not None


def _cudnn_major(build: OrtBuild) -> str:
    for req in build.extras.get("cudnn", []):
        m = re.search(r"~=\s*(\d+)", req)
        if m:
            return m.group(1)
    return "9"  # ORT's CUDA builds since 1.19 (CUDA 12 and 13) are made with cuDNN 9


def install_hint(soname: str, build: OrtBuild) -> str:
    """The package that provides ``soname`` for this build (from the wheel's own extras where it names it)."""
    major = build.cuda_major or "13"
    suffix = "" if major.isdigit() and int(major) >= 13 else f"-cu{major}"  # CUDA 13 dropped the suffix
    stem = soname.split(".so")[0]
    if stem == "libcuda":
        return "the NVIDIA driver (not a pip package)"
    if stem.startswith("libnvinfer") or stem.startswith("libnvonnxparser"):
        trt_major = soname.rsplit(".", 1)[-1]
        return f'pip install "tensorrt-cu{major}-libs>={trt_major},<{int(trt_major) + 1}"' if trt_major.isdigit() \
            else f"pip install tensorrt-cu{major}-libs"
    names = {"libcudart": "nvidia-cuda-runtime", "libcublas": "nvidia-cublas", "libcublasLt": "nvidia-cublas",
             "libcurand": "nvidia-curand", "libcufft": "nvidia-cufft", "libnvrtc": "nvidia-cuda-nvrtc",
             "libcudnn": f"nvidia-cudnn-cu{major}"}
    name = names.get(stem)
    if name is None:
        return "the CUDA toolkit"
    pip_name = name if stem == "libcudnn" else name + suffix
    declared = next((r for reqs in build.extras.values() for r in reqs
                     if re.split(r"[~<>=!; ]", r, maxsplit=1)[0] == pip_name), None)
    return f'pip install "{declared or pip_name}"'


def locate(soname: str, dirs: list[Path]) -> str | None:
    """Where ``soname`` would come from: a pip package folder, the loader's path, or None."""
    for d in dirs:
        if (d / soname).exists():
            return str(d)
    try:
        ctypes.CDLL(soname)
        return "loader path"
    except OSError:
        return None


def required_libraries(build: OrtBuild | None = None) -> list[Library]:
    """Every non-system library each GPU provider of this build needs, found or missing."""
    build = build or ort_build()
    dirs = [d for ds in nvidia_library_dirs(build.cuda_major).values() for d in ds]
    out: list[Library] = []
    for provider, lib in PROVIDER_LIBRARIES.items():
        path = build.capi_dir / lib
        if not path.exists():
            continue
        names = [(n, "linked") for n in elf_needed(path) if not _SYSTEM.match(n)]
        if provider == CUDA and not any(n.startswith("libcudnn") for n, _ in names):
            # The CUDA provider opens cuDNN when it first needs it (any Conv), not at load time.
            names.append((f"libcudnn.so.{_cudnn_major(build)}", "loaded at run time"))
        for soname, how in names:
            out.append(Library(soname, provider, how, locate(soname, dirs), install_hint(soname, build)))
    return out


# --- the driver -------------------------------------------------------------
# CUresult codes a driver library may answer with (cuGetErrorName names them where the library has it)
CUDA_ERRORS = {1: "CUDA_ERROR_INVALID_VALUE", 3: "CUDA_ERROR_NOT_INITIALIZED", 34: "CUDA_ERROR_STUB_LIBRARY",
               35: "CUDA_ERROR_INSUFFICIENT_DRIVER", 36: "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER",
               46: "CUDA_ERROR_DEVICES_UNAVAILABLE", 100: "CUDA_ERROR_NO_DEVICE", 101: "CUDA_ERROR_INVALID_DEVICE",
               304: "CUDA_ERROR_OPERATING_SYSTEM", 803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
               804: "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", 999: "CUDA_ERROR_UNKNOWN"}


@dataclass
class Driver:
    """The NVIDIA driver library (libcuda) as the loader finds it, and the newest CUDA it says it runs."""
    library: str | None  # where it was loaded from (None: no libcuda on the loader's path)
    cuda_version: str | None  # "12.4", from cuDriverGetVersion; None where it could not be read
    error: str | None = None  # why the version could not be read: the library did not answer
    init_error: str | None = None  # cuInit's failure where the version was read (no device, ...)


def _cuda_error(lib, code: int) -> str:
    name = None
    get_name = getattr(lib, "cuGetErrorName", None)
    if get_name is not None:
        text = ctypes.c_char_p()
        try:
            if get_name(code, ctypes.byref(text)) == 0 and text.value:
                name = text.value.decode(errors="replace")
        except (OSError, ctypes.ArgumentError):
            name = None
    return f"CUDA error {code} ({name or CUDA_ERRORS.get(code, 'unknown')})"


def _loaded_from(stem: str) -> str | None:
    """The file a library loaded into this process came from, read from /proc/self/maps (Linux)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                path = line.split(maxsplit=5)[-1].strip()
                if Path(path).name.startswith(stem):
                    return path
    except OSError:
        pass
    return None


def cuda_driver() -> Driver:
    """Open libcuda and ask it which CUDA version it supports (cuDriverGetVersion needs no cuInit), then cuInit.

    A libcuda the loader finds is not a driver that runs this build: an old driver supports an older CUDA than
    onnxruntime-gpu was built for, and a stub (the CUDA toolkit's, or a container's) answers nothing; either way
    the CUDA provider fails to load later with an undefined symbol."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        where = _loaded_from("libcuda.so") or name
        get_version = getattr(lib, "cuDriverGetVersion", None)
        if get_version is None:
            return Driver(where, None, "it has no cuDriverGetVersion: not an NVIDIA driver library")
        version = ctypes.c_int(0)
        code = get_version(ctypes.byref(version))
        if code != 0 or version.value <= 0:
            return Driver(where, None, f"cuDriverGetVersion answered {_cuda_error(lib, code)}" if code != 0
                          else "cuDriverGetVersion gave no version")
        init = getattr(lib, "cuInit", None)
        code = init(0) if init is not None else 0
        return Driver(where, f"{version.value // 1000}.{version.value % 1000 // 10}", None,
                      None if code == 0 else f"cuInit answered {_cuda_error(lib, code)}")
    return Driver(None, None)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", text)[:2])


def driver_report(build: OrtBuild, driver: Driver | None = None) -> tuple[str, str | None]:
    """doctor's line on the NVIDIA driver, and what to do about it where it cannot run this build (else None)."""
    driver = driver or cuda_driver()
    needs = build.cuda_version or "?"
    if driver.library is None:
        return "NVIDIA driver: no libcuda on the loader's path (no driver installed, or not visible here)", None
    head = f"NVIDIA driver ({driver.library})"
    if driver.cuda_version is None:
        problem = (f"the NVIDIA driver library {driver.library} did not answer ({driver.error}): a stub or broken "
                   "driver, which cannot run CUDA; install or repair the NVIDIA driver, or take the stub's folder off "
                   "LD_LIBRARY_PATH")
        return f"{head}: did not answer — {driver.error}: a stub or broken driver", problem
    have, want = _version(driver.cuda_version), _version(needs)
    line = f"{head}: supports CUDA {driver.cuda_version}; this {build.package} needs {needs}"
    problem = None
    if want and have[:1] < want[:1]:
        problem = (f"the NVIDIA driver supports CUDA {driver.cuda_version}; this {build.package} needs {needs}: "
                   "update the NVIDIA driver")
        line += ": update the NVIDIA driver"
    elif want and have < want:
        line += " (runs by CUDA's minor-version compatibility; a newer driver is advised)"
    else:
        line += ": enough"
    if driver.init_error:
        line += f"; but {driver.init_error}"
        if problem is None and "NO_DEVICE" not in driver.init_error:
            problem = f"the NVIDIA driver ({driver.library}) is there but {driver.init_error}"
    return line, problem


# --- the probe --------------------------------------------------------------
def probe_model() -> bytes:
    """A serialized ONNX model (opset 17): y = Conv(x, w) with x 1×1×4×4 and a 1×1 kernel of 1.0 — so y == x.

    A Conv because the CUDA provider loads cuDNN for it, which is the library most often missing.
    """
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 1, 1], [1.0])],
    )
    # IR 8 / opset 17: readable by every onnxruntime a user may have when doctor runs
    model = helper.make_model(graph, producer_name="bias-mirror-doctor",
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


@dataclass
class Probe:
    provider: str
    ok: bool
    session_providers: list[str]
    reason: str | None  # why it did not start (None when ok)

    def line(self) -> str:
        name = SHORT.get(self.provider, self.provider)
        if self.ok:
            used = ", ".join(self.session_providers)
            return f"{name} session on a tiny Conv model: started and ran (session providers: {used})"
        return f"{name} session on a tiny Conv model: did not start — {self.reason}"


def probe(provider: str, platform: str | None = None) -> Probe:
    """Create a session with ``provider`` (then the CPU) on the probe model and run it once."""
    if provider not in ort.get_available_providers():
        advice = "install onnxruntime-gpu instead of onnxruntime" if cuda_builds_exist(platform) else NO_CUDA_ON_MACOS
        return Probe(provider, False, [], f"this onnxruntime build ({ort_build().package}) has no {provider}; {advice}")
    preload_gpu_libraries(tensorrt=provider == TRT)
    so = ort.SessionOptions()
    so.log_severity_level = 2  # warnings: ORT explains a provider that could not be created at this level
    wanted = [provider, CUDA, CPU] if provider == TRT else [provider, CPU]
    providers = [p for p in wanted if p in ort.get_available_providers()]
    with ort_output_captured() as log:  # ORT's native log, and its Python layer's "EP Error … falling back" notice
        try:
            sess = ort.InferenceSession(probe_model(), sess_options=so, providers=providers)
            x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
            y = sess.run(None, {"x": x})[0]
            error = None if np.allclose(y, x) else "the probe model computed a wrong result"
            used = sess.get_providers()
        except Exception as exc:  # noqa: BLE001 - any failure is the answer we report
            error, used = str(exc).splitlines()[0][:300], []
    ok = error is None and bool(used) and used[0] == provider
    reason = None
    if not ok:
        gpus = cuda_device_count()
        said = "".join(log)
        reason = error or failure_reason(said) or f"ORT chose {', '.join(used) or 'nothing'}"
        if gpus == 0:
            reason += " (no CUDA device is visible to the driver)"
    return Probe(provider, ok, used, reason)


def replay_check(session: ort.InferenceSession, runs: int = 3) -> str | None:
    """Run the probe model through fixed buffers with new inputs each time: None when every result is right.

    With CUDA graphs the first runs allocate and record, the later ones replay; a replay that read stale or
    moved inputs would give the previous result back."""
    fixed = FixedBinding(session, 1)
    for k in range(runs):
        x = (np.arange(16, dtype=np.float32) + 100 * k).reshape(1, 1, 4, 4)
        if not np.allclose(fixed.run({"x": x})[0], x):
            return f"run {k + 1} of {runs} gave a wrong result"
    return None


def cuda_graph_line() -> str:
    """Whether ORT's CUDA graphs record and replay here (``bench --providers cuda-graph`` needs them)."""
    what = "CUDA graphs on a tiny Conv model"
    try:
        with ort_output_captured():
            info = create_session(probe_model(), RuntimeConfig(provider="cuda", cuda_graph=True))
            if not info.cuda_graph:
                return f"{what}: not used — {info.warning or 'ORT did not enable them'}"
            error = replay_check(info.session)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer we report
        return f"{what}: failed — {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}"
    return f"{what}: failed — {error}" if error else f"{what}: recorded and replayed; 3 runs with new inputs were right"


def report_lines(with_probe: bool = True, platform: str | None = None) -> list[str]:
    """Human-readable lines for `main.py doctor`."""
    build = ort_build()
    lines = []
    if build.cuda_version is None:
        advice = (f"for the GPU path, pip uninstall {build.package} && pip install onnxruntime-gpu"
                  if cuda_builds_exist(platform) else NO_CUDA_ON_MACOS)
        lines.append(f"  {build.package} {build.version} is a CPU-only build: {advice}")
        return lines
    lines.append(f"  {build.package} {build.version} is built for CUDA {build.cuda_version} "
                 f"(cuDNN {_cudnn_major(build)}); {build.build_info}")
    libs = required_libraries(build)
    for provider in PROVIDER_LIBRARIES:
        mine = [lib for lib in libs if lib.provider == provider]
        if not mine:
            continue
        lines.append(f"  {SHORT[provider]} provider ({PROVIDER_LIBRARIES[provider]}) needs:")
        for lib in mine:
            state = f"found   {lib.soname:24s} in {lib.where}" if lib.found else f"missing {lib.soname:24s} → {lib.install}"
            lines.append(f"    {state}{'  [' + lib.how + ']' if lib.how != 'linked' else ''}")
    lines.append("  " + driver_report(build)[0])
    if build.extras:
        extras = "; ".join(f"[{k}] {', '.join(v)}" for k, v in sorted(build.extras.items()))
        lines.append(f"  the wheel's own extras: {extras}")
    if with_probe:
        cuda = probe(CUDA)
        lines.append("  " + cuda.line())
        lines.append("  " + (cuda_graph_line() if cuda.ok else "CUDA graphs: not tried (the CUDA provider did not start)"))
        lines.append("  " + probe(TRT).line())
    return lines
