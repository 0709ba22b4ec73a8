"""#19.1: `Method.encode` after a real `fit` is an eval-mode forward that changes nothing."""

import copy

import torch

from selfsup.augment.recipes import eval_view, simclr_views
from selfsup.data import load_digits
from selfsup.encoders import create_encoder
from selfsup.engine import TrainConfig, fit
from selfsup.heads.presets import simclr_head
from selfsup.losses import NTXentLoss
from selfsup.methods.simclr import SimCLR


def _bn_buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k}


def test_encode_after_fit_uses_and_keeps_running_statistics(tmp_path):
    """After fit the method is in train mode; encode must neither normalize with the batch's
    own statistics nor overwrite the running ones (the README's example evaluates after it)."""
    train, test = load_digits(size=16)
    encoder = create_encoder("convnet_small", width=8)
    method = SimCLR(encoder, simclr_head(encoder.num_features, out_dim=16), NTXentLoss(0.5))
    cfg = TrainConfig(steps=5, batch_size=64, lr=0.1, out_dir=str(tmp_path / "run"), progress=False)
    fit(method, train, simclr_views(size=16), cfg)
    assert method.training  # the state a user holds right after fit
    before = _bn_buffers(encoder)
    assert before, "convnet_small has BatchNorm: the test would check nothing without it"
    x = eval_view(16)(test.inputs[:100])

    features = method.encode(x)

    after = _bn_buffers(encoder)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert method.training and encoder.training  # the caller's mode is restored
    reference = copy.deepcopy(encoder).eval()
    with torch.no_grad():
        assert torch.allclose(features, reference(x), atol=1e-6)


def test_encode_restores_mixed_modes():
    encoder = create_encoder("convnet_small", width=8)
    method = SimCLR(encoder, simclr_head(encoder.num_features, out_dim=16), NTXentLoss(0.5))
    method.train()
    frozen = next(m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    frozen.eval()  # a user who froze one BN layer keeps it frozen
    method.encode(torch.randn(4, 3, 16, 16))
    assert encoder.training and not frozen.training
