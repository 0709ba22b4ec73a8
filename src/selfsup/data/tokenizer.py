"""Sub-word tokenizers: train one on the user's corpus, save it with the run, load it back.

Built on Hugging Face `tokenizers` (Rust, fast on CPU). Two models:
  - WordPiece (Devlin et al. 2019, BERT): lower-cased, BERT normalizer and pre-tokenizer;
  - BPE (Sennrich et al. 2016), byte-level as in GPT-2/RoBERTa: no unknown tokens.
Every tokenizer trained here has the same five special tokens at fixed ids, so the encoder can
find padding as `ids == 0`:

    [PAD]=0  [UNK]=1  [CLS]=2  [SEP]=3  [MASK]=4

and wraps every sentence as `[CLS] tokens [SEP]`. An existing `tokenizer.json` (for instance the
one inside a Hugging Face model directory) loads too; its own special ids are then looked up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Names used by other tokenizer families, tried in order when loading a foreign tokenizer.json.
_ALIASES = {
    "pad": ("[PAD]", "<pad>"),
    "unk": ("[UNK]", "<unk>"),
    "cls": ("[CLS]", "<s>"),
    "sep": ("[SEP]", "</s>"),
    "mask": ("[MASK]", "<mask>"),
}


@dataclass
class TextTokenizer:
    """A `tokenizers.Tokenizer` plus the special ids the models and views need.

    `encode(sentences)` returns padded id tensors; `special_mask(ids)` marks the positions that
    masking and deletion must never touch.
    """

    tokenizer: Tokenizer
    pad_id: int
    unk_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    max_length: int = 64

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def special_ids(self) -> torch.Tensor:
        """(5,) long: pad, unk, cls, sep, mask ids."""
        return torch.tensor([self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id])

    def encode(self, sentences: list[str], max_length: int | None = None) -> torch.Tensor:
        """sentences -> ids (N, L) long: `[CLS] ... [SEP]` then pad_id; L = longest <= max_length.

        Sentences longer than max_length are truncated, keeping [SEP] last.
        """
        max_length = max_length or self.max_length
        self.tokenizer.enable_truncation(max_length)
        encodings = self.tokenizer.encode_batch(list(sentences))
        length = max((len(e.ids) for e in encodings), default=0)
        ids = torch.full((len(encodings), length), self.pad_id, dtype=torch.long)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = torch.tensor(enc.ids, dtype=torch.long)
        return ids

    def decode(self, ids: torch.Tensor) -> list[str]:
        """ids: (N, L) long -> N strings, special tokens dropped."""
        texts = self.tokenizer.decode_batch(ids.tolist(), skip_special_tokens=True)
        return [t.strip() for t in texts]  # byte-level BPE decodes its prefix space

    def special_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: (N, L) long -> (N, L) bool, True at pad/unk/cls/sep/mask positions."""
        return torch.isin(ids, self.special_ids.to(ids.device))

    def to_json(self) -> str:
        """The tokenizer.json text `save` writes (truncation at max_length included)."""
        self.tokenizer.enable_truncation(self.max_length)  # saved, and restored by load
        return self.tokenizer.to_str()

    def save(self, path: str | Path) -> Path:
        """Write `tokenizer.json` into `path` (a directory, created) or to `path` (a .json file)."""
        path = Path(path)
        if path.suffix != ".json":
            path.mkdir(parents=True, exist_ok=True)
            path = path / "tokenizer.json"
        self.tokenizer.enable_truncation(self.max_length)  # saved, and restored by load
        self.tokenizer.save(str(path))
        return path


def _wordpiece(lowercase: bool) -> tuple[Tokenizer, trainers.Trainer, list[str]]:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    return tok, trainers.WordPieceTrainer, []


def _bpe(lowercase: bool) -> tuple[Tokenizer, trainers.Trainer, list[str]]:
    # Byte-level BPE as in GPT-2 / RoBERTa: every byte is in the alphabet, so no [UNK] occurs.
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tok.normalizer = normalizers.Sequence(norms)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    return tok, trainers.BpeTrainer, pre_tokenizers.ByteLevel.alphabet()


def train_tokenizer(
    sentences: Iterable[str],
    vocab_size: int = 8000,
    kind: str = "wordpiece",
    lowercase: bool = True,
    min_frequency: int = 2,
    max_length: int = 64,
) -> TextTokenizer:
    """Train a WordPiece or byte-level BPE tokenizer on `sentences`.

    vocab_size 8000: small corpora (~10^5 sentences) leave most of BERT's 30,522 entries
    untrained; 8k keeps words whole for frequent words. min_frequency 2 drops hapaxes.
    """
    if kind == "wordpiece":
        tok, trainer_cls, alphabet = _wordpiece(lowercase)
    elif kind == "bpe":
        tok, trainer_cls, alphabet = _bpe(lowercase)
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}; use 'wordpiece' or 'bpe'")
    trainer = trainer_cls(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=alphabet,
        show_progress=False,  # its bars print blank lines into the run's log
    )
    tok.train_from_iterator(sentences, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return _wrap(tok, max_length)


def _find_id(tok: Tokenizer, role: str) -> int:
    for name in _ALIASES[role]:
        idx = tok.token_to_id(name)
        if idx is not None:
            return idx
    raise ValueError(f"tokenizer has no {role} token (looked for {', '.join(_ALIASES[role])})")


def _wrap(tok: Tokenizer, max_length: int) -> TextTokenizer:
    ids = {role: _find_id(tok, role) for role in _ALIASES}
    return TextTokenizer(
        tok, ids["pad"], ids["unk"], ids["cls"], ids["sep"], ids["mask"], max_length
    )


def load_tokenizer(path: str | Path, max_length: int | None = None) -> TextTokenizer:
    """Load a `tokenizer.json`, or the one inside a directory (e.g. a Hugging Face model dir).

    max_length: None keeps the truncation length saved in the file (64 if it has none).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file at {path}")
    tok = Tokenizer.from_file(str(path))
    if max_length is None:
        max_length = (tok.truncation or {}).get("max_length", 64)
    return _wrap(tok, max_length)
