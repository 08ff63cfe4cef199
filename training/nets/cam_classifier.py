"""CAM-ready classifiers: conv features → global average pooling → one linear layer.

With nothing between the pooled features and the logits but a linear layer,
the class activation map ``cam[k] = Σ_c w[k,c]·F[c]`` is exact (Zhou et al.
2016) and costs one small einsum. Two families:

- ``resnet``: a narrow ResNet built from torchvision's BasicBlock (widths
  w, 2w, 4w, 8w); the last stage keeps stride 1 so the CAM grid stays 7×7 at 112 px.
- ``mobilenet``: torchvision's MobileNetV3-small features with the last
  downsampling removed, for CPUs.

Weights are trained from scratch: nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torchvision.models import mobilenet_v3_small
from torchvision.models.resnet import BasicBlock

MEAN = 0.5
STD = 0.5


@dataclass
class ClassifierConfig:
    arch: str = "resnet"  # resnet | mobilenet
    size: int = 112
    num_classes: int = 2
    width: int = 32  # resnet base width
    blocks: tuple[int, int, int, int] = (1, 1, 1, 1)
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        d = dict(d)
        d["blocks"] = tuple(d.get("blocks", (1, 1, 1, 1)))
        return cls(**d)


def _resnet_layer(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    down = None
    if stride != 1 or inplanes != planes:
        down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
    layers = [BasicBlock(inplanes, planes, stride, down)]
    layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def resnet_features(width: int, blocks: tuple[int, ...]) -> tuple[nn.Module, int]:
    w = width
    stem = nn.Sequential(
        nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    )
    feats = nn.Sequential(
        stem,
        _resnet_layer(w, w, blocks[0], 1),
        _resnet_layer(w, 2 * w, blocks[1], 2),
        _resnet_layer(2 * w, 4 * w, blocks[2], 2),
        _resnet_layer(4 * w, 8 * w, blocks[3], 1),  # stride 1: a finer CAM grid
    )
    return feats, 8 * w


def mobilenet_features() -> tuple[nn.Module, int]:
    feats = mobilenet_v3_small(weights=None).features
    # Drop the last stride-2 (block 9) so the grid is size/16: 7×7 at 112 px.
    for m in feats[9].modules():
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
            m.stride = (1, 1)
    return feats, 576


class CamClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        if config.arch == "resnet":
            self.features, channels = resnet_features(config.width, config.blocks)
        elif config.arch == "mobilenet":
            self.features, channels = mobilenet_features()
        else:
            raise ValueError(f"unknown classifier arch {config.arch!r}")
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(channels, config.num_classes)

    @staticmethod
    def preprocess(x_uint8_nhwc: torch.Tensor) -> torch.Tensor:
        """uint8 N×H×W×3 RGB → normalised float N×3×H×W. Exported inside the graph."""
        x = x_uint8_nhwc.permute(0, 3, 1, 2).float() / 255.0
        return (x - MEAN) / STD

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from a normalised float batch."""
        f = self.features(x)
        return self.fc(self.dropout(f.mean(dim=(2, 3))))

    def forward_with_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        logits = self.fc(f.mean(dim=(2, 3)))
        cam = torch.einsum("kc,nchw->nkhw", self.fc.weight, f)
        return logits, cam

    def cam_grid(self) -> tuple[int, int]:
        with torch.no_grad():
            was = self.training
            self.eval()
            f = self.features(torch.zeros(1, 3, self.config.size, self.config.size))
            self.train(was)
        return int(f.shape[2]), int(f.shape[3])
