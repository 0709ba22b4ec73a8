"""The shared parts: EMA target update, FIFO memory queue, NNCLR's nearest-neighbour lookup."""

import math

import pytest
import torch
from torch import nn

from selfsup.methods.momentum import cosine_momentum, frozen_copy, update_momentum
from selfsup.methods.queue import MemoryQueue
from selfsup.methods.support_set import SupportSet


def test_frozen_copy_is_equal_and_takes_no_grad():
    online = nn.Linear(4, 3)
    target = frozen_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert torch.equal(target.weight, online.weight) and target.weight is not online.weight


def test_update_momentum_is_the_ema_formula():
    torch.manual_seed(0)
    online, target = nn.Linear(4, 3), nn.Linear(4, 3)
    w_o, w_t = online.weight.detach().clone(), target.weight.detach().clone()
    update_momentum(online, target, 0.9)
    assert torch.allclose(target.weight, 0.9 * w_t + 0.1 * w_o)
    assert torch.equal(online.weight, w_o)  # the online network is untouched
    update_momentum(online, target, 1.0)  # m = 1: frozen
    assert torch.allclose(target.weight, 0.9 * w_t + 0.1 * w_o)


def test_cosine_momentum_schedule():
    assert cosine_momentum(0, 100, 0.996, 1.0) == pytest.approx(0.996)
    assert cosine_momentum(50, 100, 0.996, 1.0) == pytest.approx(0.998)
    assert cosine_momentum(100, 100, 0.996, 1.0) == pytest.approx(1.0)
    m = cosine_momentum(25, 100, 0.99, 1.0)
    assert m == pytest.approx(1 - 0.01 * (math.cos(math.pi / 4) + 1) / 2)


def test_queue_is_fifo_with_wraparound():
    q = MemoryQueue(size=5, dim=2)
    batches = [torch.full((2, 2), float(i)) for i in range(1, 5)]  # 8 keys into 5 rows
    for b in batches:
        q.enqueue(b)
    # rows written in order 1 1 2 2 3 | 3 4 4 (wrapping onto rows 0..2): the oldest went first
    assert q.items()[:, 0].tolist() == [3.0, 4.0, 4.0, 2.0, 3.0]
    assert int(q.ptr) == 8 % 5
    q.enqueue(torch.arange(14.0).view(7, 2))  # more keys than rows: keep the newest 5
    assert sorted(q.items()[:, 0].tolist()) == [4.0, 6.0, 8.0, 10.0, 12.0]


def test_queue_is_initialized_with_unit_vectors_and_in_state_dict():
    q = MemoryQueue(16, 8)
    assert torch.allclose(q.items().norm(dim=1), torch.ones(16))
    assert set(q.state_dict()) == {"queue", "ptr"}


def test_support_set_picks_the_true_nearest_neighbour():
    torch.manual_seed(0)
    s = SupportSet(size=50, dim=8)
    bank = torch.randn(50, 8)
    s.enqueue(bank)
    z = torch.randn(7, 8, requires_grad=True)
    nn_z = s.nearest(z)
    cos = nn.functional.normalize(z, dim=1) @ nn.functional.normalize(bank, dim=1).T
    expected = nn.functional.normalize(bank[cos.argmax(1)], dim=1)
    assert torch.allclose(nn_z, expected)
    assert not nn_z.requires_grad
    # a stored vector is its own nearest neighbour
    assert torch.allclose(s.nearest(bank[:3] * 2.0), nn.functional.normalize(bank[:3], dim=1))
