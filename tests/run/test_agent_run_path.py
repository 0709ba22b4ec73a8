"""#18 (run path): an agent run walks the one run path: episodes collected offline from ALE,
pretraining on the train episodes, the AtariARI probe table beside pixels and random init, the
report's state-probe section, evaluate on the run's own numbers, load, embed, export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import selfsup
from selfsup.cli import main
from selfsup.data.episodes import read_episodes
from selfsup.modalities.agent import AgentModality, split_steps

FAST = ["--set", "eval.baselines=true", "--precision", "fp32", "--no-progress"]


@pytest.fixture(scope="module")
def pong(tmp_path_factory):
    """600 steps of Pong at 84 x 84, then a 4-step ST-DIM run on them."""
    root = tmp_path_factory.mktemp("agent")
    assert main(["collect", "--env", "ALE/Pong-v5", "--steps", "600", "--out",
                 str(root / "pong"), "--frame-size", "84"]) == 0  # fmt: skip
    argv = ["pretrain", "--modality", "agent", "--data", str(root / "pong"), "--out",
            str(root / "run"), "--steps", "4", "--batch-size", "16", *FAST]  # fmt: skip
    assert main(argv) == 0
    return root


def test_agent_run_ends_with_the_probe_table_and_report(pong):
    run = pong / "run"
    results = json.loads((run / "results.json").read_text())
    assert list(results["eval"]) == ["pixels", "random init", "stdim (trained)"]
    for row in results["eval"].values():
        assert 0.0 <= row["f1"] <= 1.0 and any(k.startswith("f1_") for k in row)
    per_variable = results["state_probe"]["per_variable_f1"]["stdim (trained)"]
    assert set(per_variable) <= {"player_y", "player_x", "enemy_y", "enemy_x", "ball_x",
                                 "ball_y", "enemy_score", "player_score"}  # fmt: skip
    assert results["state_probe"]["published_f1"]["st_dim"] == 0.81
    assert results["report"]["sections"] == ["curves", "health", "views", "state-probe"]
    page = (run / "report.html").read_text()
    assert 'id="state-probe"' in page and "Published F1 for this game" in page
    with np.load(run / "report_data.npz") as data:
        assert data["view_images"].shape[1:3] == (3, 3) and data["view_images"].dtype == np.uint8
        assert data["probe_f1"].shape == (3, len(per_variable))
    assert json.loads((run / "agent.json").read_text())["frame_shape"] == [1, 84, 84]


def test_evaluate_load_embed_export_an_agent_run(pong, tmp_path, capsys):
    run = pong / "run"
    trained = json.loads((run / "results.json").read_text())["eval"]["stdim (trained)"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row == pytest.approx(trained, abs=1e-9)
    out = tmp_path / "e.npy"
    assert main(["embed", str(run), "--data", str(pong / "pong"), "--out", str(out)]) == 0
    emb = np.load(out)
    assert emb.shape == (600, 256)
    frames = read_episodes(pong / "pong").frames
    model = selfsup.load(run)
    got = model.encode(torch.from_numpy(frames[[0, 500]]))
    assert np.allclose(got, emb[[0, 500]], atol=1e-5)
    pt = tmp_path / "enc.pt"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(pt)]) == 0
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "agent.json").unlink()
    with pytest.raises(FileNotFoundError, match="agent.json: missing"):
        selfsup.load(broken)


def test_views_pair_each_step_with_the_one_offset_later_in_its_episode(pong):
    """ATC's pairs: observation t and t + 3 of one episode, stacks aligned, never across an
    episode's end; the frames come out of the views as they are in the episodes (no shift)."""
    cfg = selfsup.run_config(None, [f"data={pong / 'pong'}", "method=atc",
                                    "data_args={stack: 2}"], "agent")  # fmt: skip
    modality = AgentModality(cfg)
    modality.load(lambda *a: None)
    made = modality.views("stdim_views")  # no augmentation: compare frames exactly
    modality.offset = 3
    dataset, views = modality.training(made)
    anchors = dataset.inputs
    starts = modality.starts
    assert (starts[anchors + 3] == starts[anchors]).all()
    t = anchors[torch.linspace(0, len(anchors) - 1, 50).long()]
    a, b = views(t)
    frames = modality.frames[:, 0].float() / 255
    assert torch.equal(a[:, 1], frames[t]) and torch.equal(b[:, 1], frames[t + 3])
    first = torch.maximum(t - 1, starts[t])  # the stack's older frame, clamped at the start
    assert torch.equal(a[:, 0], frames[first])


def test_split_is_by_episode_and_falls_back_to_blocks_of_one_long_episode():
    starts = torch.tensor([0] * 5 + [5] * 3 + [8] * 4 + [12] * 2 + [14] * 6)
    train, val, test = split_steps(starts, seed=0)
    for part in (train, val, test):
        assert len(part) and all(
            (starts[part] == s).sum() == (starts == s).sum() for s in starts[part].unique()
        )
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(20))
    one = torch.zeros(10, dtype=torch.long)
    assert [p.tolist() for p in split_steps(one, 0)] == [list(range(7)), [7], [8, 9]]
