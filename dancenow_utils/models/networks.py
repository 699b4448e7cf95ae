"""pix2pixHD networks: global generator, local enhancer, multiscale PatchGAN discriminator.

Sizes come from :class:`~dancenow_utils.config.TrainConfig`. With the ``seed`` preset (ngf 64, 4 downsamples,
9 blocks, 3 -> 3 channels) the generator has exactly 182,443,267 parameters and the 2-scale discriminator
5,535,618, the counts of the original project: our architecture parity check.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from dancenow_utils.config import TrainConfig

Norm = functools.partial(nn.InstanceNorm2d, affine=False)
NORMS = {"instance": Norm, "batch": functools.partial(nn.BatchNorm2d, affine=True)}  # batch: EDN's face D


def init_weights(module: nn.Module) -> None:
    """pix2pixHD's init: conv weights N(0, 0.02); affine norms' weights N(1, 0.02) and biases 0.

    Conv biases keep PyTorch's default (uniform in +-1/sqrt(fan_in)), as in the reference, which only redraws the
    weights. Layers are visited in the order the reference's ``apply`` visits them.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), Norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), Norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _front(input_nc: int, ngf: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), Norm(ngf), nn.ReLU(True)]


def _down(c: int) -> list[nn.Module]:
    return [nn.Conv2d(c, c * 2, 3, stride=2, padding=1), Norm(c * 2), nn.ReLU(True)]


def _up(c: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1), Norm(c // 2), nn.ReLU(True)]


def _back(ngf: int, output_nc: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]


class GlobalGenerator(nn.Module):
    """7x7 conv -> ``n_downsampling`` stride-2 convs -> ``n_blocks`` residual blocks -> mirror upsampling -> tanh."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_downsampling: int = 4, n_blocks: int = 9,
                 with_output: bool = True) -> None:
        super().__init__()
        layers = _front(input_nc, ngf)
        for i in range(n_downsampling):
            layers += _down(ngf * 2**i)
        layers += [ResnetBlock(ngf * 2**n_downsampling) for _ in range(n_blocks)]
        for i in range(n_downsampling, 0, -1):
            layers += _up(ngf * 2**i)
        if with_output:
            layers += _back(ngf, output_nc)
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LocalEnhancer(nn.Module):
    """A global generator at half resolution (without its output layer) plus full-resolution front and back ends.

    The global branch has ``ngf * 2`` filters; its features are added to the local front end's and refined by
    ``n_blocks_local`` residual blocks. The input pyramid uses 3x3 average pooling, stride 2.
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 32, n_downsample_global: int = 4,
                 n_blocks_global: int = 9, n_local_enhancers: int = 1, n_blocks_local: int = 3) -> None:
        super().__init__()
        self.n_local_enhancers = n_local_enhancers
        ngf_global = ngf * 2**n_local_enhancers
        self.global_net = GlobalGenerator(input_nc, output_nc, ngf_global, n_downsample_global, n_blocks_global,
                                          with_output=False)
        self.local_down = nn.ModuleList()
        self.local_up = nn.ModuleList()
        for n in range(1, n_local_enhancers + 1):
            c = ngf * 2 ** (n_local_enhancers - n)
            self.local_down.append(nn.Sequential(*_front(input_nc, c), *_down(c)))
            up = [ResnetBlock(c * 2) for _ in range(n_blocks_local)] + _up(c * 2)
            if n == n_local_enhancers:
                up += _back(c, output_nc)
            self.local_up.append(nn.Sequential(*up))
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = [x]
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.pool(pyramid[-1]))
        out = self.global_net(pyramid[-1])
        for n in range(self.n_local_enhancers):
            inp = pyramid[self.n_local_enhancers - 1 - n]
            out = self.local_up[n](self.local_down[n](inp) + out)
        return out


class NLayerDiscriminator(nn.Module):
    """PatchGAN: 4x4 convs with LeakyReLU 0.2; returns every layer's output (for feature matching)."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        kw, pad, Norm = 4, 2, NORMS[norm]
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(input_nc, ndf, kw, 2, pad), nn.LeakyReLU(0.2, True))]
        nf = ndf
        for n in range(1, n_layers + 1):
            prev, nf = nf, min(nf * 2, 512)
            stride = 2 if n < n_layers else 1
            layers.append(nn.Sequential(nn.Conv2d(prev, nf, kw, stride, pad), Norm(nf), nn.LeakyReLU(0.2, True)))
        layers.append(nn.Sequential(nn.Conv2d(nf, 1, kw, 1, pad)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs on the input downsampled by 3x3 average pooling; returns a list of feature lists."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, num_D: int = 2, norm: str = "instance") -> None:
        super().__init__()
        self.nets = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers, norm) for _ in range(num_D))
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, net in enumerate(self.nets):
            if i > 0:
                x = self.pool(x)
            out.append(net(x))
        return out


def condition_nc(cfg: TrainConfig) -> int:
    """Channels of what both networks are conditioned on: the pose image's, or pix2pixHD's ``label_nc`` one-hot
    channels plus one for the instance boundaries."""
    if not cfg.label_nc:
        return cfg.input_nc
    return cfg.label_nc + (1 if cfg.instance_maps else 0)


def generator_input_nc(cfg: TrainConfig) -> int:
    """The condition's channels, plus the encoded features' and, for the temporal model, the previous frame's."""
    return condition_nc(cfg) + (cfg.feat_num if cfg.use_features else 0) + (cfg.output_nc if cfg.temporal else 0)


def build_generator(cfg: TrainConfig) -> nn.Module:
    in_nc = generator_input_nc(cfg)
    if cfg.netG == "global":
        net = GlobalGenerator(in_nc, cfg.output_nc, cfg.ngf, cfg.n_downsample_global, cfg.n_blocks_global)
    elif cfg.netG == "local":
        net = LocalEnhancer(in_nc, cfg.output_nc, cfg.ngf, cfg.n_downsample_global, cfg.n_blocks_global,
                            cfg.n_local_enhancers, cfg.n_blocks_local)
    else:
        raise ValueError(f"unknown netG {cfg.netG!r}; use 'global' or 'local'")
    init_weights(net)
    return net


def build_discriminator(cfg: TrainConfig) -> MultiscaleDiscriminator:
    """The discriminator judges (condition, frame), without the encoded features as in pix2pixHD; the temporal
    model's judges two consecutive pairs."""
    pair = condition_nc(cfg) + cfg.output_nc
    net = MultiscaleDiscriminator(pair * (2 if cfg.temporal else 1), cfg.ndf, cfg.n_layers_D, cfg.num_D)
    init_weights(net)
    return net


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
