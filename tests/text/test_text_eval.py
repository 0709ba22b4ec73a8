import numpy as np
import torch
from scipy.stats import spearmanr

from selfsup.eval.linear import linear_probe
from selfsup.eval.sts import average_ranks, fit_whitening, spearman, sts_spearman
from selfsup.eval.tfidf import TfidfBaseline


def test_spearman_matches_scipy_with_ties():
    x = torch.tensor([0.1, 0.4, 0.4, 0.9, -0.2, 0.4, 0.7, 0.1])
    y = torch.tensor([1.0, 2.5, 2.0, 5.0, 0.0, 2.5, 4.0, 1.5])
    assert abs(spearman(x, y) - spearmanr(x.numpy(), y.numpy()).statistic) < 1e-12
    assert average_ranks(x).tolist() == [2.5, 5.0, 5.0, 8.0, 1.0, 5.0, 7.0, 2.5]
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, generator=g), torch.randn(200, generator=g).round()
    assert abs(spearman(a, b) - spearmanr(a.numpy(), b.numpy()).statistic) < 1e-12


def test_sts_spearman_of_cosine():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 8, generator=g), torch.randn(50, 8, generator=g)
    scores = torch.rand(50, generator=g)
    cos = torch.nn.functional.cosine_similarity(a, b).numpy()
    expected = spearmanr(cos, scores.numpy()).statistic
    assert abs(sts_spearman(a, b, scores) - expected) < 1e-6


def test_whitening_gives_identity_covariance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=g) @ torch.randn(6, 6, generator=g) + 3.0
    w = fit_whitening(x)
    y = w(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(6, dtype=torch.float64), atol=1e-8, rtol=0)
    torch.testing.assert_close(torch.cov(y.T), torch.eye(6, dtype=torch.float64), atol=1e-6, rtol=0)
    assert fit_whitening(x, dim=3)(x).shape == (500, 3)


def test_tfidf_ranks_overlapping_pairs_higher():
    tfidf = TfidfBaseline().fit(["a man plays guitar", "a woman cuts onions", "dogs run"] * 3)
    rho = tfidf.sts_spearman(
        ["a man plays guitar", "a man plays guitar", "dogs run"],
        ["a man plays a guitar", "a man cuts onions", "a woman cuts onions"],
        torch.tensor([5.0, 1.0, 0.0]),
    )
    assert abs(rho - 1.0) < 1e-9


def test_linear_probe_dense_and_sparse():
    g = np.random.default_rng(0)
    y = g.integers(0, 3, 300)
    x = g.normal(size=(300, 5)) + 3 * np.eye(3, 5)[y]
    assert linear_probe(x[:200], y[:200], x[200:], y[200:]) > 0.9
    texts = [["good fine great", "bad awful poor", "blue green red"][c] for c in y]
    tfidf = TfidfBaseline().fit(texts)
    acc = linear_probe(tfidf.transform(texts[:200]), y[:200], tfidf.transform(texts[200:]), y[200:])
    assert acc == 1.0
