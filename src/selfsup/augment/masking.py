"""Random masking for masked prediction: MAE patch masking and BERT token masking."""

from __future__ import annotations

import torch
from torch import Tensor

IGNORE_INDEX = -100  # label of unmasked positions: ignored by F.cross_entropy's default


def random_masking(
    n: int,
    length: int,
    mask_ratio: float = 0.75,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """MAE per-sample random masking (He et al. 2022; mask ratio 0.75 is MAE's default).

    Shuffle each sample's positions by sorting uniform noise; keep the first
    L_keep = int(length * (1 - mask_ratio)).
    Returns ids_keep: (n, L_keep) long, positions kept (in shuffled order);
    mask: (n, length) float, 1 = masked, 0 = kept, in the original order;
    ids_restore: (n, length) long, the inverse shuffle: gathering [kept tokens, mask tokens]
    with it puts every token back at its original position.
    """
    n_keep = int(length * (1 - mask_ratio))
    noise = torch.rand(n, length, device=device, generator=generator)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    mask = torch.ones(n, length, device=device)
    mask[:, :n_keep] = 0.0
    return ids_shuffle[:, :n_keep], mask.gather(1, ids_restore), ids_restore


def mask_tokens(
    input_ids: Tensor,
    special_mask: Tensor,
    vocab_size: int,
    mask_token_id: int,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT masked-language-model corruption (Devlin et al. 2019, Sec. 3.1).

    Each non-special position is chosen with probability mlm_probability (0.15); of the chosen,
    80 % become [MASK], 10 % a random token from the whole vocabulary, 10 % stay unchanged.
    input_ids: (N, L) long; special_mask: (N, L) bool, True = never chosen (CLS, SEP, padding).
    Returns masked_ids: (N, L) long (a new tensor) and labels: (N, L) long, the original id at
    chosen positions and -100 elsewhere.
    """
    u = torch.rand(3, *input_ids.shape, device=input_ids.device, generator=generator)
    chosen = (u[0] < mlm_probability) & ~special_mask
    labels = torch.where(chosen, input_ids, IGNORE_INDEX)
    to_mask = chosen & (u[1] < 0.8)
    to_random = chosen & ~to_mask & (u[2] < 0.5)  # half of the remaining 20 %
    random_ids = torch.randint(
        vocab_size, input_ids.shape, device=input_ids.device, generator=generator
    )
    masked = torch.where(to_mask, mask_token_id, input_ids)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels
