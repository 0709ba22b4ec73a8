import torch
from torch import nn

from selfsup.data.memory import InMemoryDataset
from selfsup.eval.knn_callback import KNNCallback, small_subset
from selfsup.eval.protocol import EvalProtocol
from selfsup.methods.base import StepOutput


class _Flat(nn.Module):
    def forward(self, x):
        return x.flatten(1)


def _blobs(n: int, seed: int) -> InMemoryDataset:
    """Two classes of 2x2 one-channel 'images' that differ in which half is bright."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand(n, 1, 2, 2, generator=g) * 0.2
    x[y == 0, :, 0] += 1
    x[y == 1, :, 1] += 1
    return InMemoryDataset(x, y, ["a", "b"])


def test_knn_callback_runs_when_a_multiple_of_every_was_passed():
    method = nn.Module()
    method.backbone = _Flat()
    cb = KNNCallback(
        _blobs(40, 0), _blobs(20, 1), None, every=25, protocol=EvalProtocol(5), total_steps=90
    )
    logged = {}
    for step in range(10, 91, 10):  # log every 10, evaluate every 25 steps
        metrics = {}
        cb.on_log(step, method, StepOutput(loss=torch.tensor(0.0)), metrics)
        if "knn_top1" in metrics:
            logged[step] = metrics["knn_top1"]
    assert sorted(logged) == [30, 50, 80, 90]  # first log step at/after 25, 50, 75; the last
    assert all(v == 1.0 for v in logged.values())


def test_small_subset_is_balanced():
    sub = small_subset(_blobs(100, 0), 20)
    assert len(sub) == 20 and torch.bincount(sub.targets).tolist() == [10, 10]
    data = _blobs(10, 0)
    assert small_subset(data, 20) is data
