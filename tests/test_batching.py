"""GPU batch buckets: a face count is padded to a few fixed shapes, and the padding never reaches a result."""
import numpy as np
import pytest

from inference import device_chain as dc
from inference.batching import bucket, buckets_up_to, pad_batch
from inference.defaults import MODELS_DIR
from inference.models import load_model
from inference.runtime import CPU, CUDA, TRT, RuntimeConfig, _provider_options

from .conftest import utk_images
from inference.images import read_rgb, resize_batch


def test_buckets_are_powers_of_two_then_multiples_of_eight():
    assert [bucket(n) for n in (0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 20)] == [0, 1, 2, 4, 4, 8, 8, 16, 16, 24, 24]
    assert [bucket(n) for n in (24, 25, 33, 34, 40, 41)] == [24, 32, 40, 40, 40, 48]
    assert buckets_up_to(1) == [1] and buckets_up_to(5) == [1, 2, 4, 8] and buckets_up_to(16) == [1, 2, 4, 8, 16]
    assert buckets_up_to(40) == [1, 2, 4, 8, 16, 24, 32, 40]
    assert all(bucket(n) in buckets_up_to(n) and bucket(n) in buckets_up_to(80) for n in range(1, 81))
    x = np.arange(3 * 2, dtype=np.uint8).reshape(3, 2)
    padded = pad_batch(x, 4)
    assert padded.shape == (4, 2) and padded.dtype == np.uint8
    assert np.array_equal(padded[:3], x) and not padded[3].any()
    assert pad_batch(x, 3) is x


def test_cuda_asks_cudnn_heuristics_not_exhaustive_search():
    opts = dict(o if isinstance(o, tuple) else (o, None) for o in _provider_options([CUDA, CPU], RuntimeConfig()))
    assert opts[CUDA] == {"cudnn_conv_algo_search": "HEURISTIC", "use_tf32": "1"} and opts[CPU] is None
    opts = dict(o if isinstance(o, tuple) else (o, None) for o in _provider_options([CUDA], RuntimeConfig(tf32=False)))
    assert opts[CUDA]["use_tf32"] == "0"
    opts = dict(o if isinstance(o, tuple) else (o, None)
                for o in _provider_options([CUDA], RuntimeConfig(cudnn_conv_algo_search="EXHAUSTIVE")))
    assert opts[CUDA]["cudnn_conv_algo_search"] == "EXHAUSTIVE"


class _Spy:
    """Delegates to a session and records the batch sizes it was given."""

    def __init__(self, session):
        self.session, self.batches = session, []

    def run(self, names, feeds, *options):
        self.batches.append(len(next(iter(feeds.values()))))
        return self.session.run(names, feeds, *options)

    def __getattr__(self, name):
        return getattr(self.session, name)


@pytest.fixture(scope="module")
def faces():
    return np.stack([read_rgb(str(p), 200) for p in utk_images(5)])


@pytest.mark.parametrize("provider", [CUDA, TRT])
def test_gpu_models_pad_the_batch_and_cut_the_results_back(faces, provider):
    plain = load_model(MODELS_DIR / "resnet10_balanced.onnx", "classifier", RuntimeConfig(provider="cpu"))
    padded = load_model(MODELS_DIR / "resnet10_balanced.onnx", "classifier", RuntimeConfig(provider="cpu"))
    padded.info.provider = provider  # as if it ran there; the CPU session computes the same numbers
    padded.session = spy = _Spy(padded.session)
    x = resize_batch(faces[:3], plain.size)
    p0, c0 = plain.predict(x)
    p1, c1 = padded.predict(x)
    assert spy.batches == [4] and p1.shape == p0.shape and c1.shape == c0.shape
    np.testing.assert_allclose(p1, p0, atol=1e-5)
    np.testing.assert_allclose(c1, c0, atol=1e-4)
    assert not plain.pads_batches and plain.batch_size_for(3) == 3


def test_device_chain_pads_once_and_returns_only_real_faces(faces, monkeypatch):
    cls = load_model(MODELS_DIR / "mobilenet_fast.onnx", "classifier", RuntimeConfig(provider="cpu"))
    flt = load_model(MODELS_DIR / "engineer_filter.onnx", "filter", RuntimeConfig(provider="cpu"))
    x = resize_batch(faces, flt.size)  # 5 faces
    want = dc.DeviceChain(flt, [cls]).run(x)
    chain = dc.DeviceChain(flt, [cls])  # built on the CPU, then told the filter is on a GPU: padding on
    flt.info.provider = CUDA
    sizes = []
    real_pad = dc.pad_batch
    monkeypatch.setattr(dc, "pad_batch", lambda a, n: sizes.append(n) or real_pad(a, n))
    got = chain.run(x)
    assert sizes == [8]
    assert np.array_equal(got.filtered, want.filtered)
    probs, cams = got.predictions[cls.name]
    assert probs.shape[0] == cams.shape[0] == 5
    np.testing.assert_allclose(probs, want.predictions[cls.name][0], atol=1e-5)


def test_each_gpu_bucket_keeps_a_session_of_its_own(faces):
    m = load_model(MODELS_DIR / "mobilenet_fast.onnx", "classifier", RuntimeConfig(provider="cpu"))
    assert m.session_for(3) == (m.session, 3)  # CPU: one session, exact batches
    m.info.provider = CUDA
    first, size = m.session_for(3)
    assert first is m.session and size == 4  # the load-time session is adopted by the first bucket met
    eight, size = m.session_for(5)
    assert eight is not first and size == 8
    assert m.session_for(4)[0] is first and m.session_for(7)[0] is eight  # a shape change reuses, never re-sets up
    x = resize_batch(faces, m.size)
    np.testing.assert_allclose(m.predict(x)[0], load_model(MODELS_DIR / "mobilenet_fast.onnx", "classifier",
                                                           RuntimeConfig(provider="cpu")).predict(x)[0], atol=1e-5)


def test_device_chain_binds_each_bucket_to_its_own_session(faces):
    # The H100 run raised "IOBinding must be used with the session that created it" on the first
    # frame whose face count fell in a second bucket: the binding came from one session, the run from another.
    cls = load_model(MODELS_DIR / "mobilenet_fast.onnx", "classifier", RuntimeConfig(provider="cpu"))
    flt = load_model(MODELS_DIR / "engineer_filter.onnx", "filter", RuntimeConfig(provider="cpu"))
    x = resize_batch(faces, flt.size)
    want = dc.DeviceChain(flt, [cls]).run(x)
    chain = dc.DeviceChain(flt, [cls])
    flt.info.provider = cls.info.provider = CUDA
    for n in (3, 5, 1, 4):  # buckets 4, 8, 1, 4
        got = chain.run(x[:n])
        np.testing.assert_allclose(got.predictions[cls.name][0], want.predictions[cls.name][0][:n], atol=1e-5)
        assert np.array_equal(got.filtered, want.filtered[:n])
    assert sorted(cls._by_batch) == sorted(flt._by_batch) == [1, 4, 8]


def test_prepare_makes_every_gpu_bucket_before_the_first_frame():
    from inference.pipeline import FramePipeline, PipelineConfig

    cls = load_model(MODELS_DIR / "mobilenet_fast.onnx", "classifier", RuntimeConfig(provider="cpu"))
    flt = load_model(MODELS_DIR / "engineer_filter.onnx", "filter", RuntimeConfig(provider="cpu"))
    pipe = FramePipeline([cls], flt, None, PipelineConfig(max_faces=20))
    assert pipe.prepare() == 0 and not cls._by_batch  # the CPU needs none
    cls.info.provider = flt.info.provider = CUDA
    cls.session = spy = _Spy(cls.session)
    # the classifier's for the crops and their references in one call (2 × 20 rows), the filter's for the faces
    assert pipe.prepare() == 8 + 6
    assert sorted(cls._by_batch) == [1, 2, 4, 8, 16, 24, 32, 40] and sorted(flt._by_batch) == [1, 2, 4, 8, 16, 24]
    assert spy.batches == [1]  # the load-time session took the first bucket; each bucket ran once
    assert cls.session_for(20)[0] is cls._by_batch[24] and cls.session_for(34)[0] is cls._by_batch[40]


def test_a_gpu_provider_that_could_not_start_is_named_with_every_one_tried(monkeypatch):
    """Only the first was named: "TensorRT could not start" for a run whose CUDA had failed too, with nowhere to
    read why."""
    from types import SimpleNamespace

    from inference import runtime

    monkeypatch.setattr(runtime, "choose_providers", lambda *a: ([TRT, CUDA, CPU], None))
    monkeypatch.setattr(runtime, "preload_gpu_libraries", lambda **k: None)
    monkeypatch.setattr(runtime.ort, "InferenceSession", lambda *a, **k: SimpleNamespace(get_providers=lambda: [CPU]))
    info = runtime.create_session(b"model", RuntimeConfig(provider="auto"), gpus=1)
    assert info.warning == "TensorRT and CUDA could not start; running on CPU (`python main.py doctor` says why)"
    monkeypatch.setattr(runtime, "choose_providers", lambda *a: ([TRT, CUDA, CPU], None))
    monkeypatch.setattr(runtime.ort, "InferenceSession", lambda *a, **k: SimpleNamespace(get_providers=lambda: [CUDA]))
    assert runtime.create_session(b"model", RuntimeConfig(provider="auto"), gpus=1).warning.startswith(
        "TensorRT could not start; running on CUDA")
