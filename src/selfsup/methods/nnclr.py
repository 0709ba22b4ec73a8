"""NNCLR (Dwibedi et al. 2021, arXiv:2104.14548): nearest-neighbour contrastive learning.

Like SimCLR, but the anchor of each positive pair is the nearest neighbour of a view's
projection in a support set of past projections: NN(z_a) must pick out p_b (the prediction of
the other view) among the batch's predictions. This reaches beyond augmentations to other
samples of the same kind (Sec. 3.1).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.heads import presets
from selfsup.losses.functional import info_nce
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method
from selfsup.methods.support_set import SupportSet


class NNCLR(Method):
    """backbone -> projector (z) -> predictor (p); InfoNCE between NN(z_a) and p_b and back.

    support_set_size: 98,304 (paper, Sec. 4.2); temperature: 0.1 (paper). The loss is the
    paper's symmetric form (NN(z_a) against all p_b, and p_b against all NN(z_a)), averaged over
    the two view orders; predictions of all ranks are negatives. The support set takes z_a of
    the batch after the loss.
    """

    def __init__(
        self,
        backbone: nn.Module,
        projector: nn.Module,
        predictor: nn.Module,
        proj_dim: int,
        support_set_size: int = 98304,
        temperature: float = 0.1,
    ) -> None:
        super().__init__()
        self.backbone, self.projector, self.predictor = backbone, projector, predictor
        self.support_set = SupportSet(support_set_size, proj_dim)
        self.temperature = temperature

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [x_a, x_b], each (N, C, H, W)."""
        x_a, x_b = views
        z = self.projector(self.backbone(torch.cat([x_a, x_b])))  # (2N, d)
        p_a, p_b = self.predictor(z).chunk(2)
        z_a, z_b = z.chunk(2)
        nn_a, nn_b = self.support_set.nearest(z_a), self.support_set.nearest(z_b)  # no grad
        t = self.temperature
        loss = 0.5 * (
            info_nce(nn_a, p_b.float(), t, symmetric=True, gather=True)
            + info_nce(nn_b, p_a.float(), t, symmetric=True, gather=True)
        )
        if self.training:
            self.support_set.enqueue(z_a)  # after the loss: never its own neighbour this step
        return StepOutput(loss=loss, z=(z_a, z_b))


@register_method("nnclr", views="byol_views")
def build_nnclr(
    encoder: nn.Module,
    proj_hidden_dim: int = 2048,
    proj_dim: int = 256,
    pred_hidden_dim: int = 4096,
    support_set_size: int = 98304,
    temperature: float = 0.1,
) -> NNCLR:
    """NNCLR (Dwibedi et al. 2021): projector [2048, 2048, 256], predictor [4096, 256], support
    set 98,304, T=0.1."""
    proj = presets.nnclr_projector(encoder.num_features, proj_hidden_dim, proj_dim)
    pred = presets.nnclr_predictor(proj_dim, pred_hidden_dim, proj_dim)
    return NNCLR(encoder, proj, pred, proj_dim, support_set_size, temperature)
