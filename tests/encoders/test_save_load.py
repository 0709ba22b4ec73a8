"""save_encoder -> load_encoder gives back the same encoder, for every registered encoder and for
the backbone of every method (#19.2); encoders that could not be loaded back are refused at save.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from selfsup.build import METHODS, build_method
from selfsup.encoders import create_encoder, list_encoders
from selfsup.encoders.sequence import SERIES_ENCODERS
from selfsup.engine.checkpoint import load_encoder, save_encoder
from tests.tiny_bert import save_tiny_bert

# Small widths: each case builds, saves, loads and runs in well under a second on a CPU.
_SMALL = {
    "audio_ntt": {"n_mels": 32, "d": 32},  # n_mels 32: _inputs feeds (2, 1, 32, 32)
    "audio_resnet18": {"width": 4},
    "audio_vit_": {"n_mels": 32, "frames": 32, "embed_dim": 16, "depth": 1, "num_heads": 2},
    "convnet_": {"width": 4},
    "fcn": {},  # Wang et al.'s fixed widths: no width argument
    "gru": {"hidden": 8},
    "lstm": {"hidden": 8},
    "nature_cnn": {"feature_size": 16, "frame_size": (36, 36)},
    "resnet18_cifar_w": {},  # fixed widths (32, 16): no width argument
    "resnet1d": {},  # before "resnet": the first matching prefix wins
    "resnet": {"width": 4},
    "series_transformer": {"dim": 16, "depth": 1, "heads": 2, "max_len": 64},
    "text_transformer_": {"vocab_size": 50, "dim": 16, "depth": 1, "heads": 2, "max_len": 16},
    "ts2vec_encoder": {"hidden": 8, "out_dim": 16, "depth": 2},
    "vit_": {"embed_dim": 16, "depth": 1, "num_heads": 2},
}
_TIMM = {
    "timm/resnet10t": {},
    "timm/vit_tiny_patch16_224": {"img_size": 32, "patch_size": 8, "depth": 1},
}


def _small_kwargs(name: str, tmp_path: Path) -> dict:
    if name == "hf_text":
        return {"path": str(save_tiny_bert(tmp_path / "bert", 50, 16, 1))}
    if name in _TIMM:
        return _TIMM[name]
    prefix = next((p for p in _SMALL if name.startswith(p)), None)
    assert prefix is not None, f"add small kwargs for the new encoder {name!r} to _SMALL"
    return _SMALL[prefix]


def _inputs(encoder: nn.Module) -> torch.Tensor:
    """Token ids (2, 8) with padding for text encoders, series (2, C, 30) with a NaN tail for
    series encoders, else images (2, C, 32, 32)."""
    g = torch.Generator().manual_seed(0)
    if getattr(encoder, "encoder_name", None) in SERIES_ENCODERS:
        x = torch.randn(2, encoder.in_chans, 30, generator=g)
        x[1, :, 20:] = float("nan")
        return x
    if hasattr(encoder, "pad_id"):  # text encoders take ids; pad_id is 0 for all here
        ids = torch.randint(1, 50, (2, 8), generator=g)
        ids[0, 5:] = encoder.pad_id
        return ids
    in_chans = getattr(encoder, "in_chans", 3)
    h, w = getattr(encoder, "frame_size", (32, 32))  # agents' encoders: their frame size
    return torch.randn(2, in_chans, h, w, generator=g)


def _assert_round_trip(encoder: nn.Module, tmp_path: Path) -> nn.Module:
    path = tmp_path / "run" / "encoder.safetensors"
    save_encoder(encoder, path)
    loaded = load_encoder(path)
    assert type(loaded) is type(encoder)
    assert loaded.encoder_name == encoder.encoder_name
    want, got = encoder.state_dict(), loaded.state_dict()
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in want)
    x = _inputs(encoder)
    encoder.eval(), loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), encoder(x), rtol=0, atol=1e-6)
    return loaded


@pytest.mark.parametrize("name", list_encoders() + list(_TIMM))
def test_every_encoder_round_trips(name: str, tmp_path: Path) -> None:
    """#19.2: every registered encoder (and timm ones) loads back with equal weights and outputs."""
    encoder = create_encoder(name, **_small_kwargs(name, tmp_path))
    with torch.no_grad():  # move BN statistics off their init, so they are checked too
        encoder(_inputs(encoder))
    _assert_round_trip(encoder, tmp_path)


# Heads shrunk to a few units: only the backbone is saved, the heads just have to build fast.
_METHOD_ARGS = {
    "simclr": {"proj_hidden_dim": 16, "proj_dim": 8},
    "moco": {"queue_size": 64, "proj_hidden_dim": 16, "proj_dim": 8},
    "mocov3": {"proj_hidden_dim": 16, "proj_dim": 8, "pred_hidden_dim": 16},
    "byol": {"proj_hidden_dim": 16, "proj_dim": 8, "pred_hidden_dim": 16},
    "nnclr": {"proj_hidden_dim": 16, "proj_dim": 8, "pred_hidden_dim": 16, "support_set_size": 64},
    "simsiam": {"proj_hidden_dim": 16, "proj_dim": 16, "pred_hidden_dim": 8},
    "barlow_twins": {"proj_hidden_dim": 16, "proj_dim": 16},
    "vicreg": {"proj_hidden_dim": 16, "proj_dim": 16},
    "dino": {"out_dim": 32, "hidden_dim": 16, "bottleneck_dim": 8},
    "mae": {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2},
    "supcon": {"proj_hidden_dim": 16, "proj_dim": 8},
    "triplet": {"embed_dim": 8},
    "npair": {"embed_dim": 8},
    "contrastive": {"embed_dim": 8},
    "logistic": {"embed_dim": 8},
    "simcse": {"proj_dim": 8},
    "mlm": {},
    "ts2vec": {},
    "cpc": {"context_dim": 8, "prediction_steps": 2},
    "cola": {"proj_dim": 8},
    "curl": {"proj_dim": 8},
    "atc": {"pred_hidden_dim": 8},
    "stdim": {},
}
_TEXT_METHODS = ("simcse", "mlm")
_METHOD_CASES = [
    (m, "convnet_small") for m in METHODS if m not in ("mae", "stdim", *_TEXT_METHODS)
] + [
    ("stdim", "nature_cnn"),  # ST-DIM needs a local feature map and a head on it
    *[(m, "text_transformer_tiny") for m in _TEXT_METHODS],
    ("mae", "vit_micro_cifar"),
    ("mae", "timm/vit_tiny_patch16_224"),  # the adapter case: TimmViT around a timm ViT
]


@pytest.mark.parametrize(("method", "encoder_name"), _METHOD_CASES)
def test_every_method_backbone_round_trips(method: str, encoder_name: str, tmp_path) -> None:
    """#19.2: the backbone `fit` saves for each method loads back, adapters included."""
    assert method in _METHOD_ARGS, f"add small method_args for the new method {method!r}"
    encoder = create_encoder(encoder_name, **_small_kwargs(encoder_name, tmp_path))
    backbone = build_method(method, encoder, _METHOD_ARGS[method]).backbone
    loaded = _assert_round_trip(backbone, tmp_path)
    if method == "mae":  # the masked-encoder adapter is rebuilt: MAE can run on the loaded one
        assert hasattr(loaded, "forward_visible")


def test_masked_timm_vit_keeps_its_registry_name(tmp_path: Path) -> None:
    """#19.2: MAE around a timm ViT saved `{"encoder": "TimmViT"}`; now the timm name."""
    kwargs = _TIMM["timm/vit_tiny_patch16_224"]
    encoder = create_encoder("timm/vit_tiny_patch16_224", **kwargs)
    backbone = build_method("mae", encoder, _METHOD_ARGS["mae"]).backbone
    save_encoder(backbone, tmp_path / "encoder.safetensors")
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert meta["encoder"] == "timm/vit_tiny_patch16_224" and meta["kwargs"] == kwargs
    assert meta["adapter"] == "as_masked_encoder"


class _Unregistered(nn.Module):
    num_features = 4

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_unregistered_encoder_is_refused_at_save(tmp_path: Path) -> None:
    """#19.2: a module `create_encoder` did not build is refused, and nothing is written."""
    path = tmp_path / "encoder.safetensors"
    with pytest.raises(ValueError, match="no registry name") as err:
        save_encoder(_Unregistered(), path)
    assert str(path) in str(err.value) and "create_encoder" in str(err.value)
    assert not path.exists() and not path.with_suffix(".json").exists()


def test_unknown_registry_name_is_refused_at_save(tmp_path: Path) -> None:
    """#19.2: a name `create_encoder` does not know (e.g. a class name) is refused at save."""
    encoder = _Unregistered()
    encoder.encoder_name, encoder.encoder_kwargs = "TimmViT", {}
    with pytest.raises(ValueError, match="TimmViT"):
        save_encoder(encoder, tmp_path / "encoder.safetensors")
    assert not (tmp_path / "encoder.safetensors").exists()


def test_encoder_changed_after_create_is_refused_at_save(tmp_path: Path) -> None:
    """#19.2: a registered encoder whose modules were replaced would not load: refused."""
    encoder = create_encoder("convnet_small", width=4)
    encoder.layers[0][0] = nn.Conv2d(3, 4, 5, padding=2, bias=False)
    with pytest.raises(ValueError, match="wrong shape") as err:
        save_encoder(encoder, tmp_path / "encoder.safetensors")
    assert "layers.0.0.weight" in str(err.value)
    assert not (tmp_path / "encoder.safetensors").exists()


def test_weight_source_kwargs_are_not_saved(tmp_path: Path) -> None:
    """#15.6: the weights are in the safetensors file, so `pretrained` is not written to the
    JSON (load_encoder refuses it: it would download)."""
    encoder = create_encoder("timm/resnet10t")
    encoder.encoder_kwargs["pretrained"] = True  # as if built from ImageNet weights
    loaded = _assert_round_trip(encoder, tmp_path)
    assert "pretrained" not in json.loads((tmp_path / "run" / "encoder.json").read_text())["kwargs"]
    assert loaded.encoder_kwargs == {}
