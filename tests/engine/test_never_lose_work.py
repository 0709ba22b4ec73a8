"""The loop's safety: non-finite state never saved or resumed, resume repairs what it can,
metrics read as one uninterrupted run, settings checked up front, writes never through links."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from selfsup.build import build_method, build_views
from selfsup.config import ConfigError, load_config
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from selfsup.engine.checkpoint import (
    latest_valid_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from selfsup.engine.config import TrainConfig
from selfsup.engine.loop import NonFiniteLossError, TrainResult, fit
from selfsup.engine.run_dir import RunDirError, append_text, write_atomic


def _tiny() -> InMemoryDataset:
    g = torch.Generator().manual_seed(0)
    return InMemoryDataset(torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8, generator=g))


def _method():
    torch.manual_seed(0)
    return build_method("simclr", create_encoder("convnet_small", width=4), {})


def _fit(out: Path, method=None, **train) -> TrainResult:
    base = dict(steps=4, batch_size=8, lr=0.1, checkpoint_every=2, log_every=1)
    cfg = TrainConfig(
        precision="fp32", device="cpu", progress=False, out_dir=str(out), **{**base, **train}
    )
    method = method or _method()
    return fit(method, _tiny(), build_views("simclr", "", 8), cfg, run_config={"x": 1})


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _killed_after_step_2(tmp_path: Path) -> Path:
    """A 4-step run as if killed after its checkpoint at step 2 (rows 1-4 were logged)."""
    run = tmp_path / "run"
    _fit(run, keep_checkpoints=9)
    for step, path in list_checkpoints(run):
        if step > 2:
            path.unlink()
    (run / "encoder.safetensors").unlink()
    return run


def test_an_inf_buffer_stops_the_run_before_it_is_saved(tmp_path):
    """#15.2: BatchNorm running_var = inf with finite weights and loss: no checkpoint of it
    is written, the finite one survives keep_checkpoints=1 and the error names it."""
    method = _method()
    bn = next(m for m in method.modules() if isinstance(m, torch.nn.BatchNorm2d))
    after_step = method.after_step

    def poison(step: int, steps: int) -> None:
        after_step(step, steps)
        if step == 2:  # the 3rd step; the next save is at step 4
            bn.running_var.fill_(math.inf)

    method.after_step = poison
    with pytest.raises(NonFiniteLossError, match=r"last good checkpoint: .*checkpoint-00000002"):
        _fit(tmp_path, method, keep_checkpoints=1)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2]


def test_rotation_never_deletes_the_checkpoint_just_written(tmp_path):
    """#15.2 / #15.1: a newer stale checkpoint (a diverged run resumed from before it) must not
    push the new one out; only older ones rotate away."""
    for step in (10, 50, 20):
        save_checkpoint({"step": step}, tmp_path, step, keep=1)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [20, 50]


def test_latest_valid_checkpoint_skips_non_finite_tensors(tmp_path):
    """#15.2: a checkpoint holding inf is skipped with a warning naming it."""
    save_checkpoint({"step": 1, "model": {"w": torch.ones(2)}}, tmp_path, 1, keep=9)
    save_checkpoint({"step": 2, "model": {"w": torch.full((2,), math.inf)}}, tmp_path, 2, keep=9)
    with pytest.warns(UserWarning, match=r"checkpoint-00000002.pt: it holds NaN/Inf .*model\.w"):
        state, path = latest_valid_checkpoint(tmp_path)
    assert state["step"] == 1 and path.name == "checkpoint-00000001.pt"


def _rewrite(path: Path, change) -> None:
    state = load_checkpoint(path)
    change(state)
    torch.save(state, path)


def test_resume_skips_a_non_finite_checkpoint(tmp_path):
    """#15.2: resume falls back over a checkpoint with an inf BatchNorm buffer."""
    run = tmp_path / "run"
    _fit(run, keep_checkpoints=9)
    (run / "encoder.safetensors").unlink()
    newest = list_checkpoints(run)[-1][1]
    key = next(k for k in load_checkpoint(newest)["model"] if k.endswith("running_var"))
    _rewrite(newest, lambda s: s["model"][key].fill_(math.inf))
    with pytest.warns(UserWarning, match=r"checkpoint-00000004.pt: it holds NaN/Inf"):
        result = _fit(run, resume=True)
    assert result.resumed_from == 2
    assert latest_valid_checkpoint(run)[1].name == "checkpoint-00000004.pt"  # rewritten finite


def test_resume_falls_back_over_a_checkpoint_of_the_wrong_structure(tmp_path):
    """#15.11: missing keys / wrong shapes: a warning naming the file, not a traceback."""
    run = tmp_path / "run"
    _fit(run, keep_checkpoints=9)
    (run / "encoder.safetensors").unlink()
    paths = [p for _, p in list_checkpoints(run)]
    _rewrite(paths[-1], lambda s: s["model"].pop(next(iter(s["model"]))))
    with pytest.warns(UserWarning, match=r"skipping .*checkpoint-00000004.pt: it does not fit"):
        assert _fit(run, resume=True).resumed_from == 2
    first = next(iter(load_checkpoint(paths[0])["model"]))
    for p in paths:
        _rewrite(p, lambda s: s["model"].__setitem__(first, torch.zeros(3, 1, 7)))
    with pytest.warns(UserWarning, match="shape"), pytest.raises(RunDirError, match=str(run)):
        _fit(run, resume=True)


def test_resume_without_a_checkpoint_is_refused_naming_the_folder(tmp_path):
    """#15.11: nothing to resume (no checkpoint, or a mistyped folder) is an error, not step 0."""
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=rf"{tmp_path}: nothing to resume.*holds: notes.txt"):
        _fit(tmp_path, resume=True)
    with pytest.raises(RunDirError, match="does not exist"):
        _fit(tmp_path / "typo", resume=True)
    assert not (tmp_path / "typo").exists()


def test_resume_keeps_the_metrics_row_of_its_step(tmp_path):
    """#15.3: resumed from step 2, the rows are those of an uninterrupted run (1..4)."""
    run = _killed_after_step_2(tmp_path)
    assert _fit(run, resume=True).resumed_from == 2
    assert _steps(run) == [1, 2, 3, 4]
    csv_steps = [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().split()[1:]]
    assert csv_steps == [1, 2, 3, 4]


def test_a_torn_last_metrics_line_is_dropped_on_resume(tmp_path):
    """#15.11: a run killed mid-write leaves a torn line; resume drops it, naming the file."""
    run = _killed_after_step_2(tmp_path)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "lo')
    with pytest.warns(UserWarning, match=r"metrics.jsonl: dropping a torn last line"):
        _fit(run, resume=True)
    assert _steps(run) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.steps=0", r"steps=0: must be >= 1"),
        ("train.steps=-3", r"steps=-3: must be >= 1"),
        ("train.checkpoint_every=0", r"checkpoint_every=0: must be an integer >= 1"),
        ("train.log_every=0", r"log_every=0: must be an integer >= 1"),
        ("train.keep_checkpoints=0", r"keep_checkpoints=0: must be an integer >= 1"),
        ("train.grad_clip=-1", r"grad_clip=-1.0: must be > 0"),
        ("train.betas=[0.9]", r"betas=\[0.9\]: must be two numbers in \[0, 1\)"),
        ("train.lr=-0.1", r"lr=-0.1: must be >= 0"),
        ("train.weight_decay=-1", r"weight_decay=-1.0: must be >= 0"),
        ("train.epochs=0", r"epochs=0.0: must be > 0"),
        ("train.batch_size=0", r"batch_size=0: must be an integer >= 1"),
    ],
)
def test_invalid_numbers_are_config_errors_with_the_range(override, message):
    """#15.14: each bad number fails at load time with its valid range."""
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_out_dir_expands_the_home_folder():
    """#15.14: "~/x" means the home folder, not a folder named "~"."""
    cfg = load_config(overrides=["train.out_dir=~/x"])
    assert cfg.train.out_dir == os.path.expanduser("~/x") and "~" not in cfg.train.out_dir


def test_resume_and_overwrite_together_are_refused():
    with pytest.raises(ConfigError, match="choose one"):
        load_config(overrides=["train.resume=true", "train.overwrite=true"])


def test_write_atomic_refuses_a_symlink_and_leaves_its_target(tmp_path):
    """#15.7: the write helper never writes through a link, at the file or a sub-folder."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    (run / "elsewhere").mkdir(parents=True)
    (run / "results.json").symlink_to(victim)
    (run / "report").symlink_to(run / "elsewhere", target_is_directory=True)
    with pytest.raises(RunDirError, match=r"results.json: is a symbolic link"):
        write_atomic(run / "results.json", "{}")
    with pytest.raises(RunDirError, match=r"report: is a symbolic link"):
        write_atomic(run / "report" / "curves.png", b"png", within=run)
    with pytest.raises(RunDirError, match=r"metrics.jsonl: is a symbolic link"):
        (run / "metrics.jsonl").symlink_to(victim)
        append_text(run / "metrics.jsonl", "row\n")
    assert victim.read_text() == "precious" and not list((run / "elsewhere").iterdir())
    write_atomic(run / "config.yaml", "a: 1\n")
    assert (run / "config.yaml").read_text() == "a: 1\n"
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
