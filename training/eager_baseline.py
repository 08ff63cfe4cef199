"""The research-script baseline `main.py bench` compares the ONNX pipeline with: PyTorch eager, per face.

OpenCV's Haar cascade on the full frame with the usual parameters, then for
every face: a torchvision ResNet-18 at 128 px for each classifier the ONNX rows
run (two by default: a ratio over unequal work said 3.9× for one MobileNet) with a forward hook on the
last block and the CAM computed in NumPy, and (with the filter) a CycleGAN
ResNet generator in eager mode, whose output is classified again. Random
weights: only time is measured. It runs on the GPU when torch sees one
(``device="auto"``), float32 like the ONNX models, and every face's results
come back to the host as NumPy arrays, as the script would use them.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.models import resnet18

from inference.errors import BiasMirrorError
from inference.faces import crop_square
from inference.haar_cascade import cascade_text, opencv_classifier
from training.nets.cyclegan import PRESETS, build_generator, preset

CROP = 128  # the research script's classifier input size


def generator_preset(choice: str, filter_size: int | None) -> str:
    """``match``: the preset at the ONNX filter's size (so both sides run the same network), else ``fast``."""
    if choice != "match":
        return preset(choice).preset
    same = [name for name, cfg in PRESETS.items() if cfg.size == filter_size]
    return same[-1] if same else "fast"


def pick_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise BiasMirrorError("--baseline-device cuda: PyTorch sees no CUDA GPU here")
    if choice not in ("cpu", "cuda"):
        raise BiasMirrorError(f"--baseline-device is auto, cpu or cuda, not {choice!r}")
    return torch.device(choice)


class EagerBaseline:
    def __init__(self, with_filter: bool, threads: int | None = None, device: str = "auto",
                 generator: str = "match", filter_size: int | None = None, classifiers: int = 2):
        self.device = pick_device(device)
        if threads:
            torch.set_num_threads(threads)
        # from its text, not by name: OpenCV opens no path beyond ASCII on Windows (C:\Users\Иван\…), and the empty
        # cascade it gave had crashed bench in detectMultiScale
        cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = opencv_classifier(cascade_text(cascade), cascade)
        self.models = [resnet18(weights=None, num_classes=2).eval().to(self.device) for _ in range(classifiers)]
        self.features: dict[int, np.ndarray] = {}
        for i, m in enumerate(self.models):
            m.layer4.register_forward_hook(
                lambda _m, _i, out, i=i: self.features.__setitem__(i, out.detach().cpu().numpy()))
        self.fc = [m.fc.weight.detach().cpu().numpy() for m in self.models]
        self.generator = self.gen_size = None
        where = str(self.device)
        if self.device.type == "cuda":
            where += f" ({torch.cuda.get_device_name(self.device)})"
        self.label = f"PyTorch {torch.__version__} eager on {where}: Haar full frame, ResNet-18 ×{classifiers} @{CROP} px + CAM"
        if with_filter:
            cfg = preset(generator_preset(generator, filter_size))
            self.generator = build_generator(cfg).eval().to(self.device)
            self.gen_size = cfg.size
            self.label += f", CycleGAN '{cfg.preset}' {cfg.size} px ngf {cfg.ngf} × {cfg.n_blocks} blocks"

    def _to_tensor(self, crop: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(crop).to(self.device).permute(2, 0, 1).float()[None]

    def _classify(self, crop: np.ndarray) -> None:
        x = self._to_tensor(crop).div(255).sub(0.5).div(0.5)
        for i, m in enumerate(self.models):
            probs = torch.softmax(m(x), 1).cpu().numpy()
            cam = np.einsum("kc,chw->khw", self.fc[i], self.features[i][0])[1]
            cv2.resize(cam, (CROP, CROP))
            _ = probs[0, 1]

    def __call__(self, frame: np.ndarray) -> tuple[dict[str, float], int]:
        with torch.no_grad():
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            boxes = self.cascade.detectMultiScale(gray, 1.1, 5, minSize=(30, 30))
            for box in boxes:
                crop, _ = crop_square(rgb, tuple(box), CROP)
                self._classify(crop)
                if self.generator is not None:
                    face = crop if self.gen_size == CROP else crop_square(rgb, tuple(box), self.gen_size)[0]
                    x = self._to_tensor(face).div(127.5).sub(1)
                    y = self.generator(x)[0].permute(1, 2, 0).add(1).mul(127.5).clamp(0, 255).byte().cpu().numpy()
                    self._classify(y if self.gen_size == CROP else cv2.resize(y, (CROP, CROP)))
        return {}, len(boxes)
