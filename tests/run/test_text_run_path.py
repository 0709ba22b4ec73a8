"""#16: a text run walks the image run's path: evaluation table with baselines, report,
`selfsup evaluate` on the run's own numbers, `embed`, `export`, `selfsup.load`."""

import json

import numpy as np
import pytest
import torch

import selfsup
from selfsup.cli import main

ANIMALS = ["dog", "cat", "horse", "bird"]
PLACES = ["park", "street", "beach", "field"]


def _sentences() -> list[str]:
    return [f"a {a} runs in the {p} {i}" for a in ANIMALS for p in PLACES for i in range(6)]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    (root / "corpus.txt").write_text("\n".join(_sentences()) + "\n")
    sts = [f"a {a} runs in the {p}\ta {b} runs in the {p}\t{5.0 if a == b else 1.0}"
           for a in ANIMALS for b in ANIMALS for p in PLACES]  # fmt: skip
    (root / "pairs.tsv").write_text("\n".join(sts) + "\n")
    labeled = [f"{a}\tthe {a} sleeps near the {p} {i}" for a in ANIMALS for p in PLACES
               for i in range(5)]  # fmt: skip
    (root / "animals.tsv").write_text("\n".join(labeled) + "\n")
    argv = ["pretrain", "--modality", "text", "--data", str(root / "corpus.txt"),
            "--eval-data", str(root / "pairs.tsv"), str(root / "animals.tsv"),
            "--out", str(root / "run"), "--steps", "3", "--batch-size", "16", "--no-progress",
            "--set", "encoder=text_transformer_tiny", "--set", "data_args.vocab_size=80",
            "--set", "train.precision=fp32"]  # fmt: skip
    assert main(argv) == 0
    return root


def test_text_run_ends_like_an_image_run(text_run):
    run = text_run / "run"
    results = json.loads((run / "results.json").read_text())
    rows = results["eval"]
    assert list(rows) == ["TF-IDF", "random init", "simcse (trained)"]
    assert set(rows["simcse (trained)"]) == {"pairs raw", "pairs whitened", "animals"}
    assert set(rows["TF-IDF"]) == {"pairs raw", "animals"}
    assert all(-1 <= v <= 1 for r in rows.values() for v in r.values())
    assert results["report"]["sections"] == ["curves", "health", "sts", "neighbours",
                                             "embedding-map"]  # fmt: skip
    page = (run / "report.html").read_text()
    for section in ("sts", "neighbours", "embedding-map", "health"):
        assert f'id="{section}"' in page
    assert 'id="views"' not in page
    assert "emb_std_ratio" in (run / "metrics.jsonl").read_text()  # health during training
    assert (run / "tokenizer.json").exists()


def test_evaluate_reproduces_the_runs_own_numbers(text_run, capsys):
    run = text_run / "run"
    trained = json.loads((run / "results.json").read_text())["eval"]["simcse (trained)"]
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row == pytest.approx(trained, abs=1e-9)
    assert main(["evaluate", str(run), "--data", str(text_run / "pairs.tsv")]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(row) == {"pairs raw", "pairs whitened"}


def test_load_gives_the_encoder_the_run_evaluated(text_run):
    """The STS cosines the run saved for its report come back from `selfsup.load`."""
    run = text_run / "run"
    model = selfsup.load(run)
    assert not model.encoder.training and model.tokenizer is not None
    lines = (text_run / "pairs.tsv").read_text().splitlines()
    first, second = zip(*(line.split("\t")[:2] for line in lines), strict=True)
    a, b = model.encode(list(first)), model.encode(list(second))
    cos = torch.nn.functional.cosine_similarity(a.double(), b.double()).numpy()
    with np.load(run / "report_data.npz") as saved:
        assert np.allclose(cos, saved["sts_pred"], atol=1e-5)


def test_embed_and_export_a_text_run(text_run, tmp_path):
    run = text_run / "run"
    sentences = tmp_path / "s.txt"
    sentences.write_text("a dog runs\n\na cat sleeps\n")
    assert main(["embed", str(run), "--data", str(sentences), "--out", str(tmp_path / "e")]) == 0
    emb = np.load(tmp_path / "e.npy")
    index = (tmp_path / "e.index.csv").read_text().splitlines()
    assert emb.shape == (2, 128) and index[1:] == ["s.txt,1,", "s.txt,3,"]
    assert np.allclose(emb, selfsup.load(run).encode(["a dog runs", "a cat sleeps"]), atol=1e-5)
    out = tmp_path / "enc.pt"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 0
    model = selfsup.load(run)  # traced on 2 short sentences, it reads any length
    ids = model.modality.preprocess(["a dog runs in the park and then in the street", "cat"])
    exported = torch.jit.load(str(out))
    assert torch.allclose(exported(ids), model.encoder(ids), atol=1e-5)


def test_text_mistakes_exit_2_naming_the_fix(tmp_path, capsys):
    base = ["pretrain", "--modality", "text", "--out", str(tmp_path / "r"), "--steps", "1"]
    assert main(base) == 2  # no --data: the image default
    assert "--modality text needs --data" in capsys.readouterr().err
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\nd e f\n")
    assert main([*base, "--data", str(corpus), "--method", "simclr"]) == 2
    assert "simcse_views, mlm_views" in capsys.readouterr().err
    assert main([*base, "--data", str(corpus), "--labels", "x.csv"]) == 2
    assert "image setting" in capsys.readouterr().err
    assert main([*base, "--data", str(corpus), "--modality", "video"]) == 2
    assert "use one of image, text" in capsys.readouterr().err
