"""Careless and hostile inputs of an agent run (`--modality agent`): the CLI's collect and
pretrain answer each with exit code 2 and a message naming the fix, or skip the evaluation with
its reason; nothing is written into a folder that already holds episodes; a run folder without
its agent.json and mis-shaped observations are refused by name. (Damaged episode files:
test_episode_files.py.)"""

from __future__ import annotations

import json

import pytest
import torch

import selfsup
from selfsup.cli import main
from selfsup.data.episodes import collect


@pytest.fixture(scope="module")
def pong(tmp_path_factory):
    folder = tmp_path_factory.mktemp("agent") / "pong"
    collect("ALE/Pong-v5", 300, folder, frame_size=84)
    return folder


def _pretrain(data, out, *extra) -> list[str]:
    return ["pretrain", "--modality", "agent", "--data", str(data), "--out", str(out),
            "--steps", "1", "--batch-size", "8", "--no-progress", *extra]  # fmt: skip


def test_agent_run_without_episodes_names_the_collect_command(tmp_path, capsys):
    assert main(["pretrain", "--modality", "agent", "--out", str(tmp_path / "r")]) == 2
    assert "selfsup collect --env ALE/Pong-v5" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_pretrain(empty, tmp_path / "r2")) == 2
    err = capsys.readouterr().err
    assert "no episodes" in err and "selfsup collect --env" in err


@pytest.mark.parametrize(
    ("setting", "message"),
    [("data_args={stack: 0}", "data_args.stack must be an integer >= 1"),
     ("data_args={offset: -1}", "data_args.offset must be an integer >= 0"),
     ("data_args={frames: 4}", "unknown key 'frames' for agent"),
     ("views=simclr_views_typo", "have no agent version")],
)  # fmt: skip
def test_agent_settings_are_checked(pong, tmp_path, capsys, setting, message):
    assert main(_pretrain(pong, tmp_path / "r", "--set", setting)) == 2
    assert message in capsys.readouterr().err


def test_an_offset_longer_than_every_episode_is_refused(pong, tmp_path, capsys):
    assert main(_pretrain(pong, tmp_path / "r", "--set", "data_args={offset: 5000}")) == 2
    assert "no training step has a step 5000 later" in capsys.readouterr().err


def test_st_dim_on_an_encoder_without_a_local_map_is_refused(pong, tmp_path, capsys):
    assert main(_pretrain(pong, tmp_path / "r", "--encoder", "convnet_small")) == 2
    assert "use nature_cnn" in capsys.readouterr().err


def test_a_game_without_ram_annotation_trains_and_says_why_it_is_not_probed(tmp_path):
    folder = tmp_path / "tetris"
    collect("ALE/Tetris-v5", 60, folder, frame_size=84)
    notes = []
    cfg = selfsup.run_config(None, [f"data={folder}", f"train.out_dir={tmp_path / 'r'}",
                                    "train.steps=1", "train.batch_size=8",
                                    "train.progress=false"], "agent")  # fmt: skip
    results = selfsup.pretrain(cfg, log=lambda *a, **k: notes.append(" ".join(map(str, a))))
    assert "eval" not in results
    assert any("tetris has no AtariARI RAM annotation" in n for n in notes)


def test_collect_never_writes_into_a_folder_holding_episodes(pong, capsys):
    before = sorted(p.name for p in pong.iterdir())
    assert main(["collect", "--env", "ALE/Pong-v5", "--steps", "10", "--out", str(pong)]) == 2
    assert "already holds episodes" in capsys.readouterr().err
    assert sorted(p.name for p in pong.iterdir()) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--env", "CartPole-v1"], "not an Atari (ALE) environment"),
     (["--env", "ALE/NoSuchGame-v5"], "not an Atari (ALE) environment"),
     (["--env", "ALE/Pong-v5", "--steps", "0"], "steps=0")],
)  # fmt: skip
def test_collect_mistakes_exit_2(tmp_path, capsys, argv, message):
    assert main(["collect", "--steps", "10", "--out", str(tmp_path / "c"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_frames_too_small_for_the_encoder_are_refused_by_the_run(tmp_path, capsys):
    folder = tmp_path / "tiny"
    assert main(["collect", "--env", "ALE/Pong-v5", "--steps", "40", "--out", str(folder),
                 "--frame-size", "16"]) == 0  # fmt: skip
    assert main(_pretrain(folder, tmp_path / "r")) == 2
    assert "16 x 16 are too small for the Nature CNN" in capsys.readouterr().err


def test_a_run_folder_keeps_its_frame_layout(pong, tmp_path):
    run = tmp_path / "run"
    assert main(_pretrain(pong, run, "--no-eval", "--set", "eval.report=false")) == 0
    model = selfsup.load(run)
    with pytest.raises(ValueError, match=r"\(N, 1, 84, 84\) uint8 frames"):
        model.encode(torch.zeros(2, 3, 84, 84, dtype=torch.uint8))
    (run / "agent.json").write_text(json.dumps({"frame_shape": "tall"}))
    with pytest.raises(ValueError, match="agent.json: not this run's agent record"):
        selfsup.load(run)
