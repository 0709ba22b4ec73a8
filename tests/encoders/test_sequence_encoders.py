"""Time-series encoders (selfsup.encoders.sequence, .ts2vec_encoder): x (N, C, T) with NaN for
missing values and end padding -> per-step (N, T, D) and max-pooled (N, D).

What is guaranteed, and checked here for every encoder: a series padded with NaN encodes as the
series alone (per-step features at its steps and the pooled vector, up to float rounding) in
eval mode, and in train mode where nothing random runs (BatchNorm skips the padding).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from selfsup.encoders import create_encoder, list_encoders
from selfsup.encoders.sequence import SERIES_ENCODERS, MaskedBatchNorm1d
from selfsup.engine.checkpoint import load_encoder, save_encoder

NAN = float("nan")
PAPER_WIDTHS = {  # num_features at the registered defaults
    "gru": 128,
    "lstm": 128,
    "fcn": 128,
    "resnet1d": 128,
    "series_transformer": 128,
    "ts2vec_encoder": 320,
}
SMALL = {
    "gru": {"hidden": 8},
    "lstm": {"hidden": 8},
    "fcn": {},
    "resnet1d": {},
    "series_transformer": {"dim": 16, "depth": 1, "heads": 2, "max_len": 64},
    "ts2vec_encoder": {"hidden": 8, "out_dim": 16, "depth": 2},
}
# Bidirectional / stacked RNNs read the padding unless each series is packed to its length.
VARIANTS = [(name, {}) for name in SERIES_ENCODERS] + [
    ("gru", {"bidirectional": True}),
    ("lstm", {"bidirectional": True, "layers": 2}),
]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small convolutions and RNN steps run ~10x slower with 2 threads on a busy 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _series(n: int, c: int, t: int, seed: int = 0) -> Tensor:
    return torch.randn(n, c, t, generator=torch.Generator().manual_seed(seed))


def _pad(series: list[Tensor], length: int) -> Tensor:
    """(C, T_i) series -> (N, C, length), NaN after each one's end."""
    out = torch.full((len(series), series[0].shape[0], length), NAN)
    for i, s in enumerate(series):
        out[i, :, : s.shape[1]] = s
    return out


def _with_gaps(c: int, t: int, seed: int) -> Tensor:
    """(c, t) series with a missing entry and an all-missing interior step."""
    s = _series(1, c, t, seed)[0]
    s[0, t // 2] = NAN
    s[:, t // 3] = NAN
    return s


def test_registered_with_paper_defaults() -> None:
    assert set(SERIES_ENCODERS) == set(PAPER_WIDTHS) <= set(list_encoders())
    for name, width in PAPER_WIDTHS.items():
        enc = create_encoder(name)
        assert enc.num_features == width and enc.in_chans == 1
    fcn = create_encoder("fcn").layers
    assert [(m.conv.out_channels, m.conv.kernel_size[0]) for m in fcn] == [
        (128, 8),
        (256, 5),
        (128, 3),
    ]
    blocks = create_encoder("resnet1d").layers
    assert [b.convs[0].conv.out_channels for b in blocks] == [64, 128, 128]
    assert [b.project is not None for b in blocks] == [True, True, False]
    ts2vec = create_encoder("ts2vec_encoder")
    assert [b.conv1.dilation[0] for b in ts2vec.blocks] == [2**i for i in range(11)]
    assert ts2vec.input_fc.out_features == 64 and ts2vec.repr_dropout.p == 0.1
    assert create_encoder("gru", hidden=16, bidirectional=True).num_features == 32


@pytest.mark.parametrize("t", [1, 7, 50])
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("name", SERIES_ENCODERS)
def test_shapes(name: str, c: int, t: int) -> None:
    enc = create_encoder(name, in_chans=c)
    assert enc.encoder_kwargs == {"in_chans": c}
    with torch.no_grad():
        assert enc.forward_features(_series(2, c, t)).shape == (2, t, enc.num_features)
        assert enc(_series(2, c, t)).shape == (2, enc.num_features)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("name", SERIES_ENCODERS)
def test_nan_inputs_give_finite_outputs(name: str, train: bool) -> None:
    """Missing entries, a missing step, end padding and a series with nothing observed."""
    enc = create_encoder(name, in_chans=2).train(train)
    x = _pad([_with_gaps(2, 30, 1), _with_gaps(2, 9, 2), torch.full((2, 4), NAN)], 30)
    before = x.clone()
    with torch.no_grad():
        feats, pooled = enc.forward_features(x), enc(x)
    assert torch.isfinite(feats).all() and torch.isfinite(pooled).all()
    assert torch.equal(x.isnan(), before.isnan()), "the input batch was written into"
    assert (feats[1, 9:] == 0).all(), "features after the series' end are zero"
    assert (pooled[2] == 0).all(), "a series with no observed step pools to 0"


def _assert_padding_invariant(enc: nn.Module, series: list[Tensor], length: int) -> None:
    with torch.no_grad():
        batch = _pad(series, length)
        feats, pooled = enc.forward_features(batch), enc(batch)
        for i, s in enumerate(series):
            alone = s[None]
            t = s.shape[1]
            torch.testing.assert_close(feats[i, :t], enc.forward_features(alone)[0])
            torch.testing.assert_close(pooled[i], enc(alone)[0])


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS)
def test_padding_does_not_change_the_encoding(name: str, kwargs: dict) -> None:
    """Eval mode: series of lengths 40, 17 and 1, padded to 50 in one batch, encode as alone."""
    enc = create_encoder(name, in_chans=2, **kwargs).eval()
    series = [_with_gaps(2, 40, 1), _with_gaps(2, 17, 2), _series(1, 2, 1, 3)[0]]
    _assert_padding_invariant(enc, series, 50)


@pytest.mark.parametrize("name", ["fcn", "resnet1d"])
def test_batchnorm_statistics_skip_padding(name: str) -> None:
    """Train mode: a series padded with NaN gives the same output and running statistics as the
    series alone (batch statistics over its observed steps only)."""
    padded, alone = create_encoder(name).train(), create_encoder(name).train()
    alone.load_state_dict(padded.state_dict())
    s = _with_gaps(1, 20, 4)
    with torch.no_grad():
        feats = padded.forward_features(_pad([s], 50))[0, :20]
        torch.testing.assert_close(feats, alone.forward_features(s[None])[0])
    want, got = alone.state_dict(), padded.state_dict()
    for key in want:
        torch.testing.assert_close(got[key], want[key], msg=key)


def test_masked_batchnorm_is_batchnorm_without_padding() -> None:
    ours, ref = MaskedBatchNorm1d(4).train(), nn.BatchNorm1d(4).train()
    x = _series(3, 4, 11)
    out = ours(x, torch.zeros(3, 1, 11, dtype=torch.bool))
    torch.testing.assert_close(out, ref(x))
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    torch.testing.assert_close(ours.eval()(x, None), ref.eval()(x))


@pytest.mark.parametrize("name", SERIES_ENCODERS)
def test_eval_is_deterministic(name: str) -> None:
    enc = create_encoder(name, in_chans=2).eval()
    x = _pad([_with_gaps(2, 30, 1), _with_gaps(2, 12, 2)], 30)
    with torch.no_grad():
        assert torch.equal(enc(x), enc(x))


def test_ts2vec_masks_timestamps_in_train_mode_only() -> None:
    """Dropout held off, so only the timestamp mask can make two calls differ."""
    enc = create_encoder("ts2vec_encoder", **SMALL["ts2vec_encoder"])
    x = _series(4, 1, 40)
    enc.train()
    enc.repr_dropout.eval()
    with torch.no_grad():
        assert not torch.equal(enc(x), enc(x)), "train mode masks random timestamps"
        enc.eval()
        assert torch.equal(enc(x), enc(x)), "eval mode encodes every timestamp"
        enc.mask_mode = "none"
        enc.train()
        enc.repr_dropout.eval()
        assert torch.equal(enc(x), enc(x)), "mask_mode='none' masks nothing"


def test_timestamp_masks_follow_ts2vec() -> None:
    enc = create_encoder("ts2vec_encoder", mask_p=0.2)
    keep = enc.timestamp_mask(64, 256, torch.device("cpu"))
    assert keep.shape == (64, 256) and abs(keep.float().mean().item() - 0.8) < 0.03
    enc.mask_mode = "continuous"  # up to 5 spans of 25 steps (10 % of 256) per series
    masked = (~enc.timestamp_mask(64, 256, torch.device("cpu"))).sum(1)
    assert (masked >= 25).all() and (masked <= 125).all()
    with pytest.raises(ValueError, match="mask_mode"):
        create_encoder("ts2vec_encoder", mask_mode="random")


@pytest.mark.parametrize("name", SERIES_ENCODERS)
def test_gradients_flow(name: str) -> None:
    enc = create_encoder(name, in_chans=2, **SMALL[name]).train()
    x = _pad([_with_gaps(2, 30, 1), _with_gaps(2, 12, 2)], 30)
    enc(x).square().mean().backward()
    missing = [k for k, p in enc.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"no gradient for {missing}"
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters())


@pytest.mark.parametrize("name", SERIES_ENCODERS)
def test_bf16_autocast_trains(name: str) -> None:
    enc = create_encoder(name, in_chans=2, **SMALL[name])
    x = _pad([_with_gaps(2, 30, 1), _with_gaps(2, 12, 2)], 30)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x)
    assert out.shape == (2, enc.num_features) and torch.isfinite(out).all()
    out.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", SERIES_ENCODERS)
def test_three_channels_save_and_load(name: str, tmp_path: Path) -> None:
    enc = create_encoder(name, in_chans=3, **SMALL[name])
    x = _pad([_with_gaps(3, 30, 1), _with_gaps(3, 12, 2)], 30)
    with torch.no_grad():  # move BatchNorm statistics off their init, so they are checked too
        enc(x)
    save_encoder(enc, tmp_path / "encoder.safetensors")
    loaded = load_encoder(tmp_path / "encoder.safetensors")
    assert type(loaded) is type(enc) and loaded.encoder_kwargs == {"in_chans": 3, **SMALL[name]}
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), enc.eval()(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", SERIES_ENCODERS)
def test_other_shapes_are_refused(name: str) -> None:
    enc = create_encoder(name, in_chans=2)
    for bad in (torch.randn(2, 2, 8, 8), torch.randn(2, 3, 8), torch.randn(2, 2, 0)):
        with pytest.raises(ValueError, match="takes series"):
            enc(bad)


def test_series_longer_than_max_len_is_refused() -> None:
    enc = create_encoder("series_transformer", **SMALL["series_transformer"])
    with pytest.raises(ValueError, match="max_len 64"):
        enc(torch.randn(1, 1, 65))
