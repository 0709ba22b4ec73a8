"""Recall@K and MAP@R: a brute-force loop, hand-computed examples, pytorch-metric-learning."""

import pytest
import torch

from selfsup.eval import retrieval
from selfsup.eval.retrieval import nearest_neighbors, retrieval_metrics


def _brute_force(q, qy, g, gy, ks, same_set):
    """One query at a time: sort the whole gallery by cosine, drop self, count by hand."""
    qn, gn = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(g, dim=1)
    recalls, aps = {k: [] for k in ks}, []
    for i in range(len(q)):
        sims = [(float(qn[i] @ gn[j]), j) for j in range(len(g)) if not (same_set and j == i)]
        order = [j for _, j in sorted(sims, key=lambda t: -t[0])]
        rel = [int(gy[j] == qy[i]) for j in order]
        r = sum(rel)
        if r == 0:
            continue
        for k in ks:
            recalls[k].append(float(any(rel[:k])))
        hits, ap = 0, 0.0
        for rank, is_rel in enumerate(rel[:r], start=1):
            hits += is_rel
            ap += is_rel * hits / rank
        aps.append(ap / r)
    out = {f"recall@{k}": sum(v) / len(v) for k, v in recalls.items()}
    out["map@r"] = sum(aps) / len(aps)
    return out


def _data(n, d, classes, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(
        classes, (n,), generator=g
    )


@pytest.mark.parametrize("n,d,classes", [(30, 4, 3), (57, 8, 7), (40, 16, 40)])
def test_same_set_matches_brute_force(n, d, classes):
    x, y = _data(n, d, classes, seed=n)
    ours = retrieval_metrics(x, y, chunk_size=7)  # small chunks exercise the offsets
    theirs = _brute_force(x, y, x, y, (1, 5, 10), same_set=True)
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert ours[k] == pytest.approx(theirs[k], abs=1e-12)


def test_query_vs_gallery_matches_brute_force():
    q, qy = _data(25, 8, 5, seed=1)
    g, gy = _data(60, 8, 6, seed=2)
    qy[0] = 9  # a query whose label is absent from the gallery: left out of the means
    ours = retrieval_metrics(q, qy, g, gy, ks=(1, 3), chunk_size=10)
    theirs = _brute_force(q, qy, g, gy, (1, 3), same_set=False)
    for k in ours:
        assert ours[k] == pytest.approx(theirs[k], abs=1e-12)


def test_map_at_r_by_hand():
    # Query label 0; gallery labels along the x-axis at growing angles so the ranking is
    # fixed: nearest first = rows 0, 1, 2, 3, 4. Labels [0, 1, 0, 0, 1] -> R = 3,
    # relevant at ranks 1 and 3 within the first R: AP@R = (1/1 + 2/3) / 3 = 5/9.
    angles = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    g = torch.stack([angles.cos(), angles.sin()], dim=1)
    gy = torch.tensor([0, 1, 0, 0, 1])
    q, qy = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    out = retrieval_metrics(q, qy, g, gy, ks=(1, 2))
    assert out["map@r"] == pytest.approx(5 / 9)
    assert out["recall@1"] == 1.0
    # Label 1 query: R = 2, relevant at ranks 2 and 5 -> only rank 2 counts: (1/2) / 2.
    out = retrieval_metrics(q, torch.tensor([1]), g, gy, ks=(1, 2))
    assert out["map@r"] == pytest.approx(1 / 4)
    assert (out["recall@1"], out["recall@2"]) == (0.0, 1.0)


def test_perfect_and_self_exclusion():
    # Two tight clusters: every neighbour within R is relevant -> MAP@R 1. Without excluding
    # self, each query would find itself first and R would be off by one.
    x = torch.cat([torch.randn(5, 3) * 0.01 + 5, torch.randn(5, 3) * 0.01 - 5])
    y = torch.tensor([0] * 5 + [1] * 5)
    out = retrieval_metrics(x, y, metric="euclidean")
    assert out == {"recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0, "map@r": 1.0}
    idx = nearest_neighbors(x, x, 9, exclude_self=True)
    assert not (idx == torch.arange(10)[:, None]).any()


def test_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="no query has"):
        retrieval_metrics(x, torch.arange(4))  # every label unique: nothing to retrieve
    with pytest.raises(ValueError, match="metric"):
        nearest_neighbors(x, x, 2, metric="manhattan")
    if retrieval.faiss is None:
        with pytest.raises(ImportError, match="faiss"):
            nearest_neighbors(x, x, 2, use_faiss=True)


@pytest.mark.skipif(retrieval.faiss is None, reason="faiss is optional and not installed")
def test_faiss_matches_torch():
    x, y = _data(50, 8, 5, seed=3)
    assert retrieval_metrics(x.float(), y, use_faiss=True) == pytest.approx(
        retrieval_metrics(x.float(), y)
    )


def test_equals_pytorch_metric_learning():
    """PML's precision_at_1 = our recall@1; mean_average_precision_at_r = our map@r.

    Conventions coincide here: PML also drops queries without a same-label reference
    ("lone" queries) and, with ref_includes_query, drops each query's nearest neighbour (it
    assumes that is the query itself; we exclude the query by index: identical unless
    duplicate embeddings tie). PML takes neighbours from faiss by default; it is given an
    exact torch kNN (CustomKNN with cosine similarity) as faiss is optional.
    """
    ac = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    inference = pytest.importorskip("pytorch_metric_learning.utils.inference")
    distances = pytest.importorskip("pytorch_metric_learning.distances")
    calc = ac.AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r"),
        knn_func=inference.CustomKNN(distances.CosineSimilarity()),
    )
    x, y = _data(80, 8, 6, seed=4)
    x = x.float()
    theirs = calc.get_accuracy(x, y, x, y, ref_includes_query=True)
    ours = retrieval_metrics(x, y)
    assert ours["recall@1"] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours["map@r"] == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)
    q, qy = _data(30, 8, 6, seed=5)
    theirs = calc.get_accuracy(q.float(), qy, x, y)
    ours = retrieval_metrics(q.float(), qy, x, y)
    assert ours["recall@1"] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours["map@r"] == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)


def test_evaluate_retrieval_on_an_encoder():
    from selfsup.data import InMemoryDataset
    from selfsup.eval.retrieval import evaluate_retrieval

    y = torch.arange(4).repeat_interleave(5)
    images = (y[:, None, None, None] * 60).expand(20, 3, 4, 4).to(torch.uint8).clone()
    data = InMemoryDataset(images, y)

    def encoder(x):  # features = mean colour + a class-independent direction
        return torch.stack([x.float().mean((1, 2, 3)), torch.ones(len(x))], dim=1)

    out = evaluate_retrieval(encoder, data, precision="fp32")
    assert out["recall@1"] == 1.0 and out["map@r"] == 1.0
    with pytest.raises(ValueError, match="needs labels"):
        evaluate_retrieval(encoder, InMemoryDataset(images))
