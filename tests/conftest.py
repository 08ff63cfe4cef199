"""Shared fixtures: tiny random-weight ONNX models exported by our own exporter, and the real data path."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import inference  # noqa: F401  (before any test module imports onnxruntime: it switches ORT's telemetry off)
from inference.datasets.utkface import layout_problem

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
UTK_ROOT = (REPO.parent / "shared" / "datasets" / "utkface" / "UTKFace").resolve()


def _utf8_text(value):
    """``value`` with every string UTF-8 encodable: a name that is not UTF-8 (os.fsdecode's surrogates) as \\xNN."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            try:
                return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:  # a surrogate no file name's byte made
                return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_utf8_text(k): _utf8_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_utf8_text(v) for v in value)
    return value


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(config, report):
    """Under pytest-xdist a worker sends each report to the controller through execnet, which refuses a string that is
    not UTF-8: a test whose captured log names a file called b"Jos\\xe9" had crashed its worker and lost the rest of
    the worker's tests (INTERNALERROR DumpError). What the report says, with such a name shown as \\xe9."""
    data = yield
    return _utf8_text(data) if data is not None else data


@pytest.hookimpl(tryfirst=True)
def pytest_warning_recorded(warning_message):
    """The same for a warning a worker passes on (before xdist's own hook sends it): its text, \\xNN for such bytes."""
    text = str(warning_message.message)
    if _utf8_text(text) != text:
        warning_message.message = _utf8_text(text)


@pytest.fixture(autouse=True)
def _app_data_in_tmp(tmp_path_factory, monkeypatch):
    """The app keeps its log in the platform's app-data folder (XDG_DATA_HOME on Linux), and dataset digests,
    thumbnails and TensorRT engines in its cache (XDG_CACHE_HOME): in tests, folders shared by the session's tests,
    never the user's; and so are the temporary files of the commands the tests start (TMPDIR)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "app-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    # the commands the tests start keep their temporary files there too: torchrun had left a /tmp/torchelastic_*
    # folder per run (835 after a few suites); one folder for the session, so torch.compile's cache is shared
    temporary = tmp_path_factory.getbasetemp() / "tmp"
    temporary.mkdir(exist_ok=True)
    monkeypatch.setenv("TMPDIR", str(temporary))


@pytest.fixture(autouse=True)
def _gc_on_gui_thread(request):
    """Tests with a Qt window collect garbage on the GUI thread only, as the app does (gui.gui_thread_gc): a
    source-opening thread's collection destroying an earlier test's window had frozen the suite."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("qapp")
    from gui.gui_thread_gc import garbage_collected_on_gui_thread

    with garbage_collected_on_gui_thread():
        yield


def own_pattern(rng: np.random.Generator, side: int, amplitude: float = 15.0) -> np.ndarray:
    """A smooth grey pattern of its own for one synthetic image (side×side×1, float32, about ±amplitude): images
    made of one colour and noise are one photograph to the near-identical check (inference.datasets.near_identical),
    which would put them in one split, or leave them out where their labels differ."""
    coarse = rng.normal(0, amplitude, (4, 4)).astype(np.float32)
    return cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)[:, :, None]


def require_utk() -> Path:
    """The shared UTKFace copy; a test that needs it fails (not skips) when it is missing, or holds no UTKFace-named
    image: a copy unpacked one level too deep (UTKFace/UTKFace/*.jpg) had passed, and its tests then failed with
    "need at least one array to stack", naming neither the folder nor the cause."""
    problem = layout_problem(UTK_ROOT)
    if problem:
        pytest.fail(f"UTKFace not usable: {problem} (tests read ../shared/datasets/utkface/UTKFace)")
    return UTK_ROOT


def utk_images(n: int, race: str | None = None, min_age: int = 18) -> list[Path]:
    root = require_utk()
    out = []
    for name in sorted(os.listdir(root)):
        parts = name.split("_")
        if len(parts) != 4 or not parts[0].isdigit() or int(parts[0]) < min_age:
            continue
        if race is not None and parts[2] != race:
            continue
        out.append(root / name)
        if len(out) == n:
            break
    return out


def make_diverged_classifier(path) -> str:
    """A classifier whose training diverged: NaN P(female) and a NaN CAM for every face."""
    import torch

    from inference.card import classifier_card
    from training.export import export

    class Diverged(torch.nn.Module):
        def forward(self, image):
            nan = image.float().mean(dim=(1, 2, 3)) * float("nan")
            return torch.stack([nan, nan], dim=1), nan[:, None, None, None].expand(-1, 2, 4, 4)

    card = classifier_card("diverged", 32, ["male", "female"], (4, 4), "NaN (test)", {"dataset": "none"}, {})
    export(Diverged(), [torch.zeros(2, 32, 32, 3, dtype=torch.uint8)], ["image"], ["probs", "cam"], path, card)
    return str(path)


def make_classifier(path: Path, size: int = 32, seed: int = 0, name: str = "tiny-classifier",
                    labels: tuple[str, str] = ("male", "female"), dataset: str = "none") -> Path:
    import torch

    from inference.card import classifier_card
    from training.nets.cam_classifier import CamClassifier, ClassifierConfig
    from training.tasks.classifier_report import export_classifier

    torch.manual_seed(seed)
    net = CamClassifier(ClassifierConfig(arch="resnet", size=size, width=8)).eval()
    card = classifier_card(name, size, list(labels), net.cam_grid(), "test model", {"dataset": dataset}, {})
    export_classifier(net, size, path, card)
    return path


def labelled_folder(folder: Path, n: int, no_age: int, split: str | None = None) -> Path:
    """``n`` flat grey faces with a labels.csv, genders alternating; the first ``no_age`` have no age, the rest 30."""
    folder.mkdir(parents=True)
    rows = ["file,gender,age" + (",split" if split else "")]
    for i in range(n):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((40, 40, 3), 40 + (200 * i) // n, np.uint8))
        rows.append(f"f{i}.png,{'female' if i % 2 else 'male'},{'' if i < no_age else 30}" + (f",{split}" if split else ""))
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


class _Gain:
    """A 'filter' that scales brightness by a known gain: the truth for ΔITA tests."""

    def __new__(cls, gain: float):
        import torch

        class Gain(torch.nn.Module):
            def forward(self, x):  # x in [-1, 1]
                return (x + 1) * gain - 1

        return Gain()


def make_filter(path: Path, size: int = 32, gain: float = 0.8, name: str = "tiny-filter") -> Path:
    import torch

    from inference.card import filter_card
    from training.export import ImageToImageGraph, export

    graph = ImageToImageGraph(_Gain(gain))
    card = filter_card(name, size, "A->B", f"brightness × {gain} (test)", {"dataset": "none"}, {})
    export(graph, [torch.zeros(1, size, size, 3, dtype=torch.uint8)], ["image"], ["filtered"], path, card)
    return path


def make_conditional_filter(path: Path, size: int = 32, gains: dict[str, float] | None = None,
                            name: str = "tiny-conditional") -> Path:
    """A filter with a ``condition`` input: brightness × the gain of the condition asked for (one-hot rows)."""
    import torch

    from inference.card import filter_card
    from training.export import ImageToImageGraph, export

    gains = gains or {"darker": 0.8, "lighter": 1.2}

    class ConditionalGain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("gains", torch.tensor(list(gains.values()), dtype=torch.float32))

        def forward(self, x, condition):  # x in [-1, 1]
            return (x + 1) * (condition * self.gains).sum(1).view(-1, 1, 1, 1) - 1

    card = filter_card(name, size, "A->B", "brightness × the condition's gain (test)", {"dataset": "none"}, {},
                       condition_labels=list(gains))
    export(ImageToImageGraph(ConditionalGain(), conditional=True),
           [torch.zeros(1, size, size, 3, dtype=torch.uint8), torch.zeros(1, len(gains))], ["image", "condition"],
           ["filtered"], path, card)
    return path


def make_generator(path: Path, latent: int = 8, size: int = 16, name: str = "tiny-gen") -> Path:
    """A generator (latent → face): one linear layer, random weights."""
    import torch

    from inference.card import generator_card
    from training.export import GeneratorGraph, export

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(latent, 3 * size * size)

        def forward(self, z):
            return torch.tanh(self.fc(z)).view(-1, 3, size, size)

    torch.manual_seed(0)
    export(GeneratorGraph(Tiny()), [torch.zeros(1, latent)], ["z"], ["image"], path,
           generator_card(name, latent, size, "test", {"dataset": "none"}, {}))
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    return {
        "classifier": make_classifier(d / "c1.onnx", seed=0, name="tiny-a"),
        "classifier2": make_classifier(d / "c2.onnx", seed=1, name="tiny-b"),
        "darken": make_filter(d / "darken.onnx", gain=0.8, name="darken"),
        "identity": make_filter(d / "identity.onnx", gain=1.0, name="identity"),
        "conditional": make_conditional_filter(d / "conditional.onnx"),
        "generator": make_generator(d / "generator.onnx"),
    }


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """main.main's exit status, stdout and stderr (an argparse refusal, SystemExit 2, gives its code); never a
    traceback."""
    import main

    try:
        code = main.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def faces_dir(tmp_path) -> Path:
    """A folder of six real adult faces (UTKFace), this test's own."""
    import shutil

    d = tmp_path / "faces"
    d.mkdir()
    for p in utk_images(6):
        shutil.copy(p, d / p.name)
    return d


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def tiny_utk(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "UTKFace"
    root.mkdir()
    for i in range(160):
        gender, race = i % 2, (i // 2) % 5
        # the label is visible (brighter for one gender) so a few steps can learn something
        img = rng.integers(0, 60, (40, 40, 3), dtype=np.uint8) + (120 if gender else 40)
        cv2.imwrite(str(root / f"{20 + i % 40}_{gender}_{race}_2017010100{i:07d}.jpg.chip.jpg"), img)
    (root / "bad_name.jpg.chip.jpg").write_bytes(b"not a jpeg")
    (root / "30_1_1_20170101009999999.jpg.chip.jpg").write_bytes(b"corrupt")  # unreadable, skipped
    return root


def terminate_group_when(cmd: list[str], ready, within: float = 240.0, sig: int | None = None) -> tuple[int, str]:
    """Run ``cmd`` (from the repository) in a process group of its own; once ``ready()`` is true, send SIGTERM to the
    whole group, as `timeout`, a batch scheduler or `docker stop` do (or ``sig``: SIGINT is a terminal's Ctrl-C);
    return its exit status and output, stdout and stderr together. A suite run in the background hands its children
    SIGINT ignored, which Python keeps: for a Ctrl-C the child takes it back, as from a terminal."""
    import signal
    import subprocess
    import time

    sig = signal.SIGTERM if sig is None else sig
    takes_ctrl_c = (lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if sig == signal.SIGINT else None
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=takes_ctrl_c)
    try:
        deadline = time.monotonic() + within
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"it ended (exit {proc.returncode}) before it was ready to be stopped:\n{proc.communicate()[0]}")
            if time.monotonic() > deadline:
                pytest.fail(f"not ready to be stopped within {within:.0f} s: {' '.join(cmd)}")
            time.sleep(0.05)
        os.killpg(proc.pid, sig)
        return proc.wait(timeout=90), proc.communicate()[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def plain_images(tmp_path) -> Path:
    """Two plain images, no face in them: the bench tiles whatever it reads, and a test chooses the faces found."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"face{i}.png"), np.full((40, 40, 3), 60 + 40 * i, np.uint8))
    return folder
