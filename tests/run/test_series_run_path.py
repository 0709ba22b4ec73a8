"""#17: a time-series run walks the one run path (table with the TS2Vec SVM beside raw series and
random init, report, evaluate on the run's own numbers, load, embed, export), and learns."""

import json
import shutil

import numpy as np
import pytest
import torch

import selfsup
from selfsup.cli import main
from tests.data.test_series_files import SHARED_ARCHIVE, shared_series_root

SMALL = ["--set", "encoder_args={hidden: 8, out_dim: 16, depth: 2}"]


def _series(n_per_class: int = 20, length: int = 32, seed: int = 0):
    """Two classes of 2-channel series: noisy sines and noisy square waves, some shorter."""
    g = np.random.default_rng(seed)
    t = np.linspace(0, 4 * np.pi, length)
    x = np.empty((2 * n_per_class, 2, length), np.float32)
    for i in range(2 * n_per_class):
        wave = np.sin(t + g.uniform(0, 6)) if i % 2 == 0 else np.sign(np.sin(t + g.uniform(0, 6)))
        x[i] = wave + 0.2 * g.normal(size=(2, length))
    x[::5, :, length - 6 :] = np.nan  # a few shorter series (NaN end padding)
    return x, ["sine" if i % 2 == 0 else "square" for i in range(2 * n_per_class)]


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("series")
    x, labels = _series()
    np.save(root / "x.npy", x)
    (root / "y.txt").write_text("\n".join(labels) + "\n")
    argv = ["pretrain", "--modality", "timeseries", "--data", str(root / "x.npy"),
            "--labels", str(root / "y.txt"), "--out", str(root / "run"), "--steps", "3",
            "--no-progress", *SMALL]  # fmt: skip
    assert main(argv) == 0
    return root


def test_series_run_ends_like_an_image_run(series_run):
    run = series_run / "run"
    results = json.loads((run / "results.json").read_text())
    assert list(results["eval"]) == ["raw series", "random init", "ts2vec (trained)"]
    for row in results["eval"].values():
        assert {"svm_acc", "knn_top1", "linear_top1"} <= set(row)
    assert results["report"]["sections"] == ["curves", "health", "series-views",
                                             "embedding-map", "per-class"]  # fmt: skip
    page = (run / "report.html").read_text()
    for section in ("series-views", "per-class", "embedding-map", "health"):
        assert f'id="{section}"' in page
    assert "emb_std_ratio" in (run / "metrics.jsonl").read_text()


def test_evaluate_load_embed_export_a_series_run(series_run, tmp_path, capsys):
    run = series_run / "run"
    trained = json.loads((run / "results.json").read_text())["eval"]["ts2vec (trained)"]
    labels = str(series_run / "y.txt")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--labels", labels, "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row == pytest.approx(trained, abs=1e-9)
    model = selfsup.load(run)
    assert not model.encoder.training
    out = tmp_path / "e.npy"
    assert main(["embed", str(run), "--data", str(series_run / "x.npy"), "--out", str(out)]) == 0
    emb = np.load(out)
    assert emb.shape == (40, 16)
    x = torch.from_numpy(np.load(series_run / "x.npy"))  # raw, as the user has it
    index = (tmp_path / "e.index.csv").read_text().splitlines()[1:]
    rows = [int(line.split(",")[1].rsplit(":", 1)[1]) for line in index]  # file:row sources
    # embed and load both scale new series with the run's normalization.json.
    assert sorted(rows) == list(range(40))
    assert np.allclose(emb, model.encode(x[rows]).numpy(), atol=1e-5)
    pt = tmp_path / "enc.pt"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(pt)]) == 0
    exported = torch.jit.load(str(pt))
    probe = torch.randn(3, 2, 20)
    assert torch.allclose(exported(probe), model.encoder(probe), atol=1e-5)
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "normalization.json").write_text('{"kind": "channel", "mean": [0], "std": [-1]}')
    with pytest.raises(ValueError, match="normalization.json: not a normalization record"):
        selfsup.load(broken)


@pytest.mark.parametrize(
    "method, encoder, views",
    [("simclr", "gru", "series_simclr_views"), ("cpc", "fcn", ""), ("byol", "lstm", "tstcc_views")],
)
def test_other_methods_and_encoders_run_on_series(tmp_path, method, encoder, views):
    x, labels = _series(n_per_class=8)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "y.txt").write_text("\n".join(labels) + "\n")
    argv = ["pretrain", "--modality", "timeseries", "--data", str(tmp_path / "x.npy"),
            "--labels", str(tmp_path / "y.txt"), "--out", str(tmp_path / "run"), "--steps", "2",
            "--no-progress", "--method", method, "--encoder", encoder, "--batch-size", "8",
            "--set", "eval.report=false", "--set", "eval.baselines=false"]  # fmt: skip
    argv += ["--set", f"views={views}"] if views else []
    argv += ["--set", "method_args={proj_hidden_dim: 16, proj_dim: 8, pred_hidden_dim: 8}"] * (
        method == "byol"
    ) + ["--set", "method_args={proj_hidden_dim: 16, proj_dim: 8}"] * (method == "simclr")
    assert main(argv) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert "svm_acc" in results["eval"][f"{method} (trained)"]


@pytest.mark.slow
def test_ts2vec_beats_its_random_init_on_arrowhead(tmp_path):
    """100 TS2Vec steps of a small dilated CNN on ArrowHead (36 train series): the TS2Vec SVM
    on its representations beats the same encoder at initialization by a margin (measured
    81.1 / 81.7 vs 72.6 on seeds 0 / 1; a method that learns nothing stays at 72.6)."""
    root = shared_series_root()
    if root is None:
        pytest.skip(f"{SHARED_ARCHIVE} is absent: this test needs the shared data beside the repo")
    cfg = selfsup.run_config(None, [
        f"data={root / 'UCR' / 'ArrowHead'}", f"train.out_dir={tmp_path / 'run'}",
        "train.steps=100", "train.progress=false", "eval.report=false",
        "encoder_args={hidden: 32, out_dim: 128, depth: 6}",
    ], "timeseries")  # fmt: skip
    rows = selfsup.pretrain(cfg, log=lambda *a: None)["eval"]
    trained, random = rows["ts2vec (trained)"]["svm_acc"], rows["random init"]["svm_acc"]
    assert trained >= random + 0.04 and trained >= 0.78, rows
