"""Config at the edge: turn a RunConfig's names and argument dicts into typed components.

Each method has a builder `(encoder, **method_args) -> Method` whose keyword arguments are the
method's hyper-parameters (with the paper's defaults); unknown arguments are an error that lists
the valid ones. `METHODS` maps CLI names to builders and to the paper's view recipe.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.augment import recipes
from selfsup.config import ConfigError
from selfsup.data.samplers import ClassBalancedBatches
from selfsup.heads import presets
from selfsup.heads.mlp import MLP
from selfsup.heads.presets import simclr_head
from selfsup.losses.label_logistic import LabelLogisticLoss
from selfsup.losses.modules import (
    MarginContrastiveLoss,
    NPairLoss,
    NTXentLoss,
    SupConLoss,
    TripletMarginLoss,
)
from selfsup.methods.barlow_twins import BarlowTwins
from selfsup.methods.base import Method
from selfsup.methods.byol import BYOL
from selfsup.methods.dino import DINO
from selfsup.methods.mae import MAE
from selfsup.methods.moco import MoCo
from selfsup.methods.nnclr import NNCLR
from selfsup.methods.queue import MemoryQueue
from selfsup.methods.simclr import SimCLR
from selfsup.methods.simsiam import SimSiam
from selfsup.methods.supervised import MetricLearning, SupCon
from selfsup.methods.support_set import SupportSet
from selfsup.methods.vicreg import VICReg


def build_simclr(
    encoder: nn.Module,
    temperature: float = 0.2,
    proj_hidden_dim: int | None = None,
    proj_dim: int = 128,
    gather: bool = True,
) -> SimCLR:
    """SimCLR: NT-Xent, 2-layer head (hidden = encoder width, as the paper), 128-d output.

    temperature: 0.2, measured here at short CPU budgets: digits kNN 98.0 % vs 90.0 % at 0.5
    (40 epochs), CIFAR-10 48.9 % vs 45.3 % (3 min, ResNet-18 w/4). The paper's CIFAR-10 grid
    picked 0.5 for batch 1024 and 500+ epochs (Chen et al. 2020, App. B.9): set it for long runs.
    gather: use every process's samples as negatives under torchrun (the paper's global batch).
    """
    head = simclr_head(encoder.num_features, proj_hidden_dim, proj_dim)
    return SimCLR(encoder, head, NTXentLoss(temperature=temperature, gather=gather))


# --------------------------------------------------------------- supervised (labels required)


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


def _embedding_head(encoder: nn.Module, embed_dim: int) -> MLP:
    # One Linear to the embedding, as Musgrave et al. 2020 ("A Metric Learning Reality
    # Check") use for every loss they compare (512 -> 128 there).
    return MLP([encoder.num_features, embed_dim], norm=None)


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


def build_npair(encoder: nn.Module, l2_reg: float = 0.02, embed_dim: int = 128) -> MetricLearning:
    """Multi-class N-pair loss (Sohn 2016): lambda = 0.02 L2 penalty on raw embeddings."""
    return MetricLearning(encoder, _embedding_head(encoder, embed_dim), NPairLoss(l2_reg))


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


# K of the P x K batches (Hermans et al. 2017); `method_args.samples_per_class` overrides it.
SAMPLES_PER_CLASS = 4


def build_sampler(
    method_args: dict,
    targets: torch.Tensor | None,
    batch_size: int,
    seed: int,
    rank: int = 0,
    world: int = 1,
) -> ClassBalancedBatches:
    """The P x K sampler of a supervised method. K = `method_args["samples_per_class"]`, or by
    default 4, raised to ceil(batch_size / classes) when the data has too few classes for P = B/4.
    """
    if targets is None:
        raise ConfigError(
            "this method is supervised and needs labels, but the data has none (a flat folder?). "
            "Use a folder with one sub-folder per class, or a self-supervised method (simclr)."
        )
    classes = len(targets.unique())
    if classes < 2:  # every pair would be a positive: the loss has no negative to push away
        raise ConfigError(
            f"the labels of the data hold {classes} class: a supervised method needs >= 2 "
            "classes in a batch (negatives). Use a folder with one sub-folder per class (at "
            "least 2), or a self-supervised method (simclr) for unlabeled data."
        )
    k = method_args.get("samples_per_class")
    if k is None:
        k = max(SAMPLES_PER_CLASS, math.ceil(batch_size / classes))
    return ClassBalancedBatches(targets, batch_size, int(k), seed, rank, world)


# ----------------------------------------------------------- method family (issue 4)
# Defaults are each paper's (ResNet-50 / ImageNet widths); configs/cifar10-*.yaml shrink them.


def build_moco(
    encoder: nn.Module,
    queue_size: int = 65536,
    temperature: float = 0.2,
    proj_hidden_dim: int | None = None,
    proj_dim: int = 128,
    momentum: float = 0.999,
    final_momentum: float = 0.999,
    symmetric: bool = False,
    shuffle_bn_groups: int = 8,
) -> MoCo:
    """MoCo v2: queue 65,536, T=0.2, m=0.999 constant, 2-layer MLP head (hidden = encoder
    width) to 128-d (Chen et al. 2020, arXiv:2003.04297); 4,096 is the CIFAR-10 queue.
    shuffle_bn_groups: shuffle-BN emulated with BN over 8 sub-batches per process (MoCo's
    CIFAR-10 demo, `bn_splits=8`; `selfsup.methods.shuffle_bn`); 0: plain BatchNorm."""
    head = presets.moco_v2_head(encoder.num_features, proj_hidden_dim, proj_dim)
    return MoCo(
        encoder, head, None, queue_size, temperature, momentum, final_momentum, symmetric,
        shuffle_bn_groups,
    )  # fmt: skip


def build_moco_v3(
    encoder: nn.Module,
    temperature: float = 1.0,
    proj_hidden_dim: int = 4096,
    proj_dim: int = 256,
    proj_layers: int = 2,
    pred_hidden_dim: int = 4096,
    momentum: float = 0.99,
    final_momentum: float = 1.0,
) -> MoCo:
    """MoCo v3, ResNet recipe (Chen, Xie & He 2021, arXiv:2104.02057): T=1.0, 2-layer 4096-d
    projector to 256-d, 4096-d predictor without output BN, m 0.99 -> 1 cosine, no queue."""
    proj = presets.moco_v3_projector(encoder.num_features, proj_hidden_dim, proj_dim, proj_layers)
    pred = presets.moco_v3_predictor(proj_dim, pred_hidden_dim, proj_dim, last_norm=False)
    # No shuffle-BN in v3: in-batch negatives share the positive's BN statistics (SyncBN there).
    return MoCo(
        encoder, proj, pred, 0, temperature, momentum, final_momentum, True, shuffle_bn_groups=0
    )


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


def build_dino(
    encoder: nn.Module,
    out_dim: int = 65536,
    hidden_dim: int = 2048,
    bottleneck_dim: int = 256,
    use_bn: bool = False,
    norm_last_layer: bool = True,
    student_temp: float = 0.1,
    teacher_temp: float = 0.04,
    warmup_teacher_temp: float = 0.04,
    teacher_temp_warmup: float = 0.0,
    center_momentum: float = 0.9,
    momentum: float = 0.996,
    final_momentum: float = 1.0,
    freeze_last_layer: float = 0.01,
    clip_grad: float | None = 3.0,
    weight_decay_end: float | None = 0.4,
) -> DINO:
    """DINO (Caron et al. 2021), official main_dino.py defaults: K=65,536, head 2048/256,
    temperatures 0.1 / 0.04, center momentum 0.9, teacher EMA 0.996 -> 1, the head's last layer
    frozen for 1 epoch of 100 (freeze_last_layer=0.01, a fraction of training), per-parameter
    gradient clipping 3.0, weight decay cosine from train.weight_decay (official 0.04) to
    weight_decay_end 0.4 (None: constant; SGD recipes keep theirs). teacher_temp_warmup:
    fraction of training over which the teacher temperature rises from warmup_teacher_temp."""
    head = presets.DINOHead(
        encoder.num_features, out_dim, hidden_dim, bottleneck_dim, 3, norm_last_layer, use_bn
    )
    return DINO(
        encoder,
        head,
        student_temp,
        teacher_temp,
        warmup_teacher_temp,
        teacher_temp_warmup,
        center_momentum,
        momentum,
        final_momentum,
        freeze_last_layer,
        clip_grad,
        weight_decay_end,
    )


@dataclass(frozen=True)
class MethodSpec:
    build: Callable[..., Method]
    views: str  # name of a function in selfsup.augment.recipes
    needs_labels: bool = False


def build_mae(
    encoder: nn.Module,
    mask_ratio: float = 0.75,
    decoder_dim: int = 512,
    decoder_depth: int = 8,
    decoder_heads: int = 16,
    norm_pix: bool = True,
) -> MAE:
    """MAE (He et al. 2022): the paper's 75 % masking, 8 x 512 decoder, normalized-pixel targets.

    encoder: a ViT (vit_tiny_cifar, vit_small_cifar, vit_micro_cifar or a timm ViT).
    """
    return MAE(encoder, mask_ratio, decoder_dim, decoder_depth, decoder_heads, norm_pix)


METHODS: dict[str, MethodSpec] = {
    "simclr": MethodSpec(build_simclr, "simclr_views"),
    "moco": MethodSpec(build_moco, "moco_v2_views"),
    "mocov3": MethodSpec(build_moco_v3, "byol_views"),
    "byol": MethodSpec(build_byol, "byol_views"),
    "nnclr": MethodSpec(build_nnclr, "byol_views"),
    "simsiam": MethodSpec(build_simsiam, "moco_v2_views"),
    "barlow_twins": MethodSpec(build_barlow_twins, "byol_views"),
    "vicreg": MethodSpec(build_vicreg, "byol_views"),
    "dino": MethodSpec(build_dino, "multicrop_views"),
    "mae": MethodSpec(build_mae, "mae_views"),
    "supcon": MethodSpec(build_supcon, "simclr_views", needs_labels=True),
    "triplet": MethodSpec(build_triplet, "simclr_views", needs_labels=True),
    "npair": MethodSpec(build_npair, "simclr_views", needs_labels=True),
    "contrastive": MethodSpec(build_contrastive, "simclr_views", needs_labels=True),
    "logistic": MethodSpec(build_logistic, "simclr_views", needs_labels=True),
}


def _check_kwargs(fn: Callable, kwargs: dict, what: str) -> None:
    params = [p for p in inspect.signature(fn).parameters if p != "encoder"]
    for key in kwargs:
        if key not in params:
            close = difflib.get_close_matches(key, params, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{what}: unknown argument {key!r}.{hint} Valid: {', '.join(params)}")


def build_method(name: str, encoder: nn.Module, method_args: dict) -> Method:
    """The method `name` around `encoder`, with `method_args` as its hyper-parameters."""
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown method {name!r}.{hint} Known: {', '.join(sorted(METHODS))}")
    spec = METHODS[name]
    if spec.needs_labels:  # the P x K sampler's K travels with the method's arguments
        method_args = {k: v for k, v in method_args.items() if k != "samples_per_class"}
    _check_kwargs(spec.build, method_args, f"method_args for {name}")
    return spec.build(encoder, **method_args)


def check_batch_size(name: str, method: Method, batch_size: int, world: int = 1) -> None:
    """Refuse batch sizes `method` cannot learn from; the error says what to change.

    Every method here compares samples within a batch (negatives, BN / covariance statistics,
    mined pairs), so one sample per batch (or per process, with BatchNorm) teaches nothing.
    A queue or support set smaller than the global batch would hold only the current batch.
    """
    if batch_size < 2:
        raise ConfigError(
            f"train.batch_size={batch_size}: {name} learns by comparing the samples of a batch "
            "(negatives or batch statistics); use train.batch_size >= 2 (typically 256-4096)."
        )
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in method.modules())
    if has_bn and batch_size // world < 2:
        raise ConfigError(
            f"train.batch_size={batch_size} over {world} processes leaves {batch_size // world} "
            f"sample per process, and BatchNorm needs >= 2; use train.batch_size >= {2 * world}."
        )
    for m in method.modules():
        if isinstance(m, MemoryQueue) and m.size < batch_size:
            arg = "support_set_size" if isinstance(m, SupportSet) else "queue_size"
            raise ConfigError(
                f"method_args.{arg}={m.size} is smaller than train.batch_size={batch_size}: "
                f"it would hold less than one batch. Use {arg} >= {batch_size} (a multiple of "
                "the batch, e.g. MoCo's 4096 on CIFAR-10 / 65536 on ImageNet) or a smaller batch."
            )


def build_views(method: str, recipe: str, size: int):
    """The view maker: `recipe` (a function name in augment.recipes) or the method's default."""
    name = recipe or METHODS[method].views
    fn = getattr(recipes, name, None)
    if fn is None or name.startswith("_"):
        known = [n for n in dir(recipes) if n.endswith("_views")]
        raise ConfigError(f"unknown views recipe {name!r}. Known: {', '.join(known)}")
    return fn(size)
