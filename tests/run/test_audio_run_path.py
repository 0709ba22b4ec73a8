"""#20 (run path): an audio run walks the one run path: the table beside log-mel statistics and
random init, the report, evaluate on the run's own numbers, load, embed, export; an MAE run's
report shows its reconstructions of test log-mels, a BYOL run's none."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import selfsup
from selfsup.cli import main
from selfsup.report.reconstructions import reconstruction_figure

RATE = 8000
SMALL = ["--set", "encoder_args={d: 16}", "--set", f"data_args={{sample_rate: {RATE}}}"]


def _write_clips(root):
    """Two classes of 0.3-0.6 s clips (low and high tones with noise) in root/clips/<class>."""
    g = np.random.default_rng(0)
    for label, hz in (("low", 300.0), ("high", 1500.0)):
        (root / "clips" / label).mkdir(parents=True)
        for i in range(12):
            t = np.arange(int(RATE * g.uniform(0.3, 0.6))) / RATE
            wave = 0.5 * np.sin(2 * np.pi * hz * g.uniform(0.9, 1.1) * t) + 0.05 * g.normal(
                size=t.size
            )
            sf.write(root / "clips" / label / f"{i}.wav", wave.astype(np.float32), RATE)


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    """A BYOL run (the modality's default) of 2 steps on `_write_clips`."""
    root = tmp_path_factory.mktemp("audio")
    _write_clips(root)
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
        assert not [k for k in data.files if k.startswith("recon_")]  # BYOL reconstructs nothing
    assert 'id="reconstructions"' not in page
    assert not (run / "report" / "reconstructions.png").exists()
    assert json.loads((run / "audio.json").read_text())["sample_rate"] == RATE


@pytest.fixture(scope="module")
def mae_run(tmp_path_factory):
    """MAE on a tiny audio_vit_tiny, 2 steps: 0.95 s windows give 96 frames at 8 kHz (40 bands),
    multiples of the 8 x 8 patches."""
    root = tmp_path_factory.mktemp("audio_mae")
    _write_clips(root)
    argv = ["pretrain", "--modality", "audio", "--data", str(root / "clips"), "--out",
            str(root / "run"), "--method", "mae", "--encoder", "audio_vit_tiny", "--steps", "2",
            "--batch-size", "8", "--no-progress", "--precision", "fp32",
            "--set", "encoder_args={embed_dim: 32, depth: 1, num_heads: 2}",
            "--set", "method_args={decoder_dim: 16, decoder_depth: 1, decoder_heads: 2}",
            "--set", f"data_args={{sample_rate: {RATE}, clip_seconds: 0.95}}",
            "--set", "eval.finetune=false", "--set", "eval.linear=false"]  # fmt: skip
    assert main(argv) == 0
    return root / "run"


def test_mae_audio_report_shows_reconstructions_of_test_log_mels(mae_run):
    results = json.loads((mae_run / "results.json").read_text())
    assert results["report"]["sections"][-1] == "reconstructions"
    with np.load(mae_run / "report_data.npz") as data:
        images, pred, mask = data["recon_images"], data["recon_pred"], data["recon_mask"]
        # the 4 test clips (fewer than REPORT_RECON), their evaluation log-mels
        assert images.shape == pred.shape == (4, 1, 40, 96)
        assert mask.shape == (4, 5 * 12) and mask.sum(1).tolist() == [45] * 4  # 75 % of 60
        assert str(data["recon_cmap"]) == "magma" and str(data["recon_origin"]) == "lower"
        shown = images * data["recon_std"][0] + data["recon_mean"][0]  # the display range
        assert shown.min() == pytest.approx(0, abs=1e-5) and shown.max() == pytest.approx(1)
    page = (mae_run / "report.html").read_text()
    assert 'id="reconstructions"' in page and 'href="#reconstructions"' in page
    assert (mae_run / "report" / "reconstructions.png").stat().st_size > 1000
    assert main(["report", str(mae_run)]) == 0  # redrawn from the folder alone
    assert 'id="reconstructions"' in (mae_run / "report.html").read_text()


def test_reconstruction_figure_refuses_a_received_colormap_or_origin_it_cannot_draw(mae_run):
    data = dict(np.load(mae_run / "report_data.npz"))
    out = mae_run / "report" / "again.png"
    with pytest.raises(ValueError, match="recon_cmap 'nope' is not a matplotlib colormap"):
        reconstruction_figure(data | {"recon_cmap": np.array("nope")}, out)
    with pytest.raises(ValueError, match="recon_origin is upper or lower, not 'left'"):
        reconstruction_figure(data | {"recon_origin": np.array("left")}, out)
    assert not out.exists()


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


def test_a_streamed_audio_run_reads_its_files_in_workers_and_evaluates_the_same(audio_run):
    """--stream: training decodes the files in DataLoader workers (2 s centre windows); the
    evaluation copy (each clip's centre second) gives the in-memory run's baseline rows."""
    root = audio_run
    argv = ["pretrain", "--modality", "audio", "--data", str(root / "clips"), "--out",
            str(root / "streamed"), "--steps", "2", "--batch-size", "8", "--no-progress",
            "--precision", "fp32", "--set", "eval.finetune=false", "--stream", "--workers",
            "2", "--set", "encoder_args={d: 16}", "--set",
            f"data_args={{sample_rate: {RATE}, stream_seconds: 2.0}}"]  # fmt: skip
    assert main(argv) == 0
    streamed = json.loads((root / "streamed" / "results.json").read_text())["eval"]
    memory = json.loads((root / "run" / "results.json").read_text())["eval"]
    for row in ("log-mel statistics", "random init"):
        assert streamed[row] == pytest.approx(memory[row], abs=1e-6), row
    assert json.loads((root / "streamed" / "audio.json").read_text())["stream_seconds"] == 2.0


def test_audio_files_give_centre_windows_nan_padded(tmp_path):
    from selfsup.data.audio import AudioFiles, centre_window

    wave = torch.arange(10.0)[None]
    assert centre_window(wave, 4).tolist() == [[3.0, 4.0, 5.0, 6.0]]
    padded = centre_window(wave, 12)
    assert padded[0, :10].tolist() == wave[0].tolist() and padded[0, 10:].isnan().all()
    sf.write(tmp_path / "a.wav", np.zeros(RATE // 2, np.float32), RATE)
    files = AudioFiles([tmp_path / "a.wav"], torch.tensor([1]), ["x", "y"], RATE, RATE, None)
    x, y = files[0]
    assert x.shape == (1, RATE) and y == 1 and x[0, RATE // 2 :].isnan().all()
