"""DINO: multi-crop student vs EMA teacher on the global crops; centring and sharpening."""

import torch

from selfsup.build import build_dino
from selfsup.encoders import create_encoder


def _dino(**kw):
    torch.manual_seed(0)
    args = dict(out_dim=64, hidden_dim=32, bottleneck_dim=16, momentum=0.9, final_momentum=0.9)
    return build_dino(create_encoder("convnet_small", width=8), **{**args, **kw})


def _crops(n=8, n_local=3):
    return [torch.randn(n, 3, 16, 16) for _ in range(2)] + [
        torch.randn(n, 3, 8, 8) for _ in range(n_local)
    ]


def test_multicrop_step_shapes_and_teacher_frozen():
    m = _dino()
    out = m.training_step(_crops())
    assert out.z[0].shape == (8, 64) and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is None for p in m.teacher_backbone.parameters())
    assert all(p.grad is None for p in m.teacher_head.parameters())
    assert all(p.grad is not None for p in m.backbone.parameters())


def test_center_is_the_ema_of_teacher_outputs():
    m = _dino()
    crops = _crops()
    assert torch.count_nonzero(m.loss.center) == 0
    m.training_step(crops)
    with torch.no_grad():
        t = m.teacher_head(m.teacher_backbone(torch.cat(crops[:2])))
    assert torch.allclose(m.loss.center, 0.1 * t.mean(0, keepdim=True), atol=1e-6)


def test_teacher_targets_are_sharper_than_student_outputs():
    m = _dino()
    with torch.no_grad():
        logits = m.head(m.backbone(torch.randn(8, 3, 16, 16)))
    ent = lambda p: -(p * p.clamp_min(1e-12).log()).sum(-1).mean()  # noqa: E731
    teacher = torch.softmax(logits / m.loss.teacher_temp, -1)
    student = torch.softmax(logits / m.loss.student_temp, -1)
    assert m.loss.teacher_temp < m.loss.student_temp
    assert ent(teacher) < ent(student)


def test_teacher_temperature_warmup_and_ema():
    m = _dino(warmup_teacher_temp=0.04, teacher_temp=0.07, teacher_temp_warmup=0.5)
    assert abs(m.loss.teacher_temp - 0.04) < 1e-9
    m.after_step(4, 10)  # 5 of 5 warm-up steps done
    assert abs(m.loss.teacher_temp - 0.07) < 1e-9
    with torch.no_grad():
        for p in m.head.parameters():
            p.add_(1.0)
    old = [p.clone() for p in m.teacher_head.parameters()]
    m.after_step(5, 10)
    for p_t, p_o, p_old in zip(m.teacher_head.parameters(), m.head.parameters(), old, strict=True):
        assert torch.allclose(p_t, 0.9 * p_old + 0.1 * p_o, atol=1e-6)
