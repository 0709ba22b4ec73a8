"""SimCSE learns: a short run on a slice of the shared corpus lifts STS-B above its random init.

Budget: ~100 s of CPU. A 1-layer d=128 Transformer (mean pooling, dropout 0.1), WordPiece 4k
trained on the slice, 150 SimCSE steps of 96 sentences (T=0.05, AdamW 2e-3) through
`selfsup.engine.fit`, on 20,000 Multi30k captions plus the STS-B train/dev sentences (no
scores). STS-B test Spearman of raw cosine is compared with the same encoder at initialization;
a method that does not learn (no gradient, wrong positives, a sign error) stays near it.
Measured with 300 steps of 128 at lr 1e-3: 0.433 -> 0.519.
"""

from __future__ import annotations

import copy

import pytest
import torch

from selfsup.augment.text_views import TextViews
from selfsup.data.text import text_dataset
from selfsup.encoders.text_transformer import TextTransformer
from selfsup.engine import fit
from selfsup.methods.simcse import SimCSE
from tests.text.learning import short_run, sts_score

# Spearman points (x1) over the random-init encoder. The WordPiece trainer (Hugging Face
# tokenizers) breaks frequency ties differently from one training to the next, even in one
# process without parallelism, so the tokenizer and the gain vary: 0.048, 0.063, 0.080 measured
# over three draws (2026-12-01); 0.05 failed one CI run. A method that does not learn gains ~0.
MARGIN = 0.03


@pytest.mark.slow
def test_simcse_beats_random_init_on_stsb(tmp_path, sts_text):
    sts, text, tok = sts_text
    torch.manual_seed(0)
    encoder = TextTransformer(vocab_size=tok.vocab_size, dim=128, depth=1, heads=2)
    random_init = copy.deepcopy(encoder)
    cfg = short_run(tmp_path, steps=150, batch_size=96, lr=2e-3)
    fit(SimCSE(encoder, temperature=0.05), text_dataset(text, tok), TextViews(tok.special_ids), cfg)

    before, after = (sts_score(e, tok, sts["test"]) for e in (random_init, encoder))
    print(f"STS-B test Spearman: random init {before:.3f}, SimCSE {after:.3f}")
    assert after > before + MARGIN
