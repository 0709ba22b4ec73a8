"""The nn.Module wrappers hold the papers' defaults and delegate to the functions."""

from __future__ import annotations

import math

import pytest
import torch

import selfsup.losses as losses
from selfsup.losses import functional as L


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: a second OpenMP thread only adds scheduling latency on a loaded machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _views(n: int = 6, d: int = 5, v: int = 3):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(v)]


LABELS = torch.tensor([0, 1, 0, 1, 2, 2])

PAIR_MODULES = [
    (losses.NTXentLoss(), lambda a, b: L.nt_xent(a, b, 0.5)),
    (losses.InfoNCELoss(), lambda a, b: L.info_nce(a, b, 0.07)),
    (losses.DCLLoss(), lambda a, b: L.dcl(a, b, 0.1)),
    (losses.DCLWLoss(), lambda a, b: L.dcl(a, b, 0.1, L.vmf_weights)),
    (losses.SigLIPLoss(), lambda a, b: L.logistic_pairwise(a, b, math.log(10), -10.0)),
    (losses.BYOLLoss(), L.byol_loss),
    (losses.NegativeCosineLoss(), L.negative_cosine),
    (losses.BarlowTwinsLoss(), lambda a, b: L.barlow_twins(a, b, 0.0051)),
    (losses.VICRegLoss(), lambda a, b: L.vicreg(a, b, 25, 25, 1)),
]

LABEL_MODULES = [
    (losses.SupConLoss(), lambda z, y: L.supcon(z, y, 0.1)),
    (losses.TripletMarginLoss(), lambda z, y: L.triplet_margin(z, y, 0.2, "all")),
    (
        losses.TripletMarginLoss(miner="batch_hard", soft=True),
        lambda z, y: L.triplet_margin(z, y, miner="batch_hard", soft=True),
    ),
    (losses.NPairLoss(), lambda z, y: L.npair(z, y, 0.02)),
    (losses.MarginContrastiveLoss(), lambda z, y: L.margin_contrastive(z, y, 0.0, 1.0)),
]


@pytest.mark.parametrize("module,fn", PAIR_MODULES, ids=lambda x: type(x).__name__)
def test_pair_modules_delegate(module, fn):
    z_a, z_b, _ = _views()
    torch.testing.assert_close(module(z_a, z_b).double(), fn(z_a, z_b))


@pytest.mark.parametrize("module,fn", LABEL_MODULES, ids=lambda x: type(x).__name__)
def test_label_modules_delegate(module, fn):
    z, _, _ = _views()
    torch.testing.assert_close(module(z, LABELS), fn(z, LABELS))


def test_info_nce_module_moco_queue():
    q, k, queue = _views()
    moco = losses.InfoNCELoss(temperature=0.2, in_batch_negatives=False)
    torch.testing.assert_close(moco(q, k, queue), L.info_nce(q, k, 0.2, queue, False))


def test_negative_sampling_module():
    q, p, negs = _views()
    torch.testing.assert_close(
        losses.NegativeSamplingLoss()(q, p, negs), L.negative_sampling(q, p, negs)
    )


def test_siglip_parameters_are_learned():
    module = losses.SigLIPLoss()
    assert module.log_scale.item() == pytest.approx(math.log(10))
    assert module.bias.item() == -10.0
    z_a, z_b, _ = (t.float() for t in _views())
    module(z_a, z_b).backward()
    assert module.log_scale.grad is not None and module.bias.grad is not None
    assert {n for n, _ in module.named_parameters()} == {"log_scale", "bias"}


def test_dino_module_updates_center_in_training_only():
    module = losses.DINOLoss(out_dim=5)
    s1, s2, s3 = _views(4, 5)
    teacher = [s1.float() * 2, s2.float()]
    student = [s1.float(), s2.float(), s3.float()]
    want = L.dino_loss(student, teacher, torch.zeros(1, 5))
    torch.testing.assert_close(module(student, teacher), want)  # uses the old center
    expected = 0.1 * torch.cat(teacher).mean(0, keepdim=True)
    torch.testing.assert_close(module.center, expected)
    assert "center" in module.state_dict()
    module.eval()
    module(student, teacher)
    torch.testing.assert_close(module.center, expected)
    module.teacher_temp = 0.07  # a method's warm-up schedule sets this
    torch.testing.assert_close(
        module(student, teacher), L.dino_loss(student, teacher, expected, 0.1, 0.07)
    )


def test_public_api_is_exported():
    for name in losses.__all__:
        assert hasattr(losses, name), name
