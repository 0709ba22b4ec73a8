"""SupCon and MetricLearning: composition, required labels, builders, and the CLI end to end."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.build import METHODS, build_method, build_sampler
from selfsup.config import ConfigError
from selfsup.encoders import create_encoder
from selfsup.heads.mlp import MLP
from selfsup.losses.functional import supcon, triplet_margin
from selfsup.losses.modules import SupConLoss, TripletMarginLoss
from selfsup.methods.supervised import MetricLearning, SupCon

SUPERVISED = ["supcon", "triplet", "npair", "contrastive", "logistic"]


def _encoder():
    return create_encoder("convnet_small", width=4)


def _views(n=8, v=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, 16, 16, generator=g) for _ in range(v)]


LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def test_supcon_step_is_supcon_of_the_projected_views():
    torch.manual_seed(0)
    enc = _encoder()
    m = SupCon(enc, MLP([enc.num_features, 16, 8], norm=None), SupConLoss(0.2)).eval()
    views = _views()
    out = m.training_step(views, LABELS)
    z_a, z_b = (m.projector(m.backbone(v)) for v in views)
    expected = supcon(torch.stack([z_a, z_b], dim=1), LABELS, 0.2)  # (N, V, d)
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.z[0], z_a)
    torch.testing.assert_close(out.z[1], z_b)


def test_metric_learning_step_treats_every_view_as_a_labelled_embedding():
    torch.manual_seed(0)
    enc = _encoder()
    loss = TripletMarginLoss(miner="batch_hard")
    m = MetricLearning(enc, MLP([enc.num_features, 8], norm=None), loss).eval()
    views = _views(v=3)
    out = m.training_step(views, LABELS)
    z = torch.cat([m.head(m.backbone(v)) for v in views])  # view-major (3N, d)
    torch.testing.assert_close(out.loss, triplet_margin(z, LABELS.repeat(3), miner="batch_hard"))
    one = m.training_step(views[:1], LABELS)  # a single view: no (z_a, z_b) pair to report
    assert one.z is None and one.loss.ndim == 0


@pytest.mark.parametrize("name", SUPERVISED)
def test_builders_make_trainable_methods_that_need_labels(name):
    torch.manual_seed(0)
    spec = METHODS[name]
    assert spec.needs_labels
    m = build_method(name, _encoder(), {"samples_per_class": 2})  # K is the sampler's, dropped
    out = m(_views(), LABELS)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.backbone.parameters())
    with pytest.raises(ValueError, match="needs labels"):
        m(_views(), None)


def test_builder_defaults_follow_the_papers():
    supcon_m = build_method("supcon", _encoder(), {})
    assert supcon_m.loss.temperature == 0.1
    assert supcon_m.projector.out_dim == 128 and len(supcon_m.projector) == 3  # Linear-ReLU-Linear
    trip = build_method("triplet", _encoder(), {})
    assert (trip.loss.margin, trip.loss.miner, trip.loss.normalize) == (0.2, "semi_hard", True)
    assert build_method("npair", _encoder(), {}).loss.l2_reg == 0.02
    with pytest.raises(ConfigError, match="Did you mean 'margin'"):
        build_method("triplet", _encoder(), {"margn": 0.3})


def test_build_sampler_picks_k_and_refuses_unlabeled_data():
    targets = torch.arange(10).repeat_interleave(30)
    s = build_sampler({}, targets, 64, seed=0)
    assert (s.classes_per_batch, s.samples_per_class) == (10, 7)  # K raised: only 10 classes
    s = build_sampler({}, torch.arange(100).repeat(3), 64, seed=0)
    assert (s.classes_per_batch, s.samples_per_class) == (16, 4)  # Hermans et al.'s K = 4
    assert build_sampler({"samples_per_class": 8}, targets, 64, seed=0).classes_per_batch == 8
    with pytest.raises(ConfigError, match="needs labels"):
        build_sampler({}, None, 64, seed=0)


@pytest.fixture(scope="module")
def labeled_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("labeled")
    rng = np.random.default_rng(0)
    for c in range(4):
        for i in range(10):
            arr = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
            arr[:, :, c % 3] = 255
            (root / f"class{c}").mkdir(exist_ok=True)
            Image.fromarray(arr).save(root / f"class{c}" / f"{i}.png")
    return root


FAST = ["--encoder", "convnet_small", "--set", "encoder_args={width: 4}", "--steps", "2",
        "--batch-size", "8", "--no-progress", "--set", "eval.linear=false",
        "--set", "eval.finetune=false", "--set", "eval.report=false", "--set", "eval.health=false",
        "--set", "eval.baselines=false"]  # fmt: skip


@pytest.mark.parametrize("name", SUPERVISED)
def test_cli_pretrains_each_supervised_method(name, labeled_folder, tmp_path):
    from selfsup.cli import main

    out = tmp_path / name
    argv = ["pretrain", "--method", name, "--data", str(labeled_folder), "--out", str(out)]
    assert main([*argv, *FAST]) == 0
    results = json.loads((out / "results.json").read_text())
    row = results["eval"][f"{name} (trained)"]
    assert {"knn_top1", "recall@1", "map@r"} <= row.keys()


def test_cli_refuses_unlabeled_data_clearly(tmp_path, capsys):
    from selfsup.cli import main

    rng = np.random.default_rng(0)
    for i in range(12):  # a flat folder: no classes
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
    argv = ["pretrain", "--method", "supcon", "--data", str(tmp_path), "--out", str(tmp_path / "r")]
    assert main([*argv, *FAST]) == 2
    assert "needs labels" in capsys.readouterr().err
