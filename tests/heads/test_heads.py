"""MLP layout (norm / bias / activation placement), each preset's paper shape, and DINOHead."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from selfsup import heads
from selfsup.heads import MLP, DINOHead


def _kinds(m: nn.Module) -> list[str]:
    short = {nn.Linear: "L", nn.BatchNorm1d: "BN", nn.LayerNorm: "LN", nn.ReLU: "R", nn.GELU: "G"}
    return [short[type(c)] for c in m.children()]


def _linears(m: nn.Module) -> list[nn.Linear]:
    return [c for c in m.modules() if isinstance(c, nn.Linear)]


def test_mlp_layout_and_shapes() -> None:
    mlp = MLP([16, 32, 32, 8])
    assert _kinds(mlp) == ["L", "BN", "R", "L", "BN", "R", "L"]
    assert (mlp.in_dim, mlp.out_dim) == (16, 8)
    assert mlp(torch.randn(4, 16)).shape == (4, 8)
    # a Linear feeding a BN has no bias; the plain output layer has one
    assert [lin.bias is not None for lin in _linears(mlp)] == [False, False, True]


def test_mlp_last_norm_and_bias() -> None:
    mlp = MLP([16, 32, 8], last_norm=True, last_norm_affine=False)
    assert _kinds(mlp) == ["L", "BN", "R", "L", "BN"]
    assert mlp[-1].weight is None and _linears(mlp)[-1].bias is None
    out = mlp(torch.randn(64, 16))
    torch.testing.assert_close(out.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    assert _linears(MLP([16, 8], norm=None, last_bias=False))[0].bias is None


def test_mlp_ln_gelu_no_norm_and_leading_dims() -> None:
    ln = MLP([16, 32, 8], norm="ln", last_norm=True, activation="gelu")
    assert _kinds(ln) == ["L", "LN", "G", "L", "LN"]
    assert [lin.bias is not None for lin in _linears(ln)] == [True, True]  # LN keeps biases
    assert ln(torch.randn(2, 5, 16)).shape == (2, 5, 8)
    assert _kinds(MLP([16, 32, 8], norm=None)) == ["L", "R", "L"]
    assert _kinds(MLP([16, 8])) == ["L"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dims": [16]},
        {"dims": [16, 8], "norm": "gn"},
        {"dims": [16, 8], "norm": None, "last_norm": True},
        {"dims": [16, 8], "activation": "tanh"},
    ],
)
def test_mlp_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        MLP(**kwargs)


# (preset, its defaults built on the meta device, expected Linear shapes, layer kinds)
PAPER_SHAPES = [
    (heads.simclr_head, (2048,), [(2048, 2048), (2048, 128)], "L BN R L"),
    (heads.moco_v2_head, (2048,), [(2048, 2048), (2048, 128)], "L R L"),
    (
        heads.moco_v3_projector,
        (2048,),
        [(2048, 4096), (4096, 4096), (4096, 256)],
        "L BN R L BN R L BN",
    ),
    (heads.moco_v3_predictor, (), [(256, 4096), (4096, 256)], "L BN R L BN"),
    (heads.byol_projector, (2048,), [(2048, 4096), (4096, 256)], "L BN R L"),
    (heads.byol_predictor, (), [(256, 4096), (4096, 256)], "L BN R L"),
    (
        heads.simsiam_projector,
        (2048,),
        [(2048, 2048), (2048, 2048), (2048, 2048)],
        "L BN R L BN R L BN",
    ),
    (heads.simsiam_predictor, (), [(2048, 512), (512, 2048)], "L BN R L"),
    (
        heads.barlow_twins_projector,
        (2048,),
        [(2048, 8192), (8192, 8192), (8192, 8192)],
        "L BN R L BN R L",
    ),
    (heads.vicreg_expander, (2048,), [(2048, 8192), (8192, 8192), (8192, 8192)], "L BN R L BN R L"),
    (
        heads.nnclr_projector,
        (2048,),
        [(2048, 2048), (2048, 2048), (2048, 256)],
        "L BN R L BN R L BN",
    ),
    (heads.nnclr_predictor, (), [(256, 4096), (4096, 256)], "L BN R L"),
]


@pytest.mark.parametrize(("preset", "args", "shapes", "kinds"), PAPER_SHAPES)
def test_presets_default_to_the_papers_shapes(preset, args, shapes, kinds) -> None:
    with torch.device("meta"):  # paper sizes (up to 8192x8192) without allocating them
        head = preset(*args)
    assert [(lin.in_features, lin.out_features) for lin in _linears(head)] == shapes
    assert " ".join(_kinds(head)) == kinds


def test_output_batchnorms_follow_each_paper() -> None:
    with torch.device("meta"):
        affine_free = [heads.moco_v3_projector(64), heads.simsiam_projector(64)]
        affine = heads.nnclr_projector(64)
        no_bias = [heads.barlow_twins_projector(64), heads.vicreg_expander(64)]
    assert all(h[-1].weight is None for h in affine_free)  # BatchNorm1d(affine=False)
    assert affine[-1].weight is not None
    assert all(_linears(h)[-1].bias is None for h in no_bias)
    assert _linears(heads.moco_v2_head(16, out_dim=4))[-1].bias is not None
    assert " ".join(_kinds(heads.moco_v3_predictor(8, 16, 8, last_norm=False))) == "L BN R L"


@pytest.mark.parametrize(("preset", "args", "shapes", "kinds"), PAPER_SHAPES)
def test_presets_shrink_and_run(preset, args, shapes, kinds) -> None:
    in_dim = 24
    head = preset(in_dim, hidden_dim=16, out_dim=8)
    out = head(torch.randn(4, in_dim))
    assert out.shape == (4, 8)
    out.square().sum().backward()
    assert all(p.grad is not None for p in head.parameters())


def test_simclr_hidden_defaults_to_input_width_and_v2_depth() -> None:
    assert [lin.out_features for lin in _linears(heads.simclr_head(40))] == [40, 128]
    v2 = heads.simclr_head(40, num_layers=3, out_dim=16)
    assert [(lin.in_features, lin.out_features) for lin in _linears(v2)] == [
        (40, 40),
        (40, 40),
        (40, 16),
    ]


def test_dino_head_defaults() -> None:
    with torch.device("meta"):
        head = DINOHead(384)
    assert [(lin.in_features, lin.out_features) for lin in _linears(head.mlp)] == [
        (384, 2048),
        (2048, 2048),
        (2048, 256),
    ]
    assert _kinds(head.mlp) == ["L", "G", "L", "G", "L"]  # GELU, no BN by default
    v = head.last_layer.parametrizations.weight.original1
    assert tuple(v.shape) == (65536, 256) and head.last_layer.bias is None


def test_dino_head_last_layer_is_normalized_and_g_frozen() -> None:
    torch.manual_seed(0)
    head = DINOHead(32, out_dim=50, hidden=24, bottleneck=8)
    g = head.last_layer.parametrizations.weight.original0
    assert not g.requires_grad and torch.all(g == 1)
    w = head.last_layer.weight  # recomputed from (g, v): unit rows
    torch.testing.assert_close(w.norm(dim=1), torch.ones(50))
    out = head(torch.randn(6, 32))
    assert out.shape == (6, 50) and out.abs().max() <= 1 + 1e-5  # cosines
    out.sum().backward()
    assert g.grad is None and head.last_layer.parametrizations.weight.original1.grad is not None
    trainable = DINOHead(32, out_dim=50, hidden=24, bottleneck=8, norm_last_layer=False)
    assert trainable.last_layer.parametrizations.weight.original0.requires_grad


def test_dino_head_copies_for_a_momentum_teacher_and_runs_in_bf16() -> None:
    head = DINOHead(32, out_dim=50, hidden=24, bottleneck=8, nlayers=2, use_bn=True)
    assert _kinds(head.mlp) == ["L", "BN", "G", "L"]
    teacher = copy.deepcopy(head).eval()
    head.eval()
    x = torch.randn(4, 32)
    with torch.no_grad():
        torch.testing.assert_close(teacher(x), head(x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.isfinite(teacher(x)).all()
    assert _kinds(DINOHead(32, out_dim=5, bottleneck=8, nlayers=1).mlp) == ["L"]
