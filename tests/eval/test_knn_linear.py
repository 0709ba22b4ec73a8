import math

import torch

from selfsup.eval.knn import knn_accuracy, knn_predict
from selfsup.eval.linear import linear_probe


def _knn_loop(train, labels, test, c, k, t):
    """Brute force: for each test row, sort all cosine similarities, vote exp(s/t)."""
    out = torch.zeros(len(test), c, dtype=torch.float64)
    for i, q in enumerate(test):
        sims = [
            (float(torch.nn.functional.cosine_similarity(q, x, dim=0)), int(y))
            for x, y in zip(train, labels, strict=True)
        ]
        for s, y in sorted(sims, key=lambda p: -p[0])[:k]:
            out[i, y] += math.exp(s / t)
    return out


def test_knn_matches_brute_force_loop():
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(60, 5, generator=g), torch.randn(17, 5, generator=g)
    labels = torch.randint(0, 4, (60,), generator=g)
    fast = knn_predict(train, labels, test, 4, k=7, temperature=0.1, chunk_size=5)
    slow = _knn_loop(train, labels, test, 4, 7, 0.1)
    assert torch.allclose(fast.double(), slow, rtol=1e-4)


def test_knn_accuracy_on_clusters_and_k_larger_than_bank():
    g = torch.Generator().manual_seed(1)
    centers = torch.randn(3, 8, generator=g) * 5
    y = torch.arange(3).repeat(20)
    x = centers[y] + torch.randn(60, 8, generator=g) * 0.1
    acc = knn_accuracy(x[:45], y[:45], x[45:], y[45:], k=200)
    assert acc["top1"] == 1.0 and acc["top5"] == 1.0
    shuffled = knn_accuracy(x[:45], y[:45][torch.randperm(45, generator=g)], x[45:], y[45:], k=5)
    assert shuffled["top1"] < 0.8  # labels carry the signal, not the code


def test_linear_probe_separates_a_linearly_separable_set():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2400, 10, generator=g)
    w = torch.randn(10, 4, generator=g)
    y = (x @ w).argmax(1)  # linearly separable by construction; kNN would struggle at the edges
    acc = linear_probe(x[:2000], y[:2000], x[2000:], y[2000:])
    assert acc >= 0.95
    shuffled = y[:2000][torch.randperm(2000, generator=g)]
    random_labels = linear_probe(x[:2000], shuffled, x[2000:], y[2000:])
    assert random_labels < 0.5
