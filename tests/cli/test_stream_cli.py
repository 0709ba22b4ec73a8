"""`selfsup pretrain --stream`: files read by workers, the evaluation split kept out of training."""

from __future__ import annotations

import pytest

import selfsup.run
from selfsup.cli import main
from selfsup.config import RunConfig
from selfsup.data import load_image_data
from selfsup.run import stream_files
from tests.data.test_stream import make_folder

FAST = ["--steps", "3", "--batch-size", "8", "--no-progress", "--device", "cpu"]
FAST += ["--set", "encoder_args.width=4", "--workers", "1"]


def test_stream_trains_on_the_train_split_only(tmp_path):
    root = make_folder(tmp_path / "f", n_per_class=10)
    cfg = RunConfig(data=str(root), image_size=16, stream=True)
    files = stream_files(cfg)
    train, test = load_image_data(str(root), 16)
    assert [str(f.relative_to(root)) for f in files.files] == train.sources
    assert not set(map(str, files.files)) & {str(root / s) for s in test.sources}
    assert files.targets.tolist() == train.targets.tolist()


def test_stream_run_with_evaluation(tmp_path, capsys):
    root = make_folder(tmp_path / "f", n_per_class=10)
    argv = ["pretrain", "--data", str(root), "--stream", "--image-size", "16"]
    assert main([*argv, "--out", str(tmp_path / "r"), *FAST, "--set", "eval.finetune=false"]) == 0
    out = capsys.readouterr().out
    assert "streaming 16 files" in out and "simclr (trained)" in out
    assert (tmp_path / "r" / "encoder.safetensors").exists()


def test_stream_without_evaluation_decodes_nothing_up_front(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "f", n_per_class=6)

    def refuse(*args, **kwargs):
        raise AssertionError("the folder was decoded into memory")

    monkeypatch.setattr(selfsup.run, "load_image_data", refuse)
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
