"""Barlow Twins (Zbontar et al. 2021, arXiv:2103.03230): redundancy reduction.

The cross-correlation matrix of the two views' batch-standardized projections is pushed to the
identity: its diagonal to 1 (invariance), its off-diagonal to 0 (decorrelation).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.heads import presets
from selfsup.losses.functional import barlow_twins_terms
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method


class BarlowTwins(Method):
    """backbone -> projector for both views; loss on_diag + lambd * off_diag (eq. 1).

    lambd: 0.0051 (reference code; the paper states 5e-3). gather: use the global batch's
    cross-correlation under torchrun (the reference code all-reduces C). Logs both terms.
    """

    def __init__(
        self, backbone: nn.Module, projector: nn.Module, lambd: float = 0.0051, gather: bool = True
    ) -> None:
        super().__init__()
        self.backbone, self.projector = backbone, projector
        self.lambd, self.gather = lambd, gather

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [x_a, x_b], each (N, C, H, W)."""
        x_a, x_b = views
        z_a, z_b = self.projector(self.backbone(torch.cat([x_a, x_b]))).chunk(2)
        # the correlation in fp32: bf16 sums over a batch lose the small off-diagonal terms
        terms = barlow_twins_terms(z_a.float(), z_b.float(), self.gather)
        loss = terms.on_diag + self.lambd * terms.off_diag
        logs = {"on_diag": terms.on_diag.detach(), "off_diag": terms.off_diag.detach()}
        return StepOutput(loss=loss, z=(z_a, z_b), logs=logs)


@register_method("barlow_twins", views="byol_views")
def build_barlow_twins(
    encoder: nn.Module,
    proj_hidden_dim: int = 8192,
    proj_dim: int = 8192,
    lambd: float = 0.0051,
    gather: bool = True,
) -> BarlowTwins:
    """Barlow Twins (Zbontar et al. 2021): 3 layers of 8192, lambda 0.0051."""
    proj = presets.barlow_twins_projector(encoder.num_features, proj_hidden_dim, proj_dim)
    return BarlowTwins(encoder, proj, lambd, gather)
