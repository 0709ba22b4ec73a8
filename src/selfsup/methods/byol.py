"""BYOL (Grill et al. 2020, arXiv:2006.07733): bootstrap your own latent.

An online network (backbone + projector + predictor) predicts the projection that a target
network, the online network's EMA, gives to the other view. No negatives; the predictor and the
slowly moving target are what keep it from collapsing (Sec. 3.2, 5).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.heads import presets
from selfsup.losses.functional import byol_loss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.momentum import cosine_momentum, frozen_copy, update_momentum
from selfsup.methods.registry import register_method


class BYOL(Method):
    """backbone -> projector -> predictor (online); EMA copies of backbone and projector (target).

    predictor: (N, d) -> (N, d), or None to drop it (the paper's ablation, Table 5: it collapses;
    kept for the collapse-guard test). momentum -> final_momentum: the cosine EMA schedule,
    0.996 -> 1 (paper, Sec. 3.2). Loss: the symmetrized normalized MSE L + L~ (eq. 2).
    """

    def __init__(
        self,
        backbone: nn.Module,
        projector: nn.Module,
        predictor: nn.Module | None,
        momentum: float = 0.996,
        final_momentum: float = 1.0,
    ) -> None:
        super().__init__()
        self.backbone, self.projector = backbone, projector
        self.predictor = predictor if predictor is not None else nn.Identity()
        self.target_backbone, self.target_projector = frozen_copy(backbone), frozen_copy(projector)
        self.momentum, self.final_momentum = momentum, final_momentum

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [x_a, x_b], each (N, C, H, W); both go through each network in one forward."""
        x_a, x_b = views
        x = torch.cat([x_a, x_b])  # (2N, C, H, W)
        z = self.projector(self.backbone(x))  # (2N, d) online projections
        p_a, p_b = self.predictor(z).chunk(2)
        with torch.no_grad():
            t_a, t_b = self.target_projector(self.target_backbone(x)).chunk(2)
        loss = byol_loss(p_a, t_b) + byol_loss(p_b, t_a)
        z_a, z_b = z.chunk(2)
        return StepOutput(loss=loss, z=(z_a, z_b))

    def after_step(self, step: int, total_steps: int) -> None:
        m = cosine_momentum(step, total_steps, self.momentum, self.final_momentum)
        update_momentum(self.backbone, self.target_backbone, m)
        update_momentum(self.projector, self.target_projector, m)


@register_method("byol", views="byol_views")
def build_byol(
    encoder: nn.Module,
    proj_hidden_dim: int = 4096,
    proj_dim: int = 256,
    pred_hidden_dim: int = 4096,
    momentum: float = 0.996,
    final_momentum: float = 1.0,
) -> BYOL:
    """BYOL (Grill et al. 2020): 4096-d hidden, 256-d projections, EMA 0.996 -> 1 (cosine)."""
    proj = presets.byol_projector(encoder.num_features, proj_hidden_dim, proj_dim)
    pred = presets.byol_predictor(proj_dim, pred_hidden_dim, proj_dim)
    return BYOL(encoder, proj, pred, momentum, final_momentum)
