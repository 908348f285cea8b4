#!/usr/bin/env python3
"""Independent PyTorch reference implementation of INFP (see INFP-SPEC.md).

Written from the specification only; used to produce golden files for the Swift
implementation (tools/make_goldens.py) and as the benchmark peer
(tools/torch_peer_bench.py). PyTorch is needed only by the scripts in tools/ and bench/.

Public API
    Config, Config.preset(name, **overrides), Config.to_json(), Config.from_json()
    INFP(cfg)                     forward(clips (B,T,C,H,W) in [-1,1]) -> (B,C,H,W)
    official_loss(pred, target)   MSE + gradient + (1 - MS-SSIM)/2 + RMSE   (spec §4)
    paper_loss(pred, target, a)   a*MSE + (1-a)*gradient                     (spec §4)
    loss_fn(cfg)                  the loss selected by cfg.loss
    ms_ssim(pred, target), gradient_loss(pred, target)
    psnr(pred, target)            per-sample PSNR, spec §5                   -> (B,)

Choices where the spec leaves freedom (the Swift side makes the same ones):
  * polar mode: before the phase is taken, the imaginary part of the self-conjugate bins of the
    half spectrum (rows {0, H/2 if H even} x columns {0, W/2 if W even}) is set to +0, so the
    phase there is exactly 0 or +pi (never -pi, whatever the sign of zero the FFT produced).
    Their true imaginary part is identically 0, so this changes no gradient.
  * |z| and angle(z) have zero gradient at z = 0; |x| (gradient loss) has zero gradient at 0.
  * The gradient loss works per channel (Dx, Dy of each channel), mean over B*C*H*W.
  * Kaiming init of ConvTranspose2d weights (in, out, k, k) uses PyTorch's fan_in = out*k*k.

Run `python tools/infp_torch.py --check` for the self checks (state-dict names vs
official-state-dict.txt, parameter counts, forward shapes, FFT/filter gradchecks).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from collections import OrderedDict
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------
# Config (spec §1)
# --------------------------------------------------------------------------------------------

CONFIG_KEYS = [
    "height", "width", "frames", "image_channels", "width_div", "blocks", "fusion",
    "trajectory_filter", "filter_mode", "filter_bases", "freq_mode", "fusion_tsm_div",
    "baseline_tsm_div", "dropout", "loss", "loss_alpha",
]


@dataclass
class Config:
    height: int = 224
    width: int = 288
    frames: int = 4
    image_channels: int = 3
    width_div: int = 1
    blocks: List[int] = field(default_factory=lambda: [3, 3, 6, 3, 1, 1])
    fusion: bool = True
    trajectory_filter: bool = True
    filter_mode: str = "official"   # "official" | "spatial"
    filter_bases: int = 4
    freq_mode: str = "polar"        # "polar" | "cartesian"
    fusion_tsm_div: int = 8
    baseline_tsm_div: int = 16
    dropout: bool = True
    loss: str = "official"          # "official" | "paper"
    loss_alpha: float = 0.5

    PRESETS = {
        "official": dict(height=224, width=288, width_div=1, blocks=[3, 3, 6, 3, 1, 1]),
        "small": dict(height=112, width=144, width_div=8, blocks=[1, 1, 1, 1, 1, 1]),
        "tiny": dict(height=32, width=48, width_div=32, blocks=[1, 1, 1, 1, 1, 1]),
    }

    def __post_init__(self):
        self.blocks = [int(b) for b in self.blocks]
        if self.height % 8 or self.width % 8 or self.height <= 0 or self.width <= 0:
            raise ValueError("height and width must be positive multiples of 8")
        if self.width_div <= 0 or 64 % self.width_div:
            raise ValueError("width_div must divide 64")
        if len(self.blocks) != 6 or min(self.blocks) < 1:
            raise ValueError("blocks must list 6 positive counts")
        if self.filter_mode not in ("official", "spatial"):
            raise ValueError("filter_mode must be 'official' or 'spatial'")
        if self.freq_mode not in ("polar", "cartesian"):
            raise ValueError("freq_mode must be 'polar' or 'cartesian'")
        if self.loss not in ("official", "paper"):
            raise ValueError("loss must be 'official' or 'paper'")
        if self.frames < 1 or self.c(2048) % self.frames:
            raise ValueError("frames must divide c(2048)")

    @classmethod
    def preset(cls, name: str, **overrides) -> "Config":
        d = dict(cls.PRESETS[name])
        d.update(overrides)
        return cls(**d)

    def c(self, n: int) -> int:
        return n // self.width_div

    def to_dict(self) -> dict:
        return {k: (list(getattr(self, k)) if k == "blocks" else getattr(self, k)) for k in CONFIG_KEYS}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, s: str) -> "Config":
        d = json.loads(s)
        unknown = set(d) - set(CONFIG_KEYS)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        return cls(**d)


# --------------------------------------------------------------------------------------------
# Small building blocks
# --------------------------------------------------------------------------------------------

def bnrelu(c: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c, eps=1e-5, momentum=0.1), nn.ReLU())


class IdentityResidualBlock(nn.Module):
    """Pre-activation block of WiderResNet-A2 (spec §2.1)."""

    def __init__(self, cin, chans, stride=1, dil=1, dropout_p=None):
        super().__init__()
        self.bn1 = bnrelu(cin)
        if len(chans) == 2:
            layers = [
                ("conv1", nn.Conv2d(cin, chans[0], 3, stride=stride, padding=dil, dilation=dil, bias=False)),
                ("bn2", bnrelu(chans[0])),
                ("conv2", nn.Conv2d(chans[0], chans[1], 3, padding=dil, dilation=dil, bias=False)),
            ]
            at = 2
        else:
            layers = [
                ("conv1", nn.Conv2d(cin, chans[0], 1, stride=stride, bias=False)),
                ("bn2", bnrelu(chans[0])),
                ("conv2", nn.Conv2d(chans[0], chans[1], 3, padding=dil, dilation=dil, bias=False)),
                ("bn3", bnrelu(chans[1])),
                ("conv3", nn.Conv2d(chans[1], chans[2], 1, bias=False)),
            ]
            at = 4
        if dropout_p is not None:
            layers.insert(at, ("dropout", nn.Dropout2d(dropout_p)))
        self.convs = nn.Sequential(OrderedDict(layers))
        if stride != 1 or cin != chans[-1]:
            self.proj_conv = nn.Conv2d(cin, chans[-1], 1, stride=stride, bias=False)
        else:
            self.proj_conv = None

    def forward(self, x):
        b = self.bn1(x)
        shortcut = self.proj_conv(b) if self.proj_conv is not None else x
        return self.convs(b) + shortcut


class WRN38(nn.Module):
    """WiderResNet-A2 with dilation (output stride 8); returns x1, x2, x8 (spec §2.1)."""

    def __init__(self, cfg: Config):
        super().__init__()
        c = cfg.c
        self.mod1 = nn.Sequential(OrderedDict(conv1=nn.Conv2d(cfg.image_channels, c(64), 3, padding=1, bias=False)))
        chans = [(c(128), c(128)), (c(256), c(256)), (c(512), c(512)), (c(512), c(1024)),
                 (c(512), c(1024), c(2048)), (c(1024), c(2048), c(4096))]
        cin = c(64)
        for mod_id, num in enumerate(cfg.blocks):
            blocks = []
            for block_id in range(num):
                stride = 2 if (mod_id == 2 and block_id == 0) else 1
                dil = 2 if mod_id == 3 else (4 if mod_id > 3 else 1)
                drop = None
                if cfg.dropout and mod_id == 4:
                    drop = 0.3
                elif cfg.dropout and mod_id == 5:
                    drop = 0.5
                blocks.append((f"block{block_id + 1}", IdentityResidualBlock(cin, chans[mod_id], stride, dil, drop)))
                cin = chans[mod_id][-1]
            if mod_id < 2:
                self.add_module(f"pool{mod_id + 2}", nn.MaxPool2d(3, stride=2, padding=1))
            self.add_module(f"mod{mod_id + 2}", nn.Sequential(OrderedDict(blocks)))

    def forward(self, x):
        x = self.mod1(x)
        x1 = self.mod2(self.pool2(x))
        x2 = self.mod3(self.pool3(x1))
        x8 = self.mod7(self.mod6(self.mod5(self.mod4(x2))))
        return x1, x2, x8


def tsm(x: torch.Tensor, frames: int, div: int) -> torch.Tensor:
    """Left-only temporal shift (spec §2.3): view (B, T, C/T, H, W), fold = (C/T)//div."""
    B, C, H, W = x.shape
    v = x.view(B, frames, C // frames, H, W)
    fold = (C // frames) // div
    out = torch.zeros_like(v)
    out[:, :-1, :fold] = v[:, 1:, :fold]
    out[:, :, fold:] = v[:, :, fold:]
    return out.view(B, C, H, W)


class SE(nn.Module):
    """x * sigmoid(fc2(relu(fc1(mean_hw x)))), Linear layers with bias."""

    def __init__(self, c: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)

    def forward(self, x):
        s = x.mean(dim=(2, 3))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s[:, :, None, None]


class BasicConv(nn.Module):
    def __init__(self, c: int, gelu: bool):
        super().__init__()
        layers = [nn.Conv2d(c, c, 3, padding=1, bias=True)]
        if gelu:
            layers.append(nn.GELU(approximate="none"))
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x)


class SpatialBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        # registration order = state-dict order of the released model: conv1, conv2, trans_layer
        self.conv1 = BasicConv(c, gelu=True)
        self.conv2 = BasicConv(c, gelu=False)
        self.trans_layer = BasicConv(c, gelu=False)

    def forward(self, x):
        return x + self.conv2(self.trans_layer(self.conv1(x)))


class SpatialProcess(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.block = SpatialBlock(c)

    def forward(self, x):
        return self.block(x)


def freq_process(c: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c, c, 1), nn.LeakyReLU(0.1), SE(c, max(1, c // 8)), nn.Conv2d(c, c, 1))


class FrequencyProcess(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.processmag = freq_process(c)
        self.processpha = freq_process(c)


def self_conjugate_mask(h: int, w: int, device=None) -> torch.Tensor:
    """(h, w//2+1) bool: rows {0, h/2 if even} x cols {0, w/2 if even} of a half spectrum."""
    m = torch.zeros(h, w // 2 + 1, dtype=torch.bool, device=device)
    rows = [0] + ([h // 2] if h % 2 == 0 else [])
    cols = [0] + ([w // 2] if w % 2 == 0 else [])
    for r in rows:
        for c in cols:
            m[r, c] = True
    return m


class FreqExtractor(nn.Module):
    def __init__(self, c: int, freq_mode: str):
        super().__init__()
        self.freq_mode = freq_mode
        self.spatial_process = SpatialProcess(c)
        self.frequency_process = FrequencyProcess(c)
        self.cat = nn.Conv2d(2 * c, c, 1)

    def forward(self, x):
        H, W = x.shape[-2:]
        spatial = self.spatial_process(x)
        xf = torch.fft.rfft2(x, norm="backward")
        fp = self.frequency_process
        re, im = xf.real, xf.imag
        if self.freq_mode == "polar":
            im = torch.where(self_conjugate_mask(H, W, x.device), torch.zeros_like(im), im)
            z = torch.complex(re, im)
            m = z.abs()
            p = z.angle()
            m = m + fp.processmag(m)
            p = p + fp.processpha(p)
            xf2 = torch.complex(m * torch.cos(p), m * torch.sin(p))
        else:
            re = re + fp.processmag(re)
            im = im + fp.processpha(im)
            xf2 = torch.complex(re, im)
        f = torch.fft.irfft2(xf2, s=(H, W), norm="backward")
        return self.cat(torch.cat([spatial, f], dim=1))


class SSPCAB(nn.Module):
    """Kernel 1, dilation 1: four shifted 1x1 convs on a 2-padded map, ReLU, SE (ratio 1)."""

    def __init__(self, c: int):
        super().__init__()
        self.se = SE(c, c)
        self.conv1 = nn.Conv2d(c, c, 1)
        self.conv2 = nn.Conv2d(c, c, 1)
        self.conv3 = nn.Conv2d(c, c, 1)
        self.conv4 = nn.Conv2d(c, c, 1)

    def forward(self, x):
        xp = F.pad(x, (2, 2, 2, 2))
        b = 4
        x1 = self.conv1(xp[:, :, :-b, :-b])   # sees (i-2, j-2)
        x2 = self.conv2(xp[:, :, b:, :-b])    # sees (i+2, j-2)
        x3 = self.conv3(xp[:, :, :-b, b:])    # sees (i-2, j+2)
        x4 = self.conv4(xp[:, :, b:, b:])     # sees (i+2, j+2)
        return self.se(F.relu(x1 + x2 + x3 + x4))


class MultiFeatureFusion(nn.Module):
    def __init__(self, c: int, freq_mode: str, frames: int, tsm_div: int):
        super().__init__()
        self.frames, self.tsm_div = frames, tsm_div
        self.freq_extractor = FreqExtractor(c, freq_mode)
        self.fusion = SSPCAB(c)

    def forward(self, x):
        return self.fusion(x + tsm(x, self.frames, self.tsm_div) + self.freq_extractor(x))


class StarReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.scale * F.relu(x) ** 2 + self.bias


class Reweight(nn.Module):
    def __init__(self, d: int, out: int):
        super().__init__()
        self.fc1 = nn.Linear(d, int(0.25 * d), bias=False)
        self.act = StarReLU()
        self.fc2 = nn.Linear(int(0.25 * d), out, bias=False)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class DynamicFilter(nn.Module):
    """DFFormer dynamic filter on a channels-last (B, P, Q, D) tensor (spec §2.5)."""

    def __init__(self, p: int, q: int, d: int, n: int):
        super().__init__()
        self.p, self.q, self.d, self.n, self.m = p, q, d, n, 2 * d
        self.complex_weights = nn.Parameter(torch.randn(p, q // 2 + 1, n, 2) * 0.02)
        self.pwconv1 = nn.Linear(d, self.m, bias=False)
        self.act1 = StarReLU()
        self.reweight = Reweight(d, n * self.m)
        self.pwconv2 = nn.Linear(self.m, d, bias=False)

    def forward(self, y):
        B, P, Q, D = y.shape
        r = self.reweight(y.mean(dim=(1, 2))).view(B, self.n, self.m).softmax(dim=1)
        z = self.act1(self.pwconv1(y))
        zf = torch.fft.rfft2(z, dim=(1, 2), norm="ortho")
        w = torch.view_as_complex(self.complex_weights)            # (P, Q/2+1, N)
        k = torch.einsum("bnm,pqn->bpqm", r.to(w.dtype), w)      # (B, P, Q/2+1, M)
        out = torch.fft.irfft2(zf * k, s=(P, Q), dim=(1, 2), norm="ortho")
        return self.pwconv2(out)


class TrajectoryFilter(DynamicFilter):
    def __init__(self, cfg: Config):
        c = cfg.c(256)
        if cfg.filter_mode == "official":
            super().__init__(c, cfg.height, cfg.width, cfg.filter_bases)
        else:
            super().__init__(cfg.height, cfg.width, c, cfg.filter_bases)
        self.mode = cfg.filter_mode

    def forward(self, x):
        if self.mode == "official":
            # NCHW memory read as channels-last (B, P=C, Q=H, D=W): no permute at all
            return super().forward(x)
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvTransposeBnRelu(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.ConvTranspose = nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.ConvTranspose(x)))


class ChannelAttention(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        h = max(1, c // 16)
        self.layer = nn.Sequential(nn.Conv2d(c, h, 1), nn.ReLU(), nn.Conv2d(h, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.layer(x.mean(dim=(2, 3), keepdim=True))


class ConvBnRelu(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, pad: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=pad, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------

class INFP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        c, T = cfg.c, cfg.frames
        self.wrn38 = WRN38(cfg)
        self.conv_x8 = nn.Conv2d(T * c(4096), c(2048), 1, bias=False)
        self.conv_x2 = nn.Conv2d(T * c(256), c(256), 1, bias=False)
        self.conv_x1 = nn.Conv2d(T * c(128), c(128), 1, bias=False)
        self.up8 = ConvTransposeBnRelu(c(2048), c(1024))
        self.up4 = ConvTransposeBnRelu(c(256) + c(1024), c(512))
        self.up2 = ConvTransposeBnRelu(c(128) + c(512), c(256))
        self.attn8 = ChannelAttention(c(1024))
        self.attn4 = ChannelAttention(c(512))
        self.attn2 = ChannelAttention(c(256))
        self.final = nn.Sequential(
            ConvBnRelu(c(256), c(128), 1, 0),
            ConvBnRelu(c(128), c(128), 3, 1),
            nn.Conv2d(c(128), cfg.image_channels, 3, padding=1, bias=False),
        )
        self.fusion = MultiFeatureFusion(c(2048), cfg.freq_mode, T, cfg.fusion_tsm_div) if cfg.fusion else None
        self.filter = TrajectoryFilter(cfg) if cfg.trajectory_filter else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """Released init policy (spec §2.7); everything not listed keeps PyTorch defaults."""
        for name in ("conv_x8", "conv_x2", "conv_x1", "up8", "up4", "up2", "attn8", "attn4", "attn2", "final"):
            for m in getattr(self, name).modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.filter is not None:
            nn.init.normal_(self.filter.complex_weights, 0.0, 0.02)
            for act in (self.filter.act1, self.filter.reweight.act):
                act.scale.fill_(1.0)
                act.bias.fill_(0.0)

    def backbone(self, clips):
        B, T = clips.shape[:2]
        if self.training:
            # once per frame: BN statistics per frame, running stats updated T times
            outs = [self.wrn38(clips[:, t]) for t in range(T)]
            x1, x2, x8 = (torch.cat([o[i] for o in outs], dim=1) for i in range(3))
        else:
            # frames folded into the batch (identical in eval mode)
            o = self.wrn38(clips.reshape(B * T, *clips.shape[2:]))
            x1, x2, x8 = (t.reshape(B, T * t.shape[1], *t.shape[2:]) for t in o)
        return x1, x2, x8

    def forward(self, clips):
        cfg = self.cfg
        if clips.dim() != 5 or clips.shape[1] != cfg.frames:
            raise ValueError(f"expected clips (B, {cfg.frames}, C, H, W), got {tuple(clips.shape)}")
        x1, x2, x8 = self.backbone(clips)
        x8 = self.conv_x8(x8)
        x2 = self.conv_x2(x2)
        x1 = self.conv_x1(x1)
        if self.fusion is not None:
            x8 = self.fusion(x8)
        else:
            x8 = x8 + tsm(x8, cfg.frames, cfg.baseline_tsm_div)
        x = self.attn8(self.up8(x8))
        x = self.attn4(self.up4(torch.cat([x2, x], dim=1)))
        x = self.attn2(self.up2(torch.cat([x1, x], dim=1)))
        if self.filter is not None:
            x = self.filter(x)
        return self.final(x)


# --------------------------------------------------------------------------------------------
# Losses and scoring (spec §4, §5)
# --------------------------------------------------------------------------------------------

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(n: int, sigma: float = 1.5, dtype=torch.float64, device=None) -> torch.Tensor:
    x = torch.arange(n, dtype=torch.float64, device=device) - (n // 2)
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g).to(dtype)


def data_range(p: torch.Tensor) -> float:
    max_val = 255.0 if float(p.detach().max()) > 128 else 1.0
    min_val = -1.0 if float(p.detach().min()) < -0.5 else 0.0
    return max_val - min_val


def ssim_level(p, g, L):
    """Returns (ssim, cs), both already mapped to (x + 1)/2."""
    C, h, w = p.shape[1:]
    n = min(11, h, w)
    win = gaussian_window(n, dtype=p.dtype, device=p.device).expand(C, 1, n, n)
    conv = lambda z: F.conv2d(z, win, groups=C)
    mu1, mu2 = conv(p), conv(g)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = conv(p * p) - mu1_sq
    s2 = conv(g * g) - mu2_sq
    s12 = conv(p * g) - mu12
    C1, C2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    v1 = 2.0 * s12 + C2
    v2 = s1 + s2 + C2
    cs = (v1 / v2).mean()
    ssim = (((2 * mu12 + C1) * v1) / ((mu1_sq + mu2_sq + C1) * v2)).mean()
    return (ssim + 1) / 2, (cs + 1) / 2


def ms_ssim(pred, target, return_ranges=False):
    ssims, css, ranges = [], [], []
    p, g = pred, target
    for level in range(5):
        L = data_range(p)
        s, cs = ssim_level(p, g, L)
        ssims.append(s)
        css.append(cs)
        ranges.append(L)
        if level < 4:
            p, g = F.avg_pool2d(p, 2), F.avg_pool2d(g, 2)
    out = 1.0
    for l in range(4):
        out = out * (css[l] ** MSSSIM_WEIGHTS[l] * ssims[4] ** MSSSIM_WEIGHTS[4])
    return (out, ranges) if return_ranges else out


def _dx(z):
    return F.pad(z, (0, 1, 0, 0))[..., :, 1:] - z


def _dy(z):
    return F.pad(z, (0, 0, 0, 1))[..., 1:, :] - z


def gradient_loss(pred, target):
    gx = (_dx(target).abs() - _dx(pred).abs()).abs()
    gy = (_dy(target).abs() - _dy(pred).abs()).abs()
    return (gx + gy).mean()


def official_loss(pred, target):
    mse = ((pred - target) ** 2).mean()
    return mse + gradient_loss(pred, target) + (1 - ms_ssim(pred, target)) / 2 + torch.sqrt(mse + 1e-8)


def paper_loss(pred, target, alpha=0.5):
    mse = ((pred - target) ** 2).mean()
    return alpha * mse + (1 - alpha) * gradient_loss(pred, target)


def loss_fn(cfg: Config):
    if cfg.loss == "official":
        return official_loss
    return lambda p, g: paper_loss(p, g, cfg.loss_alpha)


def psnr(pred, target):
    """Per-sample PSNR of images in [-1, 1] mapped to [0, 1]: 10 log10(1 / MSE) -> (B,)."""
    mse = (((pred + 1) / 2 - (target + 1) / 2) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1.0 / mse)


# --------------------------------------------------------------------------------------------
# Self checks
# --------------------------------------------------------------------------------------------

def read_state_dict_listing(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, rest = line.split(" ", 1)
            shape_s, dtype = rest.rsplit(" ", 1)
            shape = tuple(int(v) for v in shape_s.strip("()").split(",") if v.strip())
            rows.append((name, shape, dtype))
    return rows


def state_dict_listing(model):
    return [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()]


def param_count(model):
    return sum(p.numel() for p in model.parameters())


def _check(listing_path):
    import time
    torch.manual_seed(0)
    # 1. official preset: names/shapes/dtypes (on the meta device, no allocation)
    with torch.device("meta"):
        m = INFP(Config.preset("official"))
    ours = state_dict_listing(m)
    ref = read_state_dict_listing(listing_path)
    # the listing gives only the float32 parameter tensors plus the BN running stats / counters
    missing = [r for r in ref if r not in ours]
    extra = [o for o in ours if o not in ref]
    print(f"official: {len(ours)} tensors, listing {len(ref)}, missing {len(missing)}, extra {len(extra)}, "
          f"same order {ours == ref}")
    for r in missing[:10]:
        print("  missing", r)
    for o in extra[:10]:
        print("  extra", o)
    assert not missing and not extra and ours == ref
    print(f"official params: {param_count(m):,} ({param_count(m) / 1e6:.2f} M)")
    for name in ("small", "tiny"):
        for over in ({}, dict(filter_mode="spatial"), dict(fusion=False), dict(trajectory_filter=False)):
            with torch.device("meta"):
                mm = INFP(Config.preset(name, **over))
            print(f"{name} {over}: params {param_count(mm):,}")
    # 2. forward shapes in every mode (small and tiny, train and eval)
    for name in ("tiny", "small"):
        for over in ({}, dict(filter_mode="spatial", freq_mode="cartesian"), dict(fusion=False),
                     dict(trajectory_filter=False), dict(freq_mode="cartesian"), dict(filter_mode="spatial"),
                     dict(loss="paper", dropout=False)):
            cfg = Config.preset(name, **over)
            mm = INFP(cfg)
            x = torch.rand(2, cfg.frames, 3, cfg.height, cfg.width) * 2 - 1
            t0 = time.time()
            mm.train()
            y = mm(x)
            loss = loss_fn(cfg)(y, x[:, -1])
            loss.backward()
            mm.eval()
            with torch.no_grad():
                ye = mm(x)
            assert y.shape == ye.shape == (2, 3, cfg.height, cfg.width), y.shape
            assert torch.isfinite(y).all() and torch.isfinite(ye).all() and torch.isfinite(loss)
            print(f"{name} {over}: out {tuple(y.shape)} loss {loss.item():.4f} ({time.time() - t0:.2f}s)")
    # 3. gradchecks in float64 of the frequency parts
    cfg = Config.preset("tiny", dropout=False)
    for fm in ("polar", "cartesian"):
        fe = FreqExtractor(4, fm).double()
        x = torch.randn(2, 4, 4, 6, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(fe, (x,), eps=1e-6, atol=1e-6, fast_mode=True), fm
    for (p, q, d) in ((4, 6, 5), (5, 7, 4)):
        df = DynamicFilter(p, q, d, 3).double()
        with torch.no_grad():
            df.complex_weights.normal_(0, 0.5)
            df.act1.scale.fill_(1.3)
            df.act1.bias.fill_(0.1)
        y = torch.randn(2, p, q, d, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(df, (y,), eps=1e-6, atol=1e-6, fast_mode=True)
    p = torch.rand(1, 2, 16, 20, dtype=torch.float64) * 2 - 1
    g = torch.rand(1, 2, 16, 20, dtype=torch.float64) * 2 - 1
    p.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: official_loss(a, g), (p,), eps=1e-6, atol=1e-6, fast_mode=True)
    print("gradchecks ok")


if __name__ == "__main__":
    import argparse
    import os
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="run the self checks")
    ap.add_argument("--listing", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "design",
                                                      "official-state-dict.txt"))
    a = ap.parse_args()
    if a.check:
        _check(a.listing)
    else:
        ap.print_help()
