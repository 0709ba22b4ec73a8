"""DINO: multi-crop student vs EMA teacher on the global crops; centring and sharpening; the
official recipe's training-time parts (#19.5): last layer frozen at first, per-parameter
gradient clipping, weight-decay cosine, teacher temperature continued exactly on resume."""

import json
import math

import torch

from selfsup.build import build_dino, build_views
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from selfsup.engine import loop
from selfsup.engine.checkpoint import list_checkpoints
from selfsup.engine.config import TrainConfig
from selfsup.engine.loop import Callback, fit
from selfsup.engine.optim import build_optimizer, set_weight_decay


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
    assert abs(m.loss.teacher_temp - 0.04) < 1e-7
    m.after_step(4, 10)  # 5 of 5 warm-up steps done
    assert abs(m.loss.teacher_temp - 0.07) < 1e-7
    with torch.no_grad():
        for p in m.head.parameters():
            p.add_(1.0)
    old = [p.clone() for p in m.teacher_head.parameters()]
    m.after_step(5, 10)
    for p_t, p_o, p_old in zip(m.teacher_head.parameters(), m.head.parameters(), old, strict=True):
        assert torch.allclose(p_t, 0.9 * p_old + 0.1 * p_o, atol=1e-6)


# ------------------------------------------------- the official recipe through `fit` (#19.5)


def _fit(out, method, steps=4, **train):
    g = torch.Generator().manual_seed(0)
    data = InMemoryDataset(torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=g))
    base = dict(steps=steps, batch_size=8, lr=0.1, checkpoint_every=steps, log_every=1)
    cfg = TrainConfig(
        precision="fp32", device="cpu", progress=False, out_dir=str(out), **{**base, **train}
    )
    config = {"method": "dino", "train": {"resume": cfg.resume}}
    return fit(method, data, build_views("dino", "", 8), cfg, [_Record()], run_config=config)


class _Record(Callback):
    """Keeps the last layer's direction weights after every step (log_every=1)."""

    seen: list = []

    def on_log(self, step, method, out, metrics):
        v = method.head.last_layer.parametrizations.weight.original1
        _Record.seen.append(v.detach().clone())


def test_last_layer_frozen_for_the_first_fraction_of_training(tmp_path):
    """#19.5 (a): official freeze_last_layer; the old code updated it from step 1."""
    m = _dino(freeze_last_layer=0.5)  # 2 of 4 steps
    before = m.head.last_layer.parametrizations.weight.original1.detach().clone()
    _Record.seen = []
    _fit(tmp_path, m)
    after = _Record.seen
    assert torch.equal(after[0], before) and torch.equal(after[1], before)
    assert not torch.equal(after[2], before) and not torch.equal(after[3], after[2])


def test_weight_decay_follows_the_official_cosine_0_04_to_0_4(tmp_path, monkeypatch):
    """#19.5 (b): the loop applies the method's per-step decay; the old loop kept it fixed."""
    seen = []
    monkeypatch.setattr(loop, "set_weight_decay", lambda opt, wd: seen.append(wd))
    _fit(tmp_path, _dino(), steps=5, weight_decay=0.04)
    want = [0.4 + 0.5 * (0.04 - 0.4) * (1 + math.cos(math.pi * s / 5)) for s in range(5)]
    assert seen == want and abs(seen[0] - 0.04) < 1e-12
    assert all(a < b for a, b in zip(seen[:-1], seen[1:], strict=True))
    opt = build_optimizer(_dino(), TrainConfig(weight_decay=0.04))
    set_weight_decay(opt, 0.3)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.3, 0.0]  # norms, biases: none


def test_gradients_clipped_per_parameter_to_3():
    """#19.5 (c): the official clip_gradients (each parameter's norm <= 3, others untouched)."""
    m = _dino()
    (1e4 * m.training_step(_crops()).loss).backward()
    grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    assert max(g.norm() for g in grads.values()) > 3.0  # the test needs big gradients
    m.after_backward(10, 10)  # past the freeze: every student gradient stays
    for n, p in m.named_parameters():
        if n in grads:
            norm = grads[n].norm()
            assert p.grad.norm() <= 3.0 + 1e-4
            if norm <= 3.0:
                assert torch.equal(p.grad, grads[n])
            else:
                assert torch.allclose(p.grad, grads[n] * 3.0 / (norm + 1e-6))


def test_teacher_temperature_after_resume_equals_an_uninterrupted_run(tmp_path):
    """#19.5 (d): the old code kept the temperature in a float attribute that a checkpoint did
    not hold, so a resumed run restarted the warm-up at warmup_teacher_temp."""
    kw = dict(warmup_teacher_temp=0.04, teacher_temp=0.07, teacher_temp_warmup=1.0)
    _fit(tmp_path / "full", _dino(**kw))
    _fit(tmp_path / "part", _dino(**kw), checkpoint_every=1, keep_checkpoints=9)
    for step, path in list_checkpoints(tmp_path / "part"):
        if step > 2:
            path.unlink()
    _fit(tmp_path / "part", _dino(**kw), checkpoint_every=1, resume=True)

    def temps(run):
        rows = (json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines())
        return [r["teacher_temp"] for r in rows]

    full = temps(tmp_path / "full")
    assert full[0] < full[1] < full[2] < full[3]  # the warm-up is under way at the resume
    assert temps(tmp_path / "part") == full
