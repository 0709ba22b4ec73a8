"""VICReg (Bardes, Ponce & LeCun 2022, arXiv:2105.04906): variance-invariance-covariance.

Invariance (MSE between the views' embeddings), a hinge keeping each dimension's std above 1
(variance) and a penalty on off-diagonal covariances (decorrelation), each weighted.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.heads import presets
from selfsup.losses.functional import vicreg_terms
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method


class VICReg(Method):
    """backbone -> expander for both views; loss lambda * inv + mu * var + nu * cov (eq. 6).

    sim_coeff lambda = 25, std_coeff mu = 25, cov_coeff nu = 1 (paper, Sec. 4.3). gather:
    variance and covariance over the global batch under torchrun (reference code). Each term is
    logged separately (unweighted) as `invariance`, `variance`, `covariance`.
    """

    def __init__(
        self,
        backbone: nn.Module,
        projector: nn.Module,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        gather: bool = True,
    ) -> None:
        super().__init__()
        self.backbone, self.projector = backbone, projector
        self.sim_coeff, self.std_coeff, self.cov_coeff = sim_coeff, std_coeff, cov_coeff
        self.gather = gather

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [x_a, x_b], each (N, C, H, W)."""
        x_a, x_b = views
        z_a, z_b = self.projector(self.backbone(torch.cat([x_a, x_b]))).chunk(2)
        t = vicreg_terms(z_a.float(), z_b.float(), self.gather)  # fp32 statistics
        loss = self.sim_coeff * t.invariance + self.std_coeff * t.variance
        loss = loss + self.cov_coeff * t.covariance
        logs = {k: v.detach() for k, v in t._asdict().items()}
        return StepOutput(loss=loss, z=(z_a, z_b), logs=logs)


@register_method("vicreg", views="byol_views")
def build_vicreg(
    encoder: nn.Module,
    proj_hidden_dim: int = 8192,
    proj_dim: int = 8192,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    gather: bool = True,
) -> VICReg:
    """VICReg (Bardes et al. 2022): 3-layer 8192-d expander, coefficients 25 / 25 / 1."""
    proj = presets.vicreg_expander(encoder.num_features, proj_hidden_dim, proj_dim)
    return VICReg(encoder, proj, sim_coeff, std_coeff, cov_coeff, gather)
