"""Loading models: every bad file gives one clear error naming the file."""
import numpy as np
import onnx
import pytest

from inference.errors import BiasMirrorError
from inference.models import Classifier, Filter, load_model, read_card
from inference.runtime import CPU, CUDA, TRT, RuntimeConfig, choose_providers, create_session


def test_load_good_models(tiny_models):
    c = load_model(tiny_models["classifier"])
    f = load_model(tiny_models["darken"])
    assert isinstance(c, Classifier) and isinstance(f, Filter)
    assert c.provider == "CPU" and c.size == (32, 32) and c.labels == ("male", "female")


@pytest.mark.parametrize("case,match", [
    ("missing", "not found"),
    ("empty", "empty"),
    ("truncated", "not a readable ONNX model"),
    ("text", "not a readable ONNX model"),
    ("no_card", "no Bias Mirror model card"),
    ("bad_card", "not valid JSON"),
])
def test_bad_files(tmp_path, tiny_models, case, match):
    path = tmp_path / f"{case}.onnx"
    good = tiny_models["classifier"].read_bytes()
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        path.write_bytes(good[: len(good) // 3])
    elif case == "text":
        path.write_text("hello, I am not a model")
    elif case in ("no_card", "bad_card"):
        m = onnx.load(str(tiny_models["classifier"]))
        del m.metadata_props[:]
        if case == "bad_card":
            m.metadata_props.add(key="model_card", value="{not json")
        onnx.save(m, str(path))
    with pytest.raises(BiasMirrorError, match=match) as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_wrong_kind_and_card_graph_mismatch(tmp_path, tiny_models):
    with pytest.raises(BiasMirrorError, match="filter model, but a classifier was expected"):
        load_model(tiny_models["darken"], "classifier")
    m = onnx.load(str(tiny_models["classifier"]))
    card = read_card(tiny_models["classifier"])
    text = card.to_json().replace('"cam"', '"heatmap"')
    for p in m.metadata_props:
        if p.key == "model_card":
            p.value = text
    onnx.save(m, str(tmp_path / "x.onnx"))
    with pytest.raises(BiasMirrorError, match="heatmap"):
        load_model(tmp_path / "x.onnx")


def test_provider_choice_with_stubbed_lists():
    gpu_build = [TRT, CUDA, CPU]
    assert choose_providers("auto", gpu_build, gpus=1) == ([TRT, CUDA, CPU], None)
    assert choose_providers("cuda", gpu_build, gpus=1) == ([CUDA, CPU], None)
    assert choose_providers("cpu", gpu_build, gpus=1) == ([CPU], None)
    chosen, note = choose_providers("auto", gpu_build, gpus=0)
    assert chosen == [CPU] and "no CUDA GPU" in note
    chosen, note = choose_providers("cuda", [CPU], gpus=2)
    assert chosen == [CPU] and "onnxruntime-gpu is not installed" in note
    assert choose_providers("tensorrt", [CUDA, CPU], gpus=1) == ([CUDA, CPU], None)
    with pytest.raises(ValueError):
        choose_providers("tpu", gpu_build, 1)


def test_fallback_is_reported_not_hidden(tiny_models):
    info = create_session(tiny_models["classifier"], RuntimeConfig(provider="cuda"), gpus=0)
    assert info.provider == "CPUExecutionProvider" and "running on the CPU" in info.warning
    info = create_session(tiny_models["classifier"], RuntimeConfig(provider="cpu"))
    assert info.warning is None and info.short_provider == "CPU"


def test_a_failed_run_names_the_model_and_the_batch(tiny_models):
    c = load_model(tiny_models["classifier"])
    h, w = c.size
    with pytest.raises(BiasMirrorError, match=rf"\.onnx: classifier '{c.name}' failed on CPU with a batch of 2: ") as err:
        c.predict(np.zeros((2, h + 3, w, 3), np.uint8))  # ORT itself refuses the shape
    assert "Out of GPU memory" not in str(err.value)


def test_out_of_gpu_memory_says_what_to_try(tiny_models):
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    f = load_model(tiny_models["darken"])

    class Exhausted:
        def run(self, *_):
            raise ort_state.RuntimeException(
                "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Conv node. "
                "Status Message: Failed to allocate memory for requested buffer of size 268435456")

    f.session = Exhausted()  # what CUDA's arena raises when the GPU is full, on the session the batch goes to
    with pytest.raises(BiasMirrorError, match=r"darken.*failed on CPU with a batch of 3: .*Out of GPU memory.*--provider cpu"):
        f.apply(np.zeros((3, *f.size, 3), np.uint8))
