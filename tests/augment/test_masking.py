"""MAE random masking and BERT token masking."""

from __future__ import annotations

import torch

from selfsup.augment.masking import mask_tokens, random_masking


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_masking_keeps_the_requested_fraction_per_sample():
    ids_keep, mask, ids_restore = random_masking(32, 196, 0.75, generator=_gen(0))
    n_keep = int(196 * 0.25)
    assert ids_keep.shape == (32, n_keep) and ids_keep.dtype == torch.long
    assert mask.shape == (32, 196) and mask.dtype == torch.float32
    assert (mask.sum(dim=1) == 196 - n_keep).all()
    assert (mask.gather(1, ids_keep) == 0).all()  # kept positions are the unmasked ones
    assert (ids_keep.sort(dim=1).values.diff(dim=1) > 0).all()  # no position kept twice
    assert len({tuple(m) for m in mask.long().tolist()}) == 32  # a mask per sample


def test_ids_restore_inverts_the_shuffle():
    n, length = 8, 50
    ids_keep, mask, ids_restore = random_masking(n, length, 0.6, generator=_gen(1))
    tokens = torch.randn(n, length, 4)
    kept = tokens.gather(1, ids_keep.unsqueeze(-1).expand(-1, -1, 4))
    # MAE's decoder input: kept tokens, then mask tokens (zeros here), un-shuffled.
    filler = torch.zeros(n, length - kept.shape[1], 4)
    shuffled = torch.cat((kept, filler), dim=1)
    restored = shuffled.gather(1, ids_restore.unsqueeze(-1).expand(-1, -1, 4))
    keep = mask == 0
    assert torch.equal(restored[keep], tokens[keep])
    assert (restored[~keep] == 0).all()


def test_random_masking_seeds():
    a = random_masking(4, 16, 0.5, generator=_gen(2))
    b = random_masking(4, 16, 0.5, generator=_gen(2))
    c = random_masking(4, 16, 0.5, generator=_gen(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[1], c[1])


def test_bert_masking_statistics_and_special_tokens():
    n, length, vocab, mask_id = 256, 128, 1000, 3
    ids = torch.randint(5, vocab, (n, length), generator=_gen(4))
    special = torch.zeros(n, length, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True  # [CLS] ... [SEP]
    special[:, -20:] = True  # padding
    masked, labels = mask_tokens(ids, special, vocab, mask_id, 0.15, generator=_gen(5))

    chosen = labels != -100
    assert not chosen[special].any() and torch.equal(masked[special], ids[special])
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])  # unchosen positions are untouched
    rate = chosen.sum() / (~special).sum()
    assert abs(rate - 0.15) < 0.01
    n_chosen = chosen.sum()
    to_mask = (masked == mask_id) & chosen
    unchanged = (masked == ids) & chosen
    to_random = chosen & ~to_mask & ~unchanged
    assert abs(to_mask.sum() / n_chosen - 0.8) < 0.02
    # A random draw can hit the original token (1 / vocab): it then counts as unchanged.
    assert abs(to_random.sum() / n_chosen - 0.1) < 0.015
    assert abs(unchanged.sum() / n_chosen - 0.1) < 0.015
    assert masked.dtype == torch.long and (masked >= 0).all() and (masked < vocab).all()
