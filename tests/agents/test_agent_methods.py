"""#18: the Nature CNN (AtariARI's encoder) and the agent objectives CURL, ATC and ST-DIM as
parts any RL loop can call: each method's loss against a naive per-sample loop, the key /
target encoders out of the gradient and moved by EMA only, ST-DIM's need for a local map."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.encoders import create_encoder
from selfsup.encoders.atari import AGENT_ENCODERS
from selfsup.methods import ATC, CURL, STDIM, create_method


def _frames(n: int, c: int = 1, size: int = 84, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("kwargs", "size", "local"),
    [({}, (84, 84), (32, 7, 7)),
     ({"full_resolution": True, "frame_size": (210, 160)}, (210, 160), (128, 11, 8))],
)  # fmt: skip
def test_nature_cnn_layouts_match_the_benchmark(kwargs, size, local) -> None:
    enc = create_encoder("nature_cnn", in_chans=4, **kwargs)
    x = torch.rand(2, 4, *size)
    fmap = enc.forward_features(x)
    assert fmap.shape == (2, *local) and enc.local_channels == local[0]
    out = enc(x)
    assert out.shape == (2, 256) and torch.equal(out, enc.forward_head(fmap))
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in enc.parameters())
    assert AGENT_ENCODERS == ("nature_cnn",)


def test_nature_cnn_refuses_frames_too_small() -> None:
    with pytest.raises(ValueError, match="too small for the Nature CNN"):
        create_encoder("nature_cnn", frame_size=(30, 30))


def _naive_bilinear_nll(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Mean over i of -log softmax_j(a_i W b_j)[i], one sample at a time."""
    total = 0.0
    for i in range(len(a)):
        scores = [float(a[i] @ w @ b[j]) for j in range(len(b))]
        top = max(scores)
        total += -(scores[i] - top - math.log(sum(math.exp(s - top) for s in scores)))
    return torch.tensor(total / len(a), dtype=torch.float64)


def test_curl_is_bilinear_infonce_of_queries_against_momentum_keys() -> None:
    torch.manual_seed(0)
    method = create_method("curl", create_encoder("nature_cnn"), gather=False).double()
    assert isinstance(method, CURL)
    q_obs, k_obs = _frames(6).double(), _frames(6, seed=1).double()
    out = method.training_step([q_obs, k_obs])
    q = method.projector(method.backbone(q_obs))
    k = method.key_projector(method.key_backbone(k_obs))
    want = _naive_bilinear_nll(q.detach(), k.detach(), method.loss.weight.detach())
    torch.testing.assert_close(out.loss.detach(), want.double(), rtol=1e-9, atol=1e-9)
    out.loss.backward()
    assert method.loss.weight.grad is not None and method.backbone.head[-1].weight.grad is not None
    assert all(p.grad is None for p in method.key_backbone.parameters())
    w = method.loss.weight.detach()
    assert 0.0 <= float(w.min()) and float(w.max()) < 1.0


def test_curl_key_encoder_moves_only_by_ema() -> None:
    method = create_method("curl", create_encoder("nature_cnn"), momentum=0.9, gather=False)
    key = [p.clone() for p in method.key_backbone.parameters()]
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(1.0)
    method.after_step(0, 10)
    for k0, k1, q in zip(key, method.key_backbone.parameters(), method.backbone.parameters(),
                         strict=True):  # fmt: skip
        torch.testing.assert_close(k1, 0.9 * k0 + 0.1 * q)


def test_atc_anchors_through_the_residual_predictor_positives_from_the_target() -> None:
    torch.manual_seed(0)
    method = create_method("atc", create_encoder("nature_cnn"), gather=False).double()
    assert isinstance(method, ATC)
    now, later = _frames(5).double(), _frames(5, seed=2).double()
    out = method.training_step([now, later])
    z = method.backbone(now)
    anchors = z + method.predictor.mlp(z)
    positives = method.target_backbone(later)
    want = _naive_bilinear_nll(anchors.detach(), positives.detach(), method.loss.weight.detach())
    torch.testing.assert_close(out.loss.detach(), want.double(), rtol=1e-9, atol=1e-9)
    out.loss.backward()
    assert all(p.grad is None for p in method.target_backbone.parameters())
    assert method.predictor.mlp[0].weight.grad is not None


def test_stdim_sums_global_local_and_local_local_over_consecutive_frames() -> None:
    torch.manual_seed(0)
    method = create_method("stdim", create_encoder("nature_cnn"), gather=False).double()
    assert isinstance(method, STDIM)
    now, nxt = _frames(4).double(), _frames(4, seed=3).double()
    out = method.training_step([now, nxt])
    enc, loss = method.backbone, method.loss
    f_now = enc.forward_features(now).permute(0, 2, 3, 1).detach()  # (N, h, w, C)
    f_next = enc.forward_features(nxt).permute(0, 2, 3, 1).detach()
    g_next = enc(nxt).detach()
    n, h, w, _ = f_now.shape
    total = 0.0
    for anchors in (loss.global_local(g_next)[:, None, None].expand(-1, h, w, -1),
                    loss.local_local(f_next)):  # fmt: skip
        term = 0.0
        for y in range(h):
            for x in range(w):
                logits = anchors[:, y, x].detach() @ f_now[:, y, x].T  # (N, N)
                term += float(torch.nn.functional.cross_entropy(logits, torch.arange(n)))
        total += term / (h * w)
    torch.testing.assert_close(out.loss.detach().item(), total, rtol=1e-9, atol=1e-9)
    assert set(out.logs) == {"global_local", "local_local"}


def test_stdim_needs_an_encoder_with_a_local_map() -> None:
    with pytest.raises(ValueError, match="use nature_cnn"):
        create_method("stdim", create_encoder("convnet_small", width=4))
