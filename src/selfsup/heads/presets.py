"""Projection and prediction heads as each paper built them, with the paper's widths as defaults.

The defaults are sized for a ResNet-50 on ImageNet (hidden layers of 2048-8192); every width is an
argument so a CPU recipe can shrink them. Each function returns an `MLP` (`(N, in_dim) -> (N,
out_dim)`), except `DINOHead`, which is a module of its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from selfsup.heads.mlp import MLP


def simclr_head(
    in_dim: int,
    hidden_dim: int | None = None,
    out_dim: int = 128,
    num_layers: int = 2,
    last_norm: bool = False,
) -> MLP:
    """SimCLR projection g(h) = W2 ReLU(BN(W1 h)) (Chen et al. 2020, arXiv:2002.05709, Sec. 2.1).

    Paper defaults: one hidden layer as wide as the representation (`hidden_dim=None` -> `in_dim`,
    2048 for ResNet-50), 128-d output. BN on the hidden layer as in the official code. SimCLR v2
    (arXiv:2006.10029) uses `num_layers=3`. The official code also batch-normalizes the output
    (scale, no shift); `last_norm=True` approximates it with an affine BN.
    """
    hidden = in_dim if hidden_dim is None else hidden_dim
    dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
    return MLP(dims, norm="bn", last_norm=last_norm)


def moco_v2_head(in_dim: int, hidden_dim: int | None = None, out_dim: int = 128) -> MLP:
    """MoCo v2 projection: Linear-ReLU-Linear, no BN (Chen et al. 2020, arXiv:2003.04297).

    Paper defaults: a 2048-d hidden layer, which the official code takes from the encoder's width
    (`hidden_dim=None` -> `in_dim`, 2048 for ResNet-50); 128-d output.
    """
    hidden = in_dim if hidden_dim is None else hidden_dim
    return MLP([in_dim, hidden, out_dim], norm=None)


def moco_v3_projector(
    in_dim: int, hidden_dim: int = 4096, out_dim: int = 256, num_layers: int = 3
) -> MLP:
    """MoCo v3 projection (Chen, Xie & He 2021, arXiv:2104.02057, Sec. 4).

    Paper defaults: 3 layers, 4096-d hidden, 256-d output, BN on every layer; the output BN has no
    affine parameters and no Linear has a bias (official code). The official ResNet-50 recipe
    uses `num_layers=2`; the ViT recipe 3.
    """
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    return MLP(dims, norm="bn", last_norm=True, last_norm_affine=False)


moco_v3_head = moco_v3_projector  # the name used in the project plan


def moco_v3_predictor(
    in_dim: int = 256, hidden_dim: int = 4096, out_dim: int = 256, last_norm: bool = True
) -> MLP:
    """MoCo v3 prediction head: 2 layers, 4096-d hidden, 256-d output (arXiv:2104.02057).

    Paper default: BN on the output too (affine-free, as the projector); the official ResNet-50
    recipe drops it (`last_norm=False`), the ViT recipe keeps it.
    """
    return MLP(
        [in_dim, hidden_dim, out_dim], norm="bn", last_norm=last_norm, last_norm_affine=False
    )


def byol_projector(in_dim: int, hidden_dim: int = 4096, out_dim: int = 256) -> MLP:
    """BYOL projection: Linear-BN-ReLU-Linear, 4096-d hidden, 256-d output (Grill et al. 2020,
    arXiv:2006.07733, Sec. 3.3)."""
    return MLP([in_dim, hidden_dim, out_dim], norm="bn")


def byol_predictor(in_dim: int = 256, hidden_dim: int = 4096, out_dim: int = 256) -> MLP:
    """BYOL prediction: the projector's architecture, 256 -> 4096 -> 256 (arXiv:2006.07733)."""
    return MLP([in_dim, hidden_dim, out_dim], norm="bn")


def simsiam_projector(
    in_dim: int, hidden_dim: int = 2048, out_dim: int = 2048, num_layers: int = 3
) -> MLP:
    """SimSiam projection (Chen & He 2021, arXiv:2011.10566, Sec. 4).

    Paper defaults: 3 layers, 2048-d hidden and output, BN on every layer including the output
    (affine-free in the official code), ReLU on hidden layers only.
    """
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    return MLP(dims, norm="bn", last_norm=True, last_norm_affine=False)


def simsiam_predictor(in_dim: int = 2048, hidden_dim: int = 512, out_dim: int = 2048) -> MLP:
    """SimSiam prediction: a 2048 -> 512 -> 2048 bottleneck, BN on the hidden layer only, no BN
    on the output (arXiv:2011.10566, Sec. 4)."""
    return MLP([in_dim, hidden_dim, out_dim], norm="bn")


def barlow_twins_projector(
    in_dim: int, hidden_dim: int = 8192, out_dim: int = 8192, num_layers: int = 3
) -> MLP:
    """Barlow Twins projection (Zbontar et al. 2021, arXiv:2103.03230, Sec. 3).

    Paper defaults: 3 linear layers of 8192 units, BN + ReLU after the first two; the last Linear
    has no bias (official code). The loss itself standardizes each output dimension over the batch.
    """
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    return MLP(dims, norm="bn", last_bias=False)


def vicreg_expander(
    in_dim: int, hidden_dim: int = 8192, out_dim: int = 8192, num_layers: int = 3
) -> MLP:
    """VICReg expander (Bardes, Ponce & LeCun 2022, arXiv:2105.04906, Sec. 4.2).

    Paper defaults: 3 fully-connected layers of 8192 units, BN + ReLU after the first two; the last
    Linear has no bias (official code).
    """
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    return MLP(dims, norm="bn", last_bias=False)


def nnclr_projector(in_dim: int, hidden_dim: int = 2048, out_dim: int = 256) -> MLP:
    """NNCLR projection: 3 layers [2048, 2048, 256], BN after every layer, ReLU after all but the
    last (Dwibedi et al. 2021, arXiv:2104.14548, Sec. 4)."""
    return MLP([in_dim, hidden_dim, hidden_dim, out_dim], norm="bn", last_norm=True)


def nnclr_predictor(in_dim: int = 256, hidden_dim: int = 4096, out_dim: int = 256) -> MLP:
    """NNCLR prediction: 2 layers [4096, 256], BN + ReLU on the hidden layer, nothing on the
    output (arXiv:2104.14548, Sec. 4)."""
    return MLP([in_dim, hidden_dim, out_dim], norm="bn")


class DINOHead(nn.Module):
    """DINO projection head (Caron et al. 2021, arXiv:2104.14294, Sec. 3.1 and App.).

    An MLP (`nlayers` Linear layers, GELU, no BN) to a `bottleneck`-d vector, l2-normalized, then a
    weight-normalized Linear without bias to `out_dim` prototypes. With `norm_last_layer=True` the
    weight-norm magnitude g is fixed at 1, so each output is the cosine between the bottleneck
    vector and a prototype; the paper finds this stabilizes training.

    Paper defaults: `out_dim=65536`, `hidden=2048`, `bottleneck=256`, `nlayers=3`, no BN.
    DINO freezes `last_layer` during the first epoch: `selfsup.methods.dino.DINO` drops its
    gradients in `after_backward` (`freeze_last_layer`).

    Shapes: `x: (N, in_dim)` -> `(N, out_dim)`.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 65536,
        hidden: int = 2048,
        bottleneck: int = 256,
        nlayers: int = 3,
        norm_last_layer: bool = True,
        use_bn: bool = False,
    ) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * (max(nlayers, 1) - 1) + [bottleneck]
        self.mlp = MLP(dims, norm="bn" if use_bn else None, last_bias=True, activation="gelu")
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):  # DINO's init: truncated normal, std 0.02, zero bias
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.last_layer = weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        g = self.last_layer.parametrizations.weight.original0  # (out_dim, 1), the magnitudes
        with torch.no_grad():
            g.fill_(1.0)
        g.requires_grad_(not norm_last_layer)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        """`x: (N, in_dim)` -> `(N, out_dim)` prototype scores."""
        z = F.normalize(self.mlp(x), dim=-1)  # (N, bottleneck), unit norm
        return self.last_layer(z)
