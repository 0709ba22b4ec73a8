"""Impossible settings say what to change; configs cannot run code or write outside the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfsup.build import build_method, check_batch_size
from selfsup.cli import main
from selfsup.config import ConfigError, RunConfig, load_config
from selfsup.encoders import create_encoder
from selfsup.engine.batches import EpochBatches
from selfsup.run import default_run_dir


def _method(name: str, **args):
    return build_method(name, create_encoder("convnet_small", width=4), args)


def test_batch_of_one_for_a_batch_negative_loss():
    with pytest.raises(ConfigError, match=r"train.batch_size=1.*use train.batch_size >= 2"):
        check_batch_size("simclr", _method("simclr"), 1)
    check_batch_size("simclr", _method("simclr"), 2)


def test_one_sample_per_process_with_batchnorm():
    with pytest.raises(ConfigError, match=r"1 sample per process.*train.batch_size >= 8"):
        check_batch_size("simclr", _method("simclr"), 4, world=4)


def test_queue_smaller_than_the_batch():
    moco = _method("moco", queue_size=16)
    with pytest.raises(ConfigError, match=r"method_args.queue_size=16 .*batch_size=32.*>= 32"):
        check_batch_size("moco", moco, 32)
    check_batch_size("moco", moco, 16)
    nnclr = _method("nnclr", support_set_size=8)
    with pytest.raises(ConfigError, match=r"method_args.support_set_size=8"):
        check_batch_size("nnclr", nnclr, 16)


def test_batch_not_divisible_by_world_size():
    with pytest.raises(ValueError, match=r"divisible by the 3 processes.*e.g. batch_size=9"):
        EpochBatches(100, 10, rank=0, world=3)


def test_cli_batch_of_one_is_an_error_not_a_traceback(capsys):
    code = main(["pretrain", "--batch-size", "1", "--steps", "1", "--no-eval", "--no-progress"])
    assert code == 2 and "use train.batch_size >= 2" in capsys.readouterr().err


def test_yaml_python_tags_are_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"method: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="Python tags are not allowed"):
        load_config(evil)
    assert main(["pretrain", "--config", str(evil)]) == 2
    assert "not plain YAML" in capsys.readouterr().err
    assert not marker.exists()


HOSTILE = [("../../../tmp/evil", "digits"), ("simclr", "/data/../../.."), ("..", "..")]


@pytest.mark.parametrize(("method", "data"), HOSTILE)
def test_default_run_dir_stays_under_runs(method, data):
    run = default_run_dir(RunConfig(method=method, data=data))
    assert run.parent == Path("runs") and ".." not in run.parts and len(run.parts) == 2


@pytest.mark.slow  # budget: one 3-step digits run, ≈ 5 s CPU
def test_a_run_writes_only_inside_its_run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SELFSUP_CACHE", str(tmp_path / "cache"))
    before = set(tmp_path.rglob("*"))
    args = ["pretrain", "--steps", "3", "--batch-size", "32", "--no-progress", "--no-eval"]
    assert main(args + ["--set", "encoder_args.width=4", "--device", "cpu"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    written = {p for p in set(tmp_path.rglob("*")) - before if p.is_file()}
    outside = [p for p in written if run not in p.parents and tmp_path / "cache" not in p.parents]
    assert written and not outside
