"""Collapse guard: a deliberately broken BYOL (no predictor, the paper's Table 5 ablation) is
reported as collapsed by the health metrics, while the intact BYOL, trained the same way, is not.

Budget: ~10 s CPU (two runs of 120 steps, convnet_small width 8, batch 64 at 16x16 px).
"""

import pytest
import torch
import torch.nn.functional as F

from selfsup.augment.recipes import simclr_views
from selfsup.build import build_byol
from selfsup.encoders import create_encoder
from selfsup.eval.health import collapse_reason, health_metrics
from selfsup.methods.byol import BYOL


def _train_byol(predictor: bool, steps: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    """The two views' projections after `steps` SGD steps on random 16x16 images."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=g)
    m = build_byol(create_encoder("convnet_small", width=8), 64, 32, 64, momentum=0.99)
    if not predictor:
        m = BYOL(m.backbone, m.projector, None, momentum=0.99)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    views = simclr_views(16)
    for step in range(steps):
        out = m.training_step(views(images, generator=g))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        m.after_step(step, steps)
    assert torch.isfinite(out.loss)
    return out.z[0].detach(), out.z[1].detach()


@pytest.mark.parametrize("predictor", [True, False])
def test_byol_without_predictor_is_reported_collapsed(predictor):
    z_a, z_b = _train_byol(predictor)
    # the direct check: per-dimension std of l2-normalized embeddings, ~1/sqrt(d) when spread
    # over the sphere, ~0 when every sample maps to one point
    std_ratio = float(F.normalize(z_a, dim=1).std(0).mean()) * z_a.shape[1] ** 0.5
    reason = collapse_reason(health_metrics(z_a, z_b))
    if predictor:
        assert reason is None and std_ratio > 0.3
    else:
        assert reason is not None and std_ratio < 0.05
