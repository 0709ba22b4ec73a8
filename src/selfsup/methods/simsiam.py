"""SimSiam (Chen & He 2021, arXiv:2011.10566): Siamese networks with a stop-gradient.

One network (backbone + projector) for both views, a predictor on top, and the negative cosine
between the prediction of one view and the projection of the other, whose gradient is stopped.
No negatives, no momentum encoder: the stop-gradient alone prevents collapse (Sec. 4.1, Fig. 2).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.heads import presets
from selfsup.losses.functional import negative_cosine
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method


class SimSiam(Method):
    """L = D(p_a, sg(z_b)) / 2 + D(p_b, sg(z_a)) / 2 with D = -cos (eq. 1-4).

    stop_gradient: False reproduces the paper's ablation that collapses (Fig. 2); kept for the
    collapse-guard test, never for training.
    """

    def __init__(
        self,
        backbone: nn.Module,
        projector: nn.Module,
        predictor: nn.Module,
        stop_gradient: bool = True,
    ) -> None:
        super().__init__()
        self.backbone, self.projector, self.predictor = backbone, projector, predictor
        self.stop_gradient = stop_gradient

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [x_a, x_b], each (N, C, H, W)."""
        x_a, x_b = views
        z = self.projector(self.backbone(torch.cat([x_a, x_b])))  # (2N, d)
        p_a, p_b = self.predictor(z).chunk(2)
        z_a, z_b = z.chunk(2)
        t_a, t_b = (z_a.detach(), z_b.detach()) if self.stop_gradient else (z_a, z_b)
        loss = 0.5 * (negative_cosine(p_a, t_b) + negative_cosine(p_b, t_a))
        return StepOutput(loss=loss, z=(z_a, z_b))


@register_method("simsiam", views="moco_v2_views")
def build_simsiam(
    encoder: nn.Module,
    proj_hidden_dim: int = 2048,
    proj_dim: int = 2048,
    proj_layers: int = 3,
    pred_hidden_dim: int = 512,
) -> SimSiam:
    """SimSiam (Chen & He 2021): 3-layer 2048-d projector (2 layers on CIFAR-10), 512-d
    predictor bottleneck."""
    proj = presets.simsiam_projector(encoder.num_features, proj_hidden_dim, proj_dim, proj_layers)
    return SimSiam(encoder, proj, presets.simsiam_predictor(proj_dim, pred_hidden_dim, proj_dim))
