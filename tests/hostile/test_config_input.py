"""Hostile and careless configuration input (#15.5, #15.14, #15.16, #19.7): every case ends in
a clear message naming what to fix, with exit code 2 and no traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from selfsup.cli import main
from selfsup.config import ConfigError, load_config

BOMB = "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)
BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + BOMB


def _cli_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_yaml_alias_bomb_is_refused_under_a_memory_limit(tmp_path):
    """#15.5: a few hundred bytes of nested aliases (9^10 values) is refused before anything
    walks it. Run with 1.5 GiB of address space to spare: the old code ran out of memory."""
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 500
    script = textwrap.dedent(
        f"""
        import resource
        import selfsup.run  # imported first: the limit is on what the case itself allocates
        from selfsup.cli import main
        vm = next(l for l in open("/proc/self/status") if l.startswith("VmSize"))
        limit = int(vm.split()[1]) * 1024 + (3 << 29)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        raise SystemExit(main(["pretrain", "--config", {str(path)!r}]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "bomb.yaml" in done.stderr and "aliases" in done.stderr


def test_yaml_anchors_of_normal_size_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("method_args: &m {temperature: 0.3}\neval: {knn_t: 0.2}\n")
    assert load_config(path).method_args == {"temperature": 0.3}


def test_config_given_a_folder(tmp_path, capsys):
    """#15.16: --config given a folder."""
    assert "is a folder" in _cli_error(capsys, ["pretrain", "--config", str(tmp_path)])


def test_config_missing(tmp_path, capsys):
    err = _cli_error(capsys, ["pretrain", "--config", str(tmp_path / "nope.yaml")])
    assert "nope.yaml" in err and "not found" in err


def test_config_not_utf8_names_file_and_line(tmp_path, capsys):
    """#15.16: a non-UTF-8 config names the file and the line."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("train:\n  lr: 0.1\ndata: caf\xe9\n".encode("latin-1"))
    err = _cli_error(capsys, ["pretrain", "--config", str(path)])
    assert "latin1.yaml, line 3" in err and "UTF-8" in err


@pytest.mark.parametrize(
    "value", ["!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system"]
)
def test_python_tag_through_set_is_refused(value, capsys):
    """#15.16: a Python YAML tag through --set is a message, never constructed."""
    err = _cli_error(capsys, ["pretrain", "--set", f"method_args={value}"])
    assert "Python tags" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--device", "cdua"], "not a device name"),
        (["--device", "cuda:7"], "cuda:7"),
        (["--image-size", "0"], "image_size=0"),
        (["--set", "eval.knn_t=0"], "knn_t"),
        (["--set", "eval.knn_k=0"], "knn_k"),
        (["--set", "max_image_pixels=0"], "max_image_pixels"),
    ],
)
def test_invalid_values_fail_before_training(argv, words, capsys, tmp_path):
    """#15.14 / #15.16: invalid values are refused with the valid range, before any work."""
    out = ["--out", str(tmp_path / "run"), "--steps", "1", "--no-progress"]
    assert words in _cli_error(capsys, ["pretrain", *argv, *out])


def test_overrides_merge_key_by_key_in_any_order():
    """#19.7: repeated --set into one dict-valued section keeps every key, whatever the order;
    the old code kept only the last one."""
    sets = ["method_args.temperature=0.3", "method_args.proj_dim=64", "method_args={gather: false}"]
    for order in (sets, sets[::-1]):
        cfg = load_config(None, order)
        assert cfg.method_args == {"temperature": 0.3, "proj_dim": 64, "gather": False}
    vit = ["encoder_args.img_size=16", "encoder_args.patch_size=4", "encoder_args.depth=1"]
    cfg = load_config(None, vit)
    assert cfg.encoder_args == {"img_size": 16, "patch_size": 4, "depth": 1}


def test_overrides_merge_into_the_config_file(tmp_path):
    """#19.7: an override adds to the YAML file's dict instead of replacing it, and a run's
    config.yaml (to_dict) holds every override given."""
    path = tmp_path / "c.yaml"
    path.write_text("method_args: {temperature: 0.5, proj_dim: 128}\n")
    cfg = load_config(path, ["method_args.proj_dim=64", "method_args.gather=false"])
    assert cfg.to_dict()["method_args"] == {"temperature": 0.5, "proj_dim": 64, "gather": False}


def test_override_with_a_typo_names_the_nearest_key():
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        load_config(None, ["train.epoch=3"])
