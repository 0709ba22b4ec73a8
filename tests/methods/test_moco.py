"""MoCo v2 (queue) and v3 (predictor, in-batch negatives); shuffle-BN on one process."""

import pytest
import torch

from selfsup.build import build_moco, build_moco_v3
from selfsup.encoders import create_encoder
from selfsup.losses.functional import info_nce
from selfsup.methods.shuffle_bn import SplitBatchNorm2d, group_count


def _v2(**kw):
    torch.manual_seed(0)
    enc = create_encoder("convnet_small", width=8)
    args = dict(queue_size=32, proj_hidden_dim=32, proj_dim=16, temperature=0.2, momentum=0.9)
    return build_moco(enc, **{**args, **kw})


def _views(n=8):
    return [torch.randn(n, 3, 16, 16), torch.randn(n, 3, 16, 16)]


def test_v2_loss_uses_the_queue_before_this_batch_then_enqueues_its_keys():
    m = _v2(shuffle_bn_groups=0)  # plain BN: the keys below are recomputed unshuffled
    x_a, x_b = _views()
    before = m.queue.items()
    out = m.training_step([x_a, x_b])
    assert out.z[0].shape == (8, 16) and out.z[1].shape == (8, 16)
    with torch.no_grad():  # train-mode BN: the same batch gives the same outputs
        q = m.projector(m.backbone(x_a))
        k = m.key_projector(m.key_backbone(x_b))
    expected = info_nce(q, k, 0.2, negatives=before, in_batch_negatives=False)
    assert torch.allclose(out.loss, expected, atol=1e-5)
    # this batch's keys were not among the negatives, and are now the newest queue rows
    assert not torch.isclose(
        before @ torch.nn.functional.normalize(k, dim=1).T, torch.tensor(1.0)
    ).any()
    assert torch.allclose(m.queue.items()[:8], torch.nn.functional.normalize(k, dim=1), atol=1e-6)
    assert torch.equal(m.queue.items()[8:], before[8:])
    assert int(m.queue.ptr) == 8


def test_eval_mode_does_not_touch_the_queue():
    m = _v2().eval()
    before = m.queue.items()
    m.training_step(_views())
    assert torch.equal(m.queue.items(), before)


def test_key_encoder_gets_no_gradient_and_follows_the_ema():
    m = _v2()
    m.training_step(_views()).loss.backward()
    assert all(p.grad is None for p in m.key_backbone.parameters())
    assert all(p.grad is None for p in m.key_projector.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.backbone.parameters())
    with torch.no_grad():
        for p in m.backbone.parameters():
            p.add_(1.0)
    old = [p.clone() for p in m.key_backbone.parameters()]
    m.after_step(0, 10)  # constant momentum 0.9
    for p_k, p_o, p_old in zip(
        m.key_backbone.parameters(), m.backbone.parameters(), old, strict=True
    ):
        assert torch.allclose(p_k, 0.9 * p_old + 0.1 * p_o, atol=1e-6)


def test_symmetric_v2_enqueues_both_views_keys():
    m = _v2(symmetric=True)
    out = m.training_step(_views())
    assert torch.isfinite(out.loss) and int(m.queue.ptr) == 16


def test_v3_has_no_queue_and_trains_the_predictor():
    torch.manual_seed(0)
    enc = create_encoder("convnet_small", width=8)
    m = build_moco_v3(enc, proj_hidden_dim=32, proj_dim=16, pred_hidden_dim=32)
    assert m.queue is None
    out = m.training_step(_views())
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.z[0].shape == (8, 16)
    assert all(p.grad is not None for p in m.predictor.parameters())
    assert all(p.grad is None for p in m.key_projector.parameters())


# ------------------------------------------------------ shuffle-BN emulation (#19.5)


def _key_group(n: int, i: int, seed: int) -> set[int]:
    """The samples whose key shares sample i's BN sub-batch, for the permutation `_key` draws
    after `torch.manual_seed(seed)` (shuffled position p is in group p mod g)."""
    torch.manual_seed(seed)
    perm = torch.randperm(n)
    g = group_count(n, 8)
    pos = int(torch.argsort(perm)[i])
    return {int(perm[p]) for p in range(n) if p % g == pos % g}


@pytest.mark.parametrize("groups", [8, 0])
def test_shuffle_bn_key_of_a_sample_depends_only_on_its_key_sub_batch(groups):
    """#19.5: with plain BN (groups=0, the old code) every key depends on the whole batch, so a
    query and its key share BN statistics; split, key i sees only its random sub-batch."""
    m = _v2(shuffle_bn_groups=groups).train()
    n, i = 32, 5
    x = torch.randn(n, 3, 16, 16)
    same = _key_group(n, i, seed=1)
    query_group = {j for j in range(n) if j % group_count(n, 8) == i % group_count(n, 8)}
    assert i in same and same != query_group  # key i is normalized with other samples
    outside = next(j for j in range(n) if j not in same)
    x2 = x.clone()
    x2[outside] = 5 * torch.randn(3, 16, 16)
    torch.manual_seed(1)
    k1 = m._key(x)
    torch.manual_seed(1)
    k2 = m._key(x2)
    assert torch.allclose(k1[i], k2[i], atol=1e-6) == (groups == 8)
    inside = next(j for j in same if j != i)
    x3 = x.clone()
    x3[inside] = 5 * torch.randn(3, 16, 16)
    torch.manual_seed(1)
    assert not torch.allclose(k1[i], m._key(x3)[i], atol=1e-6)  # its own sub-batch counts


def test_shuffle_bn_is_on_for_v2_off_for_v3_and_plain_bn_in_eval():
    """#19.5: v2's BN layers (both encoders) are split; v3 keeps plain BN (the paper uses
    SyncBN, no shuffle); eval mode and state_dict keys are those of plain BN."""
    m, plain = _v2(), _v2(shuffle_bn_groups=0)
    assert m.shuffle_bn and any(isinstance(b, SplitBatchNorm2d) for b in m.key_backbone.modules())
    assert not any(isinstance(b, SplitBatchNorm2d) for b in plain.modules())
    v3 = build_moco_v3(create_encoder("convnet_small", width=8), proj_hidden_dim=32,
                       proj_dim=16, pred_hidden_dim=32)  # fmt: skip
    assert not v3.shuffle_bn and not any(isinstance(b, SplitBatchNorm2d) for b in v3.modules())
    assert m.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(m.state_dict())
    x = torch.randn(8, 3, 16, 16)
    m.eval(), plain.eval()
    assert torch.equal(m.backbone(x), plain.backbone(x))
