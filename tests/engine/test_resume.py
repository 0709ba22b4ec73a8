"""Never lose work: exact resume after SIGKILL, config-mismatch refusal, NaN stop, safe loads."""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from selfsup.build import build_method, build_views
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from selfsup.engine.checkpoint import list_checkpoints
from selfsup.engine.config import TrainConfig
from selfsup.engine.loop import NonFiniteLossError, TrainResult, fit

STEPS = 40


def _pretrain_cmd(out: Path, resume: bool = False) -> list[str]:
    """A real `selfsup pretrain`: digits, convnet_small width 8, a checkpoint every step."""
    cmd = [sys.executable, "-m", "selfsup.cli", "pretrain", "--data", "digits"]
    cmd += ["--set", "encoder_args.width=8", "--steps", str(STEPS), "--batch-size", "64"]
    cmd += ["--out", str(out), "--no-eval", "--no-progress", "--precision", "fp32"]
    cmd += ["--device", "cpu", "--set", "train.checkpoint_every=1"]
    cmd += ["--set", "train.deterministic=true"]
    return cmd + (["--resume"] if resume else [])


def _env() -> dict:
    # The same thread count in every run: float reductions then add up in the same order.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipping" not in done.stderr, done.stderr[-2000:]  # no checkpoint was unloadable
    return done.stdout


def _kill_after_checkpoint(out: Path, at_step: int) -> int:
    """Start a run, SIGKILL it once checkpoint `at_step` exists; return the newest step saved."""
    proc = subprocess.Popen(
        _pretrain_cmd(out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            steps = [s for s, _ in list_checkpoints(out)]
            if steps and steps[-1] >= at_step:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before the kill; raise STEPS"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "encoder.safetensors").exists(), "killed after the end; raise STEPS"
    return list_checkpoints(out)[-1][0]


@pytest.mark.slow  # budget: 3 CLI runs, ≈ 20 s CPU (≈ 6 s each, mostly imports)
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    _run(_pretrain_cmd(reference))
    expected = (reference / "encoder.safetensors").read_bytes()
    rng = random.Random(7)
    trials = []
    for trial in range(1):  # one random kill point a run (5 of 5 bit-exact over earlier runs)
        out = tmp_path / f"killed{trial}"
        saved = _kill_after_checkpoint(out, rng.randint(2, STEPS - 15))
        log = _run(_pretrain_cmd(out, resume=True))
        assert f"resumed from step {saved}" in log, log  # a resume, not a silent fresh start
        trials.append(saved)
        assert (out / "encoder.safetensors").read_bytes() == expected, f"killed after {saved}"
        steps = [row["step"] for row in _metrics(out)]
        assert steps == sorted(set(steps)) and steps[-1] == STEPS  # one uninterrupted log
    print(f"killed after checkpoints {trials}; all {len(trials)} resumed runs bitwise equal")


def _metrics(run: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# In-process tests on a tiny random data set: fast enough for every CI run.


def _tiny() -> InMemoryDataset:
    g = torch.Generator().manual_seed(0)
    return InMemoryDataset(torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8, generator=g))


def _fit(out: Path, run_config: dict | None = None, **train) -> TrainResult:
    torch.manual_seed(0)
    method = build_method("simclr", create_encoder("convnet_small", width=4), {})
    base = dict(steps=4, batch_size=8, lr=0.1, checkpoint_every=2, log_every=2)
    cfg = TrainConfig(
        precision="fp32", device="cpu", progress=False, out_dir=str(out), **{**base, **train}
    )
    config = run_config or {"method": "simclr", "train": {"lr": cfg.lr, "resume": cfg.resume}}
    return fit(method, _tiny(), build_views("simclr", "", 8), cfg, run_config=config)


def test_in_process_resume_equals_uninterrupted(tmp_path):
    _fit(tmp_path / "full", deterministic=True)
    _fit(tmp_path / "part", deterministic=True, checkpoint_every=1, keep_checkpoints=9)
    # Drop the last two checkpoints and the encoder: as if killed after step 2.
    for step, path in list_checkpoints(tmp_path / "part"):
        if step > 2:
            path.unlink()
    (tmp_path / "part" / "encoder.safetensors").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unloadable checkpoint would silently restart
        result = _fit(tmp_path / "part", deterministic=True, resume=True, checkpoint_every=1)
    assert result.resumed_from == 2
    full = (tmp_path / "full" / "encoder.safetensors").read_bytes()
    assert (tmp_path / "part" / "encoder.safetensors").read_bytes() == full


def test_resume_refuses_a_different_config_naming_the_keys(tmp_path):
    _fit(tmp_path, {"method": "simclr", "train": {"lr": 0.1, "resume": False}})
    changed = {"method": "simclr", "train": {"lr": 0.2, "resume": True}}
    with pytest.raises(ValueError, match=r"(?s)refusing to resume.*train\.lr: 0\.1 -> 0\.2") as e:
        _fit(tmp_path, changed, resume=True)
    assert "train.resume" not in str(e.value)  # resume itself may differ
    _fit(tmp_path, {"method": "simclr", "train": {"lr": 0.1, "resume": True}}, resume=True)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path):
    _fit(tmp_path, {"x": 1}, steps=2)
    ckpts = list_checkpoints(tmp_path)
    before = {p: p.read_bytes() for _, p in ckpts}
    with pytest.raises(NonFiniteLossError, match=r"(?s)between steps 3 and 4.*learning rate") as e:
        _fit(tmp_path, steps=6, lr=1e30, resume=True, run_config={"x": 1})
    assert str(ckpts[-1][1]) in str(e.value) and "left intact" in str(e.value)
    assert list_checkpoints(tmp_path) == ckpts  # nothing new written, nothing deleted
    assert {p: p.read_bytes() for p in before} == before  # bitwise intact


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))

    marker = ""


def test_resume_refuses_a_crafted_pickle_checkpoint(tmp_path):
    _Evil.marker = str(tmp_path / "pwned")
    with open(tmp_path / "checkpoint-00000009.pt", "wb") as f:
        pickle.dump({"step": 9, "payload": _Evil()}, f)
    with (
        pytest.warns(UserWarning, match=r"(?s)checkpoint-00000009.pt.*weights-only"),
        pytest.raises(ValueError, match=f"{tmp_path}: nothing to resume"),  # #15.11
    ):
        _fit(tmp_path, {"x": 1}, resume=True, steps=2)
    assert not (tmp_path / "pwned").exists()  # no code ran, and no silent fresh start


def test_cli_evaluate_refuses_a_crafted_pickle_as_weights(tmp_path, capsys):
    from selfsup.cli import main
    from selfsup.engine.checkpoint import save_encoder

    _Evil.marker = str(tmp_path / "pwned")
    save_encoder(create_encoder("convnet_small", width=4), tmp_path / "encoder.safetensors")
    with open(tmp_path / "encoder.safetensors", "wb") as f:
        pickle.dump({"w": _Evil()}, f)
    assert main(["evaluate", str(tmp_path), "--data", "digits", "--no-linear"]) == 2
    assert "not a safetensors file" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists()
