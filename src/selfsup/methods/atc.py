"""ATC (Stooke, Lee, Abbeel & Laskin 2021, "Decoupling Representation Learning from
Reinforcement Learning", ICML, arXiv:2009.08319): Augmented Temporal Contrast.

An observation o_t (the anchor) and the observation k steps later in the same episode
o_{t+k} (the positive) are a pair; the other positives of the batch are the negatives. Both are
randomly shifted. The anchor's latent goes through a residual MLP predictor; the positive's
comes from a momentum (EMA) copy of the encoder; the score is a learned bilinear product, with
cross-entropy over the batch (`selfsup.losses.bilinear`). Atari settings of the official code
(astooke/rlpyt, ul/experiments/ul_for_rl/configs/atari/atari_ats.py): delta_T = 3, latent 256,
predictor hidden 512, target tau 0.01, lr 1e-3 (cosine, 1000 warm-up updates), batch 512,
gradient norm clipped at 10, random shift pad 4.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.losses.bilinear import BilinearContrastiveLoss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.momentum import frozen_copy, update_momentum
from selfsup.methods.registry import register_method


class ResidualPredictor(nn.Module):
    """z -> z + MLP(z): (N, d) -> (N, d), the anchor's predictor (one hidden ReLU layer)."""

    def __init__(self, dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.mlp(z)


class ATC(Method):
    """backbone -> predictor (anchors); the backbone's EMA copy (positives); bilinear InfoNCE.

    The backbone's own output is the latent (the Nature CNN's 256-d linear layer plays ATC's
    "compressor"). momentum: EMA coefficient of the target, 1 - target_update_tau = 0.99.
    """

    def __init__(
        self, backbone: nn.Module, predictor: nn.Module, loss: nn.Module, momentum: float = 0.99
    ) -> None:
        super().__init__()
        self.backbone, self.predictor, self.loss = backbone, predictor, loss
        self.target_backbone = frozen_copy(backbone)
        self.momentum = momentum

    def loss_on(self, obs_t: torch.Tensor, obs_later: torch.Tensor) -> StepOutput:
        """obs_t: (N, C, H, W) anchors; obs_later: (N, C, H, W) the observations delta_T steps
        later in the same episodes; both float in [0, 1], augmented."""
        z = self.backbone(obs_t)
        anchors = self.predictor(z)
        with torch.no_grad():
            positives = self.target_backbone(obs_later)
        return StepOutput(loss=self.loss(anchors, positives), z=(z, positives))

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [o_t, o_{t+k}], each (N, C, H, W)."""
        return self.loss_on(*views)

    def after_step(self, step: int, total_steps: int) -> None:
        update_momentum(self.backbone, self.target_backbone, self.momentum)


@register_method("atc", views="atc_views")
def build_atc(
    encoder: nn.Module, pred_hidden_dim: int = 512, momentum: float = 0.99, gather: bool = True
) -> ATC:
    """ATC (Stooke et al. 2021, Atari config): residual predictor with 512 hidden units,
    target EMA 0.99 (tau 0.01), W (d, d) over the encoder's d-d latent (256 for nature_cnn).
    The temporal offset delta_T = 3 is the views' (`atc_views`: pairs 3 steps apart).

    gather: other processes' positives are negatives too under torchrun (one global batch).
    """
    d = encoder.num_features
    loss = BilinearContrastiveLoss(d, gather=gather)
    return ATC(encoder, ResidualPredictor(d, pred_hidden_dim), loss, momentum)
