import math

import pytest
import torch
from torch import nn

from selfsup.engine.config import TrainConfig
from selfsup.engine.optim import LARS, build_optimizer, param_groups
from selfsup.engine.schedule import cosine_momentum, warmup_cosine


def test_warmup_is_linear_then_cosine_reaches_final():
    peak, total, warm = 1.0, 100, 10
    assert warmup_cosine(0, total, peak, warm) == pytest.approx(0.1)
    assert warmup_cosine(9, total, peak, warm) == pytest.approx(1.0)
    assert warmup_cosine(10, total, peak, warm) == pytest.approx(1.0)
    mid = warmup_cosine(55, total, peak, warm)
    assert mid == pytest.approx(0.5, abs=1e-9)
    assert warmup_cosine(100, total, peak, warm, final=0.01) == pytest.approx(0.01)
    values = [warmup_cosine(s, total, peak, warm) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_cosine_momentum_goes_from_base_to_one():
    assert cosine_momentum(0, 1000) == pytest.approx(0.996)
    assert cosine_momentum(500, 1000) == pytest.approx(0.998)
    assert cosine_momentum(1000, 1000) == pytest.approx(1.0)


def test_param_groups_exclude_norms_and_biases_from_decay():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(1, 3, 5, 5))
    decay, no_decay = param_groups(model, 0.1)
    assert all(p.ndim > 1 for p in decay["params"]) and len(decay["params"]) == 2
    assert all(p.ndim == 1 for p in no_decay["params"]) and len(no_decay["params"]) == 4
    assert no_decay["weight_decay"] == 0.0


def test_lars_step_matches_hand_computation():
    w = nn.Parameter(torch.tensor([[3.0, 4.0]]))  # ||w|| = 5
    b = nn.Parameter(torch.tensor([1.0]))
    w.grad, b.grad = torch.tensor([[0.6, 0.8]]), torch.tensor([2.0])
    opt = LARS(
        [
            {"params": [w], "weight_decay": 0.1, "lars": True},
            {"params": [b], "weight_decay": 0.0, "lars": False},
        ],
        lr=0.5,
        momentum=0.9,
        eta=0.001,
    )
    opt.step()
    g = torch.tensor([[0.6, 0.8]]) + 0.1 * torch.tensor([[3.0, 4.0]])
    trust = 0.001 * 5.0 / g.norm()
    assert torch.allclose(w, torch.tensor([[3.0, 4.0]]) - 0.5 * trust * g)
    assert torch.allclose(b, torch.tensor([1.0 - 0.5 * 2.0]))


@pytest.mark.parametrize("name", ["sgd", "lars", "adamw"])
def test_build_optimizer_uses_scaled_lr(name):
    cfg = TrainConfig(optimizer=name, lr=0.3, lr_scaling="linear", batch_size=512)
    opt = build_optimizer(nn.Linear(3, 2), cfg)
    assert all(math.isclose(g["lr"], 0.6) for g in opt.param_groups)
