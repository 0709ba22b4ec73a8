"""Atari episodes as data (`selfsup.data.episodes`) and the AtariARI RAM table
(`selfsup.data.atari_ram`): short seeded collections (a few hundred steps, under a second each)
written to tmp_path and read back."""

from __future__ import annotations

import json

import ale_py
import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from selfsup.data import atari_ram
from selfsup.data.episodes import COLUMNS, MANIFEST, collect, read_episodes

PONG, BREAKOUT = "ALE/Pong-v5", "ALE/Breakout-v5"


@pytest.fixture(scope="module")
def pong(tmp_path_factory):
    """300 steps of Pong, full 210x160 grayscale frames, in shards of 128 rows."""
    folder = tmp_path_factory.mktemp("pong")
    collect(PONG, 300, folder, seed=0, shard_size=128)
    return folder


@pytest.fixture(scope="module")
def breakout(tmp_path_factory):
    """250 steps of Breakout at 84x84: seed 0 loses its fifth ball at step 172."""
    folder = tmp_path_factory.mktemp("breakout")
    collect(BREAKOUT, 250, folder, seed=0, frame_size=84)
    return read_episodes(folder)


def columns(episodes) -> dict[str, np.ndarray]:
    return {key: getattr(episodes, key) for key in COLUMNS}


# ---- collect and read back ---------------------------------------------------------------------


def test_reads_back_what_a_second_seeded_collection_gives(pong, tmp_path):
    collect(PONG, 300, tmp_path, seed=0, shard_size=100)  # other shards, same rows
    first, second = read_episodes(pong), read_episodes(tmp_path)
    for key, dtype in COLUMNS.items():
        a, b = getattr(first, key), getattr(second, key)
        assert a.dtype == dtype and len(a) == 300
        np.testing.assert_array_equal(a, b, err_msg=key)
    assert first.frames.shape == (300, 210, 160) and first.ram.shape == (300, 128)


def test_another_seed_gives_another_collection(pong, tmp_path):
    collect(PONG, 300, tmp_path, seed=1)
    assert not np.array_equal(read_episodes(pong).actions, read_episodes(tmp_path).actions)


def test_manifest_records_the_collection(pong):
    m = json.loads((pong / MANIFEST).read_text())
    assert m["env_id"] == PONG and m["game"] == "pong" and m["steps"] == 300
    assert m["frame_shape"] == [210, 160] and m["colour"] is False and m["frame_skip"] == 4
    assert m["shards"] == [
        {"file": "shard-00000.npz", "rows": 128},
        {"file": "shard-00001.npz", "rows": 128},
        {"file": "shard-00002.npz", "rows": 44},
    ]
    assert m["ram_variables"] == list(atari_ram.variables("pong"))
    assert not list(pong.glob(".*"))  # no temporary file left behind


def test_first_row_is_the_reset_state(pong):
    """Row 0's frame and RAM are the emulator's right after reset(seed): one state."""
    gym.register_envs(ale_py)
    env = gym.make(PONG, frameskip=1, repeat_action_probability=0.25)
    rgb, _ = env.reset(seed=0)
    ram = env.unwrapped.ale.getRAM()
    env.close()
    episodes = read_episodes(pong)
    np.testing.assert_array_equal(episodes.ram[0], ram)
    np.testing.assert_array_equal(episodes.frames[0], np.asarray(Image.fromarray(rgb).convert("L")))


def test_actions_skip_noop_as_atariari(pong):
    actions = read_episodes(pong).actions
    assert actions.min() >= 1 and actions.max() <= 5  # Pong's 6 actions, NOOP (0) never


def test_colour_frames_resized(tmp_path):
    collect(PONG, 20, tmp_path, frame_size=84, colour=True)
    episodes = read_episodes(tmp_path)
    assert episodes.frames.shape == (20, 3, 84, 84)
    assert episodes.manifest["frame_shape"] == [3, 84, 84]
    assert episodes.frames[:, 0].std() > 0  # a picture, not a constant


# ---- episodes, stacks, pairs -------------------------------------------------------------------


def test_episodes_split_where_terminated(breakout):
    ends = np.flatnonzero(breakout.terminated)
    assert ends.size >= 1
    step = np.diff(breakout.episode)
    np.testing.assert_array_equal(np.flatnonzero(step), ends[ends < len(breakout) - 1])
    assert (breakout.lives[ends + 1] == 5).all()  # the next row is a new game's first
    assert breakout.manifest["episodes"] == breakout.episode.max() + 1


def test_stack_keeps_one_episode_and_repeats_its_first_frame(breakout):
    start = int(np.flatnonzero(breakout.terminated)[0]) + 1
    frames = breakout.frames
    got = breakout.stack([0, start, start + 1, start + 5], k=4)
    assert got.shape == (4, 4, 84, 84)
    np.testing.assert_array_equal(got[0], frames[[0, 0, 0, 0]])
    np.testing.assert_array_equal(got[1], frames[[start] * 4])
    np.testing.assert_array_equal(got[2], frames[[start, start, start, start + 1]])
    np.testing.assert_array_equal(got[3], frames[start + 2 : start + 6])


def test_every_stack_is_from_its_own_episode(breakout):
    t = np.arange(len(breakout))
    stacks = breakout.stack(t, k=4)
    for i in range(len(t)):
        rows = [max(i - j, int(breakout.starts[i])) for j in (3, 2, 1, 0)]
        assert (breakout.episode[rows] == breakout.episode[i]).all()
        np.testing.assert_array_equal(stacks[i], breakout.frames[rows])


def test_stack_refuses_rows_outside(breakout):
    with pytest.raises(IndexError):
        breakout.stack([len(breakout)], k=4)


@pytest.mark.parametrize("offset", [1, 5, 200])
def test_pairs_never_cross_episodes(breakout, offset):
    pairs = breakout.pairs(offset)
    assert (pairs[:, 1] - pairs[:, 0] == offset).all()
    assert (breakout.episode[pairs[:, 0]] == breakout.episode[pairs[:, 1]]).all()
    lengths = np.bincount(breakout.episode)
    assert len(pairs) == np.maximum(lengths - offset, 0).sum()


def test_labels_are_the_annotated_bytes(pong):
    episodes = read_episodes(pong)
    labels = episodes.labels()
    assert list(labels) == list(atari_ram.variables("pong"))
    assert all(v.dtype == np.int64 and v.shape == (300,) for v in labels.values())
    np.testing.assert_array_equal(labels["ball_x"], episodes.ram[:, 49])


# ---- the collector's refusals ------------------------------------------------------------------


def test_collect_refuses_a_folder_holding_episodes(pong):
    with pytest.raises(FileExistsError, match="already holds episodes"):
        collect(PONG, 10, pong)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 0}, "steps=0"),
        ({"frame_size": 0}, "frame_size=0"),
        ({"policy": "ppo"}, "only 'random'"),
        ({"sticky": 1.5}, "sticky=1.5"),
    ],
)
def test_collect_argument_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        collect(PONG, **({"steps": 10, "out": tmp_path} | kwargs))


def test_collect_unknown_environment(tmp_path):
    with pytest.raises(ValueError, match=r"not an Atari \(ALE\) environment"):
        collect("ALE/NoSuchGame-v5", 10, tmp_path)


# ---- the AtariARI table ------------------------------------------------------------------------


def test_multi_byte_variables_split_as_the_benchmark():
    """Lists and ranges become name_0, name_1, ... after the single bytes (ram_annotations.py)."""
    frostbite = atari_ram.variables("ALE/Frostbite-v5")
    assert list(frostbite)[-7:] == [f"enemy_x_{i}" for i in range(4)] + [
        f"score_{i}" for i in range(3)
    ]
    assert [frostbite[f"score_{i}"] for i in range(3)] == [72, 73, 74]
    breakout = atari_ram.variables("breakout")
    assert len(breakout) == 35 and breakout["block_bit_map_29"] == 29


def test_required_games_are_annotated():
    for game in ("pong", "breakout", "boxing", "mspacman", "seaquest", "spaceinvaders", "freeway"):
        assert atari_ram.variables(game) and game in atari_ram.PUBLISHED_F1


def test_unknown_game_lists_the_known():
    with pytest.raises(ValueError, match="annotated games: asteroids"):
        atari_ram.variables("ALE/Adventure-v5")


def test_ram_labels_refuses_other_arrays():
    with pytest.raises(ValueError, match=r"\(T, 128\) uint8"):
        atari_ram.ram_labels(np.zeros((4, 128), np.int64), "pong")


def test_published_means_match_the_table():
    """Table 2's mean row is the mean of its game rows (to rounding): no digit misread."""
    games = [g for g in atari_ram.PUBLISHED_F1 if g != "mean"]
    assert len(games) == 22
    for method in atari_ram.PUBLISHED_METHODS:
        mean = np.mean([atari_ram.PUBLISHED_F1[g][method] for g in games])
        assert abs(mean - atari_ram.PUBLISHED_F1["mean"][method]) <= 0.006, method


def test_categories_follow_the_benchmark_rules():
    assert atari_ram.categories_of("ball_x") == ["small_object_localization"]
    assert atari_ram.categories_of("player_missile_x") == ["small_object_localization"]
    assert atari_ram.categories_of("player_y") == ["agent_localization"]
    assert atari_ram.categories_of("enemy_x") == ["other_localization"]
    assert atari_ram.categories_of("num_lives_direction") == [
        "score_clock_lives_display",
        "misc_keys",
    ]
    assert atari_ram.categories_of("tile_color_3") == []


def test_low_entropy_drops_constant_variables(pong):
    labels = read_episodes(pong).labels()
    dropped = atari_ram.low_entropy(labels)
    assert "player_x" in dropped and "enemy_x" in dropped  # Pong's paddles never move sideways
    assert "ball_x" not in dropped
