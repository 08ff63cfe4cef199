"""The CycleGAN's sizes (``CycleGANConfig``) and its named presets, without torch.

Kept apart from the networks (cyclegan.py) so that command lines can offer the
preset names as choices — ``main.py bench --baseline-generator`` — without
importing torch just to parse their arguments.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from inference.errors import BiasMirrorError


@dataclass(frozen=True)
class CycleGANConfig:
    preset: str = "cpu"
    size: int = 64
    ngf: int = 24
    ndf: int = 32
    n_blocks: int = 4
    d_layers: int = 2  # PatchGAN depth: 3 is the 70×70 patch of the paper

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CycleGANConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# smoke: unit tests only. cpu: trains visibly in ~40 min on two busy CPU
# cores (64 px; 70×70 patches would cover the whole face, so a 2-layer, 34×34
# PatchGAN). fast: a GPU hour. full: the paper's 256 px setting.
PRESETS: dict[str, CycleGANConfig] = {
    "smoke": CycleGANConfig("smoke", size=32, ngf=8, ndf=8, n_blocks=1, d_layers=1),
    "cpu": CycleGANConfig("cpu", size=64, ngf=24, ndf=32, n_blocks=4, d_layers=2),
    "fast": CycleGANConfig("fast", size=128, ngf=32, ndf=64, n_blocks=6, d_layers=3),
    "full": CycleGANConfig("full", size=256, ngf=64, ndf=64, n_blocks=9, d_layers=3),
}


def preset(name: str) -> CycleGANConfig:
    if name not in PRESETS:
        raise BiasMirrorError(f"unknown CycleGAN preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
