import math
import warnings

import pytest
import torch

from selfsup.eval.health import (
    CollapseError,
    HealthCallback,
    alignment,
    collapse_reason,
    effective_rank,
    health_metrics,
    uniformity,
)
from selfsup.methods.base import StepOutput


def test_effective_rank_by_hand():
    # singular values (3, 1): p = (3/4, 1/4), H = -(3/4 ln 3/4 + 1/4 ln 1/4), rank = exp(H)
    z = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert effective_rank(z) == pytest.approx(math.exp(h), rel=1e-5)
    assert effective_rank(torch.eye(7)) == pytest.approx(7.0, rel=1e-4)  # flat spectrum: D
    line = torch.randn(50, 1) * torch.randn(1, 16)  # rank one: all rows on one line
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-3)


def test_uniformity_and_alignment_by_hand():
    z = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # normalized: e1, e2, -e1
    # squared distances of the 3 distinct pairs: |e1-e2|^2 = 2, |e1+e1|^2 = 4, |e2+e1|^2 = 2
    want = math.log((math.exp(-2 * 2) + math.exp(-2 * 4) + math.exp(-2 * 2)) / 3)
    assert uniformity(z, t=2) == pytest.approx(want, rel=1e-5)
    a = torch.tensor([[1.0, 0.0], [0.0, 5.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 2.0]])
    assert alignment(a, b) == pytest.approx((2.0 + 0.0) / 2)  # |e1 - e2|^2 = 2, then 0


def test_health_of_uniform_vs_collapsed_embeddings():
    g = torch.Generator().manual_seed(0)
    d = 64
    spread = torch.randn(512, d, generator=g)
    m = health_metrics(spread, spread + 0.01 * torch.randn(512, d, generator=g))
    assert m["emb_std"] == pytest.approx(1 / math.sqrt(d), rel=0.05)
    assert m["emb_std_ratio"] == pytest.approx(1.0, rel=0.05)
    assert m["eff_rank"] > 0.8 * d
    assert m["pos_cos"] > 0.99 and abs(m["neg_cos"]) < 0.02
    assert m["alignment"] < 0.01
    assert m["uniformity"] < -3.5  # -4 is the limit for uniform points in high dimension
    assert collapse_reason(m) is None

    point = torch.randn(1, d, generator=g)
    collapsed = point + 1e-4 * torch.randn(256, d, generator=g)
    c = health_metrics(collapsed, collapsed.flip(0))
    assert c["emb_std_ratio"] < 0.01 and c["eff_rank"] < 1.1
    assert c["pos_cos"] > 0.999 and c["neg_cos"] > 0.999 and c["uniformity"] > -1e-3
    assert "emb_std" in collapse_reason(c) and "effective rank" in collapse_reason(c)


def _out(z: torch.Tensor) -> StepOutput:
    return StepOutput(loss=torch.tensor(0.0), z=(z, z + 1e-3))


def test_callback_logs_and_warns_once_on_collapse(capsys):
    cb = HealthCallback()
    metrics = {}
    cb.on_log(10, None, _out(torch.randn(32, 8)), metrics)
    assert {"emb_std", "eff_rank", "alignment", "uniformity", "pos_cos", "neg_cos"} <= set(metrics)
    collapsed = torch.ones(32, 8)
    with pytest.warns(RuntimeWarning, match="collapsed"):
        cb.on_log(20, None, _out(collapsed), {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second collapse step does not warn again
        cb.on_log(30, None, _out(collapsed), {})
    assert capsys.readouterr().out.count("WARNING") == 1
    assert cb.warned and "step 20" in cb.message


def test_callback_stop_and_grace_period_and_no_pairs():
    collapsed = _out(torch.ones(16, 4))
    quiet = HealthCallback(stop_on_collapse=True, after_step=100)
    quiet.on_log(50, None, collapsed, {})  # before after_step: neither stop nor warn
    with pytest.raises(CollapseError, match="stop_on_collapse"):
        quiet.on_log(100, None, collapsed, {})
    metrics = {}
    HealthCallback().on_log(1, None, StepOutput(loss=torch.tensor(0.0)), metrics)
    assert metrics == {}  # a method without pair embeddings is skipped


def test_callback_flags_a_collapse_to_the_zero_vector():
    g = torch.Generator().manual_seed(0)
    cb = HealthCallback()
    cb.on_log(10, None, _out(torch.randn(64, 16, generator=g)), {})  # first norm ~4
    metrics = {}
    with pytest.warns(RuntimeWarning, match="zero vector"):  # 1000x smaller, still spread out
        cb.on_log(20, None, _out(0.004 * torch.randn(64, 16, generator=g)), metrics)
    assert metrics["emb_std_ratio"] > 0.5 and metrics["emb_norm"] < 0.04


def _stop_on_rank(rank: int) -> torch.Tensor:
    """Rank 0's embeddings collapsed, rank 1's healthy: 1 if this rank stopped, else 0."""
    torch.manual_seed(rank)
    z = torch.ones(16, 8) if rank == 0 else torch.randn(16, 8)
    try:
        HealthCallback(stop_on_collapse=True).on_log(10, None, _out(z), {})
    except CollapseError as e:
        return torch.tensor(1 if rank == 0 or "another process" in str(e) else 2)
    return torch.tensor(0)


def test_stop_on_collapse_is_decided_by_all_ranks_together():
    """#19.5: decided per rank, rank 0 stopped while rank 1 trained on into its next
    all-reduce and waited forever; now every rank raises on the same log step."""
    from tests.two_processes import run_on_ranks

    assert [int(r) for r in run_on_ranks(_stop_on_rank)] == [1, 1]
