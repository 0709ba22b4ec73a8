"""TS2Vec and CPC on a stand-in per-timestep encoder: registry, one training step, CPC against a
naive loop, NaN-padded series, clear errors. The stand-in has only the series encoders'
interface (`num_features`, `forward_features(x) -> (N, T, D)`, `forward(x) -> (N, D)`)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfsup.losses import hierarchical_contrastive_loss
from selfsup.methods import CPC, TS2Vec, create_method, paper_defaults

C, D = 2, 6


class StandIn(nn.Module):
    """(N, C, T) -> (N, T, D) per timestep through a Conv1d; NaN steps read as 0 (what the
    series encoders do, as TS2Vec's TSEncoder); forward max-pools over time."""

    def __init__(self, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.num_features = D
        self.conv = nn.Conv1d(C, D, kernel, stride=stride, padding=kernel // 2)
        self.last: torch.Tensor | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x.nan_to_num(0.0)).transpose(1, 2)
        if out.requires_grad:  # kept for the tests that look at d loss / d z
            out.retain_grad()
        self.last = out
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).amax(1)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: a second OpenMP thread only adds scheduling latency on a shared machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _series(n: int, t: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, C, t, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _step_changes_weights(method: nn.Module, views: list[torch.Tensor]) -> torch.Tensor:
    before = {k: v.detach().clone() for k, v in method.named_parameters()}
    opt = torch.optim.AdamW(method.parameters(), lr=1e-2)
    loss = method.training_step(views).loss
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    opt.step()
    after = dict(method.named_parameters())
    assert all(not torch.equal(before[k], after[k]) for k in before), "a weight did not move"
    return loss


# ------------------------------------------------------------------ TS2Vec


def _ts2vec_views(n: int = 4, l1: int = 9, l2: int = 7, o: int = 5, seed: int = 0):
    """Crops of one series batch whose last o steps of x1 are the first o steps of x2."""
    x = _series(n, l1 + l2 - o, seed)
    return [x[..., :l1], x[..., l1 - o :], torch.tensor(o)]


def test_ts2vec_builds_from_the_registry_and_trains():
    torch.manual_seed(0)
    method = create_method("ts2vec", StandIn()).double()
    assert isinstance(method, TS2Vec) and paper_defaults("ts2vec") == {
        "alpha": 0.5,
        "temporal_unit": 0,
        "average": True,
    }
    views = _ts2vec_views()
    loss = _step_changes_weights(method, views)
    # The loss is the hierarchical loss on the overlap: x1's last 5 steps, x2's first 5.
    with torch.no_grad():
        z1 = method.backbone.forward_features(views[0])[:, -5:]
        z2 = method.backbone.forward_features(views[1])[:, :5]
    method.zero_grad()
    again = method.training_step(views)
    torch.testing.assert_close(again.loss, hierarchical_contrastive_loss(z1, z2))
    assert loss.item() != again.loss.item()  # the step moved the encoder
    assert [z.shape for z in again.z] == [(4, D), (4, D)]
    assert method.encode(views[0]).shape == (4, D)


def test_ts2vec_leaves_the_average_of_its_iterates_in_the_backbone():
    """As the official code's AveragedModel: after the last step the backbone holds the mean
    of the weights after each step; before it, the live weights train on."""
    torch.manual_seed(0)
    method = create_method("ts2vec", StandIn()).double()
    opt = torch.optim.SGD(method.parameters(), lr=0.1)
    seen = []
    for step in range(3):
        opt.zero_grad()
        method.training_step(_ts2vec_views()).loss.backward()
        opt.step()
        seen.append([p.detach().clone() for p in method.backbone.parameters()])
        method.after_step(step, 3)
    for i, p in enumerate(method.backbone.parameters()):
        torch.testing.assert_close(p, sum(s[i] for s in seen) / 3)
    assert sum(1 for _ in method.parameters()) == sum(1 for _ in method.backbone.parameters())


def test_ts2vec_identical_overlap_scores_better_than_shifted():
    """The same timestamps in both crops is the positive: a 1-step misalignment costs loss."""
    torch.manual_seed(0)
    method = TS2Vec(StandIn(kernel=1)).double()  # kernel 1: z_t depends on x_t only
    x1, x2, o = _ts2vec_views(l1=8, l2=8, o=8)
    assert torch.equal(x1, x2)
    aligned = method.training_step([x1, x2, o]).loss
    shifted = method.training_step([x1, x2.roll(1, -1), o]).loss
    assert aligned < shifted


@pytest.mark.parametrize("o", [0, 8, -1])
def test_ts2vec_overlap_that_does_not_fit_is_a_clear_error(o):
    x1, x2, _ = _ts2vec_views(l1=9, l2=7, o=5)
    with pytest.raises(ValueError, match="overlap .* does not fit the crops"):
        TS2Vec(StandIn()).double().training_step([x1, x2, torch.tensor(o)])


def test_ts2vec_refuses_bad_views_and_downsampling_encoders():
    x1, x2, o = _ts2vec_views()
    method = TS2Vec(StandIn()).double()
    with pytest.raises(ValueError, match="3 views"):
        method.training_step([x1, x2])
    with pytest.raises(ValueError, match="same N and C"):
        method.training_step([x1, x2[:3], o])
    with pytest.raises(ValueError, match="one representation per input timestep"):
        TS2Vec(StandIn(stride=2)).double().training_step([x1, x2, o])


# ------------------------------------------------------------------ CPC


@torch.no_grad()
def _naive_cpc(method: CPC, x: torch.Tensor) -> float:
    """CPC's loss with Python loops, each series encoded alone on its valid steps only."""
    lengths = [int((~x[i].isnan().all(0)).sum()) for i in range(len(x))]
    z, c = [], []
    for i, n in enumerate(lengths):
        zi = method.backbone.forward_features(x[i : i + 1, :, :n])  # (1, n, D)
        z.append(zi[0])
        c.append(method.context(zi)[0][0])  # (n, H)
    w = method.predictor.weight.view(method.prediction_steps, D, -1)  # (K, D, H)
    per_k = []
    for k in range(1, min(method.prediction_steps, x.shape[-1] - 1) + 1):
        terms = []
        for i, n in enumerate(lengths):
            for s in range(n - k):
                pred = w[k - 1] @ c[i][s]  # (D,)
                js = [j for j, m in enumerate(lengths) if s + k < m]
                scores = [float(z[j][s + k] @ pred) for j in js]
                top = max(scores)
                lse = top + math.log(sum(math.exp(v - top) for v in scores))
                terms.append(lse - scores[js.index(i)])
        if terms:
            per_k.append(sum(terms) / len(terms))
    return sum(per_k) / len(per_k)


def _padded_batch() -> torch.Tensor:
    x = _series(4, 9, seed=3)
    x[1, :, 6:] = float("nan")  # series 1 ends after 6 steps, series 3 after 3
    x[3, :, 3:] = float("nan")
    return x


def test_cpc_builds_from_the_registry_and_trains():
    torch.manual_seed(0)
    assert paper_defaults("cpc") == {"context_dim": 256, "prediction_steps": 12}
    method = create_method("cpc", StandIn(), context_dim=8, prediction_steps=3).double()
    assert isinstance(method, CPC) and method.predictor.weight.shape == (3 * D, 8)
    x = _series(4, 10)
    _step_changes_weights(method, [x])
    assert method.encode(x).shape == (4, D)


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("steps", [2, 12])  # 12 > T - 1: clamped to the 8 steps a batch holds
def test_cpc_matches_a_naive_loop(padded, steps):
    torch.manual_seed(1)
    method = CPC(StandIn(), context_dim=5, prediction_steps=steps).double()
    x = _padded_batch() if padded else _series(4, 9, seed=3)
    got = method.training_step([x]).loss
    torch.testing.assert_close(got.item(), _naive_cpc(method, x), rtol=1e-10, atol=1e-10)


def test_cpc_ignores_padded_steps():
    """A NaN tail gives a finite loss and no gradient at the padded latents."""
    torch.manual_seed(2)
    method = CPC(StandIn(), context_dim=5, prediction_steps=4).double()
    x = _padded_batch()
    loss = method.training_step([x]).loss
    assert torch.isfinite(loss)
    loss.backward()
    z_grad = method.backbone.last.grad  # (N, T, D): d loss / d latents
    assert torch.equal(z_grad[1, 6:], torch.zeros_like(z_grad[1, 6:]))
    assert torch.equal(z_grad[3, 3:], torch.zeros_like(z_grad[3, 3:]))
    assert z_grad[1, :6].abs().sum() > 0 and z_grad[3, :3].abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in method.parameters())
    # Whatever the encoder puts at padded steps (here: huge values) changes nothing.
    method.zero_grad()

    class Loud(StandIn):
        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            z = super().forward_features(x)
            return torch.where(x.isnan().all(1)[..., None], 1e6, z)

    loud = CPC(Loud(), context_dim=5, prediction_steps=4).double()
    loud.load_state_dict(method.state_dict())
    torch.testing.assert_close(loud.training_step([x]).loss, loss, rtol=1e-12, atol=1e-12)


def test_cpc_clear_errors():
    method = CPC(StandIn(), context_dim=4, prediction_steps=2).double()
    with pytest.raises(ValueError, match="one view"):
        method.training_step([_series(2, 5), _series(2, 5)])
    with pytest.raises(ValueError, match=">= 2 steps"):
        method.training_step([_series(2, 1)])
    with pytest.raises(ValueError, match="one latent per input timestep"):
        CPC(StandIn(stride=2), context_dim=4).double().training_step([_series(2, 6)])
    with pytest.raises(ValueError, match="prediction_steps"):
        CPC(StandIn(), prediction_steps=0)
