"""The I/O-bound filter → classifier hand-over gives the plain path's numbers (checked on the CPU provider)."""
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest

from inference.defaults import MODELS_DIR
from inference.device_chain import DeviceChain, resize_model
from inference.images import read_rgb, resize_batch
from inference.models import load_model
from inference.pipeline import FramePipeline, PipelineConfig
from inference.runtime import CPU, CUDA

from .conftest import make_classifier, make_filter, utk_images


@pytest.fixture(scope="module")
def faces():
    return np.stack([read_rgb(str(p), 200) for p in utk_images(24)])


@pytest.mark.parametrize("src,dst", [(200, 112), (256, 112), (200, 64), (64, 112), (32, 48)])
def test_resize_graph_resamples_like_the_host(faces, src, dst):
    x = resize_batch(faces, (src, src))
    got = ort.InferenceSession(resize_model(src, dst), providers=[CPU]).run(None, {"image": x})[0]
    want = resize_batch(x, (dst, dst))
    diff = np.abs(got.astype(int) - want.astype(int))
    assert got.shape == want.shape and got.dtype == np.uint8
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # float summation order may flip a rounding tie


def test_the_chains_resize_runs_in_full_float32_not_tf32(faces, tmp_path, monkeypatch):
    """On a GPU the CUDA provider's default TF32 products keep 10 bits of each resize weight. Emulated here
    (operands rounded to 10 mantissa bits), 64 → 112 px moved 2.8 % of pixels a grey level from the host's
    resize against 0.07 % in float32; so the chain's resize sessions ask for full float32."""
    from inference import device_chain

    asked = []
    real = device_chain.create_session
    monkeypatch.setattr(device_chain, "create_session", lambda model, cfg: asked.append(cfg) or real(model, cfg))
    chain = DeviceChain(load_model(make_filter(tmp_path / "f.onnx", size=32)),
                        [load_model(make_classifier(tmp_path / "c.onnx", size=48))])  # 32 → 48 px: a resize
    small = resize_batch(faces[:2], chain.filter.size)
    chain.run(small, lambda filtered: None)
    assert asked and all(c.tf32 is False for c in asked)


def test_pipeline_through_the_device_chain_matches_the_plain_path():
    models = MODELS_DIR
    classifiers = [load_model(models / n, "classifier") for n in ("resnet10_unbalanced.onnx", "mobilenet_fast.onnx")]
    flt = load_model(models / "engineer_filter.onnx", "filter")
    assert flt.size[0] != classifiers[0].size[0]  # so the on-device resize is exercised
    paths = utk_images(16)
    plain = FramePipeline(classifiers, flt, None, PipelineConfig(device_chain="off"))
    bound = FramePipeline(classifiers, flt, None, PipelineConfig(device_chain="on"))
    assert plain.device_chain() is None and bound.device_chain() is not None
    assert FramePipeline(classifiers, flt).device_chain() is None  # auto: not on the CPU, where it saves nothing
    worst = 0.0
    for (_, a, _), (_, b, _) in zip(plain.process_images(paths), bound.process_images(paths)):
        fa, fb = a.faces[0], b.faces[0]
        assert np.array_equal(fa.filtered.crop, fb.filtered.crop)
        for name in fa.filtered.classifiers:
            worst = max(worst, abs(fa.filtered.classifiers[name].p_female - fb.filtered.classifiers[name].p_female))
            assert fa.original.classifiers[name].p_female == fb.original.classifiers[name].p_female
    assert worst < 5e-3
    chain = bound.device_chain()
    bound.classifiers = classifiers[:1]  # models swapped between frames: a new chain
    assert bound.device_chain() is not chain and [m.name for m in bound.device_chain().classifiers] == [classifiers[0].name]


def test_a_conditional_filter_through_the_device_chain_runs_the_condition_chosen(tmp_path, tiny_models):
    cls = [load_model(make_classifier(tmp_path / "c.onnx", size=48))]  # 32 → 48 px: the chain's resize too
    flt = load_model(tiny_models["conditional"], "filter")
    paths = utk_images(5)
    for condition in ("darker", "lighter"):
        plain = FramePipeline(cls, flt, None, PipelineConfig(device_chain="off", filter_condition=condition))
        bound = FramePipeline(cls, flt, None, PipelineConfig(device_chain="on", filter_condition=condition))
        assert bound.device_chain() is not None
        for (_, a, _), (_, b, _) in zip(plain.process_images(paths), bound.process_images(paths)):
            assert np.array_equal(a.faces[0].filtered.crop, b.faces[0].filtered.crop)
            assert (a.faces[0].skin_shift.delta_l > 0) == (condition == "lighter")
            assert abs(a.faces[0].filtered.classifiers["tiny-classifier"].p_female
                       - b.faces[0].filtered.classifiers["tiny-classifier"].p_female) < 5e-3


def test_chain_only_where_every_model_is_on_one_device():
    def fake(provider, condition=None):
        return SimpleNamespace(info=SimpleNamespace(provider=provider, cuda_graph=False), condition=condition)

    assert DeviceChain.usable(fake(CUDA), [fake(CUDA), fake(CUDA)])
    assert not DeviceChain.usable(fake(CUDA), [fake(CUDA), fake(CPU)])  # one fell back to the CPU
    assert DeviceChain.usable(fake(CUDA, condition=object()), [fake(CUDA)])  # a condition is bound beside the faces
    assert not DeviceChain.usable(None, [fake(CUDA)])


def test_a_failed_run_in_the_chain_names_the_model(monkeypatch):
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    from inference.errors import BiasMirrorError

    classifiers = [load_model(MODELS_DIR / "mobilenet_fast.onnx", "classifier")]
    flt = load_model(MODELS_DIR / "engineer_filter.onnx", "filter")
    chain = DeviceChain(flt, classifiers)

    def exhausted(*_):
        raise ort_state.RuntimeException("CUDA failure 2: out of memory ; GPU=0")

    monkeypatch.setattr(chain, "_on_device", exhausted)
    flt.info.provider = CUDA  # where the chain runs: GPU advice is given of a GPU provider's run alone
    with pytest.raises(BiasMirrorError, match=r"engineer_filter\.onnx: filter .* batch of 2: .*Out of GPU memory"):
        chain.run(np.zeros((2, *flt.size, 3), np.uint8))


def test_the_chain_feeds_the_models_by_the_names_their_cards_give(tmp_path, tiny_models):
    """It fed every model as "image": a card naming its input "pixels" runs on the CPU, and failed mid-run in
    the chain, the path a GPU takes."""
    from tests.test_models import _input_renamed, _set, rewritten

    renamed = {kind: rewritten(tiny_models[kind], tmp_path / f"{kind}.onnx", _set(["inputs", 0, "name"], "pixels"),
                               _input_renamed) for kind in ("classifier", "darken")}
    cls, flt = [load_model(renamed["classifier"], "classifier")], load_model(renamed["darken"], "filter")
    paths = utk_images(3)
    plain = FramePipeline(cls, flt, None, PipelineConfig(device_chain="off"))
    bound = FramePipeline(cls, flt, None, PipelineConfig(device_chain="on"))
    for (_, a, _), (_, b, _) in zip(plain.process_images(paths), bound.process_images(paths)):
        assert np.array_equal(a.faces[0].filtered.crop, b.faces[0].filtered.crop)
        name = cls[0].name
        assert abs(a.faces[0].filtered.classifiers[name].p_female - b.faces[0].filtered.classifiers[name].p_female) < 5e-3
