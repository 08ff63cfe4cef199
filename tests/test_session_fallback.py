"""Falling back from a GPU provider that does not start (issue #11's review of the GPU path).

ORT's own Python fallback retried a session whose TensorRT failed on CUDA and the CPU with no provider options at all
(cuDNN's exhaustive search, TF32 on whatever was asked), and moved a session whose run failed with EP_FAIL to the
CPU unseen. The runtime now turns it off and falls back itself, each provider with its options; the app's warning,
whose ORT output is left uncaptured, gets its reasons from one captured probe.
"""
from __future__ import annotations

import argparse
import os
import shutil
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from inference import runtime
from inference.errors import BiasMirrorError
from inference.runtime import CPU, CUDA, TRT, RuntimeConfig

REAL_SESSION = ort.InferenceSession  # the tests below stand in for it; the app's models need real ones
TRT_LIBRARY = "libnvinfer.so.10: cannot open shared object file: No such file or directory"
CUDA_LIBRARY = "libcudnn.so.9: cannot open shared object file: No such file or directory"
TRT_RAISES = ("/onnxruntime_src/onnxruntime/python/onnxruntime_pybind_state.cc:729 void onnxruntime::python::"
              "RegisterTensorRTPluginsAsCustomOps(PySessionOptions&, const onnxruntime::ProviderOptions&) Please "
              "install TensorRT libraries as mentioned in the GPU requirements page")
CUDA_RAISES_REASON = "CUDA_PATH is set but CUDA wasnt able to be loaded"
CUDA_RAISES = f"/onnxruntime_src/onnxruntime/python/onnxruntime_pybind_state.cc:1000 {CUDA_RAISES_REASON}"


def _native_log(library: str, why: str) -> None:
    """What ORT's C++ side writes to fd 2 when a provider's library does not load (in colour)."""
    os.write(2, (f"\x1b[1;31m2026-12-07 [E:onnxruntime:Default, provider_bridge_ort.cc:2430 operator()] FAIL : Failed "
                 f"to load library /x/capi/{library} with error: {why}\n\x1b[m\n").encode())


class FakeOrt:
    """ORT's InferenceSession as its Python layer behaves where GPU providers fail: TensorRT's library does not load
    and its session raises; CUDA's does not load and it is left out with a log line ("skipped") or it raises. With
    ``enable_fallback`` on (ORT's default) a failed session is made again on [CUDA, CPU] without options, as
    onnxruntime_inference_collection.InferenceSession does. ``made`` lists every (providers, options) created."""

    def __init__(self, cuda: str | None):
        self.cuda, self.made, self.fallback_asked = cuda, [], []

    def __call__(self, model, sess_options=None, providers=None, provider_options=None, **kwargs):
        fallback = int(kwargs.get("enable_fallback", 1)) == 1
        self.fallback_asked.append(fallback)
        try:
            return self._create(providers)
        except RuntimeError:
            if not fallback:
                raise
            return self._create([CUDA, CPU])

    def _create(self, providers):
        names = [p[0] if isinstance(p, tuple) else p for p in providers]
        self.made.append((names, {p[0]: p[1] for p in providers if isinstance(p, tuple)}))
        if TRT in names:
            _native_log("libonnxruntime_providers_tensorrt.so", TRT_LIBRARY)
            raise RuntimeError(TRT_RAISES)
        if CUDA in names and self.cuda == "raises":
            raise RuntimeError(CUDA_RAISES)
        if CUDA in names and self.cuda == "skipped":
            _native_log("libonnxruntime_providers_cuda.so", CUDA_LIBRARY)
            names = [p for p in names if p != CUDA]
        return SimpleNamespace(get_providers=lambda: names)


@pytest.fixture
def gpu_machine(monkeypatch):
    """A machine with a GPU and onnxruntime-gpu, ORT's session creation stood in for by ``install(FakeOrt)``."""
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [TRT, CUDA, CPU])
    monkeypatch.setattr(runtime, "preload_gpu_libraries", lambda tensorrt=False: [])
    monkeypatch.setattr(runtime, "cuda_device_count", lambda: 1)

    def install(session):
        monkeypatch.setattr(runtime.ort, "InferenceSession", session)
        return session
    return install


def _project_options(provider: str, cfg: RuntimeConfig) -> dict:
    return dict(runtime._provider_options([provider], cfg)[0][1])


def test_tensorrt_that_does_not_start_falls_back_to_cuda_with_the_projects_cuda_options(gpu_machine, tiny_models,
                                                                                     tmp_path):
    """ORT's own fallback made the CUDA session with provider_options None: cuDNN's exhaustive search and ORT's
    TF32 default, whatever RuntimeConfig said."""
    fake = gpu_machine(FakeOrt(cuda=None))
    cfg = RuntimeConfig(provider="tensorrt", trt_cache_dir=str(tmp_path / "trt"))
    info = runtime.create_session(tiny_models["classifier"], cfg)
    assert info.provider == CUDA
    cuda_made = [options for names, options in fake.made if names[0] == CUDA]
    assert cuda_made == [{CUDA: _project_options(CUDA, cfg)}], fake.made
    assert not any(fake.fallback_asked), "ORT's own fallback was left on"
    assert info.warning.startswith(f"TensorRT ({TRT_LIBRARY}) could not start; running on CUDA")


@pytest.mark.parametrize("cuda", ["skipped", "raises"])
def test_tensorrt_and_cuda_that_do_not_start_end_on_the_cpu_with_both_reasons(gpu_machine, tiny_models, tmp_path,
                                                                              cuda, capfd):
    """Each provider is tried with its own options, then the CPU; the warning says why each failed, whether ORT
    said it in its log (a library that did not load) or in the error it raised (ORT's fallback had raised that
    error from the retry, and the model did not load at all)."""
    fake = gpu_machine(FakeOrt(cuda=cuda))
    cfg = RuntimeConfig(provider="auto", trt_cache_dir=str(tmp_path / "trt"))
    info = runtime.create_session(tiny_models["classifier"], cfg)
    assert info.provider == CPU
    cuda_why = CUDA_LIBRARY if cuda == "skipped" else CUDA_RAISES_REASON
    assert info.warning == (f"TensorRT ({TRT_LIBRARY}) and CUDA ({cuda_why}) could not start; running on CPU "
                            "(`python main.py doctor` says why)")
    cuda_asked = [options.get(CUDA) for names, options in fake.made if CUDA in names]
    assert cuda_asked and all(o == _project_options(CUDA, cfg) for o in cuda_asked), fake.made
    assert fake.made[-1][0] == ([CPU] if cuda == "raises" else [CUDA, CPU])
    assert info.reasons == {TRT: TRT_LIBRARY, CUDA: cuda_why}
    assert "onnxruntime:Default" not in capfd.readouterr().err  # ORT's lines went to the debug log


def test_a_run_that_fails_on_its_provider_is_an_error_not_a_silent_move_to_the_cpu(tiny_models):
    """With ORT's run-time fallback a run failing with EP_FAIL was retried on the CPU: results came back while the
    model still said it ran on CUDA."""
    from inference.models import load_model

    model = load_model(tiny_models["classifier"], "classifier", RuntimeConfig(provider="cpu", threads=1))
    real = model.session._sess  # ORT's C session: its run fails as a failing provider's does

    class FailingRun:
        def run(self, *args):
            raise ort_state.EPFail("[ONNXRuntimeError] : 11 : EP_FAIL : a provider failed in run")

        def __getattr__(self, name):
            return getattr(real, name)

    model.session._sess = FailingRun()
    h, w = model.size
    with pytest.raises(BiasMirrorError, match=f"classifier '{model.name}' failed on {model.provider} with a batch of "
                                              "2: .*EP_FAIL"):
        model.predict(np.zeros((2, h, w, 3), np.uint8))


def test_the_apps_fallback_warning_says_why_from_one_captured_probe(gpu_machine, tiny_models, tmp_path, monkeypatch,
                                                                    capfd):
    """The app leaves ORT's output uncaptured (its workers print while models load), so its warning had said "CUDA
    could not start; running on CPU" and no more, where run, audit and bench give the reason."""
    import inference.defaults
    from gui.app_cli import add_arguments, load_models

    def cuda_skipped(model, sess_options=None, providers=None, **kwargs):
        fake(model, sess_options, providers, **kwargs)  # the log line, where CUDA is asked
        return REAL_SESSION(model, sess_options=sess_options, providers=[CPU])  # the models need a real session

    fake = FakeOrt(cuda="skipped")
    gpu_machine(cuda_skipped)
    folder = tmp_path / "models"
    folder.mkdir()
    copied = ("classifier", "darken")
    for model in copied:
        shutil.copy(tiny_models[model], folder)
    monkeypatch.setattr(inference.defaults, "MODELS_DIR", folder)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    classifiers, filters, errors, chosen = load_models(parser.parse_args(["--provider", "cuda"]))
    models = [*classifiers, *filters]
    assert len(models) == len(copied) and not errors
    assert all(m.info.warning == f"CUDA ({CUDA_LIBRARY}) could not start; running on CPU (`python main.py doctor` "
                                 "says why)" for m in models), [m.info.warning for m in models]
    said = capfd.readouterr().err
    # the models' own ORT lines reached the console, uncaptured; the probe's alone were captured
    assert said.count("libonnxruntime_providers_cuda.so with error") == len(models), said
