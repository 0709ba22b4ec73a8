"""Supervised representation learning with labels: SupCon and generic metric learning.

Both are encoder + head + a label loss `(z, labels) -> 0-dim`; the engine feeds them
class-balanced P x K batches (`selfsup.data.samplers.ClassBalancedBatches`) so every batch
holds positives. Unlike the self-supervised methods, targets are required.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from selfsup import dist
from selfsup.heads.mlp import MLP
from selfsup.losses.label_logistic import LabelLogisticLoss
from selfsup.losses.modules import MarginContrastiveLoss, NPairLoss, SupConLoss, TripletMarginLoss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method


def _require_targets(method: str, targets: torch.Tensor | None) -> torch.Tensor:
    if targets is None:
        raise ValueError(
            f"{method} is supervised and needs labels: use labeled data (a folder with one "
            "sub-folder per class, digits or cifar10), or a self-supervised method such as simclr"
        )
    return targets


def _embed_views(backbone: nn.Module, head: nn.Module, views: list[torch.Tensor]) -> torch.Tensor:
    """views: V tensors (N, C, H, W) -> (V, N, d); all V*N images in one forward (one BN batch)."""
    z = head(backbone(torch.cat(views)))  # (V*N, d)
    return z.view(len(views), views[0].shape[0], -1)


class SupCon(Method):
    """Supervised contrastive learning (Khosla et al. 2020, arXiv:2004.11362).

    backbone -> projector (the paper: Linear-ReLU-Linear to 128-d, see `build_supcon`) ->
    SupConLoss over all views of the batch: an anchor's positives are the other views of
    itself and every view of a same-class sample (T=0.1, the paper's setting).
    views: V >= 1 augmented views of the same N samples (the paper uses 2).
    """

    def __init__(self, backbone: nn.Module, projector: nn.Module, loss: nn.Module | None = None):
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.loss = loss if loss is not None else SupConLoss(temperature=0.1)

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: V x (N, C, H, W), targets: (N,) long -> SupCon over the (N, V, d) projections."""
        labels = _require_targets("SupCon", targets)
        z = _embed_views(self.backbone, self.projector, views)  # (V, N, d)
        loss = self.loss(z.transpose(0, 1), labels)  # the loss takes (N, V, d)
        return StepOutput(loss=loss, z=(z[0], z[1]) if len(views) > 1 else None)


class MetricLearning(Method):
    """Encoder + embedding head + any label loss (triplet with a miner, N-pair, margin
    contrastive, label logistic, ...).

    Every view of every sample is one embedding carrying the sample's label, so with V views
    a loss sees V*N embeddings and each sample's own views are positives of one another (a
    P x K batch adds K-1 same-class samples). loss: `(z (M, d), labels (M,)) -> 0-dim`.
    Under torchrun the loss mines the *global* batch: embeddings are gathered with gradients
    and put back in single-process order, so W processes equal one (solo-learn #229 mined
    the local batch only).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, loss: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.loss = loss

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: V x (N, C, H, W), targets: (N,) long -> loss over (V*N, d) with labels."""
        labels = _require_targets(f"metric learning ({type(self.loss).__name__})", targets)
        z = _embed_views(self.backbone, self.head, views)  # (V, N, d)
        z_all, labels_all = _gather_global(z, labels)  # (V, W*N, d), (W*N,)
        loss = self.loss(z_all.flatten(0, 1), labels_all.repeat(len(views)))  # view-major rows
        return StepOutput(loss=loss, z=(z[0], z[1]) if len(views) > 1 else None)


def _gather_global(z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z (V, n, d) per rank -> (V, W*n, d) in the order one process would see the batch.

    The global batch is the ranks' shards in rank order (EpochBatches and the P x K sampler
    both split it so), hence (W, V, n, d) -> (V, W, n, d).
    """
    w = dist.world_size()
    if w == 1:
        return z, labels
    v, n, d = z.shape
    z_all = dist.gather_with_grad(z).view(w, v, n, d).transpose(0, 1).reshape(v, w * n, d)
    return z_all, dist.gather(labels)


def _embedding_head(encoder: nn.Module, embed_dim: int) -> MLP:
    # One Linear to the embedding, as Musgrave et al. 2020 ("A Metric Learning Reality
    # Check") use for every loss they compare (512 -> 128 there).
    return MLP([encoder.num_features, embed_dim], norm=None)


@register_method("supcon", views="simclr_views", needs_labels=True)
def build_supcon(
    encoder: nn.Module,
    temperature: float = 0.1,
    proj_hidden_dim: int | None = None,
    proj_dim: int = 128,
    gather: bool = True,
) -> SupCon:
    """SupCon (Khosla et al. 2020): T=0.1, head Linear-ReLU-Linear (hidden = encoder width,
    as the official code's `head='mlp'`), 128-d. gather: positives/negatives from all processes.
    """
    d = encoder.num_features
    head = MLP([d, proj_hidden_dim or d, proj_dim], norm=None)
    return SupCon(encoder, head, SupConLoss(temperature=temperature, gather=gather))


@register_method("triplet", views="simclr_views", needs_labels=True)
def build_triplet(
    encoder: nn.Module,
    margin: float = 0.2,
    miner: str = "semi_hard",
    squared: bool = False,
    soft: bool = False,
    normalize: bool = True,
    embed_dim: int = 128,
) -> MetricLearning:
    """Triplet loss as FaceNet (Schroff et al. 2015): margin 0.2 on unit embeddings, semi-hard
    mining; 128-d embedding. miner="batch_hard" (Hermans et al. 2017) collapses when trained
    from a random init at CPU budgets (docs/metric_learning.md); use it to fine-tune."""
    loss = TripletMarginLoss(margin, miner, squared, soft, normalize)  # type: ignore[arg-type]
    return MetricLearning(encoder, _embedding_head(encoder, embed_dim), loss)


@register_method("npair", views="simclr_views", needs_labels=True)
def build_npair(encoder: nn.Module, l2_reg: float = 0.02, embed_dim: int = 128) -> MetricLearning:
    """Multi-class N-pair loss (Sohn 2016): lambda = 0.02 L2 penalty on raw embeddings."""
    return MetricLearning(encoder, _embedding_head(encoder, embed_dim), NPairLoss(l2_reg))


@register_method("contrastive", views="simclr_views", needs_labels=True)
def build_contrastive(
    encoder: nn.Module,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    squared: bool = True,
    normalize: bool = True,
    embed_dim: int = 128,
) -> MetricLearning:
    """Margin contrastive loss (Hadsell et al. 2006): squared hinges, negative margin 1.

    normalize=True (unlike the paper) so the margin has a fixed scale: distances of unit
    vectors lie in [0, 2] (pytorch-metric-learning normalizes too).
    """
    loss = MarginContrastiveLoss(pos_margin, neg_margin, squared, normalize)
    return MetricLearning(encoder, _embedding_head(encoder, embed_dim), loss)


@register_method("logistic", views="simclr_views", needs_labels=True)
def build_logistic(
    encoder: nn.Module,
    init_log_scale: float = math.log(10.0),
    init_bias: float = -10.0,
    embed_dim: int = 128,
) -> MetricLearning:
    """Sigmoid pairwise loss with labels (same label = positive pair) and SigLIP's learnable
    scale and bias (Zhai et al. 2023: init log 10 and -10)."""
    loss = LabelLogisticLoss(init_log_scale, init_bias)
    return MetricLearning(encoder, _embedding_head(encoder, embed_dim), loss)
