"""Any Hugging Face `transformers` text model from a LOCAL directory, as a selfsup encoder.

For users who already have a model on disk (`save_pretrained` output: config.json, weights,
usually tokenizer.json). Nothing is downloaded (`local_files_only=True`). `transformers` is an
optional dependency, imported only when this encoder is built.

    enc = create_encoder("hf_text", path="/models/my-bert", pooling="mean")
    tok = load_tokenizer("/models/my-bert")          # its tokenizer.json
    enc = create_encoder("hf_text", path=..., pad_id=tok.pad_id)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from selfsup.encoders.registry import register_encoder


def _require_transformers():
    try:
        import transformers
    except ImportError as e:
        raise ImportError(
            "the hf_text encoder needs the optional package `transformers` "
            "(pip install transformers); the built-in text_transformer_* encoders do not"
        ) from e
    return transformers


def _auto_model(path: Path) -> nn.Module:
    """`AutoModel` from a local directory; under `torch.device("meta")` from config.json alone.

    `load_encoder` builds on the meta device first, to count parameters before allocating them;
    `from_pretrained` refuses that device (it reads weights), `from_config` builds the same model.
    """
    transformers = _require_transformers()
    if torch.get_default_device().type == "meta":
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
        return transformers.AutoModel.from_config(config)
    return transformers.AutoModel.from_pretrained(str(path), local_files_only=True)


class HFTextEncoder(nn.Module):
    """A `transformers.AutoModel` -> (N, L, D) token features and (N, D) pooled embeddings.

    ids: (N, L) long; attention mask = ids != pad_id. pooling: "mean" over non-padding tokens
    or "cls" (first token). pad_id: None reads `config.pad_token_id` (0 when unset, as BERT).
    """

    def __init__(self, path: str | Path, pooling: str = "mean", pad_id: int | None = None):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        path = Path(path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"no local Hugging Face model directory at {path}")
        self.model = _auto_model(path)
        config = self.model.config
        self.num_features = config.hidden_size
        self.pooling = pooling
        self.pad_id = pad_id if pad_id is not None else (config.pad_token_id or 0)

    @property
    def token_embedding(self) -> nn.Embedding:
        """The input embedding (lets the masked-token head tie its decoder to it)."""
        return self.model.get_input_embeddings()

    def forward_features(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: (N, L) long -> (N, L, D) last hidden states."""
        mask = (ids != self.pad_id).long()
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: (N, L) long -> (N, D) pooled."""
        h = self.forward_features(ids)
        if self.pooling == "cls":
            return h[:, 0]
        keep = (ids != self.pad_id).unsqueeze(-1).to(h.dtype)
        return (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)


@register_encoder
def hf_text(path: str, pooling: str = "mean", pad_id: int | None = None) -> HFTextEncoder:
    """A Hugging Face text model from a local directory (needs `transformers`)."""
    return HFTextEncoder(path, pooling, pad_id)
