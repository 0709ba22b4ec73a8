import os
import pickle

import pytest
import torch

from selfsup.engine.batches import EpochBatches
from selfsup.engine.checkpoint import (
    latest_valid_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def test_batches_are_a_pure_function_of_seed_and_step():
    a, b = EpochBatches(100, 10, seed=3), EpochBatches(100, 10, seed=3)
    assert torch.equal(a.indices(57), b.indices(57))  # b jumps straight to step 57
    epoch = torch.cat([a.indices(s) for s in range(10)])
    assert sorted(epoch.tolist()) == list(range(100))  # an epoch has no repeats
    assert not torch.equal(a.indices(0), a.indices(10))  # next epoch reshuffles


def test_ranks_split_the_global_batch_exactly():
    full = EpochBatches(64, 16, seed=1)
    shards = [EpochBatches(64, 16, seed=1, rank=r, world=2) for r in range(2)]
    for step in range(6):
        assert torch.equal(torch.cat([s.indices(step) for s in shards]), full.indices(step))


def test_batch_larger_than_data_is_a_clear_error():
    with pytest.raises(ValueError, match="lower batch_size"):
        EpochBatches(10, 16)


def test_checkpoints_keep_last_k_and_skip_corrupt(tmp_path):
    for step in (10, 20, 30):
        save_checkpoint({"step": step, "w": torch.ones(2) * step}, tmp_path, step, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [20, 30]
    assert not list(tmp_path.glob("*.tmp"))
    newest = list_checkpoints(tmp_path)[-1][1]
    newest.write_bytes(newest.read_bytes()[:50])  # a torn write from before atomic saves
    state, path = latest_valid_checkpoint(tmp_path)
    assert state["step"] == 20 and path.name == "checkpoint-00000020.pt"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_crafted_pickle_is_refused(tmp_path):
    path = tmp_path / "checkpoint-00000001.pt"
    with open(path, "wb") as f:
        pickle.dump({"step": 1, "payload": _Evil()}, f)
    torch.save({"step": 1, "payload": _Evil()}, tmp_path / "evil2.pt")
    for p in (path, tmp_path / "evil2.pt"):
        with pytest.raises(ValueError, match="weights-only"):
            load_checkpoint(p)


def test_data_too_large_for_the_accelerator_stays_on_the_host(monkeypatch):
    from selfsup.engine import batches as b

    data = torch.zeros(1000, 3, 32, 32, dtype=torch.uint8)  # 3,072,000 bytes
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d: (8_000_000, 80_000_000))
    assert b.fits_on(cuda, data)  # 3.1 MB <= half of 8 MB free
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d: (6_000_000, 80_000_000))
    assert not b.fits_on(cuda, data)
    assert b.fits_on(torch.device("cpu"), data)
