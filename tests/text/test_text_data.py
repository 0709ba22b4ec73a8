import gzip

import pytest
import torch

from selfsup.data.text import (
    aligned_pairs,
    read_corpus,
    read_labeled,
    read_pairs,
    read_sts,
    text_dataset,
)
from selfsup.data.tokenizer import train_tokenizer


def test_corpus_plain_gzip_directory(tmp_path):
    (tmp_path / "a.txt").write_text("first line\n\n  second line  \n")
    with gzip.open(tmp_path / "b.gz", "wt") as f:
        f.write("third line\nfirst line\n")
    assert read_corpus(tmp_path / "a.txt") == ["first line", "second line"]
    assert read_corpus(tmp_path) == ["first line", "second line", "third line", "first line"]
    assert read_corpus(tmp_path, unique=True) == ["first line", "second line", "third line"]
    assert read_corpus([tmp_path / "b.gz"], max_lines=1) == ["third line"]
    with pytest.raises(FileNotFoundError):
        read_corpus(tmp_path / "missing.txt")


def test_sts_formats(tmp_path):
    stsb = "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane.\tAn air plane.\textra\n"
    (tmp_path / "sts.csv").write_text(stsb + stsb.replace("5.000", "1.5"))
    (tmp_path / "pairs.tsv").write_text("one\ttwo\t3.5\nthree\tfour\t0\n")
    p = read_sts(tmp_path / "sts.csv")
    assert p.first == ["A plane."] * 2 and p.second == ["An air plane."] * 2
    assert torch.allclose(p.scores, torch.tensor([5.0, 1.5]))
    q = read_sts(tmp_path / "pairs.tsv")
    assert q.first == ["one", "three"] and q.sentences() == ["one", "three", "two", "four"]
    assert torch.allclose(q.scores, torch.tensor([3.5, 0.0]))


def test_pairs(tmp_path):
    (tmp_path / "p.tsv").write_text("a\tb\tc\nd\te\tf\n")
    assert read_pairs(tmp_path / "p.tsv") == [["a", "d"], ["b", "e"], ["c", "f"]]
    (tmp_path / "bad.tsv").write_text("a\tb\nc\n")
    with pytest.raises(ValueError):
        read_pairs(tmp_path / "bad.tsv")


def test_labeled_formats(tmp_path):
    (tmp_path / "sst.txt").write_text("1 great movie .\n0 dull .\n")
    (tmp_path / "trec.txt").write_text("NUM:dist How far ?\nHUM:ind Who ?\n")
    (tmp_path / "ag.csv").write_text('Class Index,Title,Description\n2,Win,"Team\\wins"\n')
    (tmp_path / "x.tsv").write_text("pos\tgood\nneg\tbad\npos\tfine\n")
    sst = read_labeled(tmp_path / "sst.txt", "sst2")
    assert sst.texts == ["great movie .", "dull ."] and sst.labels.tolist() == [1, 0]
    trec = read_labeled(tmp_path / "trec.txt", "trec")
    assert [trec.classes[i] for i in trec.labels] == ["NUM", "HUM"]
    ag = read_labeled(tmp_path / "ag.csv", "agnews")
    assert ag.labels.tolist() == [1] and ag.classes[1] == "Sports" and "\\" not in ag.texts[0]
    x = read_labeled(tmp_path / "x.tsv")
    assert x.classes == ["neg", "pos"] and x.labels.tolist() == [1, 0, 1]


def test_text_dataset_single_and_pairs():
    tok = train_tokenizer(["a b c d", "e f g", "a e"] * 10, vocab_size=100)
    ds = text_dataset(["a b c d", "e f"], tok, labels=torch.tensor([0, 1]), classes=["x", "y"])
    assert ds.inputs.shape == (2, 6) and ds[1][1] == 1
    pairs = text_dataset([["a b c d", "e"], ["a", "e f g"]], tok)
    assert pairs.inputs.shape == (2, 2, 6) and pairs.targets is None
    assert (pairs.inputs[:, :, 0] == tok.cls_id).all()


def test_aligned_pairs_pair_lines_of_different_files(tmp_path):
    files = []
    for k in range(3):
        files.append(tmp_path / f"captions.{k}.txt")
        files[-1].write_text("".join(f"image{i} caption{k}\n" for i in range(20)))
    first, second = aligned_pairs(files, pairs_per_line=2, seed=0)
    assert len(first) == len(second) == 40
    for a, b in zip(first, second, strict=True):
        assert a.split()[0] == b.split()[0] and a != b  # same line, two different files
    assert (first, second) == tuple(aligned_pairs(files, pairs_per_line=2, seed=0))
    (tmp_path / "short.txt").write_text("one line\n")
    with pytest.raises(ValueError, match="same number of lines"):
        aligned_pairs([files[0], tmp_path / "short.txt"])
