"""Evaluation and embedding on hostile inputs: one class, non-finite weights, odd file names."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file, save_file

from selfsup.cli import main
from selfsup.data import load_digits
from selfsup.eval.protocol import evaluate_encoder

FAST = ["--encoder", "convnet_small", "--set", "encoder_args={width: 4}", "--steps", "2"]
FAST += ["--batch-size", "8", "--no-progress", "--set", "eval.finetune=false"]
FAST += ["--set", "eval.report=false"]


def _images(root: Path, names_per_class: dict[str, list[str]]) -> Path:
    rng = np.random.default_rng(0)
    for c, names in names_per_class.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for name in names:
            arr = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / name)
    return root


@pytest.fixture(scope="module")
def one_class(tmp_path_factory) -> Path:
    return _images(tmp_path_factory.mktemp("one"), {"only": [f"{i}.png" for i in range(10)]})


@pytest.fixture(scope="module")
def two_class_run(tmp_path_factory) -> Path:
    root = _images(
        tmp_path_factory.mktemp("two"), {c: [f"{i}.png" for i in range(8)] for c in "ab"}
    )
    out = tmp_path_factory.mktemp("run") / "r"
    assert main(["pretrain", "--data", str(root), "--out", str(out), *FAST]) == 0
    return out


def test_one_class_pretrain_skips_evaluation_with_a_note(one_class, tmp_path, capsys):
    """#15.9: one class would score 100 % on every metric: pretrain says why it skips."""
    out = tmp_path / "r"
    assert main(["pretrain", "--data", str(one_class), "--out", str(out), *FAST]) == 0
    assert "evaluation skipped" in capsys.readouterr().out
    assert "eval" not in json.loads((out / "results.json").read_text())


def test_one_class_evaluate_refuses(one_class, two_class_run, capsys):
    """#15.9: `selfsup evaluate` on one-class data exits 2 naming the data and the fix."""
    assert main(["evaluate", str(two_class_run), "--data", str(one_class), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "1 class" in err and ">= 2" in err and "--data" in err


def test_non_finite_encoder_is_an_error_not_chance(two_class_run, tmp_path, capsys):
    """#15.9: NaN weights give NaN features: evaluate names the run, no numbers."""
    bad = tmp_path / "encoder.safetensors"
    weights = load_file(two_class_run / "encoder.safetensors")
    nan = float("nan")
    save_file({k: v.fill_(nan) if v.is_floating_point() else v for k, v in weights.items()}, bad)
    (tmp_path / "encoder.json").write_text((two_class_run / "encoder.json").read_text())
    (tmp_path / "config.yaml").write_text((two_class_run / "config.yaml").read_text())
    assert main(["evaluate", str(bad), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"NaN/Inf for \d+ of \d+ samples", err) and str(bad) in err


def test_nan_features_raise_in_evaluate_encoder():
    """#15.9: the library call refuses too (an encoder that outputs NaN)."""
    from selfsup.eval.protocol import EvaluationError

    train, test = load_digits(8)

    def nan_encoder(x):
        return torch.full((len(x), 4), float("nan"))

    with pytest.raises(EvaluationError, match="NaN/Inf for 1258 of 1258"):
        evaluate_encoder(nan_encoder, train, test, None, name="nan-net")


def test_embed_index_round_trips_any_file_name(tmp_path, two_class_run, capsys):
    """#15.13: a newline or comma in a file name no longer shifts the index rows."""
    names = {"a": ["line\nbreak.png", 'comma,quote".png', "x.png"], "b": ["1.png", "2.png"]}
    names["b"] += ["3.png", "4.png", "5.png"]
    root = _images(tmp_path / "odd", names)
    capsys.readouterr()
    assert (
        main(["embed", str(two_class_run), "--data", str(root), "--out", str(tmp_path / "e")]) == 0
    )
    npy = tmp_path / "e.npy"
    assert str(npy) in capsys.readouterr().out  # np.save appended .npy: the printed path is right
    with (tmp_path / "e.index.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(np.load(npy)) == 8
    sources = {Path(r["source"]).name for r in rows}
    assert {"line\nbreak.png", 'comma,quote".png'} <= sources


def test_embed_into_a_folder_writes_embeddings_npy(tmp_path, two_class_run, capsys):
    """#15.13: --out naming a folder writes <folder>/embeddings.npy and prints that path."""
    folder = tmp_path / "embs"
    folder.mkdir()
    data = yaml.safe_load((two_class_run / "config.yaml").read_text())["data"]  # the run's own
    capsys.readouterr()
    assert main(["embed", str(two_class_run), "--data", data, "--out", str(folder)]) == 0
    assert str(folder / "embeddings.npy") in capsys.readouterr().out
    assert len(np.load(folder / "embeddings.npy")) == 16
    assert (folder / "embeddings.index.csv").exists()
