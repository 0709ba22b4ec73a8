"""Atari observation sequences as data: `collect` them with a random policy, `read_episodes` back.

A folder written by `collect` holds `episodes.json` (the manifest) and `shard-00000.npz`, ...
(np.savez_compressed: plain arrays, no pickled objects), each with these arrays of its rows t,
one agent step a row:

  frames      uint8 (T, H, W) grayscale, or (T, 3, H, W) colour: the frame the action was
              chosen on, single frames (stacking is done at read time, `Episodes.stack`)
  actions     int64 (T,)  the action taken at t
  rewards     float32 (T,)  the game's reward summed over the step's frames, not clipped
  terminated  bool (T,)  the game ended after this step; the next row starts a new episode
  truncated   bool (T,)  the emulator's frame limit ended it (ALE v5: 108,000 frames)
  episode     int32 (T,)  the episode number, from 0 over the whole collection
  lives       int32 (T,)  ale.lives() at t (AtariARI's episodes end at each lost life)
  ram         uint8 (T, 128)  ale.getRAM() at t: the AtariARI labels (`data/atari_ram.py`)

A row's frame, RAM and lives come from one emulator state. The observation after an episode's
last step is not stored (the next row is the reset frame), as in AtariARI's collection.

Collection (`collect`): ALE runs frame by frame with sticky actions (repeat probability 0.25,
ALE v5's default, Machado et al. 2018, in place of no-op starts); each step repeats the action
for `frame_skip` frames, sums their rewards and keeps the pixel-wise max of the last two RGB
frames (DQN, Mnih et al. 2015; baselines' MaxAndSkipEnv, which AtariARI uses: sprites drawn on
alternate frames, such as MsPacman's ghosts, would otherwise vanish). Grayscale is ITU-R 601
luma (PIL "L", the weights of cv2's RGB2GRAY in AtariARI's GrayscaleWrapper). `frame_size`
None keeps the full 210x160 frames, AtariARI's probing input (its README: "Probing results
won't be accurate if you downsample"); an int resizes to size x size with PIL's BOX filter,
the mean of the covered area (cv2 INTER_AREA's counterpart, DQN's 84x84 WarpFrame). The policy
draws uniformly among actions 1..n-1 with numpy's default_rng(seed): AtariARI's random agent
never takes NOOP (action 0). One seed fixes the whole collection.

Errors: a folder that cannot be read is a `BadEpisodesError` (a ValueError) naming the file and
the fix; a missing folder is a FileNotFoundError. Each array's header is checked against the
manifest before numpy reads it, so a pickled object array is refused unread.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format

from selfsup.data.atari_ram import ANNOTATIONS, RAM_BYTES, game_of, ram_labels, variables

FORMAT = "selfsup-episodes/1"
MANIFEST = "episodes.json"
STICKY = 0.25  # ALE v5's repeat_action_probability
SHARD_ROWS = 5_000  # 168 MB of 210x160 grayscale frames a shard
COLUMNS = {
    "frames": np.uint8, "actions": np.int64, "rewards": np.float32, "terminated": np.bool_,
    "truncated": np.bool_, "episode": np.int32, "lives": np.int32, "ram": np.uint8,
}  # fmt: skip
RECOLLECT = (
    "collect the episodes again into an empty folder (`selfsup collect --env ALE/<Game>-v5 "
    "--steps N --out FOLDER`, or selfsup.data.episodes.collect)"
)
_SHARD_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\.npz")


class BadEpisodesError(ValueError):
    """An episodes folder or file that cannot be used; the message names it and the fix."""


@dataclass
class Episodes:
    """A collection read back: per row t, frames (T, H, W) or (T, 3, H, W) uint8, actions
    (T,) int64, rewards (T,) float32, terminated / truncated (T,) bool, episode (T,) int32,
    lives (T,) int32, ram (T, 128) uint8, and the manifest it was read with."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode: np.ndarray
    lives: np.ndarray
    ram: np.ndarray
    manifest: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def game(self) -> str:
        """The AtariARI game key ("pong")."""
        return self.manifest.get("game") or game_of(self.manifest.get("env_id", ""))

    @cached_property
    def starts(self) -> np.ndarray:
        """(T,) int64: the first row of each row's episode."""
        first = np.flatnonzero(np.r_[True, self.episode[1:] != self.episode[:-1]])
        return first[np.searchsorted(first, np.arange(len(self)), side="right") - 1]

    def stack(self, indices: Sequence[int] | np.ndarray, k: int = 4) -> np.ndarray:
        """Frames of rows `indices` (N,) with their k - 1 predecessors -> (N, k, *frame) uint8,
        oldest first; before an episode's start its first frame repeats (gym's FrameStack after
        a reset), so a stack never mixes two episodes."""
        t = np.asarray(indices, dtype=np.int64).reshape(-1)
        if k < 1:
            raise ValueError(f"stack: k={k}; expected >= 1 frames.")
        if t.size and (t.min() < 0 or t.max() >= len(self)):
            raise IndexError(f"stack: indices must lie in 0..{len(self) - 1}.")
        rows = t[:, None] - (k - 1) + np.arange(k)
        return self.frames[np.maximum(rows, self.starts[t][:, None])]

    def pairs(self, offset: int = 1) -> np.ndarray:
        """(N, 2) int64: every (t, t + offset) with both rows in one episode."""
        if offset < 1:
            raise ValueError(f"pairs: offset={offset}; expected >= 1.")
        t = np.arange(max(len(self) - offset, 0))
        t = t[self.episode[t] == self.episode[t + offset]]
        return np.stack([t, t + offset], axis=1)

    def labels(self, game: str | None = None) -> dict[str, np.ndarray]:
        """{AtariARI variable: (T,) int64 byte value} of `game` (default: the collection's)."""
        return {k: v.astype(np.int64) for k, v in ram_labels(self.ram, game or self.game).items()}


# ---- collecting --------------------------------------------------------------------------------


def collect(
    env_id: str,
    steps: int,
    out: str | Path,
    *,
    seed: int = 0,
    frame_size: int | None = None,
    colour: bool = False,
    frame_skip: int = 4,
    sticky: float = STICKY,
    policy: str = "random",
    shard_size: int = SHARD_ROWS,
) -> Path:
    """Run `env_id` ("ALE/Pong-v5") for `steps` agent steps with a seeded random policy and
    write the shards and manifest into `out` (created; refused if it already holds episodes).
    Returns the manifest's path. frame_size: None for the full 210x160 frames, else the side
    of square resized frames (84: DQN's); colour: RGB frames (3, H, W) instead of grayscale."""
    _check_collect_args(steps, frame_size, frame_skip, sticky, policy, shard_size)
    out = _empty_target(Path(out))
    env = _make_env(env_id, sticky)
    try:
        shape = _frame_shape(env.observation_space.shape, frame_size, colour)
        writer = _ShardWriter(out, shard_size, shape)
        episodes = _rollout(env, steps, seed, frame_skip, writer, lambda rgb: _frame(rgb, shape))
        meanings = env.unwrapped.get_action_meanings()
    finally:
        env.close()
    manifest = {
        "format": FORMAT, "env_id": env_id, "game": game_of(env_id), "frame_shape": list(shape),
        "colour": colour, "frame_size": frame_size, "frame_skip": frame_skip, "seed": seed,
        "steps": steps, "episodes": episodes, "shards": writer.shards,
        "ram_variables": _ram_variables(env_id), "sticky_actions": sticky, "max_pool": 2,
        "policy": "uniform over actions 1..n-1 (AtariARI's random agent)",
        "action_meanings": meanings, "versions": _versions(),
    }  # fmt: skip
    path = out / MANIFEST
    _write_atomic(path, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
    return path


def _check_collect_args(
    steps: int, frame_size: int | None, frame_skip: int, sticky: float, policy: str, shard: int
) -> None:
    checks = {
        f"steps={steps!r}: expected an int >= 1": _whole(steps) and steps >= 1,
        f"frame_size={frame_size!r}: expected None (210x160) or an int >= 1":
            frame_size is None or (_whole(frame_size) and frame_size >= 1),
        f"frame_skip={frame_skip!r}: expected an int >= 1": _whole(frame_skip) and frame_skip >= 1,
        f"sticky={sticky!r}: expected a probability in [0, 1]": 0 <= sticky <= 1,
        f"policy={policy!r}: only 'random' is implemented": policy == "random",
        f"shard_size={shard!r}: expected an int >= 1": _whole(shard) and shard >= 1,
    }  # fmt: skip
    wrong = [message for message, ok in checks.items() if not ok]
    if wrong:
        raise ValueError("; ".join(wrong) + ".")


def _whole(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _empty_target(out: Path) -> Path:
    """`out`, created; FileExistsError if it holds a manifest or shards already (mixing two
    collections would corrupt both)."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).exists() or any(out.glob("shard-*.npz")):
        raise FileExistsError(f"{out}: already holds episodes; choose an empty folder.")
    return out


def _make_env(env_id: str, sticky: float) -> Any:
    """A Gymnasium Atari env stepping one frame at a time (we skip and max-pool ourselves)."""
    import ale_py  # imported here: reading episodes needs neither emulator nor gymnasium
    import gymnasium as gym

    gym.register_envs(ale_py)
    try:
        return gym.make(env_id, frameskip=1, repeat_action_probability=sticky, obs_type="rgb")
    except (gym.error.Error, TypeError) as e:  # TypeError: a non-ALE env refuses ALE's options
        raise ValueError(
            f"{env_id!r}: not an Atari (ALE) environment ({e}); collect records console frames "
            "and RAM, e.g. --env ALE/Pong-v5."
        ) from e


def _frame_shape(native: tuple[int, ...], size: int | None, colour: bool) -> tuple[int, ...]:
    """(H, W) or (3, H, W) of the stored frames, from the env's (H, W, 3) observations."""
    hw = tuple(native[:2]) if size is None else (size, size)
    return (3, *hw) if colour else hw


def _frame(rgb: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """rgb (H0, W0, 3) uint8 -> `shape` (H, W) grayscale or (3, H, W) colour uint8."""
    from PIL import Image

    img = Image.fromarray(rgb)
    if len(shape) == 2:
        img = img.convert("L")  # ITU-R 601 luma, as cv2.COLOR_RGB2GRAY
    if img.size != (shape[-1], shape[-2]):
        img = img.resize((shape[-1], shape[-2]), Image.Resampling.BOX)
    a = np.asarray(img)
    return a if a.ndim == 2 else a.transpose(2, 0, 1)


def _rollout(
    env: Any,
    steps: int,
    seed: int,
    frame_skip: int,
    writer: _ShardWriter,
    frame: Callable[[np.ndarray], np.ndarray],
) -> int:
    """Step the env `steps` times, writing each row; returns the number of episodes begun."""
    rng = np.random.default_rng(seed)
    ale, n = env.unwrapped.ale, int(env.action_space.n)
    rgb, _ = env.reset(seed=seed)
    episode, ended = 0, False
    for _ in range(steps):
        row = {"frames": frame(rgb), "ram": ale.getRAM(), "lives": ale.lives(), "episode": episode}
        action = int(rng.integers(1, n)) if n > 1 else 0
        rgb, reward, terminated, truncated = _skip(env, action, frame_skip)
        writer.add(row | {"actions": action, "rewards": reward, "terminated": terminated,
                          "truncated": truncated})  # fmt: skip
        ended = terminated or truncated
        if ended:
            episode += 1
            rgb, _ = env.reset()
    writer.flush()
    return episode + int(not ended)


def _skip(env: Any, action: int, frames: int) -> tuple[np.ndarray, float, bool, bool]:
    """`action` for `frames` frames (fewer if the episode ends) -> (max of the last two RGB
    frames (H, W, 3), summed reward, terminated, truncated)."""
    reward, last, before = 0.0, None, None
    for _ in range(frames):
        obs, r, terminated, truncated, _ = env.step(action)
        reward, before, last = reward + float(r), last, obs
        if terminated or truncated:
            break
    pooled = last if before is None else np.maximum(before, last)
    return pooled, reward, bool(terminated), bool(truncated)


class _ShardWriter:
    """Rows buffered in preallocated arrays, written `rows` at a time as shard-NNNNN.npz."""

    def __init__(self, folder: Path, rows: int, frame_shape: tuple[int, ...]) -> None:
        self.folder, self.rows, self.n = folder, rows, 0
        self.buffers = {k: np.empty((rows, *_row_shape(k, frame_shape)), d)
                        for k, d in COLUMNS.items()}  # fmt: skip
        self.shards: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        for key, value in row.items():
            self.buffers[key][self.n] = value
        self.n += 1
        if self.n == self.rows:
            self.flush()

    def flush(self) -> None:
        if not self.n:
            return
        name = f"shard-{len(self.shards):05d}.npz"
        arrays = {k: v[: self.n] for k, v in self.buffers.items()}
        _write_atomic(self.folder / name, lambda f: np.savez_compressed(f, **arrays))
        self.shards.append({"file": name, "rows": self.n})
        self.n = 0


def _row_shape(column: str, frame_shape: tuple[int, ...]) -> tuple[int, ...]:
    return {"frames": frame_shape, "ram": (RAM_BYTES,)}.get(column, ())


def _write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write `path` through a temporary file beside it and os.replace: a reader, or a crash,
    never sees half a file."""
    # not mkstemp: its files are private (0600); open "xb" gives the umask's permissions
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _ram_variables(env_id: str) -> list[str]:
    """The AtariARI variables of the game, [] for a game without annotations."""
    return list(variables(env_id)) if game_of(env_id) in ANNOTATIONS else []


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("gymnasium", "ale-py", "numpy", "pillow")}


# ---- reading -----------------------------------------------------------------------------------


def read_episodes(folder: str | Path) -> Episodes:
    """The collection in `folder` (its episodes.json and the shards it lists), every shard
    checked against the manifest: BadEpisodesError naming the file and the fix."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    shape = tuple(manifest["frame_shape"])
    shards = [(folder / s["file"], s["rows"]) for s in manifest["shards"]]
    for path, rows in shards:  # every header first: nothing is allocated for a bad folder
        _check_shard(path, rows, shape)
    columns = {k: np.empty((manifest["steps"], *_row_shape(k, shape)), d)
               for k, d in COLUMNS.items()}  # fmt: skip
    start = 0
    for path, rows in shards:
        _read_shard(path, columns, start, rows)
        start += rows
    _check_boundaries(columns, folder / MANIFEST)
    return Episodes(**columns, manifest=manifest)


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such folder; {RECOLLECT}.")
    if not folder.is_dir():
        raise BadEpisodesError(f"{folder}: a file; expected a folder of {MANIFEST} and shards.")
    if not path.is_file():
        why = f"no {MANIFEST} (collect writes it last: the collection was interrupted)"
        if not any(folder.iterdir()):
            why = "an empty folder, no episodes"
        raise BadEpisodesError(f"{folder}: {why}; {RECOLLECT}.")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadEpisodesError(f"{path}: not JSON ({e}); restore the file or {RECOLLECT}.") from e
    _check_manifest(manifest, path)
    return manifest


def _check_manifest(m: object, path: Path) -> None:
    """BadEpisodesError naming the keys of `m` that are missing or of the wrong type."""
    if not isinstance(m, dict):
        raise BadEpisodesError(f"{path}: a JSON {type(m).__name__}, not an object; {RECOLLECT}.")
    wrong = [f"{key} ({want})" for key, (ok, want) in _MANIFEST_KEYS.items()
             if key not in m or not ok(m[key])]  # fmt: skip
    if wrong:
        raise BadEpisodesError(
            f"{path}: missing or wrong: {', '.join(wrong)}; not a manifest written by collect "
            f"(format {FORMAT}): restore it or {RECOLLECT}."
        )
    rows = sum(s["rows"] for s in m["shards"])
    if rows != m["steps"]:
        raise BadEpisodesError(
            f"{path}: its shards list {rows} rows but steps is {m['steps']}; restore it or "
            f"{RECOLLECT}."
        )


def _is_frame_shape(v: object) -> bool:
    ok = isinstance(v, list) and len(v) in (2, 3) and all(_whole(x) and x >= 1 for x in v)
    return ok and (len(v) == 2 or v[0] == 3)


def _is_shard_list(v: object) -> bool:
    """A list of {"file": a plain .npz name in the folder, "rows": int >= 0}."""
    return isinstance(v, list) and all(
        isinstance(s, dict) and isinstance(s.get("file"), str)
        and _SHARD_NAME.fullmatch(s["file"]) is not None and _whole(s.get("rows"))
        and s["rows"] >= 0 for s in v
    )  # fmt: skip


_MANIFEST_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "format": (lambda v: v == FORMAT, repr(FORMAT)),
    "env_id": (lambda v: isinstance(v, str), "a string"),
    "game": (lambda v: isinstance(v, str), "a string"),
    "frame_shape": (_is_frame_shape, "[H, W] or [3, H, W]"),
    "colour": (lambda v: isinstance(v, bool), "true or false"),
    "frame_size": (lambda v: v is None or (_whole(v) and v >= 1), "null or an int >= 1"),
    "frame_skip": (lambda v: _whole(v) and v >= 1, "an int >= 1"),
    "seed": (_whole, "an int"),
    "steps": (lambda v: _whole(v) and v >= 0, "an int >= 0"),
    "shards": (_is_shard_list, 'a list of {"file": "shard-00000.npz", "rows": int}'),
    "ram_variables": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                      "a list of names"),
}  # fmt: skip


def _check_shard(path: Path, rows: int, frame_shape: tuple[int, ...]) -> None:
    """BadEpisodesError unless `path` is an .npz whose arrays have the manifest's dtypes and
    shapes, read from their headers (a pickled object array is refused unread)."""
    if not path.is_file():
        raise BadEpisodesError(
            f"{path}: missing, but {MANIFEST} lists it ({rows} rows); restore it or {RECOLLECT}."
        )
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            for key, dtype in COLUMNS.items():
                if f"{key}.npy" not in names:
                    raise BadEpisodesError(f"{path}: no {key!r} array; {RECOLLECT}.")
                with z.open(f"{key}.npy") as fp:
                    want = (rows, *_row_shape(key, frame_shape))
                    _check_header(fp, f"{path}[{key}]", np.dtype(dtype), want)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise BadEpisodesError(
            f"{path}: truncated or not an .npz ({e}); restore it or {RECOLLECT}."
        ) from e


def _check_header(fp: IO[bytes], where: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    try:
        version = npy_format.read_magic(fp)
        read = npy_format.read_array_header_1_0 if version == (1, 0) else None
        got_shape, _, got_dtype = (read or npy_format.read_array_header_2_0)(fp)
    except (ValueError, EOFError) as e:
        raise BadEpisodesError(f"{where}: not a NumPy array ({e}); {RECOLLECT}.") from e
    if got_dtype.hasobject:
        raise BadEpisodesError(
            f"{where}: holds pickled Python objects (dtype {got_dtype}), never unpickled here: "
            f"loading them could run code; {RECOLLECT}."
        )
    if got_dtype != dtype or got_shape != shape:
        raise BadEpisodesError(f"{where}: {_mismatch(got_shape, got_dtype, shape, dtype)}; "
                               f"restore the shard or {RECOLLECT}.")  # fmt: skip


def _mismatch(
    got: tuple[int, ...], got_dtype: np.dtype, want: tuple[int, ...], dtype: np.dtype
) -> str:
    """The first difference between an array header and the manifest, in words."""
    if got_dtype != dtype:
        return f"dtype {got_dtype}, expected {dtype}"
    if len(got) != len(want) or got[1:] != want[1:]:
        return f"rows of shape {got[1:]}, but {MANIFEST} says {want[1:]}"
    return f"{got[0]} rows, but {MANIFEST} says {want[0]}"


def _read_shard(path: Path, columns: dict[str, np.ndarray], start: int, rows: int) -> None:
    """Copy the shard's arrays (headers already checked) into rows start.. of `columns`."""
    try:
        with zipfile.ZipFile(path) as z:
            for key, column in columns.items():
                with z.open(f"{key}.npy") as fp:
                    column[start : start + rows] = npy_format.read_array(fp, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as e:
        raise BadEpisodesError(f"{path}: unreadable ({e}); restore it or {RECOLLECT}.") from e


def _check_boundaries(columns: dict[str, np.ndarray], manifest: Path) -> None:
    """BadEpisodesError unless the episode number rises by one exactly after each terminated
    or truncated row (shards reordered or edited would break it)."""
    ends = columns["terminated"][:-1] | columns["truncated"][:-1]
    bad = np.flatnonzero(np.diff(columns["episode"].astype(np.int64)) != ends)
    if bad.size:
        t = int(bad[0])
        raise BadEpisodesError(
            f"{manifest}: rows {t} and {t + 1} are episodes {columns['episode'][t]} and "
            f"{columns['episode'][t + 1]}, but row {t} ends no episode (or ends one without a "
            f"new one following): the shards are out of order or edited; {RECOLLECT}."
        )
