"""NNCLR: the anchor is the support set's nearest neighbour, looked up before the update."""

import torch

from selfsup.build import build_nnclr
from selfsup.encoders import create_encoder
from selfsup.losses.functional import info_nce


def test_loss_uses_nearest_neighbours_then_updates_the_support_set():
    torch.manual_seed(0)
    enc = create_encoder("convnet_small", width=8)
    m = build_nnclr(enc, 32, 16, 32, support_set_size=64, temperature=0.1)
    x_a, x_b = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    support = torch.nn.functional.normalize(m.support_set.items(), dim=1)
    out = m.training_step([x_a, x_b])
    with torch.no_grad():
        z = m.projector(m.backbone(torch.cat([x_a, x_b])))
        p_a, p_b = m.predictor(z).chunk(2)
        z_a, z_b = z.chunk(2)
    nn_a = support[(torch.nn.functional.normalize(z_a, dim=1) @ support.T).argmax(1)]
    nn_b = support[(torch.nn.functional.normalize(z_b, dim=1) @ support.T).argmax(1)]
    expected = 0.5 * (
        info_nce(nn_a, p_b, 0.1, symmetric=True) + info_nce(nn_b, p_a, 0.1, symmetric=True)
    )
    assert torch.allclose(out.loss, expected, atol=1e-5)
    assert torch.allclose(m.support_set.items()[:8], z_a, atol=1e-5)  # z_a enqueued after
    out.loss.backward()
    assert all(p.grad is not None for p in m.predictor.parameters())
    assert not torch.isnan(out.loss)
