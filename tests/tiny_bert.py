"""A tiny randomly initialized BERT saved to a local folder: what `hf_text` loads in tests (no
download; skips when the optional transformers package is absent)."""

from pathlib import Path

import pytest


def save_tiny_bert(path: Path, vocab_size: int = 64, width: int = 32, layers: int = 2) -> Path:
    """Save a BertModel of `layers` x `width` (2 heads, FFN 2 x width) to `path`; return it."""
    transformers = pytest.importorskip(
        "transformers", reason="transformers is optional and not installed: hf_text is untested"
    )
    config = transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * width,
        max_position_embeddings=width,
    )
    transformers.BertModel(config).save_pretrained(path)
    return path
