import torch

from selfsup.augment.text_views import (
    MaskedTokenViews,
    TextViews,
    identity,
    span_crop,
    token_deletion,
    token_masking,
    trim_padding,
)

SPECIAL = torch.tensor([0, 1, 2, 3, 4])  # pad, unk, cls, sep, mask
VOCAB = 1000


def sentences(n: int, length: int, seed: int = 0) -> torch.Tensor:
    """(n, length) ids `[CLS] content [SEP] [PAD]...` with random content lengths >= 3."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (n, length), generator=g)
    lengths = torch.randint(3, length - 1, (n,), generator=g)
    pos = torch.arange(length)
    ids[:, 0] = 2
    ids[pos[None] == lengths[:, None] + 1] = 3
    ids[pos[None] > lengths[:, None] + 1] = 0
    return ids


def test_masking_statistics_15_80_10_10():
    ids = sentences(4000, 64)
    masked, labels = MaskedTokenViews(SPECIAL, VOCAB, mask_id=4)(
        ids, torch.Generator().manual_seed(0)
    )
    special = torch.isin(ids, SPECIAL)
    chosen = labels != -100
    assert not chosen[special].any()  # specials never chosen ...
    assert torch.equal(masked[special], ids[special])  # ... nor changed
    assert torch.equal(labels[chosen], ids[chosen])
    n_content = (~special).sum().item()
    assert abs(chosen.sum().item() / n_content - 0.15) < 0.005  # ~1.2e5 samples: 5 sigma ~ 0.002
    n = chosen.sum().item()
    as_mask = (masked[chosen] == 4).sum().item() / n
    kept = (masked[chosen] == ids[chosen]).sum().item() / n
    replaced = 1 - as_mask - kept
    assert abs(as_mask - 0.8) < 0.01
    # a random replacement equal to the original (p = 1/VOCAB) counts as kept
    assert abs(kept - 0.1) < 0.01 and abs(replaced - 0.1) < 0.01
    assert torch.equal(masked[~chosen], ids[~chosen])  # unchosen positions untouched


def test_masking_view_and_trim():
    ids = torch.cat([sentences(8, 10), torch.zeros(8, 6, dtype=torch.long)], 1)
    assert trim_padding(ids).shape[1] == 10
    out = token_masking(ids, SPECIAL, torch.Generator().manual_seed(1), VOCAB, 4)
    assert out.shape == ids.shape and torch.equal(out[ids == 0], ids[ids == 0])


def _content(row: torch.Tensor) -> list[int]:
    return [t for t in row.tolist() if t not in (0, 2, 3)]


def test_token_deletion_keeps_order_and_specials():
    ids = sentences(2000, 32)
    out = token_deletion(ids, SPECIAL, torch.Generator().manual_seed(0), p=0.1)
    n_in, n_out = (ids > 4).sum().item(), (out > 4).sum().item()
    assert abs(1 - n_out / n_in - 0.1) < 0.01
    for a, b in zip(ids[:50], out[:50], strict=True):
        assert b[0] == 2 and (b == 3).sum() == 1
        kept = _content(b)
        it = iter(_content(a))
        assert all(t in it for t in kept)  # a subsequence: order preserved
        length = int((b != 0).sum())
        assert b[length - 1] == 3 and (b[length:] == 0).all()


def test_span_crop_is_contiguous_and_long_enough():
    ids = sentences(500, 32)
    out = span_crop(ids, SPECIAL, torch.Generator().manual_seed(0), min_fraction=0.6)
    for a, b in zip(ids, out, strict=True):
        src, kept = _content(a), _content(b)
        assert len(kept) >= 0.6 * len(src)
        assert any(src[i : i + len(kept)] == kept for i in range(len(src) - len(kept) + 1))
        assert b[0] == 2 and b[len(kept) + 1] == 3


def test_text_views_pairs_and_identity():
    ids = sentences(6, 12)
    a, b = TextViews(SPECIAL)(ids)
    assert torch.equal(a, trim_padding(ids)) and torch.equal(a, b)
    pairs = torch.stack([ids, sentences(6, 12, seed=1)], dim=1)  # (N, 2, L) supervised rows
    v = TextViews(SPECIAL)(pairs)
    assert len(v) == 2 and torch.equal(v[1], trim_padding(pairs[:, 1]))
    two = TextViews(SPECIAL, [identity, token_deletion])(ids, torch.Generator().manual_seed(0))
    assert len(two) == 2
