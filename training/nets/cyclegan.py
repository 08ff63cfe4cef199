"""CycleGAN networks, as in Zhu et al. 2017 and pytorch-CycleGAN-and-pix2pix's networks.py.

- Generator: the Johnson et al. ResNet generator — c7s1-ngf, two stride-2
  downsamplings, ``n_blocks`` residual blocks, two transposed-conv
  upsamplings, c7s1-3 and Tanh. Reflection padding and InstanceNorm (no affine
  parameters, no running stats) throughout, as in the reference code.
- Discriminator: the 70×70 PatchGAN (``n_layers=3``) with LeakyReLU 0.2; it
  outputs a map of real/fake scores, one per overlapping patch. Small images
  use fewer layers so the patch still sees a fraction of the face, not all of it.
- Weights: normal(0, 0.02), biases 0 (the reference ``init_type='normal'``).
- Activations are not in place, unlike the reference: InstanceNorm hands back a
  reshaped view, and an in-place ReLU on a view makes autograd copy slices
  back and forth, about a third of a training step's operations (measured with
  ``bench train``'s operation count). The values are the same.
"""
from __future__ import annotations

from torch import nn

from inference.errors import BiasMirrorError
from training.nets.cyclegan_presets import PRESETS, CycleGANConfig, preset  # noqa: F401 (imported from here too)


class ResnetBlock(nn.Module):
    """x + (pad, conv3, IN, ReLU, pad, conv3, IN)(x)."""

    def __init__(self, dim: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
        )

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """3×S×S image in [-1, 1] → 3×S×S image in [-1, 1]; S must be divisible by 4."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(),
        ]
        for mult in (1, 2):  # downsample: ngf → 2ngf → 4ngf
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
                       nn.InstanceNorm2d(ngf * mult * 2), nn.ReLU()]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):  # upsample: 4ngf → 2ngf → ngf
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: 3×S×S → 1×s×s raw scores (LSGAN compares them with 1 or 0)."""

    def __init__(self, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1),
                       nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2)]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1),
                   nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2),
                   nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def build_generator(cfg: CycleGANConfig) -> ResnetGenerator:
    if cfg.size % 4:
        raise BiasMirrorError(f"CycleGAN size {cfg.size} must be divisible by 4 (two stride-2 stages)")
    return init_weights(ResnetGenerator(cfg.ngf, cfg.n_blocks))


def build_discriminator(cfg: CycleGANConfig) -> PatchDiscriminator:
    return init_weights(PatchDiscriminator(cfg.ndf, cfg.d_layers))
