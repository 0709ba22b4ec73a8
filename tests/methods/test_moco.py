"""MoCo v2 (queue) and v3 (predictor, in-batch negatives)."""

import torch

from selfsup.build import build_moco, build_moco_v3
from selfsup.encoders import create_encoder
from selfsup.losses.functional import info_nce


def _v2(**kw):
    torch.manual_seed(0)
    enc = create_encoder("convnet_small", width=8)
    args = dict(queue_size=32, proj_hidden_dim=32, proj_dim=16, temperature=0.2, momentum=0.9)
    return build_moco(enc, **{**args, **kw})


def _views(n=8):
    return [torch.randn(n, 3, 16, 16), torch.randn(n, 3, 16, 16)]


def test_v2_loss_uses_the_queue_before_this_batch_then_enqueues_its_keys():
    m = _v2()
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
