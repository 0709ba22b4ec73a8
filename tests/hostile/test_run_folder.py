"""A run folder never loses work: no silent overwrite, no resume of nothing, no write through a
link planted in a received folder. Each case builds its folder in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from selfsup.build import build_method, build_views
from selfsup.cli import main
from selfsup.config import load_config
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from selfsup.engine.config import TrainConfig
from selfsup.engine.loop import fit

FAST = ["--data", "digits", "--steps", "3", "--batch-size", "32", "--no-eval", "--no-progress"]
FAST += ["--device", "cpu", "--precision", "fp32", "--set", "encoder_args.width=4"]
FAST += ["--set", "eval.report=false", "--set", "train.checkpoint_every=1"]


def _pretrain(out: Path, *extra: str) -> int:
    return main(["pretrain", "--out", str(out), *FAST, *extra])


@pytest.fixture(scope="module")
def done_run(tmp_path_factory) -> Path:
    """One finished 3-step run (checkpoints 2 and 3 kept); tests copy it."""
    out = tmp_path_factory.mktemp("done") / "run"
    assert _pretrain(out) == 0
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run", symlinks=True))


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


def test_fresh_run_into_a_finished_run_is_refused(done_run, tmp_path, capsys):
    """#15.1: without --resume an existing run is left byte for byte as it was."""
    run = _copy(done_run, tmp_path)
    before = _snapshot(run)
    assert _pretrain(run, "--steps", "2") == 2
    err = capsys.readouterr().err
    assert f"{run}: already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert _snapshot(run) == before


def test_fresh_run_into_a_folder_with_its_own_config_is_refused(tmp_path, capsys):
    """#15.1: a non-run folder holding a config.yaml / results.json keeps them."""
    (tmp_path / "config.yaml").write_text("mine: true\n")
    (tmp_path / "results.json").write_text("{}")
    assert _pretrain(tmp_path) == 2
    assert "config.yaml, results.json" in capsys.readouterr().err
    assert (tmp_path / "config.yaml").read_text() == "mine: true\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "results.json"]


def test_overwrite_replaces_the_old_run_and_keeps_the_new_checkpoints(tmp_path):
    """#15.1: --overwrite deletes the old run's files first, so rotation (by step) cannot delete
    the new run's lower-step checkpoints; other files in the folder stay."""
    (tmp_path / "notes.txt").write_text("mine")
    assert _pretrain(tmp_path, "--steps", "5") == 0
    assert _pretrain(tmp_path, "--overwrite", "--steps", "2") == 0
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*.pt")) == [
        "checkpoint-00000001.pt",
        "checkpoint-00000002.pt",
    ]
    assert "steps: 2" in (tmp_path / "config.yaml").read_text()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_out_naming_a_file_is_an_error(tmp_path, capsys):
    """#15.16: --out pointing at a file says so instead of a traceback."""
    target = tmp_path / "a_file"
    target.write_text("x")
    assert _pretrain(target) == 2
    assert f"{target}: is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_resume_of_a_mistyped_folder_is_refused(tmp_path, capsys):
    """#15.11: --resume with nothing to resume names the folder; nothing is created."""
    assert _pretrain(tmp_path / "tpyo", "--resume") == 2
    assert f"{tmp_path / 'tpyo'}: nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "tpyo").exists()


def test_resume_of_a_folder_without_checkpoints_is_refused(tmp_path, capsys):
    """#15.11: a folder with files but no checkpoint lists what it holds."""
    (tmp_path / "metrics.jsonl").write_text("")
    assert _pretrain(tmp_path, "--resume") == 2
    assert "holds no checkpoint-*.pt (it holds: metrics.jsonl)" in capsys.readouterr().err


def test_the_python_api_default_folder_is_unique_per_fit(tmp_path, monkeypatch):
    """#19.3: two fits with the default out_dir, in the same second, get two folders."""
    monkeypatch.chdir(tmp_path)
    data = InMemoryDataset(torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8))
    runs = []
    for _ in range(2):
        method = build_method("simclr", create_encoder("convnet_small", width=4), {})
        cfg = TrainConfig(steps=1, batch_size=8, device="cpu", precision="fp32", progress=False)
        runs.append(fit(method, data, build_views("simclr", "", 8), cfg).run_dir)
    assert runs[0] != runs[1] and all(r.parent == Path("runs") for r in runs)
    assert all((tmp_path / r / "checkpoint-00000001.pt").exists() for r in runs)
    assert load_config().train.out_dir == ""  # the CLI picks runs/<method>-<data>-<time>


def test_resume_refuses_a_symlinked_metrics_log(done_run, tmp_path, capsys):
    """#15.7: a received run whose metrics.jsonl links to another file cannot overwrite it."""
    run = _copy(done_run, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(victim)
    (run / "checkpoint-00000003.pt").unlink()
    assert _pretrain(run, "--resume") == 2
    assert "metrics.jsonl: is a symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "precious"


def test_report_refuses_a_symlinked_report_html(done_run, tmp_path, capsys):
    """#15.7: `selfsup report` on a received folder never writes through report.html."""
    run = _copy(done_run, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run / "report.html").symlink_to(victim)
    assert main(["report", str(run)]) == 2
    assert "report.html: is a symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "precious"


def test_report_refuses_a_symlinked_report_folder(done_run, tmp_path, capsys):
    """#15.7: report/ linked to another folder: no PNG lands there."""
    run = _copy(done_run, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "report").symlink_to(elsewhere, target_is_directory=True)
    assert main(["report", str(run)]) == 2
    assert "report: is a symbolic link" in capsys.readouterr().err
    assert not list(elsewhere.iterdir())


def test_encoder_files_are_never_written_through_a_link(tmp_path):
    """#15.7: encoder.json was written with write_text, following a link planted in the folder."""
    from selfsup.encoders import create_encoder
    from selfsup.engine.checkpoint import save_encoder
    from selfsup.engine.run_dir import RunDirError

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    run = tmp_path / "run"
    run.mkdir()
    (run / "encoder.json").symlink_to(victim)
    with pytest.raises(RunDirError, match="symbolic link"):
        save_encoder(create_encoder("convnet_small", width=4), run / "encoder.safetensors")
    assert victim.read_text() == "keep me"
