"""The device chain with classifiers of several input sizes gives the plain path's numbers (checked on the CPU
provider). The host brings the filter's output to the crop size and then to each classifier's; the chain had
resized it straight to each classifier's size, which moved ΔP(female) by up to 0.05 where a classifier was not
at the crop's size."""
import numpy as np
import onnxruntime as ort
import pytest

from inference.defaults import MODELS_DIR
from inference.device_chain import DeviceChain, resize_model
from inference.images import read_rgb, resize_batch
from inference.models import load_model
from inference.pipeline import FramePipeline, PipelineConfig
from inference.runtime import CPU

from .conftest import make_classifier, make_filter, utk_images

AGREEMENT = 5e-3  # docs/performance.md: the GPU path gives the CPU path's P(female) within this


@pytest.fixture(scope="module")
def shipped():
    return {"filter": load_model(MODELS_DIR / "engineer_filter.onnx", "filter"),
            "resnet": load_model(MODELS_DIR / "resnet10_unbalanced.onnx", "classifier")}


@pytest.fixture(scope="module", params=["filter+resnet", "twice-resnet"])
def mixed_sizes(request, tmp_path_factory, shipped):
    """The shipped ResNet-10 beside a classifier at the filter's size and one larger than both, which sizes the
    crops: one classifier at the crop's size, one at the filter's, one at neither. The crop is the sum of the
    filter's and the ResNet's sizes, or twice the ResNet's (OpenCV's whole-factor shrink to it)."""
    d = tmp_path_factory.mktemp("sizes")
    filter_px, resnet_px = shipped["filter"].size[0], shipped["resnet"].size[0]
    crop_px = filter_px + resnet_px if request.param == "filter+resnet" else 2 * resnet_px
    classifiers = [shipped["resnet"],
                   load_model(make_classifier(d / "at_filter.onnx", size=filter_px, name="at-filter-size"), "classifier"),
                   load_model(make_classifier(d / "at_crop.onnx", size=crop_px, seed=1, name="at-crop-size"), "classifier")]
    identity = load_model(make_filter(d / "identity.onnx", size=filter_px, gain=1.0, name="identity"), "filter")
    return classifiers, identity


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_a_whole_factor_shrink_on_the_device_rounds_as_opencv_does(factor):
    """OpenCV averages these in integers (by 2: ties up), which the graph's sums of ones then do exactly."""
    dst = 56
    x = np.stack([read_rgb(str(p), dst * factor) for p in utk_images(8)])
    got = ort.InferenceSession(resize_model(dst * factor, dst), providers=[CPU]).run(None, {"image": x})[0]
    want = resize_batch(x, (dst, dst))
    assert np.array_equal(got, want), f"{(got != want).mean():.1%} of values off"


def _both_paths(classifiers, flt, paths):
    """Each face as the plain path and as the device chain analyse it."""
    plain = FramePipeline(classifiers, flt, None, PipelineConfig(device_chain="off"))
    bound = FramePipeline(classifiers, flt, None, PipelineConfig(device_chain="on"))
    assert plain.device_chain() is None and bound.device_chain() is not None
    assert len({plain.crop_size, flt.size[0], *(m.size[0] for m in classifiers)}) == 3  # the sizes this is about
    return [(a.faces[0], b.faces[0]) for (_, a, _), (_, b, _) in zip(plain.process_images(paths),
                                                                     bound.process_images(paths))]


def test_through_an_identity_filter_the_chain_finds_no_change_at_mixed_sizes(mixed_sizes):
    """The filtered face is the reference's pixels, so ΔP is the resampling's alone: none on the plain path,
    and on the chain only what its resize graphs' float sums round differently from OpenCV's."""
    classifiers, identity = mixed_sizes
    for plain, chained in _both_paths(classifiers, identity, utk_images(24)):
        assert np.array_equal(plain.filtered.crop, chained.filtered.crop)
        for name, dp in plain.delta_p_female.items():
            assert dp == 0.0, name
            assert abs(chained.delta_p_female[name]) < AGREEMENT, f"{name}: ΔP {chained.delta_p_female[name]:+.4f}"


def test_with_the_shipped_filter_chain_and_plain_path_agree_at_mixed_sizes(shipped, mixed_sizes):
    classifiers, _ = mixed_sizes
    for plain, chained in _both_paths(classifiers, shipped["filter"], utk_images(16)):
        assert np.array_equal(plain.filtered.crop, chained.filtered.crop)
        for name in plain.delta_p_female:
            assert plain.original.classifiers[name].p_female == chained.original.classifiers[name].p_female
            assert abs(plain.filtered.classifiers[name].p_female
                       - chained.filtered.classifiers[name].p_female) < AGREEMENT, name
            assert abs(plain.delta_p_female[name] - chained.delta_p_female[name]) < AGREEMENT, name


class _Recording:
    """A classifier's session that keeps the image each I/O-bound run of it is given (the chain's runs)."""

    def __init__(self, session, image_name: str, seen: list[np.ndarray]):
        self.session, self.image_name, self.seen = session, image_name, seen

    def io_binding(self):
        binding = self.session.io_binding()
        bind = binding.bind_ortvalue_input

        def recorded(name, value):
            if name == self.image_name:
                self.seen.append(value.numpy())
            return bind(name, value)

        binding.bind_ortvalue_input = recorded
        return binding

    def __getattr__(self, name):
        return getattr(self.session, name)


def test_each_classifier_reads_the_filtered_crop_at_its_own_size(shipped, mixed_sizes, monkeypatch):
    """Pixel by pixel: what the chain feeds each classifier is the pipeline's filtered crop resized to the
    classifier's size, as the plain path feeds it, up to a grey level where float sums round a tie apart."""
    classifiers, _ = mixed_sizes
    seen: dict[str, list[np.ndarray]] = {m.name: [] for m in classifiers}
    for model in classifiers:
        real = model.session_for
        monkeypatch.setattr(model, "session_for", lambda n, model=model, real=real: (
            _Recording(real(n)[0], model.image_name, seen[model.name]), real(n)[1]))
    pipe = FramePipeline(classifiers, shipped["filter"], None, PipelineConfig(device_chain="on"))
    crops = np.stack([r.faces[0].filtered.crop for _, r, _ in pipe.process_images(utk_images(6))])
    for model in classifiers:
        fed = np.concatenate(seen[model.name])[:len(crops)]  # the images' faces may share a batch, padded or not
        want = resize_batch(crops, model.size)
        diff = np.abs(fed.astype(int) - want.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (
            f"{model.name} ({model.size[0]} px): {(diff > 0).mean():.1%} of pixels off, by up to {diff.max()}")


def _resizes_run(chain: DeviceChain, monkeypatch) -> list[tuple[int, int]]:
    """The (from, to) sizes of each resize the chain runs, in order."""
    runs: list[tuple[int, int]] = []
    sizes = {}
    make = chain._resizer

    def resizer(src, dst):
        session = make(src, dst)
        sizes[id(session)] = (src, dst)
        return session

    run = chain._on_device

    def on_device(session, feeds, output):
        if id(session) in sizes:
            runs.append(sizes[id(session)])
        return run(session, feeds, output)

    monkeypatch.setattr(chain, "_resizer", resizer)
    monkeypatch.setattr(chain, "_on_device", on_device)
    return runs


@pytest.mark.parametrize("at_filter_size", [False, True])
def test_one_classifier_size_costs_no_resize_beyond_the_one_to_it(tmp_path, shipped, monkeypatch, at_filter_size):
    """Two classifiers of the crop's size: one resize from the filter's size for both, or none at all when the
    filter's output already is that size."""
    flt = shipped["filter"]
    px = flt.size[0] if at_filter_size else shipped["resnet"].size[0]
    classifiers = [load_model(make_classifier(tmp_path / f"c{i}.onnx", size=px, seed=i, name=f"c{i}"), "classifier")
                   for i in range(2)]
    pipe = FramePipeline(classifiers, flt, None, PipelineConfig(device_chain="on", min_crop=px))
    runs = _resizes_run(pipe.device_chain(), monkeypatch)
    list(pipe.process_images(utk_images(1)))
    assert runs == ([] if at_filter_size else [(flt.size[0], px)])
