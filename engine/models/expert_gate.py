"""Two restorers of one architecture, blended by how damaged the input looks.

A small restorer trained on the whole range of damage, from none to Real-ESRGAN's heavy
second-order mix, learns to smooth: heavy noise and JPEG dominate its loss, so it treats a
clean photo's fine detail as noise (the v2 starter's all-round restorer costs a clean photo
about 1 dB against bicubic). The same network fine-tuned on clean and everyday damage only
keeps detail but leaves heavy damage in. Neither is right everywhere; together they are:

- the *gentle* expert: kind to clean photos, sharpens and cleans everyday damage;
- the *heavy* expert: removes compounded noise, blur and JPEG;
- `ExpertGate`: how much of the heavy expert to take for an input (a tile of a photo), a
  logistic regression on a few fixed statistics of the input (`damage_features`: noise level,
  detail at two scales, colour noise, JPEG blockiness), trained with both experts frozen to
  say which expert is closer to the truth (trainer/tasks/starter_gate.py). A small CNN was
  tried first and learned nothing a prior did not (docs/decisions.md).

Both experts stay plain spandrel files (Real-ESRGAN's Compact), so either can be used alone in
chaiNNer or Upscayl. `GatedRestorer` runs only the expert a tile needs where the gate is sure
(the usual case on a clean photo or a heavily damaged one), so it costs one network there and
two where the damage is in between. Neighbouring tiles that choose differently are blended
over their overlap, as all tiles are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

__all__ = ["DAMAGE_FEATURES", "SURE_WEIGHT", "ExpertGate", "GatedRestorer", "damage_features"]

SURE_WEIGHT = 0.02
"""Where a tile's weight is below this (above 1 minus this), only the gentle (heavy) expert
runs: the other would change the result by at most 2 % of the experts' difference."""
DAMAGE_FEATURES = (
    "noise",
    "detail",
    "coarse_detail",
    "diagonal_detail",
    "colour_noise",
    "blockiness",
    "diagonal_share",
    "fine_to_coarse",
)
"""What `damage_features` measures, in its column order (all logarithms)."""
_EPS = 1e-4


def _haar(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of the orthonormal Haar transform of (B,H,W), H and W even: LL, LH, HL, HH."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return (a + b + c + d) / 2, (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2


def damage_features(lq: torch.Tensor) -> torch.Tensor:
    """lq (B,3,h,w) in [0,1] -> (B, len(DAMAGE_FEATURES)) statistics of its damage.

    noise: Donoho's estimate (median |HH| / 0.6745 of the finest Haar level of the luma),
    robust to edges; detail and coarse_detail: mean |LH| + |HL| at the first two levels (blur
    lowers the first against the second: fine_to_coarse); diagonal_detail and diagonal_share:
    mean |HH| and its share of the detail (noise is as strong diagonally as along the axes,
    a photo's detail is not); colour_noise: median |HH| of both chroma differences (sensor and
    the published degradation's colour noise); blockiness: the strongest of the 8 column
    phases of the horizontal luma differences against their mean (JPEG's 8 px blocks, wherever
    the grid starts).
    """
    # Even sides of at least 16 px: two Haar levels and the 8 JPEG phases need them.
    height, width = (
        max(16, lq.shape[-2] + lq.shape[-2] % 2),
        max(16, lq.shape[-1] + lq.shape[-1] % 2),
    )
    if (height, width) != tuple(lq.shape[-2:]):
        lq = F.pad(lq, (0, width - lq.shape[-1], 0, height - lq.shape[-2]), mode="replicate")
    red, green, blue = lq[:, 0], lq[:, 1], lq[:, 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    low, lh, hl, hh = _haar(luma)
    _, lh2, hl2, _ = _haar(low[..., : low.shape[-2] // 2 * 2, : low.shape[-1] // 2 * 2])
    flat = lambda t: t.flatten(1)  # noqa: E731
    noise = flat(hh.abs()).median(1).values / 0.6745
    detail = flat(lh.abs() + hl.abs()).mean(1)
    coarse = flat(lh2.abs() + hl2.abs()).mean(1)
    diagonal = flat(hh.abs()).mean(1)
    colour = sum(
        flat(_haar(chroma)[3].abs()).median(1).values for chroma in (blue - luma, red - luma)
    )
    steps = (luma[..., :, 1:] - luma[..., :, :-1]).abs()
    columns = steps.shape[-1] // 8 * 8
    phases = steps[..., :columns].reshape(steps.shape[0], -1, columns // 8, 8).mean((1, 2))
    blockiness = phases.max(1).values / phases.mean(1).clamp_min(_EPS)
    features = [
        noise,
        detail,
        coarse,
        diagonal,
        colour,
        blockiness,
        diagonal / detail.clamp_min(_EPS),
        detail / coarse.clamp_min(_EPS),
    ]
    return torch.stack([f.clamp_min(0) + _EPS for f in features], 1).log()


class ExpertGate(ModelMixin, ConfigMixin):
    """LQ (B,3,h,w) in [0,1] -> the heavy expert's weight for each input, in [0,1].

    A logistic regression on `damage_features`, standardised by `feature_mean` and
    `feature_std` (set from training crops before training: `set_standardisation`).

    Args:
        decisiveness: the weight is sigmoid(decisiveness x the regression's logit). Trained as
            a plain logistic regression (1), it says how likely the heavy expert is the better
            one; taking the likelier expert outright costs nothing measurable (mean absolute
            error on 600 training crops: 0.02753 at 1, 0.02753 at 8, 0.02754 at 1000) and runs
            one expert instead of two. At 8 a tile whose odds are between 38 % and 62 % still
            blends both (neighbouring tiles that decide differently stay smooth); the others,
            79 % of those crops, run one.
    """

    @register_to_config
    def __init__(self, num_features: int = len(DAMAGE_FEATURES), decisiveness: float = 8.0) -> None:
        super().__init__()
        self.decisiveness = decisiveness
        self.register_buffer("feature_mean", torch.zeros(num_features))
        self.register_buffer("feature_std", torch.ones(num_features))
        self.head = nn.Linear(num_features, 1)

    @torch.no_grad()
    def set_standardisation(self, lq_batches: list[torch.Tensor]) -> None:
        """Centre and scale each feature by its mean and spread over these inputs."""
        features = torch.cat([damage_features(lq) for lq in lq_batches])
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-3))

    def forward(
        self, lq: torch.Tensor, size: tuple[int, int] | None = None, *, logits: bool = False
    ) -> torch.Tensor:
        """lq (B,3,h,w) -> weights (B,1,*size) (size: the input's if None), one value per
        input; with `logits`, the regression's (B,1,1,1) logits, before `decisiveness`
        (training reads them through the module's call, so accelerate's wrappers see it)."""
        features = (damage_features(lq) - self.feature_mean) / self.feature_std
        raw = self.head(features)[:, :, None, None]
        if logits:
            return raw
        size = tuple(lq.shape[-2:]) if size is None else size
        return torch.sigmoid(self.decisiveness * raw).expand(-1, -1, *size)


class GatedRestorer(nn.Module):
    """`GatedRestorer(gentle, heavy, gate, scale)(lq)` -> the experts' results blended by the
    gate: (1 - w) * gentle(lq) + w * heavy(lq), (B,3,h*scale,w*scale), not clamped.

    Both experts must upscale by `scale`. Where the gate is sure (a weight below
    `SURE_WEIGHT`, or above 1 minus it, for every input of the batch) only one expert runs.
    """

    def __init__(self, gentle: nn.Module, heavy: nn.Module, gate: ExpertGate, scale: int):
        super().__init__()
        self.gentle = gentle
        self.heavy = heavy
        self.gate = gate
        self.scale = scale

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        size = (lq.shape[-2] * self.scale, lq.shape[-1] * self.scale)
        weight = self.gate(lq, size)
        if float(weight.max()) < SURE_WEIGHT:
            return self.gentle(lq)
        if float(weight.min()) > 1.0 - SURE_WEIGHT:
            return self.heavy(lq)
        return torch.lerp(self.gentle(lq), self.heavy(lq), weight)
