"""#16: an image run comes back through `selfsup.load`, and a flat folder labeled by a CSV
evaluates exactly as the same images in class folders."""

import json

import numpy as np
import pytest
from PIL import Image

import selfsup
from selfsup.cli import main
from selfsup.data import load_digits


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A 5-step SimCLR run on digits in fp32 (so the saved report embeddings are exact)."""
    out = tmp_path_factory.mktemp("image") / "r"
    argv = [
        "pretrain",
        "--steps",
        "5",
        "--batch-size",
        "64",
        "--out",
        str(out),
        "--no-progress",
        "--precision",
        "fp32",
        "--set",
        "eval.finetune=false",
        "--set",
        "eval.linear=false",
    ]
    assert main(argv) == 0
    return out


def test_load_gives_the_embeddings_of_the_end_of_training(image_run):
    model = selfsup.load(image_run)
    assert not model.encoder.training and model.tokenizer is None
    _, test = load_digits(16)
    with np.load(image_run / "report_data.npz") as saved:
        want = saved["emb_after"].astype(np.float32)  # every test image, float16 in the file
    got = model.encode(test.inputs).numpy()
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=2e-3, atol=2e-3)


def _write_images(tmp_path, n_per_class: int = 12):
    """The first digits of 5 classes as 16x16 PNGs: in class folders, and flat + labels.csv
    (names that sort in the same order, so both layouts hold the same rows)."""
    train, _ = load_digits(16)
    folders, flat = tmp_path / "classes", tmp_path / "flat"
    rows = []
    for label in range(5):
        idx = (train.targets == label).nonzero().flatten()[:n_per_class]
        (folders / f"c{label}").mkdir(parents=True)
        for i in idx.tolist():
            image = Image.fromarray(train.inputs[i].permute(1, 2, 0).numpy())
            name = f"c{label}_{i:04d}.png"
            image.save(folders / f"c{label}" / name)
            flat.mkdir(exist_ok=True)
            image.save(flat / name)
            rows.append(f"{name},c{label}")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n" + "\n".join(rows) + "\n")
    return folders, flat, labels


def _evaluate(capsys, *argv) -> dict:
    capsys.readouterr()
    assert main(["evaluate", *argv, "--device", "cpu"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_csv_labels_evaluate_as_class_folders(image_run, tmp_path, capsys):
    folders, flat, labels = _write_images(tmp_path)
    by_folder = _evaluate(capsys, str(image_run), "--data", str(folders))
    by_csv = _evaluate(capsys, str(image_run), "--data", str(flat), "--labels", str(labels))
    assert by_csv == by_folder and "knn_top1" in by_csv
    pattern = _evaluate(capsys, str(image_run), "--data", str(flat), "--label-pattern", r"^(c\d)_")
    assert pattern == by_folder


def test_a_labels_file_with_unknown_files_fails_with_the_count(image_run, tmp_path, capsys):
    _, flat, labels = _write_images(tmp_path, n_per_class=4)
    ghosts = [f"ghost{i}.png,c0" for i in range(7)]
    labels.write_text(labels.read_text() + "\n".join(ghosts) + "\n")
    argv = ["evaluate", str(image_run), "--data", str(flat), "--labels", str(labels)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "7 names are not files" in err and "ghost0.png" in err and "Traceback" not in err
    out = tmp_path / "run2"
    argv = ["pretrain", "--data", str(flat), "--labels", str(labels), "--out", str(out)]
    assert main([*argv, "--steps", "1", "--no-progress"]) == 2
    assert "7 names are not files" in capsys.readouterr().err
