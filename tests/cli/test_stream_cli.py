"""`selfsup pretrain --stream`: files read by workers, the evaluation split kept out of training."""

from __future__ import annotations

import pytest
import torch

import selfsup.modalities.image
from selfsup.cli import main
from selfsup.config import RunConfig
from selfsup.data import BadImageError, load_image_data
from selfsup.modalities.image import ImageModality
from tests.data.test_stream import make_folder

FAST = ["--steps", "3", "--batch-size", "8", "--no-progress", "--device", "cpu"]
FAST += ["--set", "encoder_args.width=4", "--workers", "1"]


def test_stream_trains_on_the_train_split_only(tmp_path):
    root = make_folder(tmp_path / "f", n_per_class=10)
    cfg = RunConfig(data=str(root), image_size=16, stream=True)
    files, test_files = ImageModality(cfg).stream_files()
    train, test = load_image_data(str(root), 16)
    assert [str(f.relative_to(root)) for f in files.files] == train.sources
    assert [str(f.relative_to(root)) for f in test_files.files] == test.sources
    assert not set(map(str, files.files)) & set(map(str, test_files.files))
    assert files.targets.tolist() == train.targets.tolist()
    # evaluation decodes the same images the in-memory path holds
    assert torch.equal(files.decode(16).inputs, train.inputs)


def test_stream_splits_a_train_folder_without_test_as_in_memory(tmp_path):
    make_folder(tmp_path / "f" / "train", n_per_class=10)  # root/train, no root/test
    files, test_files = ImageModality(
        RunConfig(data=str(tmp_path / "f"), image_size=16)
    ).stream_files()
    train, test = load_image_data(str(tmp_path / "f"), 16)
    under = tmp_path / "f" / "train"
    assert [str(f.relative_to(under)) for f in files.files] == train.sources
    assert [str(f.relative_to(under)) for f in test_files.files] == test.sources


def test_stream_evaluates_on_a_bounded_stratified_subset(tmp_path):
    root = tmp_path / "f"
    make_folder(root / "train", n_per_class=10)
    make_folder(root / "test", n_per_class=5)
    cfg = RunConfig(data=str(root), image_size=16, stream=True)
    files, test_files = ImageModality(cfg).stream_files()
    assert len(files) == 20 and len(test_files) == 10
    part = files.decode(16, limit=6)
    assert part.inputs.shape == (6, 3, 16, 16) and part.targets.bincount().tolist() == [3, 3]
    assert len(test_files.decode(16, limit=6)) == 6 and part.classes == ["a", "b"]


def test_stream_refuses_test_classes_that_differ(tmp_path):
    root = tmp_path / "f"
    make_folder(root / "train", n_per_class=2)
    make_folder(root / "test", n_per_class=2)
    (root / "test" / "b").rename(root / "test" / "c")
    with pytest.raises(BadImageError, match="differ"):
        ImageModality(RunConfig(data=str(root), image_size=16, stream=True)).stream_files()


def test_stream_run_with_evaluation(tmp_path, capsys):
    root = make_folder(tmp_path / "f", n_per_class=10)
    argv = ["pretrain", "--data", str(root), "--stream", "--image-size", "16"]
    assert main([*argv, "--out", str(tmp_path / "r"), *FAST, "--set", "eval.finetune=false"]) == 0
    out = capsys.readouterr().out
    assert "streaming 16 files" in out and "simclr (trained)" in out
    assert "data: f-train (16, 3, 16, 16), test 4" in out
    assert (tmp_path / "r" / "encoder.safetensors").exists()


def test_stream_without_evaluation_decodes_nothing_up_front(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "f", n_per_class=6)

    def refuse(*args, **kwargs):
        raise AssertionError("the folder was decoded into memory")

    monkeypatch.setattr(selfsup.modalities.image, "load_image_data", refuse)
    argv = ["pretrain", "--data", str(root), "--stream", "--image-size", "16", "--no-eval"]
    argv += ["--set", "eval.report=false"]
    assert main([*argv, "--out", str(tmp_path / "r"), *FAST]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "digits", "--stream", "--image-size", "16"], "is not one"),
        (["--stream"], "needs image_size"),
    ],
)
def test_stream_mistakes(argv, message, tmp_path, capsys):
    root = make_folder(tmp_path / "f", n_per_class=4)
    assert main(["pretrain", "--data", str(root), "--out", str(tmp_path / "x"), *FAST, *argv]) == 2
    assert message in capsys.readouterr().err
