"""The command line, end to end on a tiny generated folder (seconds, not minutes)."""

import json

import numpy as np
import pytest
from PIL import Image

from selfsup.cli import main

FAST = [
    "--encoder",
    "convnet_small",
    "--set",
    "encoder_args={width: 4}",
    "--steps",
    "3",
    "--batch-size",
    "8",
    "--no-progress",
    "--set",
    "train.checkpoint_every=2",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for c in range(3):
        for i in range(8):
            arr = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
            arr[:, :, c] = 255  # a colour per class, so labels are learnable
            (root / f"class{c}").mkdir(exist_ok=True)
            Image.fromarray(arr).save(root / f"class{c}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    assert main(["pretrain", "--data", str(folder), "--out", str(out), *FAST]) == 0
    return out


def test_pretrain_writes_the_run_folder(run):
    names = {p.name for p in run.iterdir()}
    assert {
        "config.yaml",
        "metrics.jsonl",
        "metrics.csv",
        "encoder.safetensors",
        "results.json",
    } <= names
    assert sorted(p.name for p in run.glob("checkpoint-*.pt")) == [
        "checkpoint-00000002.pt",
        "checkpoint-00000003.pt",
    ]
    results = json.loads((run / "results.json").read_text())
    assert {"raw pixels", "random init", "simclr (trained)"} <= set(results["eval"])
    assert results["train"]["steps"] == 3


def test_evaluate_and_embed_read_the_run(run, folder, tmp_path, capsys):
    assert main(["evaluate", str(run), "--data", str(folder), "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= row["knn_top1"] <= 1 and "linear_top1" in row
    out = tmp_path / "emb.npy"
    assert main(["embed", str(run), "--data", str(folder), "--out", str(out)]) == 0
    emb = np.load(out)
    index = out.with_name("emb.index.csv").read_text().splitlines()
    assert emb.shape[0] == 24 == len(index) - 1


def test_flat_folder_trains_and_skips_evaluation(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
    assert main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "r"), *FAST]) == 0
    assert "evaluation skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "train.lrr=0.1"], "Did you mean 'lr'"),
        (["--method", "simclrr"], "Did you mean 'simclr'"),
        (["--set", "method_args={temprature: 0.1}"], "Did you mean 'temperature'"),
        (["--data", "/no/such/folder"], "no such folder"),
    ],
)
def test_mistakes_exit_2_with_a_message(argv, message, capsys, tmp_path):
    assert main(["pretrain", "--out", str(tmp_path / "x"), *FAST, *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("method", ["simcse", "mlm"])
def test_text_pretrain_saves_encoder_and_tokenizer(tmp_path, method):
    words = ["a dog runs", "the cat sleeps", "two men play ball", "a girl reads a book"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{w} {i}" for i in range(40) for w in words) + "\n")
    out = tmp_path / "run"
    argv = [
        "pretrain",
        "--modality",
        "text",
        "--method",
        method,
        "--data",
        str(corpus),
        "--out",
        str(out),
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--no-progress",
        "--set",
        "data_args={vocab_size: 200}",
        "--set",
        "encoder=text_transformer_tiny",
    ]
    assert main(argv) == 0
    assert {"tokenizer.json", "encoder.safetensors", "config.yaml"} <= {
        p.name for p in out.iterdir()
    }


def test_mae_runs_from_the_cli(tmp_path):
    argv = ["pretrain", "--method", "mae", "--encoder", "vit_micro_cifar", "--image-size", "16",
            "--set", "encoder_args={img_size: 16}",
            "--set", "method_args={decoder_dim: 32, decoder_depth: 1, decoder_heads: 2}",
            "--set", "train.optimizer=adamw", "--set", "train.lr=1e-3", "--steps", "2",
            "--batch-size", "16", "--no-progress", "--set", "eval.finetune=false",
            "--set", "eval.linear=false", "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "r" / "report.html").exists()
