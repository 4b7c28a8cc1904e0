"""The starter model: a small restorer (Compact or RRDBNet) and a per-token degradation estimator.

A fast CPU-friendly stand-in for DreamClear that the app can ship and train itself:

- the restorer is either (v2, the bundled one) Real-ESRGAN's SRVGGNetCompact as spandrel builds
  it, run at the input's resolution and up-sampled by pixel shuffle (x4): fast on a CPU, since
  every convolution runs on the small input; or (v1) spandrel's ESRGAN (old-arch RRDBNet) built
  at scale 1 the Real-ESRGAN way (pixel-unshuffle by 4 inside, two x2 upconvs back), whose
  input is the LQ image already resized (bicubic) to the target size. Both state dicts are
  detected by `spandrel.ModelLoader().load_from_state_dict` with no custom code.
- the estimator predicts, per 16 px token, how strong each degradation is, in the channel
  order of `STARTER_CHANNELS` (the order of `degrade_spatially_varying`'s strength maps).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN
from torch import nn

__all__ = [
    "STARTER_CHANNELS",
    "DegradationEstimator",
    "build_compact_restorer",
    "build_starter_restorer",
]

STARTER_CHANNELS: tuple[str, ...] = ("blur", "noise", "jpeg", "scale")
"""Channels of the estimator's maps (and of the spatially varying strength maps)."""

SHUFFLE_FACTOR = 4
SPANDREL_GROWTH_CHANNELS = 32
"""spandrel's RRDBNet hard-codes the dense-block growth channels (gc=32) and its loader cannot
read another value back from a state dict, so a spandrel-loadable restorer must use 32."""


def build_starter_restorer(
    num_feat: int = 32, num_block: int = 4, num_grow_ch: int = SPANDREL_GROWTH_CHANNELS
) -> nn.Module:
    """spandrel's ESRGAN at scale 1: (B,3,H,W) in [0,1] -> (B,3,H,W) (not clamped).

    `num_grow_ch` is accepted for the Real-ESRGAN signature but must be 32: see
    `SPANDREL_GROWTH_CHANNELS`.
    """
    if num_grow_ch != SPANDREL_GROWTH_CHANNELS:
        raise ValueError(
            f"num_grow_ch must be {SPANDREL_GROWTH_CHANNELS}: spandrel's ESRGAN loader assumes it, "
            f"so a restorer with {num_grow_ch} could not be loaded back"
        )
    # Scale 4 on the unshuffled input = scale 1 overall; spandrel detects it that way too.
    return ESRGAN(
        in_nc=3 * SHUFFLE_FACTOR**2,
        out_nc=3,
        num_filters=num_feat,
        num_blocks=num_block,
        scale=SHUFFLE_FACTOR,
        shuffle_factor=SHUFFLE_FACTOR,
    )


def build_compact_restorer(num_feat: int = 48, num_conv: int = 16, scale: int = 4) -> nn.Module:
    """spandrel's Compact (SRVGGNetCompact): (B,3,h,w) in [0,1] -> (B,3,h*scale,w*scale)."""
    return Compact(num_feat=num_feat, num_conv=num_conv, upscale=scale)


class DegradationEstimator(ModelMixin, ConfigMixin):
    """A small CNN: (B,3,H,W) in [0,1] -> (B,4,H/16,W/16) degradation strengths in [0,1].

    Args:
        channels: width of the convolutions.
        num_layers: 3x3 conv + LeakyReLU layers at 1/4 resolution, before the two strided convs.
        num_outputs: output maps, one per name in `STARTER_CHANNELS`.
        context_layers: 3x3 conv + LeakyReLU layers at token resolution, before the output conv:
            the strength masks are smooth, so a token whose own pixels say little (a flat sky
            hides blur) reads its neighbours.
        highpass_gain: the convolutions see the input minus its 3x3 local mean (at 1/4
            resolution) times this gain; 0 feeds the raw pixels. Noise, JPEG and blur live in
            residues of a few 8-bit levels under the picture's brightness: fed raw, the small CNN
            stays at predicting the mean strength (Spearman ~0 on the estimator bench).
    """

    token_px = 16

    @register_to_config
    def __init__(
        self,
        channels: int = 32,
        num_layers: int = 3,
        num_outputs: int = 4,
        highpass_gain: float = 10.0,
        context_layers: int = 0,
    ) -> None:
        super().__init__()
        self.highpass_gain = highpass_gain
        layers: list[nn.Module] = [nn.Conv2d(3 * SHUFFLE_FACTOR**2, channels, 3, padding=1)]
        for _ in range(num_layers):
            layers += [nn.LeakyReLU(0.2), nn.Conv2d(channels, channels, 3, padding=1)]
        for _ in range(2):  # 1/4 -> 1/16
            layers += [nn.LeakyReLU(0.2), nn.Conv2d(channels, channels, 3, stride=2, padding=1)]
        for _ in range(context_layers):
            layers += [nn.LeakyReLU(0.2), nn.Conv2d(channels, channels, 3, padding=1)]
        layers += [nn.LeakyReLU(0.2), nn.Conv2d(channels, num_outputs, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (B,3,H,W) in [0,1] -> maps (B,num_outputs,ceil(H/16),ceil(W/16)) in [0,1]."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an image batch (B,3,H,W), got shape {tuple(image.shape)}")
        # 1. Pad to a multiple of 16 so every token sees a full 16 px cell.
        h, w = image.shape[-2:]
        pad_h, pad_w = -h % self.token_px, -w % self.token_px
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
        # 2. Pixel-unshuffle (convolutions run at 1/4 resolution), then the local high-pass.
        features = F.pixel_unshuffle(image, SHUFFLE_FACTOR)
        if self.highpass_gain:
            local_mean = F.avg_pool2d(F.pad(features, (1, 1, 1, 1), mode="replicate"), 3, 1)
            features = (features - local_mean) * self.highpass_gain
        # 3. Convs down to one cell per token, squashed to [0,1].
        return torch.sigmoid(self.body(features))


@torch.no_grad()
def start_as_bilinear(compact: nn.Module) -> nn.Module:
    """Make a freshly built Compact start as a bilinear upscaler, so training begins from a
    fair interpolation and learns only the restoration on top of it.

    Compact adds its network's output to a nearest-neighbour upscale of the input. Trained from
    scratch with L1, its residual first shrinks to zero and stays there for thousands of steps
    (measured here: it had not left nearest's loss after 1300 steps of batch 16); every step of a
    CPU-trained model counts, so it starts where that residual is already bilinear minus
    nearest:

    - every body convolution passes the three input channels through unchanged in its first
      three channels (pixel values are >= 0, so the PReLUs pass them as they are), and those
      channels read nothing else; the other channels keep their random init and read all;
    - the last convolution maps the three carried channels to bilinear-minus-nearest for each
      of the scale x scale sub-pixel phases (pixel shuffle order: colour, row, column) and
      starts at zero from the other channels, so the untrained features add nothing yet.
    The result is an ordinary Compact state dict (spandrel loads it as any other).
    """
    convs = [layer for layer in compact.body if isinstance(layer, nn.Conv2d)]
    *carriers, last = convs
    for conv in carriers:
        conv.weight[:3] = 0
        conv.bias[:3] = 0
        for colour in range(3):
            conv.weight[colour, colour, 1, 1] = 1.0
    scale = round((last.out_channels // 3) ** 0.5)
    last.weight.zero_()
    last.bias.zero_()
    taps = _bilinear_taps(scale)  # (scale, 3): weights of the pixels at -1, 0, +1
    for colour in range(3):
        for row in range(scale):
            for column in range(scale):
                kernel = torch.outer(taps[row], taps[column])
                kernel[1, 1] -= 1.0  # minus the nearest-neighbour base Compact adds
                last.weight[colour * scale * scale + row * scale + column, colour] = kernel
    return compact


def _bilinear_taps(scale: int) -> torch.Tensor:
    """For each sub-pixel phase of an x`scale` upscale (align_corners=False), the weights of
    the input pixels at offsets -1, 0 and +1."""
    taps = torch.zeros(scale, 3)
    for phase in range(scale):
        offset = (phase + 0.5) / scale - 0.5
        taps[phase, 1] = 1.0 - abs(offset)
        taps[phase, 0 if offset < 0 else 2] = abs(offset)
    return taps
