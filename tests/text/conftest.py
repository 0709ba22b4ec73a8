"""Shared set-up of the text learning checks: STS-B and a slice of the unlabeled corpus."""

import pytest

from selfsup.data.text import load_benchmark, read_corpus
from selfsup.data.tokenizer import train_tokenizer
from tests.text.learning import SHARED


@pytest.fixture(scope="session")
def sts_text():
    """(STS-B {train, dev, test}, 20,000 Multi30k captions + STS-B train/dev sentences without
    scores, a WordPiece 4k tokenizer trained on that text)."""
    if not (SHARED / "text").exists():
        pytest.skip(f"{SHARED / 'text'} is absent: this test needs the shared data beside the repo")
    sts = {s: load_benchmark("stsb", s, SHARED) for s in ("train", "dev", "test")}
    corpus = SHARED / "text" / "corpus" / "multi30k-task1-train.en.gz"
    text = read_corpus(corpus, max_lines=20000) + sts["train"].sentences() + sts["dev"].sentences()
    return sts, text, train_tokenizer(text, vocab_size=4000, max_length=40)
