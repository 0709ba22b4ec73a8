import sys

import pytest

from selfsup.encoders.hf_text import HFTextEncoder


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Hugging Face"):
        HFTextEncoder(tmp_path / "nope")


def test_missing_transformers_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import now raises ImportError
    with pytest.raises(ImportError, match="optional package `transformers`"):
        HFTextEncoder(tmp_path)
