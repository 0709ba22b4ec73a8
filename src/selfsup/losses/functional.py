"""Self-supervised and metric-learning losses as pure functions.

Conventions (every function):
- Pair losses take `(z_a, z_b)`: two views of the same N samples, `(N, D)` float, row i of one
  view is the positive of row i of the other. Label losses take `(z, labels)`: `(N, D)` float
  and `(N,)` long. All return a 0-dim tensor, a mean (each docstring says over what).
- Softmax-type losses are cross-entropy / logsumexp over logits with excluded entries set to
  `-inf` (not a large constant, which overflows in bf16); never log(pos / (pos + neg)).
- Normalization happens inside only where the paper defines the loss on unit vectors; each
  docstring says which.
- Degenerate batches never give NaN: a loss with nothing to average (no valid positive, no
  mined triplet, one sample ...) returns an exact 0 that is still connected to the graph
  (backward gives zero gradients), unless the docstring says it raises `ValueError`.
- `gather=True` (losses that span the batch) uses every rank's samples as keys/negatives via
  `selfsup.dist.gather_with_grad`. Each rank's loss is the mean over its *local* queries
  against the global keys (its positives sit at offset `rank() * N`), so DDP's gradient
  average equals the single-process full-batch gradient. With one process it is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from selfsup import dist
from selfsup.losses import mining
from selfsup.losses.distances import pairwise_distance

WeightFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Miner = Literal["all", "batch_hard", "semi_hard"]


# --------------------------------------------------------------------------- helpers


def _zero(*tensors: torch.Tensor) -> torch.Tensor:
    """An exact 0-dim zero that keeps the inputs in the graph (backward gives zero grads)."""
    return sum(t.sum() * 0.0 for t in tensors)  # type: ignore[return-value]


def _check_pair(z_a: torch.Tensor, z_b: torch.Tensor) -> int:
    if z_a.dim() != 2 or z_a.shape != z_b.shape:
        raise ValueError(f"expected two (N, D) views of equal shape, got {z_a.shape}, {z_b.shape}")
    if z_a.shape[0] == 0:
        raise ValueError("empty batch")
    return z_a.shape[0]


def _check_labels(z: torch.Tensor, labels: torch.Tensor) -> None:
    if z.dim() != 2 or labels.shape != (z.shape[0],):
        raise ValueError(f"expected z (N, D) and labels (N,), got {z.shape}, {labels.shape}")


def _keys(x: torch.Tensor, gather: bool) -> tuple[torch.Tensor, int]:
    """x: (N, ...) local -> (keys (M, ...), offset of the local rows inside keys)."""
    if not gather:
        return x, 0
    return dist.gather_with_grad(x), dist.rank() * x.shape[0]


def _one_hot_mask(index: torch.Tensor, width: int) -> torch.Tensor:
    """index: (R,) long -> (R, width) bool, True at (r, index[r])."""
    mask = torch.zeros(len(index), width, dtype=torch.bool, device=index.device)
    return mask.scatter_(1, index[:, None], True)


def _two_view_indices(
    n: int, offset: int, m: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """For local queries cat([z_a, z_b]) (2N) against keys cat([k_a, k_b]) (2M): each query's
    own column and its positive's column, both (2N,) long."""
    idx = torch.arange(n, device=device) + offset
    own = torch.cat([idx, idx + m])
    positive = torch.cat([idx + m, idx])
    return own, positive


# --------------------------------------------------------------------------- InfoNCE family


def nt_xent(
    z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.5, gather: bool = False
) -> torch.Tensor:
    """NT-Xent, SimCLR's loss (Chen et al. 2020, eq. 1).

    z_a, z_b: (N, D) two views. The 2N embeddings are L2-normalized (SimCLR uses cosine
    similarity); every one is an anchor whose positive is its other view and whose 2(N - 1)
    negatives are all remaining embeddings. Computed as cross-entropy over the 2N x 2N
    similarity matrix / temperature with the diagonal set to -inf; symmetric (both views are
    anchors). Returns the mean over the 2N anchors. N = 1 gives 0 (the positive is the only
    candidate). temperature: 0.5 is the paper's CIFAR-10 setting; its ImageNet runs use 0.1.
    """
    n = _check_pair(z_a, z_b)
    z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    k_a, offset = _keys(z_a, gather)
    k_b, _ = _keys(z_b, gather)
    m = k_a.shape[0]
    logits = torch.cat([z_a, z_b]) @ torch.cat([k_a, k_b]).T / temperature  # (2N, 2M)
    own, positive = _two_view_indices(n, offset, m, z_a.device)
    logits = logits.masked_fill(_one_hot_mask(own, 2 * m), float("-inf"))
    return F.cross_entropy(logits, positive)


def _info_nce_direction(
    query: torch.Tensor,
    key: torch.Tensor,
    negatives: torch.Tensor | None,
    temperature: float,
    in_batch_negatives: bool,
    gather: bool,
) -> torch.Tensor:
    n = query.shape[0]
    if in_batch_negatives:
        keys, offset = _keys(key, gather)
        logits = query @ keys.T  # (N, M): the positive at column offset + i
        target = torch.arange(n, device=query.device) + offset
    else:
        logits = (query * key).sum(1, keepdim=True)  # (N, 1): MoCo's l_pos
        target = torch.zeros(n, dtype=torch.long, device=query.device)
    if negatives is not None:
        logits = torch.cat([logits, query @ negatives.T], dim=1)  # (N, . + K)
    return F.cross_entropy(logits / temperature, target)


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    temperature: float = 0.07,
    negatives: torch.Tensor | None = None,
    in_batch_negatives: bool = True,
    symmetric: bool = False,
    gather: bool = False,
    normalize: bool = True,
) -> torch.Tensor:
    """InfoNCE (Oord et al. 2018) in MoCo's form (He et al. 2020): cross-entropy of picking
    key i for query i.

    query, key: (N, D); row i of `key` is the positive of row i of `query`.
    negatives: (K, D) or None, extra negatives shared by all queries (MoCo's queue); they are
    never gathered (a MoCo queue already holds keys from every rank).
    in_batch_negatives: True: the other keys of the batch (all ranks' with `gather`) are
    negatives too; False: MoCo style, logits = [q.k_i, q.queue] with the positive at 0
    (`negatives` is then required).
    symmetric: average with the key -> query direction (MoCo v3 / CLIP style); `negatives` are
    used in both directions.
    normalize: L2-normalize query, key and negatives first (MoCo's encoders output unit
    vectors; Oord's bilinear critic does not: pass False for raw scores).
    temperature: 0.07 (MoCo v1; MoCo v2 uses 0.2). Returns the mean over the N queries (the
    average of both directions' means when symmetric).
    """
    _check_pair(query, key)
    if not in_batch_negatives and negatives is None:
        raise ValueError("in_batch_negatives=False needs explicit negatives (a queue)")
    if normalize:
        query, key = F.normalize(query, dim=1), F.normalize(key, dim=1)
        negatives = None if negatives is None else F.normalize(negatives, dim=1)
    args = (negatives, temperature, in_batch_negatives, gather)
    loss = _info_nce_direction(query, key, *args)
    if symmetric:
        loss = 0.5 * (loss + _info_nce_direction(key, query, *args))
    return loss


def vmf_weights(z_a: torch.Tensor, z_b: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    """DCLW's von Mises-Fisher positive weights (Yeh et al. 2022, eq. 6).

    z_a, z_b: (N, D) unit vectors. w_i = 2 - exp(<z_a_i, z_b_i> / sigma) / mean_j exp(...),
    written as 2 - N * softmax for stability. Returns (N,); weights average to 1.
    sigma: 0.5, the paper's DCLW setting.
    """
    sim = (z_a * z_b).sum(1) / sigma
    return 2.0 - z_a.shape[0] * torch.softmax(sim, dim=0)


def dcl(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    temperature: float = 0.1,
    weight_fn: WeightFn | None = None,
    gather: bool = False,
) -> torch.Tensor:
    """Decoupled contrastive loss (Yeh et al. 2022): NT-Xent with the positive removed from the
    denominator.

    z_a, z_b: (N, D) two views, L2-normalized inside (cosine similarity, as the paper). For
    each of the 2N anchors: -w_i s(i, pos) / t + logsumexp_{k != i, pos} s(i, k) / t, over the
    same 2(N - 1) negatives as NT-Xent. weight_fn(z_a, z_b) -> (M,) weights the positive term
    (None: w = 1, DCL; `vmf_weights`: DCLW); it is called once on the normalized (gathered)
    views so weights that depend on the whole batch match the full-batch computation.
    Returns the mean over the 2N anchors. Raises ValueError with fewer than 2 samples in all
    (no negative). temperature: 0.1, the setting lightly's DCL uses; the paper reports DCL as
    far less sensitive to it than NT-Xent.
    """
    n = _check_pair(z_a, z_b)
    z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    k_a, offset = _keys(z_a, gather)
    k_b, _ = _keys(z_b, gather)
    m = k_a.shape[0]
    if m < 2:
        raise ValueError("DCL needs at least 2 samples: it has no negative otherwise")
    sim = torch.cat([z_a, z_b]) @ torch.cat([k_a, k_b]).T / temperature  # (2N, 2M)
    own, positive = _two_view_indices(n, offset, m, z_a.device)
    pos = sim.gather(1, positive[:, None]).squeeze(1)  # (2N,)
    if weight_fn is not None:
        w = weight_fn(k_a, k_b)[offset : offset + n]
        pos = pos * torch.cat([w, w])
    excluded = _one_hot_mask(own, 2 * m) | _one_hot_mask(positive, 2 * m)
    neg = torch.logsumexp(sim.masked_fill(excluded, float("-inf")), dim=1)
    return (neg - pos).mean()


def supcon(
    z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1, gather: bool = False
) -> torch.Tensor:
    """Supervised contrastive loss L^sup_out (Khosla et al. 2020, eq. 2).

    z: (N, D) or (N, V, D) with V views per sample (all views of sample i carry labels[i]);
    labels: (N,) long. Embeddings are L2-normalized inside (the paper's projections are unit
    vectors). Every one of the N*V embeddings is an anchor: minus the mean, over its positives
    (same label, not itself), of log softmax over all other embeddings / temperature.
    Returns the mean over anchors that have at least one positive; anchors without one are
    excluded (no NaN) and a batch with none returns 0. Unlike the reference code there is no
    temperature / base_temperature rescaling. With unique labels and V = 2 this equals
    `nt_xent`. temperature: 0.1 (the paper's setting).
    """
    if z.dim() == 2:
        z = z[:, None]
    if z.dim() != 3 or labels.shape != (z.shape[0],):
        raise ValueError(f"expected z (N, D) or (N, V, D) and labels (N,), got {z.shape}")
    n, v, _ = z.shape
    q = F.normalize(z, dim=2).reshape(n * v, -1)  # sample-major: row i * V + j
    q_labels = labels.repeat_interleave(v)
    keys, offset = _keys(q, gather)
    k_labels = dist.gather(q_labels) if gather else q_labels
    if keys.shape[0] < 2:
        return _zero(z)  # a lone embedding: no positive, and an empty softmax
    sim = q @ keys.T / temperature  # (NV, MV)
    own = _one_hot_mask(torch.arange(n * v, device=z.device) + offset, keys.shape[0])
    pos = (q_labels[:, None] == k_labels[None, :]) & ~own
    n_pos = pos.sum(1)
    log_prob = sim - torch.logsumexp(sim.masked_fill(own, float("-inf")), dim=1, keepdim=True)
    mean_log_prob_pos = torch.where(pos, log_prob, 0.0).sum(1) / n_pos.clamp_min(1)
    # Mean over anchors with a positive, written without a host sync (0 when there is none).
    valid = n_pos > 0
    return -(mean_log_prob_pos * valid).sum() / valid.sum().clamp_min(1)


# --------------------------------------------------------------------------- logistic losses


def logistic_pairwise(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    log_scale: torch.Tensor | float,
    bias: torch.Tensor | float,
    gather: bool = False,
) -> torch.Tensor:
    """SigLIP's sigmoid loss (Zhai et al. 2023, Algorithm 1) over all N x N pairs.

    z_a, z_b: (N, D), L2-normalized inside (as the paper). logits = exp(log_scale) * cos + bias
    (the paper's t' and b, learnable: see `SigLIPLoss`, init log 10 and -10); pair (i, j) is
    labelled +1 if i == j else -1; loss = -sum log sigmoid(label * logit) / N, i.e. the sum
    over each row's pairs averaged over rows, as in the paper. With `gather`, local rows of
    z_a meet every rank's z_b.
    """
    n = _check_pair(z_a, z_b)
    z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    k_b, offset = _keys(z_b, gather)
    log_scale = torch.as_tensor(log_scale, dtype=z_a.dtype, device=z_a.device)
    logits = z_a @ k_b.T * log_scale.exp() + bias  # (N, M)
    positive = _one_hot_mask(torch.arange(n, device=z_a.device) + offset, k_b.shape[0])
    signs = torch.where(positive, 1.0, -1.0).to(logits.dtype)
    return -F.logsigmoid(signs * logits).sum() / n


def negative_sampling(
    query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    """word2vec's negative-sampling objective (Mikolov et al. 2013, eq. 4), on raw dot products.

    query, positive: (N, D); negatives: (N, K, D) per-query samples or (K, D) shared by all.
    loss_i = -log sigmoid(q_i . p_i) - sum_k log sigmoid(-q_i . n_ik). Returns the mean over N.
    No normalization (word2vec has none).
    """
    _check_pair(query, positive)
    pos = (query * positive).sum(1)  # (N,)
    if negatives.dim() == 2:
        neg = query @ negatives.T  # (N, K)
    else:
        neg = torch.einsum("nd,nkd->nk", query, negatives)
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(1)).mean()


# --------------------------------------------------------------------------- metric learning


def _mine(d: torch.Tensor, labels: torch.Tensor, miner: Miner, margin: float) -> mining.Triplets:
    if miner == "all":
        return mining.all_triplets(labels)
    if miner == "batch_hard":
        return mining.batch_hard(d, labels)
    if miner == "semi_hard":
        return mining.semi_hard(d, labels, margin)
    raise ValueError(f"unknown miner {miner!r}; known: 'all', 'batch_hard', 'semi_hard'")


def triplet_margin(
    z: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.2,
    miner: Miner = "all",
    squared: bool = False,
    soft: bool = False,
    normalize: bool = True,
    nonzero_mean: bool = False,
) -> torch.Tensor:
    """Triplet margin loss max(0, d(a, p) - d(a, n) + margin) over mined triplets.

    z: (N, D), labels: (N,). miner: "all" (every valid triplet), "batch_hard" (Hermans et al.
    2017: per anchor the farthest positive and closest negative), "semi_hard" (FaceNet,
    Schroff et al. 2015: per anchor-positive pair the closest negative with d(a, p) < d(a, n)
    < d(a, p) + margin); see `selfsup.losses.mining`.
    squared: use squared Euclidean distances (FaceNet) instead of plain ones (Hermans et al.).
    soft: Hermans et al.'s soft margin softplus(d(a, p) - d(a, n)); `margin` then only bounds
    the semi-hard band.
    normalize: L2-normalize first. Default True because FaceNet constrains embeddings to the
    unit hypersphere and its margin 0.2 (the default) assumes that scale; Hermans et al. do not
    normalize (pass False).
    Reduction: the mean over *all* mined triplets, zero-loss ones included; nonzero_mean=True
    averages over triplets with positive loss only (pytorch-metric-learning's default).
    No mined triplet (no positive, no negative, one sample, one class) returns 0.
    """
    _check_labels(z, labels)
    if normalize:
        z = F.normalize(z, dim=1)
    d = pairwise_distance(z, squared=squared)
    a, p, n = _mine(d.detach(), labels, miner, margin)
    if len(a) == 0:
        return _zero(z)
    gap = d[a, p] - d[a, n]
    losses = F.softplus(gap) if soft else F.relu(gap + margin)
    if nonzero_mean:
        return losses.sum() / (losses > 0).sum().clamp_min(1)
    return losses.mean()


def npair(z: torch.Tensor, labels: torch.Tensor, l2_reg: float = 0.02) -> torch.Tensor:
    """Multi-class N-pair loss (Sohn 2016, eq. 6 with the L2 penalty of Sec. 3.2.2).

    z: (N, D), labels: (N,). Each class with at least two samples gives one (anchor, positive)
    pair: its first two samples in index order (`mining.first_pairs`); for each anchor the
    negatives are the positives of the other classes. loss = mean over the C pairs of the
    cross-entropy of anchor . positives (raw inner products, no normalization, as the paper)
    + l2_reg * mean over the 2C used embeddings of ||f||^2. l2_reg: 0.02 (the paper's lambda;
    TensorFlow's contrib `npairs_loss` instead uses 0.002 * 0.25 * (mean ||a||^2 + mean ||p||^2)).
    No class with two samples returns 0 (and one pair alone gives a zero cross-entropy).
    """
    _check_labels(z, labels)
    a, p = mining.first_pairs(labels)
    if len(a) == 0:
        return _zero(z)
    anchors, positives = z[a], z[p]
    target = torch.arange(len(a), device=z.device)
    loss = F.cross_entropy(anchors @ positives.T, target)
    if l2_reg:
        loss = loss + l2_reg * torch.cat([anchors, positives]).pow(2).sum(1).mean()
    return loss


def margin_contrastive(
    z: torch.Tensor,
    labels: torch.Tensor,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    squared: bool = True,
    normalize: bool = False,
) -> torch.Tensor:
    """Contrastive (margin) loss of Hadsell, Chopra & LeCun 2006 over all pairs of the batch.

    z: (N, D), labels: (N,). d = Euclidean distance. Positive pair: max(0, d - pos_margin)^2,
    negative pair: max(0, neg_margin - d)^2 (the paper's form with pos_margin = 0; we drop its
    factor 1/2). squared=False uses the unsquared hinges, which is pytorch-metric-learning's
    ContrastiveLoss per-pair term. Returns the mean over all N(N-1) ordered pairs i != j
    (PML instead averages positive and negative pairs separately, over non-zero ones, and adds
    the two). normalize: L2-normalize first (off by default: the paper does not; PML does).
    One sample (no pair) returns 0.
    """
    _check_labels(z, labels)
    if normalize:
        z = F.normalize(z, dim=1)
    pos, neg = mining.pair_masks(labels)
    d = pairwise_distance(z)
    pos_loss, neg_loss = F.relu(d - pos_margin), F.relu(neg_margin - d)
    if squared:
        pos_loss, neg_loss = pos_loss.pow(2), neg_loss.pow(2)
    per_pair = torch.where(pos, pos_loss, torch.where(neg, neg_loss, 0.0))
    return per_pair.sum() / (pos | neg).sum().clamp_min(1)  # N = 1: no pair, 0


# --------------------------------------------------------------------------- non-contrastive


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's normalized MSE (Grill et al. 2020, eq. 2): ||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z).

    p: (N, D) online predictions, z: (N, D) target projections (the caller detaches z; the
    method symmetrizes over views). Returns the mean over N.
    """
    _check_pair(p, z)
    return (2.0 - 2.0 * (F.normalize(p, dim=1) * F.normalize(z, dim=1)).sum(1)).mean()


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, z) = -cos(p, z) (Chen & He 2021, eq. 1).

    p: (N, D) predictions, z: (N, D) projections; the stop-gradient on z is the caller's
    (`z.detach()`), as is the 1/2 symmetrization. Returns the mean over N.
    """
    _check_pair(p, z)
    return -(F.normalize(p, dim=1) * F.normalize(z, dim=1)).sum(1).mean()


def _standardize(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-dimension batch standardization, as BatchNorm1d(affine=False) in training mode
    (biased variance, eps 1e-5), which Barlow Twins' reference code applies."""
    mean = z.mean(0, keepdim=True)
    var = z.var(0, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + eps)


def _off_diagonal_sq_sum(c: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(c.shape[0], dtype=torch.bool, device=c.device)
    return c.pow(2).masked_fill(eye, 0.0).sum()


def _gather_both(
    z_a: torch.Tensor, z_b: torch.Tensor, gather: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    if not gather:
        return z_a, z_b
    return dist.gather_with_grad(z_a), dist.gather_with_grad(z_b)


class BarlowTwinsTerms(NamedTuple):
    on_diag: torch.Tensor  # sum_i (1 - C_ii)^2
    off_diag: torch.Tensor  # sum_{i != j} C_ij^2


def barlow_twins_terms(
    z_a: torch.Tensor, z_b: torch.Tensor, gather: bool = False
) -> BarlowTwinsTerms:
    """Both terms of Barlow Twins (Zbontar et al. 2021, eq. 1).

    z_a, z_b: (N, D). C = standardize(z_a)^T standardize(z_b) / N, (D, D), over the global batch
    with `gather` (the reference code uses SyncBatchNorm + all_reduce(C)); every rank then
    computes the same global loss, which with the gather's summed backward and DDP's average
    gives the full-batch gradient. Raises ValueError for N < 2 (no batch statistics).
    """
    _check_pair(z_a, z_b)
    z_a, z_b = _gather_both(z_a, z_b, gather)
    if z_a.shape[0] < 2:
        raise ValueError("Barlow Twins needs at least 2 samples for batch statistics")
    c = _standardize(z_a).T @ _standardize(z_b) / z_a.shape[0]
    on_diag = (torch.diagonal(c) - 1.0).pow(2).sum()
    return BarlowTwinsTerms(on_diag, _off_diagonal_sq_sum(c))


def barlow_twins(
    z_a: torch.Tensor, z_b: torch.Tensor, lambd: float = 0.0051, gather: bool = False
) -> torch.Tensor:
    """Barlow Twins loss on_diag + lambd * off_diag (see `barlow_twins_terms`).

    lambd: 0.0051, the reference code's value (the paper states 5e-3).
    """
    terms = barlow_twins_terms(z_a, z_b, gather)
    return terms.on_diag + lambd * terms.off_diag


class VICRegTerms(NamedTuple):
    invariance: torch.Tensor  # mean squared error between the views
    variance: torch.Tensor  # hinge on per-dimension std, averaged over both views
    covariance: torch.Tensor  # squared off-diagonal covariances / D, summed over both views


def _variance_hinge(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    std = torch.sqrt(z.var(0) + eps)  # unbiased, as the reference code
    return F.relu(gamma - std).mean()


def _covariance_penalty(z: torch.Tensor) -> torch.Tensor:
    zc = z - z.mean(0, keepdim=True)
    cov = zc.T @ zc / (z.shape[0] - 1)
    return _off_diagonal_sq_sum(cov) / z.shape[1]


def vicreg_terms(z_a: torch.Tensor, z_b: torch.Tensor, gather: bool = False) -> VICRegTerms:
    """The three VICReg terms (Bardes, Ponce & LeCun 2022, eqs. 1-5; reference code's form).

    z_a, z_b: (N, D). invariance = mean (z_a - z_b)^2 over the local batch; variance =
    (v(z_a) + v(z_b)) / 2 with v = mean_j max(0, 1 - sqrt(Var z_j + 1e-4)); covariance =
    c(z_a) + c(z_b) with c = sum of squared off-diagonal covariances / D. With `gather`, the
    variance and covariance terms use the global batch (as the reference code's FullGatherLayer)
    while invariance stays local. Raises ValueError for N < 2 (no variance).
    """
    _check_pair(z_a, z_b)
    invariance = F.mse_loss(z_a, z_b)
    z_a, z_b = _gather_both(z_a, z_b, gather)
    if z_a.shape[0] < 2:
        raise ValueError("VICReg needs at least 2 samples for its variance term")
    variance = 0.5 * (_variance_hinge(z_a) + _variance_hinge(z_b))
    covariance = _covariance_penalty(z_a) + _covariance_penalty(z_b)
    return VICRegTerms(invariance, variance, covariance)


def vicreg(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    gather: bool = False,
) -> torch.Tensor:
    """VICReg loss sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance
    (see `vicreg_terms`). Coefficients: the paper's lambda = mu = 25, nu = 1."""
    t = vicreg_terms(z_a, z_b, gather)
    return sim_coeff * t.invariance + std_coeff * t.variance + cov_coeff * t.covariance


def dino_loss(
    student_logits: Sequence[torch.Tensor],
    teacher_logits: Sequence[torch.Tensor],
    center: torch.Tensor,
    student_temp: float = 0.1,
    teacher_temp: float = 0.04,
) -> torch.Tensor:
    """DINO's self-distillation cross-entropy (Caron et al. 2021, eq. 3 / Algorithm 1).

    student_logits: V tensors (N, K), the global crops first in the teacher's order, then the
    local crops; teacher_logits: G tensors (N, K) for the G global crops; center: (K,) or
    (1, K). Teacher targets softmax((t - center) / teacher_temp) carry no gradient (DINO's
    stop-gradient is part of the loss). For every teacher view iq and student view v != iq:
    mean over N of -sum_k q log softmax(s / student_temp); returns the mean over those pairs.
    Temperatures: student 0.1, teacher 0.04 (the paper warms it up to 0.07: that schedule is
    the method's). Raises ValueError when no pair is left (one view on each side).
    """
    center = center.detach()
    targets = [F.softmax((t.detach() - center) / teacher_temp, dim=-1) for t in teacher_logits]
    log_probs = [F.log_softmax(s / student_temp, dim=-1) for s in student_logits]
    terms = [
        -(q * lp).sum(-1).mean()
        for iq, q in enumerate(targets)
        for v, lp in enumerate(log_probs)
        if v != iq  # same view for teacher and student: skipped, as in DINO
    ]
    if not terms:
        raise ValueError("DINO needs a teacher/student pair of different views")
    return torch.stack(terms).mean()


@torch.no_grad()
def dino_center_update(
    center: torch.Tensor, teacher_logits: Sequence[torch.Tensor], momentum: float = 0.9
) -> torch.Tensor:
    """DINO's center EMA: momentum * center + (1 - momentum) * mean teacher logit, the mean over
    all views and all ranks. center: (1, K); returns the new (1, K). momentum: 0.9 (paper)."""
    batch_center = torch.cat(list(teacher_logits)).mean(0, keepdim=True)
    return center * momentum + dist.all_reduce_mean(batch_center) * (1.0 - momentum)
