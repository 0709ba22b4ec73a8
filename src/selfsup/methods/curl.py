"""CURL (Laskin, Srinivas & Abbeel 2020, "CURL: Contrastive Unsupervised Representations for
Reinforcement Learning", ICML, arXiv:2004.04136).

Two random crops of the same observation (a frame stack) are a query and its key; the keys of the
other observations in the batch are the negatives. The query encoder is trained; the key encoder
is its momentum (EMA) copy, as MoCo's, and the score is a learned bilinear product
q^T W k (as CPC's), cross-entropy over the batch (`selfsup.losses.bilinear`). In an agent the
same query encoder feeds the policy and the value function; `CURL.loss_on(obs_q, obs_k)` is the
part an RL update adds to its own loss (examples/curl_agent.py).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.losses.bilinear import BilinearContrastiveLoss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.momentum import frozen_copy, update_momentum
from selfsup.methods.registry import register_method


def curl_head(in_dim: int, out_dim: int = 50) -> nn.Sequential:
    """CURL's last encoder layers: Linear(in_dim, 50) -> LayerNorm, (N, in_dim) -> (N, 50) (the
    official PixelEncoder's `fc` and `ln`, encoder_feature_dim 50; `output_logits=True` for the
    contrastive branch, so no tanh)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim))


class CURL(Method):
    """backbone -> projector (query); their EMA copies (key); bilinear InfoNCE query -> keys.

    momentum: the key encoder's EMA coefficient, k <- m k + (1 - m) q after every step; CURL's
    `encoder_tau` 0.05 is 1 - m (MishaLaskin/curl, train.py), so m = 0.95.
    """

    def __init__(
        self, backbone: nn.Module, projector: nn.Module, loss: nn.Module, momentum: float = 0.95
    ) -> None:
        super().__init__()
        self.backbone, self.projector, self.loss = backbone, projector, loss
        self.key_backbone, self.key_projector = frozen_copy(backbone), frozen_copy(projector)
        self.momentum = momentum

    def loss_on(self, obs_q: torch.Tensor, obs_k: torch.Tensor) -> StepOutput:
        """obs_q, obs_k: (N, C, H, W) two augmentations of N observations, float in [0, 1].

        The keys are computed without gradient (the key encoder moves only by EMA); the
        queries' graph reaches the backbone, so an agent's optimizer trains it from here.
        """
        q = self.projector(self.backbone(obs_q))  # (N, 50)
        with torch.no_grad():
            k = self.key_projector(self.key_backbone(obs_k))
        return StepOutput(loss=self.loss(q, k), z=(q, k))

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [queries, keys], each (N, C, H, W): two crops of the same frame stacks."""
        return self.loss_on(*views)

    def after_step(self, step: int, total_steps: int) -> None:
        update_momentum(self.backbone, self.key_backbone, self.momentum)
        update_momentum(self.projector, self.key_projector, self.momentum)


@register_method("curl", views="curl_views")
def build_curl(
    encoder: nn.Module,
    proj_dim: int = 50,
    momentum: float = 0.95,
    w_init: str = "uniform",
    gather: bool = True,
) -> CURL:
    """CURL (Laskin et al. 2020): 50-d latents (encoder_feature_dim), W of shape (50, 50) drawn
    from U[0, 1) (`torch.rand`, curl_sac.py), key encoder EMA 0.95 (encoder_tau 0.05).

    w_init: "uniform" (CURL's U[0, 1)) or "normal" (N(0, 0.05^2), COLA's).
    gather: other processes' keys are negatives too under torchrun (one global batch).
    """
    loss = BilinearContrastiveLoss(proj_dim, gather=gather, init=w_init)
    return CURL(encoder, curl_head(encoder.num_features, proj_dim), loss, momentum)
