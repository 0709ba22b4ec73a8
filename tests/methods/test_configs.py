"""Every YAML recipe in configs/ loads (keys exactly as RunConfig) and builds its method."""

from pathlib import Path

import pytest

from selfsup.build import METHODS, build_method, build_views
from selfsup.config import load_config
from selfsup.encoders import create_encoder

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_there_is_a_cifar10_recipe_per_method():
    names = {p.stem for p in CONFIGS}
    family = ["simclr", "moco", "mocov3", "byol", "nnclr", "simsiam", "barlow_twins", "vicreg"]
    for method in [*family, "dino"]:
        assert f"cifar10-{method}" in names
    assert "cifar10-simclr-cpu" in names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = load_config(path)
    assert cfg.method in METHODS
    encoder = create_encoder(cfg.encoder, **cfg.encoder_args)
    method = build_method(cfg.method, encoder, cfg.method_args)
    assert method.backbone is encoder
    assert build_views(cfg.method, cfg.views, cfg.image_size or 32) is not None
