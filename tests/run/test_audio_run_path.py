"""#20 (run path): an audio run walks the one run path: the table beside log-mel statistics and
random init, the report, evaluate on the run's own numbers, load, embed, export."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import selfsup
from selfsup.cli import main

RATE = 8000
SMALL = ["--set", "encoder_args={d: 16}", "--set", f"data_args={{sample_rate: {RATE}}}"]


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    """Two classes of 0.3-0.6 s clips (low and high tones with noise) in class folders."""
    root = tmp_path_factory.mktemp("audio")
    g = np.random.default_rng(0)
    for label, hz in (("low", 300.0), ("high", 1500.0)):
        (root / "clips" / label).mkdir(parents=True)
        for i in range(12):
            t = np.arange(int(RATE * g.uniform(0.3, 0.6))) / RATE
            wave = 0.5 * np.sin(2 * np.pi * hz * g.uniform(0.9, 1.1) * t) + 0.05 * g.normal(
                size=t.size
            )
            sf.write(root / "clips" / label / f"{i}.wav", wave.astype(np.float32), RATE)
    argv = ["pretrain", "--modality", "audio", "--data", str(root / "clips"), "--out",
            str(root / "run"), "--steps", "2", "--batch-size", "8", "--no-progress",
            "--precision", "fp32", "--set", "eval.finetune=false", *SMALL]  # fmt: skip
    assert main(argv) == 0
    return root


def test_audio_run_ends_like_an_image_run(audio_run):
    run = audio_run / "run"
    results = json.loads((run / "results.json").read_text())
    assert list(results["eval"]) == ["log-mel statistics", "random init", "byol (trained)"]
    assert results["report"]["sections"] == ["curves", "health", "views", "embedding-map"]
    page = (run / "report.html").read_text()
    assert 'id="views"' in page and 'id="embedding-map"' in page
    with np.load(run / "report_data.npz") as data:
        assert data["view_images"].dtype == np.uint8 and data["view_images"].shape[2] == 3
    assert json.loads((run / "audio.json").read_text())["sample_rate"] == RATE


def test_evaluate_load_embed_export_an_audio_run(audio_run, tmp_path, capsys):
    run = audio_run / "run"
    trained = json.loads((run / "results.json").read_text())["eval"]["byol (trained)"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row == pytest.approx(trained, abs=1e-9)
    out = tmp_path / "e.npy"
    assert main(["embed", str(run), "--data", str(audio_run / "clips"), "--out", str(out)]) == 0
    emb, index = np.load(out), (tmp_path / "e.index.csv").read_text().splitlines()[1:]
    assert emb.shape == (24, 16) and len(index) == 24
    model = selfsup.load(run)
    source = index[0].split(",")[1]
    wave, rate = sf.read(audio_run / "clips" / source, dtype="float32")
    assert rate == RATE and np.allclose(
        model.encode(torch.from_numpy(wave)[None]), emb[0], atol=1e-5
    )
    pt = tmp_path / "enc.pt"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(pt)]) == 0
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "audio.json").unlink()
    with pytest.raises(FileNotFoundError, match="audio.json: missing"):
        selfsup.load(broken)


def test_audio_mistakes_exit_2_naming_the_fix(tmp_path, capsys):
    base = ["pretrain", "--modality", "audio", "--out", str(tmp_path / "r"), "--steps", "1"]
    assert main(base) == 2
    assert "--modality audio needs --data" in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    sf.write(tmp_path / "c" / "a.wav", np.zeros(800, np.float32), RATE)
    assert main([*base, "--data", str(tmp_path / "c"), "--method", "dino"]) == 2
    assert "no audio version" in capsys.readouterr().err
    assert main([*base, "--data", str(tmp_path / "c"), "--set", "data_args.rate=8000"]) == 2
    assert "data_args: unknown key 'rate'" in capsys.readouterr().err
