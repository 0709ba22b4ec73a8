"""Hostile and careless episode folders (`selfsup.data.episodes.read_episodes`): each test
damages a copy of a small valid collection and expects a `BadEpisodesError` (a ValueError)
naming the file and the fix, before any array is trusted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from selfsup.data.episodes import MANIFEST, BadEpisodesError, collect, read_episodes

FIX = r"collect the episodes again"


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    """40 steps of Pong at 84x84 in three shards of 16, 16 and 8 rows."""
    folder = tmp_path_factory.mktemp("valid")
    collect("ALE/Pong-v5", 40, folder, frame_size=84, shard_size=16)
    return folder


@pytest.fixture
def folder(valid, tmp_path) -> Path:
    """A fresh copy of the valid collection for a test to damage."""
    return Path(shutil.copytree(valid, tmp_path / "episodes"))


def edit_manifest(folder: Path, edit) -> None:
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def rewrite(shard: Path, **changes) -> None:
    """Save `shard` again with some arrays replaced (None: dropped)."""
    with np.load(shard, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    np.savez(shard, **{k: v for k, v in arrays.items() if v is not None})


class Boom:
    """Unpickling one would touch `marker`: the proof that nothing was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_valid_copy_reads(folder):
    assert len(read_episodes(folder)) == 40


def test_truncated_shard(folder):
    shard = folder / "shard-00001.npz"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(
        BadEpisodesError, match=rf"shard-00001\.npz: truncated or not an \.npz.*{FIX}"
    ):
        read_episodes(folder)


def test_shard_that_is_not_a_zip(folder):
    (folder / "shard-00000.npz").write_text("frames,actions\n1,2\n")
    with pytest.raises(BadEpisodesError, match=r"shard-00000\.npz: truncated or not an \.npz"):
        read_episodes(folder)


def test_pickled_object_array_is_refused_unread(folder, tmp_path):
    marker = tmp_path / "unpickled"
    bombs = np.empty(16, dtype=object)
    bombs[:] = [Boom(marker) for _ in range(16)]
    rewrite(folder / "shard-00000.npz", actions=bombs)
    with pytest.raises(BadEpisodesError, match=r"shard-00000\.npz\[actions\]: holds pickled"):
        read_episodes(folder)
    assert not marker.exists()


def test_manifest_lies_about_a_shard_row_count(folder):
    def lie(m):
        m["shards"][1]["rows"] = 17
        m["steps"] = 41

    edit_manifest(folder, lie)
    with pytest.raises(
        BadEpisodesError, match=r"shard-00001\.npz\[frames\]: 16 rows, but episodes\.json says 17"
    ):
        read_episodes(folder)


def test_manifest_steps_disagree_with_its_shards(folder):
    edit_manifest(folder, lambda m: m.update(steps=400))
    with pytest.raises(
        BadEpisodesError, match=r"episodes\.json: its shards list 40 rows but steps"
    ):
        read_episodes(folder)


def test_missing_shard(folder):
    (folder / "shard-00002.npz").unlink()
    with pytest.raises(
        BadEpisodesError, match=rf"shard-00002\.npz: missing, but episodes\.json lists it.*{FIX}"
    ):
        read_episodes(folder)


def test_frames_of_another_size(folder):
    """A shard from a collection at another frame size, dropped into this folder."""
    rewrite(folder / "shard-00001.npz", frames=np.zeros((16, 64, 64), np.uint8))
    with pytest.raises(
        BadEpisodesError,
        match=r"shard-00001\.npz\[frames\]: rows of shape \(64, 64\), but episodes\.json says "
        r"\(84, 84\)",
    ):
        read_episodes(folder)


def test_manifest_claims_another_frame_size(folder):
    edit_manifest(folder, lambda m: m.update(frame_shape=[210, 160]))
    with pytest.raises(BadEpisodesError, match=r"shard-00000\.npz\[frames\]: rows of shape"):
        read_episodes(folder)


def test_wrong_dtype(folder):
    rewrite(folder / "shard-00000.npz", actions=np.zeros(16, np.int32))
    with pytest.raises(
        BadEpisodesError, match=r"shard-00000\.npz\[actions\]: dtype int32, expected int64"
    ):
        read_episodes(folder)


def test_missing_array(folder):
    rewrite(folder / "shard-00002.npz", ram=None)
    with pytest.raises(BadEpisodesError, match=r"shard-00002\.npz: no 'ram' array"):
        read_episodes(folder)


def test_edited_episode_numbers(folder):
    rewrite(folder / "shard-00001.npz", episode=np.ones(16, np.int32))
    with pytest.raises(
        BadEpisodesError, match=r"episodes\.json: rows 15 and 16 are episodes 0 and 1"
    ):
        read_episodes(folder)


def test_manifest_not_json(folder):
    (folder / MANIFEST).write_text('{"format": "selfsup-episodes/1", ')
    with pytest.raises(BadEpisodesError, match=rf"episodes\.json: not JSON \(.*\).*{FIX}"):
        read_episodes(folder)


def test_manifest_not_utf8(folder):
    (folder / MANIFEST).write_bytes(b"\xff\xfe{}")
    with pytest.raises(BadEpisodesError, match=r"episodes\.json: not JSON"):
        read_episodes(folder)


def test_manifest_lacking_keys(folder):
    edit_manifest(folder, lambda m: m.pop("shards"))
    with pytest.raises(BadEpisodesError, match=r"episodes\.json: missing or wrong: shards"):
        read_episodes(folder)


def test_manifest_not_an_object(folder):
    (folder / MANIFEST).write_text("[1, 2]")
    with pytest.raises(BadEpisodesError, match=r"episodes\.json: a JSON list, not an object"):
        read_episodes(folder)


def test_manifest_pointing_outside_the_folder(folder):
    edit_manifest(folder, lambda m: m["shards"][0].update(file="../../etc/passwd.npz"))
    with pytest.raises(BadEpisodesError, match=r"missing or wrong: shards"):
        read_episodes(folder)


def test_empty_folder(tmp_path):
    with pytest.raises(BadEpisodesError, match=rf"{tmp_path.name}: an empty folder.*{FIX}"):
        read_episodes(tmp_path)


def test_shards_without_manifest(folder):
    (folder / MANIFEST).unlink()
    with pytest.raises(BadEpisodesError, match=r"no episodes\.json \(collect writes it last"):
        read_episodes(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere: no such folder"):
        read_episodes(tmp_path / "nowhere")


def test_a_file_instead_of_a_folder(folder):
    with pytest.raises(BadEpisodesError, match=r"episodes\.json: a file; expected a folder"):
        read_episodes(folder / MANIFEST)
