"""AtariARI: the state variables of Atari games and the RAM bytes that hold them.

The Atari Annotated RAM Interface (Anand et al. 2019, "Unsupervised State Representation
Learning in Atari", arXiv:1906.08226, NeurIPS 2019) labels each frame with state variables read
from the console's 128-byte RAM: positions of the agent, enemies and small objects, scores,
clocks, lives, counts. `ANNOTATIONS` is its table (github.com/mila-iqia/atari-representation-
learning, atariari/benchmark/ram_annotations.py at a06f52c, 2021-05; the paper's names). A
variable the benchmark gives as a list or range of bytes (a score spread over BCD bytes,
Breakout's brick bitmap) is not summed or combined: the benchmark splits it into one variable
per byte, `name_0`, `name_1`, ... in list order, each a 256-way label, appended after the
single-byte variables (ram_annotations.py, the loop at its end). `variables` and `ram_labels`
do the same, so names and order match its `AtariARIWrapper` labels.

The table changed after the paper: Pong gained player_x, enemy_x (2019-12, 8 variables against
the paper's 6); SpaceInvaders num_lives moved from byte 125 to 73 (2020-01); Pitfall gained
clock_sec, clock_min (2020-01, 5 -> 7); Q*bert gained score and tile_color (2020-05, 5 -> 29);
BattleZone and Skiing were added (2020-01, not in the paper's 22 games); Seaquest, PrivateEye
and YarsRevenge variables were renamed (2020-02).
`PAPER_VARIABLE_COUNTS` gives the paper's counts, to compare like with like.

Protocol (atariari/benchmark/{envs,episodes,probe,categorization,label_preprocess,utils}.py,
atariari/methods/utils.py get_argparser, scripts/run_probe.py, all at a06f52c; Slides.pdf):
  - environment: `{Game}NoFrameskip-v4` through baselines' make_atari (up to 30 no-ops at reset,
    frame skip 4 with the max of the last two frames) and wrap_deepmind: EpisodicLifeEnv (a lost
    life ends the episode), FireResetEnv, reward clipping; no sticky actions (envs.py 13-42,
    97-117). Labels are the RAM after each step (wrapper.py 27-44).
  - frames: full 210x160, grayscale (cv2 RGB2GRAY), no frame stacking: get_argparser's
    --no-downsample is store_true with default True, so downsampling is never on; --color
    False; --num-frame-stack 1 (methods/utils.py 23-25, 59). The README: "The RAM labels are
    meant for full-sized Atari observations (210 * 160). Probing results won't be accurate if
    you downsample the observations."
  - policy: uniform random over actions 1..n-1 (NOOP never taken: `np.random.randint(1, n)`,
    episodes.py 43-44); 8 processes, seed 42 (methods/utils.py 33, 51).
  - data: encoders pretrain on 100k frames; probes use 50k steps (--probe-steps, utils.py 29;
    Slides "Probe train-val-test -> 50K frames"). Episodes no longer than 64 steps (the batch
    size) are dropped; the rest are shuffled (seed) and split by episode 70 / 10 / 20 % into
    train / val / test (episodes.py 159-191); test frames byte-identical to a train or val
    frame are removed (label_preprocess.py 6-22).
  - low-entropy variables: a variable whose empirical label distribution over all kept
    episodes has entropy < 0.6 nats (torch Categorical, natural log) is dropped for the game
    (label_preprocess.py 25-50; threshold 0.6 from run_probe's --entropy-threshold, utils.py
    58 - the function's own default was 0.3 until 2021-05).
  - probe: one linear layer per variable, features -> 256 classes (the byte value), softmax
    cross-entropy, on frozen features of frames / 255; Adam lr 3e-4 (--probe-lr), eps 1e-5,
    batch 64, up to 100 epochs; ReduceLROnPlateau on val accuracy (factor 0.2, patience 5,
    min 1e-5); early stopping when val accuracy has not improved for 15 epochs (the last
    weights are kept, not the best). Each batch draws 64 episodes with replacement and one
    random frame from each; an epoch (and the test pass) draws as many frames as the split
    holds (probe.py 13-105, 189-211; scripts/run_probe.py 64-75).
  - metric: per variable, F1 with sklearn `average="weighted"` over the classes present
    (utils.py 141-143); averaged within each category of `CATEGORIES`, then across the
    categories present ("across_categories_avg_f1": the per-game figure of Table 2), so that a
    category with many variables (Breakout's 30 bricks) does not dominate (probe.py 229-278).

`PUBLISHED_F1` holds Table 2 of the paper (random-agent data, F1 averaged across categories).
"""

from __future__ import annotations

import re

import numpy as np

RAM_BYTES = 128
ENTROPY_THRESHOLD = 0.6  # nats; AtariARI run_probe's --entropy-threshold

# game -> variable -> RAM byte, or a tuple of bytes (the benchmark's list / range), in the
# benchmark's order. Byte indices are 0-based into ale.getRAM().
ANNOTATIONS: dict[str, dict[str, int | tuple[int, ...]]] = {
    "asteroids": dict(
        enemy_asteroids_y=(3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19),
        enemy_asteroids_x=(21, 22, 23, 24, 25, 26, 27, 30, 31, 32, 33, 34, 35, 36, 37),
        player_x=73, player_y=74, num_lives_direction=60, player_score_high=61,
        player_score_low=62, player_missile_x1=83, player_missile_x2=84, player_missile_y1=86,
        player_missile_y2=87, player_missile1_direction=89, player_missile2_direction=90,
    ),
    "battlezone": dict(
        blue_tank_facing_direction=46, blue_tank_size_y=47, blue_tank_x=48,
        blue_tank2_facing_direction=52, blue_tank2_size_y=53, blue_tank2_x=54, num_lives=58,
        missile_y=105, compass_needles_angle=84, angle_of_tank=4, left_tread_position=59,
        right_tread_position=60, crosshairs_color=108, score=29,
    ),
    "berzerk": dict(
        player_x=19, player_y=11, player_direction=14, player_missile_x=22, player_missile_y=23,
        player_missile_direction=21, robot_missile_direction=26, robot_missile_x=29,
        robot_missile_y=30, num_lives=90, robots_killed_count=91, game_level=92,
        enemy_evilOtto_x=46, enemy_evilOtto_y=89, enemy_robots_x=tuple(range(65, 73)),
        enemy_robots_y=tuple(range(56, 65)), player_score=tuple(range(93, 96)),
    ),
    "bowling": dict(
        ball_x=30, ball_y=41, player_x=29, player_y=40, frame_number_display=36,
        pin_existence=tuple(range(57, 67)), score=33,
    ),
    "boxing": dict(
        player_x=32, player_y=34, enemy_x=33, enemy_y=35, enemy_score=19, clock=17,
        player_score=18,
    ),
    "breakout": dict(
        ball_x=99, ball_y=101, player_x=72, blocks_hit_count=77,
        block_bit_map=tuple(range(30)), score=84,
    ),
    "demonattack": dict(
        level=62, player_x=22, enemy_x1=17, enemy_x2=18, enemy_x3=19, missile_y=21,
        enemy_y1=69, enemy_y2=70, enemy_y3=71, num_lives=114,
    ),
    "freeway": dict(player_y=14, score=103, enemy_car_x=tuple(range(108, 118))),
    "frostbite": dict(
        top_row_iceflow_x=34, second_row_iceflow_x=33, third_row_iceflow_x=32,
        fourth_row_iceflow_x=31, enemy_bear_x=104, num_lives=76, igloo_blocks_count=77,
        enemy_x=tuple(range(84, 88)), player_x=102, player_y=100, player_direction=4,
        score=(72, 73, 74),
    ),
    "hero": dict(
        player_x=27, player_y=31, power_meter=43, room_number=28, level_number=117,
        dynamite_count=50, score=(56, 57),
    ),
    "montezumarevenge": dict(
        room_number=3, player_x=42, player_y=43, player_direction=52, enemy_skull_x=47,
        enemy_skull_y=46, key_monster_x=44, key_monster_y=45, level=57, num_lives=58,
        items_in_inventory_count=61, room_state=62, score_0=19, score_1=20, score_2=21,
    ),
    "mspacman": dict(
        enemy_sue_x=6, enemy_inky_x=7, enemy_pinky_x=8, enemy_blinky_x=9, enemy_sue_y=12,
        enemy_inky_y=13, enemy_pinky_y=14, enemy_blinky_y=15, player_x=10, player_y=16,
        fruit_x=11, fruit_y=17, ghosts_count=19, player_direction=56, dots_eaten_count=119,
        player_score=120, num_lives=123,
    ),
    "pitfall": dict(
        player_x=97, player_y=105, enemy_logs_x=98, enemy_scorpion_x=99, bottom_of_rope_y=18,
        clock_sec=89, clock_min=88,
    ),
    "pong": dict(
        player_y=51, player_x=46, enemy_y=50, enemy_x=45, ball_x=49, ball_y=54,
        enemy_score=13, player_score=14,
    ),
    "privateeye": dict(
        player_x=63, player_y=86, room_number=92, clock=(67, 69), player_direction=58,
        score=(73, 74), dove_x=48, dove_y=39,
    ),
    "qbert": dict(
        player_x=43, player_y=67, player_column=35, red_enemy_column=69,
        green_enemy_column=105, score=(89, 90, 91),
        # the pyramid's cubes, top row first (rows of 1, 2, ..., 6 cubes)
        tile_color=(21, 52, 54, 83, 85, 87, 98, 100, 102, 104, 1, 3, 5, 7, 9,
                    32, 34, 36, 38, 40, 42),
    ),
    "riverraid": dict(
        player_x=51, missile_x=117, missile_y=50, fuel_meter_high=55, fuel_meter_low=56,
    ),
    "seaquest": dict(
        enemy_obstacle_x=tuple(range(30, 34)), player_x=70, player_y=97,
        diver_or_enemy_missile_x=tuple(range(71, 75)), player_direction=86,
        player_missile_direction=87, oxygen_meter_value=102, player_missile_x=103,
        score=(57, 58), num_lives=59, divers_collected_count=62,
    ),
    "skiing": dict(
        player_x=25, clock_m=104, clock_s=105, clock_ms=106, score=107,
        object_y=tuple(range(87, 94)),
    ),
    "spaceinvaders": dict(
        invaders_left_count=17, player_score=104, num_lives=73, player_x=28, enemies_x=26,
        missiles_y=9, enemies_y=24,
    ),
    "tennis": dict(
        enemy_x=27, enemy_y=25, enemy_score=70, ball_x=16, ball_y=17, player_x=26, player_y=24,
        player_score=69,
    ),
    "venture": dict(
        sprite0_y=20, sprite1_y=21, sprite2_y=22, sprite3_y=23, sprite4_y=24, sprite5_y=25,
        sprite0_x=79, sprite1_x=80, sprite2_x=81, sprite3_x=82, sprite4_x=83, sprite5_x=84,
        player_x=85, player_y=26, current_room=90, num_lives=70, score_1_2=71, score_3_4=72,
    ),
    "videopinball": dict(
        ball_x=67, ball_y=68, player_left_paddle_y=98, player_right_paddle_y=102, score_1=48,
        score_2=50,
    ),
    "yarsrevenge": dict(
        player_x=32, player_y=31, player_missile_x=38, player_missile_y=37, enemy_x=43,
        enemy_y=42, enemy_missile_x=47, enemy_missile_y=46,
    ),
}  # fmt: skip

# Variables per game in the paper (Table 1, as reproduced in the repository's Slides.pdf),
# before the later additions above; BattleZone and Skiing were not benchmarked.
PAPER_VARIABLE_COUNTS = {
    "asteroids": 41, "berzerk": 34, "bowling": 16, "boxing": 7, "breakout": 35,
    "demonattack": 10, "freeway": 12, "frostbite": 17, "hero": 8, "montezumarevenge": 15,
    "mspacman": 17, "pitfall": 5, "pong": 6, "privateeye": 10, "qbert": 5, "riverraid": 5,
    "seaquest": 18, "spaceinvaders": 7, "tennis": 8, "venture": 18, "videopinball": 6,
    "yarsrevenge": 8,
}  # fmt: skip

# Table 2 of arXiv:1906.08226 (v6 / NeurIPS 2019; reproduced in the repository's Slides.pdf):
# probe F1 averaged across categories, per game, data from a random agent. Columns: majority
# classifier, random (untrained) CNN, VAE, pixel prediction, CPC, ST-DIM, and a fully
# supervised encoder (the upper bound). "mean" is the paper's last row.
PUBLISHED_METHODS = ("majority", "random_cnn", "vae", "pixel_pred", "cpc", "st_dim", "supervised")
_TABLE_2 = {
    "asteroids":        (0.28, 0.34, 0.36, 0.34, 0.42, 0.49, 0.52),
    "berzerk":          (0.18, 0.43, 0.45, 0.55, 0.56, 0.53, 0.68),
    "bowling":          (0.33, 0.48, 0.50, 0.81, 0.90, 0.96, 0.95),
    "boxing":           (0.01, 0.19, 0.20, 0.44, 0.29, 0.58, 0.83),
    "breakout":         (0.17, 0.51, 0.57, 0.70, 0.74, 0.88, 0.94),
    "demonattack":      (0.16, 0.26, 0.26, 0.32, 0.57, 0.69, 0.83),
    "freeway":          (0.01, 0.50, 0.01, 0.81, 0.47, 0.81, 0.98),
    "frostbite":        (0.08, 0.57, 0.51, 0.72, 0.76, 0.75, 0.85),
    "hero":             (0.22, 0.75, 0.69, 0.74, 0.90, 0.93, 0.98),
    "montezumarevenge": (0.08, 0.68, 0.38, 0.74, 0.75, 0.78, 0.87),
    "mspacman":         (0.10, 0.49, 0.56, 0.74, 0.65, 0.72, 0.87),
    "pitfall":          (0.07, 0.34, 0.35, 0.44, 0.46, 0.60, 0.83),
    "pong":             (0.10, 0.17, 0.09, 0.70, 0.71, 0.81, 0.87),
    "privateeye":       (0.23, 0.70, 0.71, 0.83, 0.81, 0.91, 0.97),
    "qbert":            (0.29, 0.49, 0.49, 0.52, 0.65, 0.73, 0.76),
    "riverraid":        (0.04, 0.34, 0.26, 0.41, 0.40, 0.36, 0.57),
    "seaquest":         (0.29, 0.57, 0.56, 0.62, 0.66, 0.67, 0.85),
    "spaceinvaders":    (0.14, 0.41, 0.52, 0.57, 0.54, 0.57, 0.75),
    "tennis":           (0.09, 0.41, 0.29, 0.57, 0.60, 0.60, 0.81),
    "venture":          (0.09, 0.36, 0.38, 0.46, 0.51, 0.58, 0.68),
    "videopinball":     (0.09, 0.37, 0.45, 0.57, 0.58, 0.61, 0.82),
    "yarsrevenge":      (0.01, 0.22, 0.08, 0.19, 0.39, 0.42, 0.74),
    "mean":             (0.14, 0.44, 0.40, 0.58, 0.61, 0.68, 0.82),
}  # fmt: skip
PUBLISHED_F1: dict[str, dict[str, float]] = {
    game: dict(zip(PUBLISHED_METHODS, row, strict=True)) for game, row in _TABLE_2.items()
}

# The benchmark's summary categories (categorization.py 9-39): a variable belongs to each
# category whose rule its name meets (a few meet two, e.g. Asteroids' num_lives_direction;
# Q*bert's tile_color_* meet none and count only in the overall mean).
CATEGORIES = (
    "small_object_localization", "agent_localization", "other_localization",
    "score_clock_lives_display", "misc_keys",
)  # fmt: skip
_LOCALIZATION = ("_x", "_y", "_z", "_column")
_SMALL_OBJECTS, _AGENTS = ("ball", "missile"), ("agent", "player")
_DISPLAY = ("score", "clock", "lives", "lifes", "meter", "display")
_MISC = ("count", "bit_map", "existence", "level", "room", "game_state", "direction")


def game_of(env_id: str) -> str:
    """The AtariARI game key of a Gym id: "ALE/MsPacman-v5", "MsPacmanNoFrameskip-v4" and
    "MsPacman" -> "mspacman" (as the benchmark's wrapper.py 24 strips the suffixes)."""
    name = env_id.rsplit("/", 1)[-1].split("-")[0]
    return re.sub(r"(NoFrameskip|Deterministic)$", "", name).lower()


def variables(game: str) -> dict[str, int]:
    """Variable name -> RAM byte of `game` (a key of `ANNOTATIONS`, or a Gym id), multi-byte
    variables split into `name_i` after the single bytes, as the benchmark does; ValueError
    listing the supported games for another."""
    key = game_of(game)
    if key not in ANNOTATIONS:
        raise ValueError(
            f"{game!r}: no AtariARI RAM annotation; annotated games: {', '.join(ANNOTATIONS)}."
        )
    table = ANNOTATIONS[key]
    out = {name: b for name, b in table.items() if isinstance(b, int)}
    for name, b in table.items():
        if not isinstance(b, int):
            out.update({f"{name}_{i}": byte for i, byte in enumerate(b)})
    return out


def ram_labels(ram: np.ndarray, game: str) -> dict[str, np.ndarray]:
    """ram (T, 128) uint8 -> {variable: (T,) uint8}, each the byte's value (the 256-way label
    the AtariARI probe predicts), in `variables(game)` order. ValueError for another shape or
    dtype."""
    if ram.ndim != 2 or ram.shape[1] != RAM_BYTES or ram.dtype != np.uint8:
        raise ValueError(
            f"ram: expected (T, {RAM_BYTES}) uint8 (ale.getRAM() per step), got "
            f"{ram.shape} {ram.dtype}."
        )
    return {name: ram[:, byte] for name, byte in variables(game).items()}


def categories_of(name: str) -> list[str]:
    """The `CATEGORIES` a variable name counts in (possibly none, possibly two), by the
    benchmark's substring rules."""
    found = []
    if any(s in name for s in _LOCALIZATION):
        if any(s in name for s in _SMALL_OBJECTS):
            found.append("small_object_localization")
        elif any(s in name for s in _AGENTS):
            found.append("agent_localization")
        else:
            found.append("other_localization")
    if any(s in name for s in _DISPLAY):
        found.append("score_clock_lives_display")
    if any(s in name for s in _MISC):
        found.append("misc_keys")
    return found


def label_entropy(values: np.ndarray) -> float:
    """Entropy in nats of the empirical distribution of values (T,) (any integer dtype)."""
    counts = np.unique(values, return_counts=True)[1]
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def low_entropy(labels: dict[str, np.ndarray], threshold: float = ENTROPY_THRESHOLD) -> list[str]:
    """Names whose labels (T,) have entropy below `threshold` nats: the variables AtariARI
    drops for a game before probing (label_preprocess.py 25-50)."""
    return [name for name, v in labels.items() if label_entropy(v) < threshold]
