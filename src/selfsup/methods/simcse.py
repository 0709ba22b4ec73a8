"""SimCSE (Gao, Yao, Chen 2021): contrastive sentence embeddings through the InfoNCE loss.

Unsupervised: the two views of a sentence are the sentence itself passed twice through the
encoder; only the dropout masks differ (views from `TextViews` with two `identity`
transforms). Supervised: a sentence and its positive (e.g. an entailment pair), with an
optional hard negative per row whose embeddings join every anchor's negatives. Temperature 0.05
is the paper's, cosine similarity, in-batch negatives, the loss on the anchor side only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import selfsup.encoders.text_transformer  # noqa: F401  (registers the text encoders)
from selfsup.augment.text_views import MaskedTokenViews, views_by_name
from selfsup.data.memory import InMemoryDataset
from selfsup.data.text import read_corpus, read_pairs, text_dataset
from selfsup.data.tokenizer import TextTokenizer, load_tokenizer, train_tokenizer
from selfsup.dist import gather_with_grad, world_size
from selfsup.encoders.registry import create_encoder
from selfsup.encoders.text_transformer import sif_weights
from selfsup.losses.functional import info_nce
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.mlm import MaskedLanguageModel


def pad_cat(views: list[torch.Tensor], pad_id: int = 0) -> torch.Tensor:
    """K tensors (N_k, L_k) long -> (sum N_k, max L_k), right-padded with pad_id."""
    length = max(v.shape[1] for v in views)
    return torch.cat([F.pad(v, (0, length - v.shape[1]), value=pad_id) for v in views])


class SimCSE(Method):
    """backbone (text encoder, pooled (N, D)) [-> projector] -> InfoNCE between views.

    views: [anchor, positive] or [anchor, positive, hard_negative], each (N, L_k) long.
    projector: optional head used in training only (the paper's unsupervised model trains with
    an MLP over [CLS] and drops it at test time); `encode` always returns backbone features.
    """

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float = 0.05,
        projector: nn.Module | None = None,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector if projector is not None else nn.Identity()
        self.temperature, self.pad_id = temperature, pad_id

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        if len(views) not in (2, 3):
            raise ValueError(
                f"SimCSE takes 2 or 3 views (anchor, positive[, negative]), got {len(views)}"
            )
        if views[0].shape[0] * world_size() < 2:  # no in-batch negative: the loss is 0
            raise ValueError(
                "SimCSE needs >= 2 sentences in a batch: the other sentences are the negatives "
                "(with 1 the loss is 0 and nothing is learned); use train.batch_size >= 2 "
                "(the paper: 64 unsupervised, 512 supervised)."
            )
        # One forward for all views: every row draws its own dropout mask.
        z = self.projector(self.backbone(pad_cat(views, self.pad_id)))  # (K N, D)
        z = F.normalize(z.float(), dim=-1).chunk(len(views))
        # Hard negatives of every rank join each anchor's denominator (Gao et al. eq. 5);
        # info_nce never gathers `negatives` itself (they are usually a queue).
        negatives = gather_with_grad(z[2]) if len(views) == 3 else None
        loss = info_nce(z[0], z[1], self.temperature, negatives=negatives, gather=True)
        with torch.no_grad():
            logs = {"positive_cosine": (z[0] * z[1]).sum(-1).mean()}
        return StepOutput(loss=loss, z=(z[0], z[1]), logs=logs)


@dataclass
class TextRun:
    """Everything `selfsup.engine.fit` needs for a text run, plus the tokenizer to save with it."""

    method: Method
    train: InMemoryDataset
    views: Callable[..., list[torch.Tensor]]
    tokenizer: TextTokenizer


def build_text_run(
    method_name: str,
    data_path: str | Path | list[str | Path],
    tokenizer_path: str | Path | None = None,
    encoder: str = "text_transformer_mini",
    vocab_size: int = 8000,
    tokenizer_kind: str = "wordpiece",
    max_length: int = 64,
    pooling: str = "mean",
    temperature: float = 0.05,
    view_names: tuple[str, ...] = ("identity", "identity"),
    encoder_kwargs: dict | None = None,
) -> TextRun:
    """Read the data, train (or load) the tokenizer, build encoder, method and views.

    method_name: "mlm" (Devlin et al. 2019) or "simcse" (Gao et al. 2021). data_path: corpus
    file(s) / directory, one sentence a line (plain or .gz); for supervised SimCSE a `.tsv` of
    `sentence<TAB>positive[<TAB>hard negative]` rows. tokenizer_path: an existing
    tokenizer.json (or a directory holding one) instead of training one on the data.
    pooling "weighted" gets the smooth-inverse-frequency weights of the data's tokens
    (Arora et al. 2017; docs/text.md: 49.8 -> 68.6 STS-B raw on the same random bag of words).
    """
    supervised = method_name == "simcse" and str(data_path).endswith(".tsv")
    columns = read_pairs(data_path) if supervised else None
    sentences = [s for col in columns for s in col] if columns else read_corpus(data_path)
    if tokenizer_path is not None:
        tok = load_tokenizer(tokenizer_path, max_length)
    else:
        tok = train_tokenizer(sentences, vocab_size, tokenizer_kind, max_length=max_length)
    kwargs = {"pooling": pooling, "pad_id": tok.pad_id, **(encoder_kwargs or {})}
    backbone = create_encoder(encoder, vocab_size=tok.vocab_size, **kwargs)
    train = text_dataset(columns or sentences, tok, name=str(data_path))
    if getattr(backbone, "pooling", None) == "weighted":  # SIF weights from this very text
        backbone.set_token_weights(sif_weights(train.inputs, tok.vocab_size, tok.special_ids))
    if method_name == "mlm":
        views = MaskedTokenViews(tok.special_ids, tok.vocab_size, tok.mask_id)
        return TextRun(MaskedLanguageModel(backbone), train, views, tok)
    if method_name != "simcse":
        raise ValueError(f"unknown text method {method_name!r}; use 'mlm' or 'simcse'")
    views = views_by_name(view_names, tok.special_ids, tok.vocab_size, tok.mask_id)
    return TextRun(SimCSE(backbone, temperature, pad_id=tok.pad_id), train, views, tok)
