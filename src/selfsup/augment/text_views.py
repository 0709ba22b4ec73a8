"""Views of token-id batches, made on the batch's device with per-sentence random draws.

Every view takes ids (N, L) long laid out as `[CLS] tokens [SEP] [PAD]...` and `special_ids`
(S,) long with the pad id first (`TextTokenizer.special_ids`: pad, unk, cls, sep, mask); special
tokens are never masked, deleted or cropped away (a rare [UNK] therefore always survives):

  - dropout (SimCSE, Gao et al. 2021): the view is the sentence itself; the encoder's dropout
    makes two passes differ. `identity` below.
  - token masking: BERT's 15 % with 80/10/10 (Devlin et al. 2019), via `augment.masking`.
  - token deletion: drop each content token with probability p (Wu et al. 2020, CLEAR; SimCSE's
    ablation uses p = 0.1), close the gaps, re-pad.
  - span crop: keep one random contiguous span of a fraction of the content tokens (CLEAR's
    "span" / DeCLUTR-style sub-sentence crops).

`TextViews` composes them into the engine's `views(batch, generator) -> list[Tensor]` callable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

import torch

from selfsup.augment.masking import mask_tokens


class Vocabulary(Protocol):
    """What the recipes need of a tokenizer (`selfsup.data.tokenizer.TextTokenizer` has it)."""

    special_ids: torch.Tensor  # (S,) long, the pad id first
    vocab_size: int
    mask_id: int


def trim_padding(ids: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
    """ids: (N, L) -> (N, L') with trailing all-padding columns removed (less compute per batch)."""
    used = (ids != pad_id).any(0).nonzero()
    length = int(used.max()) + 1 if used.numel() else 1
    return ids[..., :length]


def identity(ids: torch.Tensor, special_ids: torch.Tensor, generator=None) -> torch.Tensor:
    """The dropout view: the ids unchanged (SimCSE's noise comes from the encoder's dropout)."""
    return ids


def _compact(ids: torch.Tensor, keep: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Move kept tokens of each row to the front, in order, and pad the rest: (N, L) -> (N, L)."""
    # A stable sort on "not kept" brings kept positions first without reordering them.
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    out = torch.gather(ids, 1, order)
    return out.masked_fill(~torch.gather(keep, 1, order), pad_id)


def token_deletion(
    ids: torch.Tensor,
    special_ids: torch.Tensor,
    generator: torch.Generator | None = None,
    p: float = 0.1,
) -> torch.Tensor:
    """Delete each non-special token with probability p; ids (N, L) -> (N, L), re-padded."""
    special = torch.isin(ids, special_ids)
    drop = torch.rand(ids.shape, generator=generator, device=ids.device) < p
    keep = special | ~drop
    keep &= ids != special_ids[0]  # padding is re-made by _compact
    return _compact(ids, keep, int(special_ids[0]))


def span_crop(
    ids: torch.Tensor,
    special_ids: torch.Tensor,
    generator: torch.Generator | None = None,
    min_fraction: float = 0.6,
) -> torch.Tensor:
    """Keep a random contiguous span of >= min_fraction of each row's content tokens.

    Specials ([CLS], [SEP]) stay; ids (N, L) -> (N, L), re-padded.
    """
    special = torch.isin(ids, special_ids)
    content = ~special
    n_content = content.sum(1, keepdim=True)  # (N, 1)
    rand = torch.rand((ids.shape[0], 2), generator=generator, device=ids.device)
    frac = min_fraction + (1 - min_fraction) * rand[:, :1]
    span = (frac * n_content).ceil().clamp_min(1)
    start = ((n_content - span + 1) * rand[:, 1:]).floor()  # uniform in [0, n_content - span]
    rank = content.cumsum(1) - 1  # index of each content token among its row's content tokens
    keep = (special & (ids != special_ids[0])) | (content & (rank >= start) & (rank < start + span))
    return _compact(ids, keep, int(special_ids[0]))


def token_masking(
    ids: torch.Tensor,
    special_ids: torch.Tensor,
    generator: torch.Generator | None = None,
    vocab_size: int | None = None,
    mask_id: int = 4,
    p: float = 0.15,
) -> torch.Tensor:
    """BERT masking as a view (masked ids only; labels dropped); ids (N, L) -> (N, L)."""
    if vocab_size is None:
        raise ValueError("token_masking needs vocab_size")
    special = torch.isin(ids, special_ids)
    return mask_tokens(ids, special, vocab_size, mask_id, p, generator=generator)[0]


ViewFn = Callable[..., torch.Tensor]


class TextViews:
    """The engine's views callable for text: `views(ids, generator) -> list of (N, L') views`.

    ids: (N, L) long, or (N, K, L) for rows that carry K sentences (supervised pairs/triplets),
    which are split into K views instead (no augmentation; the pair is the view).
    transforms: one function per view, e.g. (identity, identity) for unsupervised SimCSE.
    """

    def __init__(
        self,
        special_ids: torch.Tensor | Sequence[int],
        transforms: Sequence[ViewFn] = (identity, identity),
    ) -> None:
        self.special_ids = torch.as_tensor(special_ids, dtype=torch.long)
        self.pad_id = int(self.special_ids[0])
        self.transforms = list(transforms)

    def __call__(self, ids: torch.Tensor, generator: torch.Generator | None = None) -> list:
        specials = self.special_ids.to(ids.device)
        if ids.dim() == 3:
            return [trim_padding(ids[:, k], self.pad_id) for k in range(ids.shape[1])]
        ids = trim_padding(ids, self.pad_id)
        return [trim_padding(t(ids, specials, generator), self.pad_id) for t in self.transforms]


class MaskedTokenViews:
    """Views for masked-token pretraining: ids (N, L) -> [masked_ids, labels], both (N, L').

    labels hold the original id at the chosen positions and -100 elsewhere (ignored by the loss).
    mlm_probability 0.15 with 80 % [MASK] / 10 % random / 10 % kept: Devlin et al. 2019.
    """

    def __init__(
        self,
        special_ids: torch.Tensor | Sequence[int],
        vocab_size: int,
        mask_id: int,
        mlm_probability: float = 0.15,
    ) -> None:
        self.special_ids = torch.as_tensor(special_ids, dtype=torch.long)
        self.vocab_size, self.mask_id, self.p = vocab_size, mask_id, mlm_probability

    def __call__(self, ids: torch.Tensor, generator: torch.Generator | None = None) -> list:
        ids = trim_padding(ids, int(self.special_ids[0]))
        special = torch.isin(ids, self.special_ids.to(ids.device))
        masked, labels = mask_tokens(ids, special, self.vocab_size, self.mask_id, self.p, generator)
        return [masked, labels]


# Views by name, for configs and the CLI ("masking" needs the vocabulary: see `views_by_name`).
VIEWS: dict[str, ViewFn] = {"identity": identity, "deletion": token_deletion, "crop": span_crop}


def views_by_name(
    names: Sequence[str], special_ids: torch.Tensor, vocab_size: int, mask_id: int
) -> TextViews:
    """TextViews from names in identity | deletion | crop | masking (one name per view)."""
    fns: list[ViewFn] = []
    for name in names:
        if name == "masking":
            fns.append(partial(token_masking, vocab_size=vocab_size, mask_id=mask_id))
        elif name in VIEWS:
            fns.append(VIEWS[name])
        else:
            raise ValueError(f"unknown text view {name!r}; known: {', '.join([*VIEWS, 'masking'])}")
    return TextViews(special_ids, fns)


# Recipes by name, as `selfsup.augment.recipes` holds the image ones: a method registers the name
# of its paper's recipe (`register_method(..., views=...)`) and the text modality looks it up here.
def simcse_views(tokens: Vocabulary) -> TextViews:
    """Unsupervised SimCSE (Gao et al. 2021): the same ids twice; dropout is the only noise (it
    beat deletion, cropping and synonyms in their Table 1)."""
    return TextViews(tokens.special_ids, (identity, identity))


def mlm_views(tokens: Vocabulary) -> MaskedTokenViews:
    """BERT (Devlin et al. 2019): 15 % of the non-special tokens, 80 % [MASK] / 10 % random /
    10 % kept."""
    return MaskedTokenViews(tokens.special_ids, tokens.vocab_size, tokens.mask_id)


RECIPES: dict[str, Callable[[Vocabulary], TextViews | MaskedTokenViews]] = {
    "simcse_views": simcse_views,
    "mlm_views": mlm_views,
}
