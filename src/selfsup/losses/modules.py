"""nn.Module wrappers: each holds one loss's hyper-parameters (and learnable or running state)
and delegates to `selfsup.losses.functional`. Defaults and their sources are documented on
the functions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from selfsup.losses import functional as L


class NTXentLoss(nn.Module):
    """SimCLR's NT-Xent; see `functional.nt_xent`. temperature 0.5: SimCLR's CIFAR-10 setting
    (Chen et al. 2020; their ImageNet runs use 0.1)."""

    def __init__(self, temperature: float = 0.5, gather: bool = False) -> None:
        super().__init__()
        self.temperature, self.gather = temperature, gather

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return L.nt_xent(z_a, z_b, self.temperature, self.gather)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gather={self.gather}"


class InfoNCELoss(nn.Module):
    """InfoNCE / MoCo contrastive loss; see `functional.info_nce`. temperature 0.07 (MoCo v1;
    MoCo v2 uses 0.2). MoCo: `InfoNCELoss(in_batch_negatives=False)` with `negatives=queue`."""

    def __init__(
        self,
        temperature: float = 0.07,
        in_batch_negatives: bool = True,
        symmetric: bool = False,
        gather: bool = False,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.temperature = temperature
        self.in_batch_negatives, self.symmetric = in_batch_negatives, symmetric
        self.gather, self.normalize = gather, normalize

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor | None = None
    ) -> torch.Tensor:
        return L.info_nce(
            query,
            key,
            self.temperature,
            negatives,
            self.in_batch_negatives,
            self.symmetric,
            self.gather,
            self.normalize,
        )


class DCLLoss(nn.Module):
    """Decoupled contrastive loss (Yeh et al. 2022); see `functional.dcl`."""

    def __init__(
        self, temperature: float = 0.1, weight_fn: L.WeightFn | None = None, gather: bool = False
    ) -> None:
        super().__init__()
        self.temperature, self.weight_fn, self.gather = temperature, weight_fn, gather

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return L.dcl(z_a, z_b, self.temperature, self.weight_fn, self.gather)


class DCLWLoss(DCLLoss):
    """DCL with von Mises-Fisher positive weights (DCLW); sigma 0.5 is the paper's setting."""

    def __init__(self, temperature: float = 0.1, sigma: float = 0.5, gather: bool = False) -> None:
        super().__init__(temperature, partial(L.vmf_weights, sigma=sigma), gather)
        self.sigma = sigma


class SupConLoss(nn.Module):
    """Supervised contrastive loss L^sup_out; see `functional.supcon`. temperature 0.1
    (Khosla et al. 2020)."""

    def __init__(self, temperature: float = 0.1, gather: bool = False) -> None:
        super().__init__()
        self.temperature, self.gather = temperature, gather

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return L.supcon(z, labels, self.temperature, self.gather)


class SigLIPLoss(nn.Module):
    """SigLIP's pairwise sigmoid loss with its learnable log-scale t' and bias b (Zhai et al.
    2023: init t' = log 10, b = -10); see `functional.logistic_pairwise`."""

    def __init__(
        self, init_log_scale: float = math.log(10.0), init_bias: float = -10.0, gather: bool = False
    ) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(float(init_log_scale)))
        self.bias = nn.Parameter(torch.tensor(float(init_bias)))
        self.gather = gather

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return L.logistic_pairwise(z_a, z_b, self.log_scale, self.bias, self.gather)


class NegativeSamplingLoss(nn.Module):
    """word2vec negative sampling; see `functional.negative_sampling`."""

    def forward(
        self, query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        return L.negative_sampling(query, positive, negatives)


class TripletMarginLoss(nn.Module):
    """Triplet margin loss with a miner; see `functional.triplet_margin`. margin 0.2 (FaceNet)."""

    def __init__(
        self,
        margin: float = 0.2,
        miner: L.Miner = "all",
        squared: bool = False,
        soft: bool = False,
        normalize: bool = True,
        nonzero_mean: bool = False,
    ) -> None:
        super().__init__()
        self.margin, self.miner, self.squared, self.soft = margin, miner, squared, soft
        self.normalize, self.nonzero_mean = normalize, nonzero_mean

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return L.triplet_margin(
            z,
            labels,
            self.margin,
            self.miner,
            self.squared,
            self.soft,
            self.normalize,
            self.nonzero_mean,
        )


class NPairLoss(nn.Module):
    """Multi-class N-pair loss (Sohn 2016); see `functional.npair`. l2_reg 0.02."""

    def __init__(self, l2_reg: float = 0.02) -> None:
        super().__init__()
        self.l2_reg = l2_reg

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return L.npair(z, labels, self.l2_reg)


class MarginContrastiveLoss(nn.Module):
    """Hadsell et al. 2006 contrastive loss; see `functional.margin_contrastive`."""

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        squared: bool = True,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.pos_margin, self.neg_margin = pos_margin, neg_margin
        self.squared, self.normalize = squared, normalize

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return L.margin_contrastive(
            z, labels, self.pos_margin, self.neg_margin, self.squared, self.normalize
        )


class BYOLLoss(nn.Module):
    """BYOL's normalized MSE 2 - 2 cos(p, z); see `functional.byol_loss`."""

    def forward(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return L.byol_loss(p, z)


class NegativeCosineLoss(nn.Module):
    """SimSiam's -cos(p, z); see `functional.negative_cosine`."""

    def forward(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return L.negative_cosine(p, z)


class BarlowTwinsLoss(nn.Module):
    """Barlow Twins; see `functional.barlow_twins`. lambd 0.0051 (Zbontar et al. 2021)."""

    def __init__(self, lambd: float = 0.0051, gather: bool = False) -> None:
        super().__init__()
        self.lambd, self.gather = lambd, gather

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return L.barlow_twins(z_a, z_b, self.lambd, self.gather)


class VICRegLoss(nn.Module):
    """VICReg; see `functional.vicreg`. Coefficients 25 / 25 / 1 (Bardes et al. 2022)."""

    def __init__(
        self,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        gather: bool = False,
    ) -> None:
        super().__init__()
        self.sim_coeff, self.std_coeff, self.cov_coeff = sim_coeff, std_coeff, cov_coeff
        self.gather = gather

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return L.vicreg(z_a, z_b, self.sim_coeff, self.std_coeff, self.cov_coeff, self.gather)


class DINOLoss(nn.Module):
    """DINO's loss with its running center (Caron et al. 2021); see `functional.dino_loss`.

    out_dim: K, the head's output size. The center is a (1, K) buffer (saved in state_dict),
    updated after every training-mode forward with momentum 0.9, as in DINO. `teacher_temp`
    is a plain attribute so a method can apply DINO's 0.04 -> 0.07 warm-up each epoch.
    """

    center: torch.Tensor

    def __init__(
        self,
        out_dim: int,
        student_temp: float = 0.1,
        teacher_temp: float = 0.04,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        self.student_temp, self.teacher_temp = student_temp, teacher_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(
        self, student_logits: Sequence[torch.Tensor], teacher_logits: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        loss = L.dino_loss(
            student_logits, teacher_logits, self.center, self.student_temp, self.teacher_temp
        )
        if self.training:
            self.center = L.dino_center_update(self.center, teacher_logits, self.center_momentum)
        return loss
