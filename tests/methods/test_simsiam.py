"""SimSiam: symmetric negative cosine with a stop-gradient on the projection side."""

import torch

from selfsup.build import build_simsiam
from selfsup.encoders import create_encoder
from selfsup.losses.functional import negative_cosine


def _pair(stop_gradient: bool):
    torch.manual_seed(0)
    m = build_simsiam(create_encoder("convnet_small", width=8), 32, 16, 2, 8)
    m.stop_gradient = stop_gradient
    return m


def test_loss_value_and_shapes():
    m = _pair(True)
    x_a, x_b = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    out = m.training_step([x_a, x_b])
    with torch.no_grad():
        z = m.projector(m.backbone(torch.cat([x_a, x_b])))
        p_a, p_b = m.predictor(z).chunk(2)
        z_a, z_b = z.chunk(2)
    assert out.z[0].shape == (8, 16)
    expected = 0.5 * (negative_cosine(p_a, z_b) + negative_cosine(p_b, z_a))
    assert torch.allclose(out.loss, expected, atol=1e-5)
    assert -1.0 <= out.loss.item() <= 1.0


def test_stop_gradient_changes_the_gradient_not_the_value():
    x = [torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)]
    grads = []
    for sg in (True, False):
        m = _pair(sg)
        out = m.training_step(x)
        out.loss.backward()
        grads.append((float(out.loss), m.projector[0].weight.grad.clone()))
    assert abs(grads[0][0] - grads[1][0]) < 1e-6
    assert not torch.allclose(grads[0][1], grads[1][1])
