"""#18 (evaluation): the AtariARI probes. One (D, sum K_v) map trains the V variables' linear
classifiers independently; a decodable variable scores F1 ~1, noise does not; unseen test values
count as errors; the per-game figure averages within, then across the benchmark's categories."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.eval.state_probe import Classes, ProbeSettings, category_f1, probe_states

FAST = ProbeSettings(lr=1e-2, batch_size=64, max_epochs=30, patience=5)


def _splits(n=(600, 200, 200), d=16, seed=0):
    """Features whose first 4 dims encode `ball_x` (4 values) linearly; `score` is noise."""
    g = np.random.default_rng(seed)
    feats, labels = [], []
    for m in n:
        x = g.normal(size=(m, d)).astype(np.float32)
        ball = g.integers(0, 4, m)
        x[:, :4] += 6.0 * np.eye(4, dtype=np.float32)[ball]
        feats.append(torch.from_numpy(x))
        labels.append({"ball_x": ball * 10 + 3, "player_score": g.integers(0, 5, m)})
    return tuple(feats), tuple(labels)


def test_a_decodable_variable_scores_near_one_and_noise_near_chance():
    feats, labels = _splits()
    f1 = probe_states(feats, labels, FAST)
    assert list(f1) == ["ball_x", "player_score"]
    assert f1["ball_x"] > 0.97 and f1["player_score"] < 0.4


def test_standardizing_features_is_an_affine_change_the_probe_can_absorb():
    feats, labels = _splits()
    shifted = tuple(f * 0.01 + 5.0 for f in feats)  # uncentred, tiny: hard for Adam raw
    raw = probe_states(shifted, labels, FAST)
    std = probe_states(shifted, labels, ProbeSettings(**{**FAST.__dict__, "standardize": True}))
    assert std["ball_x"] > 0.97 and std["ball_x"] > raw["ball_x"]


def test_classes_are_the_training_values_and_unseen_values_are_ignored():
    classes = Classes(np.array([[3, 7], [5, 7], [3, 9]]))
    assert [v.tolist() for v in classes.values] == [[3, 5], [7, 9]] and classes.sizes == [2, 2]
    ids = classes.encode(np.array([[5, 9], [4, 7]]))
    assert ids.tolist() == [[1, 1], [-100, 0]]
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.0]])  # var 0 -> class 1 (5), var 1 -> class 0 (7)
    assert classes.decode(logits).tolist() == [[5, 7]]


def test_variables_train_independently():
    """A variable's F1 does not depend on which other variables are probed beside it."""
    feats, labels = _splits()
    alone = probe_states(feats, tuple({"ball_x": lab["ball_x"]} for lab in labels), FAST)
    both = probe_states(feats, labels, FAST)
    assert alone["ball_x"] == pytest.approx(both["ball_x"], abs=0.02)


def test_category_mean_is_within_then_across_categories():
    f1 = {"ball_x": 1.0, "ball_y": 0.5, "player_y": 0.2, "player_score": 0.9, "tile_color": 0.0}
    got = category_f1(f1)
    assert got["f1_small_object_localization"] == pytest.approx(0.75)
    assert got["f1_agent_localization"] == pytest.approx(0.2)
    assert got["f1_score_clock_lives_display"] == pytest.approx(0.9)
    assert got["f1"] == pytest.approx((0.75 + 0.2 + 0.9) / 3)  # tile_color is in no category
    assert category_f1({}) == {}
