"""#16: the inputs a text run newly reads (evaluation sets, data_args, a run folder's
tokenizer) meet the hostile-input bar: the file (and line) named with the fix, exit 2."""

from __future__ import annotations

import re
import shutil

import pytest

import selfsup
from selfsup.cli import main


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(f"a {w} is on the {o}" for w in "abcdefgh" for o in "xyz") + "\n")
    return path


def _pretrain(tmp_path, corpus, *extra: str) -> int:
    argv = [
        "pretrain",
        "--modality",
        "text",
        "--data",
        str(corpus),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "1",
        "--batch-size",
        "8",
        "--no-progress",
        "--set",
        "encoder=text_transformer_tiny",
        "--set",
        "data_args.vocab_size=40",
    ]
    return main([*argv, *extra])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"1\tgood sentence\n0\tbad \xff byte\n", r"bad\.tsv:2: not UTF-8"),
        (b"1\tgood sentence\nlonely\n", r"bad\.tsv:2: expected a label"),
        (b"\n\n", r"bad\.tsv: empty"),
    ],
)
def test_a_broken_evaluation_file_names_file_and_line(tmp_path, corpus, capsys, content, message):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(content)
    assert _pretrain(tmp_path, corpus, "--eval-data", str(bad)) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err


def test_missing_or_empty_evaluation_folders_say_what_to_give(tmp_path, corpus, capsys):
    assert _pretrain(tmp_path, corpus, "--eval-data", str(tmp_path / "nope")) == 2
    assert "no such evaluation file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert _pretrain(tmp_path, corpus, "--eval-data", str(tmp_path / "empty")) == 2
    assert "no evaluation files" in capsys.readouterr().err


def test_unknown_data_args_and_a_missing_tokenizer_are_named(tmp_path, corpus, capsys):
    assert _pretrain(tmp_path, corpus, "--set", "data_args.vocab=10") == 2
    assert "data_args: unknown key 'vocab'" in capsys.readouterr().err
    missing = tmp_path / "tok" / "tokenizer.json"
    assert _pretrain(tmp_path, corpus, "--set", f"data_args.tokenizer={missing}") == 2
    assert "tokenizer.json" in capsys.readouterr().err


def test_a_text_run_without_its_tokenizer_says_so(tmp_path, corpus, capsys):
    assert _pretrain(tmp_path, corpus, "--no-eval") == 0
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "run", copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json: missing"):
        selfsup.load(copy)
    capsys.readouterr()
    sentences = tmp_path / "s.txt"
    sentences.write_text("a b\n")
    assert main(["embed", str(copy), "--data", str(sentences), "--out", str(tmp_path / "e")]) == 2
    assert "tokenizer.json: missing" in capsys.readouterr().err
