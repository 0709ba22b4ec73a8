"""Cross-checks against pytorch-metric-learning (test-only dependency) where formulas coincide.

Known, documented differences (not bugs):
- ContrastiveLoss: PML uses unsquared hinges (our `squared=False`) and by default averages
  positive and negative pairs separately over non-zero terms; with PML's SumReducer its value
  is the sum over ordered pairs, i.e. ours times N(N-1).
- TripletMarginLoss: PML averages over triplets with positive loss by default (our
  `nonzero_mean=True`); its MeanReducer gives our default mean over all mined triplets.
  PML's `smooth_loss` is softplus(d_ap - d_an + margin); ours (`soft`, Hermans et al.) has no
  margin, so it is compared with PML's margin 0.
- SupConLoss: PML returns 0 when the batch has no negative pair; ours still computes the loss
  (only other views of the same class in the denominator), as Khosla et al.'s formula does.
- NPairsLoss: PML's default distance normalizes; Sohn's loss uses raw inner products, so PML is
  given an unnormalized DotProductSimilarity, and our L2 penalty is switched off.
"""

from __future__ import annotations

import pytest
import torch

from selfsup.losses import functional as L

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")

LABELS = torch.tensor([1, 0, 1, 0, 1, 1, 2, 2, 0, 3, 3, 1, 4, 4, 4, 0])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: a second OpenMP thread only adds scheduling latency on a loaded machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _z(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_equals_pml(temperature):
    z_a, z_b = _z(12, 16), _z(12, 16, seed=1)
    labels = torch.arange(12).repeat(2)  # a sample's two views share a label
    theirs = pml_losses.NTXentLoss(temperature)(torch.cat([z_a, z_b]), labels)
    _close(L.nt_xent(z_a, z_b, temperature), theirs)


@pytest.mark.parametrize("views", [1, 2])
def test_supcon_equals_pml(views):
    n = len(LABELS)
    z = _z(n * views, 16).reshape(n, views, 16)
    theirs = pml_losses.SupConLoss(temperature=0.1)(
        z.reshape(n * views, 16), LABELS.repeat_interleave(views)
    )
    _close(L.supcon(z if views > 1 else z[:, 0], LABELS, 0.1), theirs)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("normalize", [True, False])
def test_triplet_all_equals_pml(squared, normalize):
    z = _z(len(LABELS), 8)
    distance = pml_distances.LpDistance(normalize_embeddings=normalize, power=2 if squared else 1)
    margin = 0.2 if normalize else 1.0
    kw = dict(margin=margin, squared=squared, normalize=normalize)
    mean_all = pml_losses.TripletMarginLoss(
        margin, distance=distance, reducer=pml_reducers.MeanReducer()
    )
    _close(L.triplet_margin(z, LABELS, **kw), mean_all(z, LABELS))
    nonzero = pml_losses.TripletMarginLoss(margin, distance=distance)  # AvgNonZeroReducer
    _close(L.triplet_margin(z, LABELS, nonzero_mean=True, **kw), nonzero(z, LABELS))


@pytest.mark.parametrize("soft", [False, True])
def test_triplet_batch_hard_equals_pml(soft):
    z = _z(len(LABELS), 8, seed=2)
    distance = pml_distances.LpDistance(normalize_embeddings=False)
    miner = pml_miners.BatchHardMiner(distance=distance)
    loss = pml_losses.TripletMarginLoss(
        0.0 if soft else 1.0,
        smooth_loss=soft,
        distance=distance,
        reducer=pml_reducers.MeanReducer(),
    )
    theirs = loss(z, LABELS, miner(z, LABELS))
    ours = L.triplet_margin(z, LABELS, 1.0, "batch_hard", soft=soft, normalize=False)
    _close(ours, theirs)


@pytest.mark.parametrize("margins", [(0.0, 1.0), (0.5, 5.0)])
def test_margin_contrastive_unsquared_equals_pml_sum(margins):
    z = _z(len(LABELS), 8, seed=3)
    n = len(LABELS)
    pml = pml_losses.ContrastiveLoss(
        *margins,
        distance=pml_distances.LpDistance(normalize_embeddings=False),
        reducer=pml_reducers.SumReducer(),
    )
    ours = L.margin_contrastive(z, LABELS, *margins, squared=False)
    _close(ours * n * (n - 1), pml(z, LABELS))


def test_npair_equals_pml():
    z = _z(len(LABELS), 8, seed=4) * 0.5
    pml = pml_losses.NPairsLoss(
        distance=pml_distances.DotProductSimilarity(normalize_embeddings=False)
    )
    _close(L.npair(z, LABELS, l2_reg=0.0), pml(z, LABELS))
