"""COLA (Saeed et al. 2021): built from the registry around the audio encoder, one step trains
every part (encoder, head, W), and 2 gloo processes on half batches equal 1 on the full batch."""

from __future__ import annotations

import torch
from torch import nn

from selfsup.encoders import create_encoder
from selfsup.losses import BilinearContrastiveLoss, bilinear_contrastive_loss
from selfsup.methods import COLA, create_method, method_spec, paper_defaults
from tests.two_processes import WORLD, run_on_ranks

N, MELS, FRAMES = 8, 16, 24  # full batch; each rank holds N / WORLD


def _logmels(n: int, seed: int, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Two "segments" per clip: (n, 1, MELS, FRAMES) each, the second a noisy copy."""
    g = torch.Generator().manual_seed(seed)
    anchors = torch.randn(n, 1, MELS, FRAMES, generator=g, dtype=dtype)
    return [anchors, anchors + 0.1 * torch.randn(anchors.shape, generator=g, dtype=dtype)]


def _cola(**overrides) -> COLA:
    torch.manual_seed(0)
    encoder = create_encoder("audio_ntt", n_mels=MELS, d=32)
    return create_method("cola", encoder, **overrides)  # type: ignore[return-value]


def test_registered_with_the_papers_head_and_bilinear_loss() -> None:
    assert paper_defaults("cola") == {"proj_dim": 512, "gather": True}
    assert method_spec("cola").views == "cola_views"
    method = _cola()
    assert isinstance(method, COLA) and isinstance(method.loss, BilinearContrastiveLoss)
    linear, norm, act = method.projector
    assert (linear.in_features, linear.out_features) == (32, 512)
    assert isinstance(norm, nn.LayerNorm) and norm.eps == 1e-3 and isinstance(act, nn.Tanh)
    assert method.loss.weight.shape == (512, 512) and method.loss.gather


def test_one_step_moves_every_part_and_the_loss_is_finite() -> None:
    method = _cola(proj_dim=16)
    before = {k: p.detach().clone() for k, p in method.named_parameters()}
    out = method.training_step(_logmels(6, seed=1))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert out.z is not None and out.z[0].shape == (6, 16)
    assert out.z[0].abs().max() <= 1.0  # tanh
    params = dict(method.named_parameters())
    grads = torch.autograd.grad(out.loss, list(params.values()))
    with torch.no_grad():  # one plain SGD step (torch.optim's first use costs seconds)
        for p, g in zip(params.values(), grads, strict=True):
            p -= 0.1 * g
    moved = {k for k, p in params.items() if not torch.equal(p, before[k])}
    assert moved == set(params), f"not updated: {set(params) - moved}"
    assert {"loss.weight", "projector.0.weight", "backbone.features.0.weight"} <= moved


def test_loss_is_the_bilinear_loss_of_the_projected_segments() -> None:
    method = _cola(proj_dim=16).double().eval()
    x_a, x_b = _logmels(5, seed=2, dtype=torch.float64)
    with torch.no_grad():
        z_a, z_b = method.projector(method.backbone(x_a)), method.projector(method.backbone(x_b))
        got = method.training_step([x_a, x_b]).loss
    want = bilinear_contrastive_loss(z_a, z_b, method.loss.weight)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- 2 processes


def _deterministic(method: nn.Module) -> nn.Module:
    """float64, train mode, but BN on running statistics and dropout off: the same function of
    each sample in 1 and in 2 processes (train-mode BN normalizes per process, by design)."""
    method = method.double().train()
    for m in method.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.Dropout):
            m.eval()
    return method


def _loss_and_grads(rank: int | None) -> dict:
    method = _deterministic(_cola(proj_dim=16))
    views = _logmels(N, seed=3, dtype=torch.float64)
    if rank is not None:
        rows = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
        views = [v[rows] for v in views]
    model = method if rank is None else nn.parallel.DistributedDataParallel(method)
    loss = model(views).loss
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in method.named_parameters()}
    return {"loss": loss.detach(), "grads": grads}


def test_two_processes_equal_one_on_the_full_batch() -> None:
    """gather=True: each rank's anchors pick among all ranks' positives; the mean of the ranks'
    losses is the full-batch loss and DDP's averaged gradients (W included) the full-batch ones.
    """
    full = _loss_and_grads(None)
    ranks = run_on_ranks(_loss_and_grads)
    mean_loss = sum(r["loss"] for r in ranks) / WORLD
    torch.testing.assert_close(mean_loss, full["loss"], rtol=1e-10, atol=1e-10)
    for k, want in full["grads"].items():
        for r in ranks:  # DDP leaves every rank with the same averaged gradient
            torch.testing.assert_close(r["grads"][k], want, rtol=1e-10, atol=1e-10, msg=k)
