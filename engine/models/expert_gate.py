"""Two restorers of one architecture, blended by how damaged the input looks.

A small restorer trained on the whole range of damage, from none to Real-ESRGAN's heavy
second-order mix, learns to smooth: heavy noise and JPEG dominate its loss, so it treats a
clean photo's fine detail as noise (the v2 starter's all-round restorer costs a clean photo
about 1 dB against bicubic). The same network fine-tuned on clean and everyday damage only
keeps detail but leaves heavy damage in. Neither is right everywhere; together they are:

- the *gentle* expert: kind to clean photos, sharpens and cleans everyday damage;
- the *heavy* expert: removes compounded noise, blur and JPEG;
- `ExpertGate`: how much of the heavy expert to take for an input (a tile of a photo), a
  logistic regression, or a one-layer net (v2.3), on a few fixed statistics of the input
  (engine/models/damage_features.py: noise level and kind, detail at two scales, colour noise,
  JPEG blockiness), trained with both experts frozen to say which expert is closer to the
  truth (trainer/tasks/starter_gate.py). A small CNN on the pixels was tried first and learned
  nothing a prior did not (docs/decisions.md).

Both experts stay plain spandrel files (Real-ESRGAN's Compact), so either can be used alone in
chaiNNer or Upscayl. `GatedRestorer` runs only the expert a tile needs where the gate is sure
(the usual case on a clean photo or a heavily damaged one), so it costs one network there and
two where the damage is in between. Neighbouring tiles that choose differently are blended
over their overlap, as all tiles are.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from engine.models.damage_features import DAMAGE_FEATURES, damage_features

__all__ = ["SURE_WEIGHT", "ExpertGate", "GatedRestorer"]

SURE_WEIGHT = 0.02
"""Where a tile's weight is below this (above 1 minus this), only the gentle (heavy) expert
runs: the other would change the result by at most 2 % of the experts' difference."""


class ExpertGate(ModelMixin, ConfigMixin):
    """LQ (B,3,h,w) in [0,1] -> the heavy expert's weight for each input, in [0,1].

    A logistic regression (v2.1, v2.2), or one with a hidden layer (v2.3), on the first
    `num_features` columns of `damage_features`, standardised by `feature_mean` and
    `feature_std` (set from training crops before training: `set_standardisation`).

    Args:
        num_features: how many of `DAMAGE_FEATURES` it reads, from the first (8: v2.1's and
            v2.2's gates, whose saved configs say so; all 14 for v2.3's).
        hidden_units: 0, a logistic regression; else one tanh layer this wide before the
            logit. On 8000 training crops, each fifth of the photos scored by a gate fitted
            on the others, against the gentle expert alone: 16 units on all 14 statistics
            lost 0.05 dB a crop on everyday damage and gained 0.81 on the published damage,
            the logistic regression on 8 lost 0.16 and gained 0.65 (docs/decisions.md,
            "Starter v2.3").
        decisiveness: the weight is sigmoid(decisiveness x the logit). Trained as a plain
            logistic regression (1), it says how likely the heavy expert is the better
            one; taking the likelier expert outright costs nothing measurable (mean absolute
            error on 600 training crops: 0.02753 at 1, 0.02753 at 8, 0.02754 at 1000) and runs
            one expert instead of two. At 8 a tile whose odds are between 38 % and 62 % still
            blends both (neighbouring tiles that decide differently stay smooth); the others,
            79 % of those crops, run one.
    """

    @register_to_config
    def __init__(
        self,
        num_features: int = len(DAMAGE_FEATURES),
        decisiveness: float = 8.0,
        hidden_units: int = 0,
    ) -> None:
        super().__init__()
        if not 1 <= num_features <= len(DAMAGE_FEATURES):
            raise ValueError(
                f"num_features must be 1 to {len(DAMAGE_FEATURES)}, not {num_features}"
            )
        if hidden_units < 0:
            raise ValueError(f"hidden_units must be >= 0, not {hidden_units}")
        self.num_features = num_features
        self.decisiveness = decisiveness
        self.register_buffer("feature_mean", torch.zeros(num_features))
        self.register_buffer("feature_std", torch.ones(num_features))
        # A v2.1/v2.2 gate is `head` alone: its saved weights load as they were saved.
        self.hidden = nn.Linear(num_features, hidden_units) if hidden_units else None
        self.head = nn.Linear(hidden_units or num_features, 1)

    def features(self, lq: torch.Tensor) -> torch.Tensor:
        """The columns of `damage_features` this gate reads, not standardised."""
        return damage_features(lq)[:, : self.num_features]

    @torch.no_grad()
    def set_standardisation(self, lq_batches: list[torch.Tensor]) -> None:
        """Centre and scale each feature by its mean and spread over these inputs."""
        features = torch.cat([self.features(lq) for lq in lq_batches])
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-3))

    def forward(
        self, lq: torch.Tensor, size: tuple[int, int] | None = None, *, logits: bool = False
    ) -> torch.Tensor:
        """lq (B,3,h,w) -> weights (B,1,*size) (size: the input's if None), one value per
        input; with `logits`, the regression's (B,1,1,1) logits, before `decisiveness`
        (training reads them through the module's call, so accelerate's wrappers see it)."""
        features = (self.features(lq) - self.feature_mean) / self.feature_std
        if self.hidden is not None:
            features = torch.tanh(self.hidden(features))
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

    def heavy_weight(self, lq: torch.Tensor) -> torch.Tensor:
        """The heavy expert's share of `forward(lq)`, (B,1,h*scale,w*scale): the gate's
        weight, 0 or 1 where the gate is sure and only one expert runs."""
        size = (lq.shape[-2] * self.scale, lq.shape[-1] * self.scale)
        weight = self.gate(lq, size)
        if float(weight.max()) < SURE_WEIGHT:
            return torch.zeros_like(weight)
        if float(weight.min()) > 1.0 - SURE_WEIGHT:
            return torch.ones_like(weight)
        return weight

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        weight = self.heavy_weight(lq)
        if float(weight.max()) == 0.0:
            return self.gentle(lq)
        if float(weight.min()) == 1.0:
            return self.heavy(lq)
        return torch.lerp(self.gentle(lq), self.heavy(lq), weight)
