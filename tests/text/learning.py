"""Helpers of the text learning checks: the shared data, a short training budget, STS-B."""

from pathlib import Path

from selfsup.encoders.text_transformer import encode_sentences
from selfsup.engine import TrainConfig
from selfsup.eval.sts import sts_spearman

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def short_run(out_dir, steps: int, batch_size: int, lr: float) -> TrainConfig:
    """AdamW with 10 % warm-up, no checkpoints: a learning check's training budget."""
    return TrainConfig(
        steps=steps,
        batch_size=batch_size,
        optimizer="adamw",
        lr=lr,
        weight_decay=0.01,
        warmup_steps=steps // 10,
        channels_last=False,
        out_dir=str(out_dir),
        progress=False,
        log_every=50,
        checkpoint_every=10**9,
    )


def sts_score(encoder, tokenizer, test) -> float:
    """STS-B Spearman of the raw cosine between the encoder's sentence embeddings."""
    a, b = (encode_sentences(encoder, tokenizer, s) for s in (test.first, test.second))
    return sts_spearman(a, b, test.scores)
