"""ClassBalancedBatches: P x K class-balanced batches, a pure function of (seed, step, rank)."""

import pytest
import torch

from selfsup.data.samplers import ClassBalancedBatches


def _labels(n_classes: int = 10, per_class: int = 20, seed: int = 0) -> torch.Tensor:
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def test_batches_hold_p_classes_of_k_distinct_samples():
    labels = _labels()
    s = ClassBalancedBatches(labels, batch_size=24, samples_per_class=4, seed=1)
    assert (s.classes_per_batch, s.steps_per_epoch) == (6, 200 // 24)
    for step in range(20):
        idx = s.indices(step)
        assert idx.shape == (24,) and idx.dtype == torch.long
        assert len(idx.unique()) == 24  # no sample twice
        classes, counts = labels[idx].unique(return_counts=True)
        assert len(classes) == 6 and (counts == 4).all()
        # class-major layout: K consecutive rows share a class
        assert (labels[idx].view(6, 4) == labels[idx].view(6, 4)[:, :1]).all()


def test_pure_function_of_seed_and_step_and_seeds_differ():
    labels = _labels()
    a, b = ClassBalancedBatches(labels, 16, 4, seed=3), ClassBalancedBatches(labels, 16, 4, seed=3)
    assert torch.equal(a.indices(57), b.indices(57))  # b jumps straight to step 57 (resume)
    assert not torch.equal(a.indices(0), a.indices(1))
    assert not torch.equal(a.indices(5), ClassBalancedBatches(labels, 16, 4, seed=4).indices(5))


def test_ranks_split_the_global_batch_exactly_into_whole_classes():
    labels = _labels()
    full = ClassBalancedBatches(labels, 16, 4, seed=1)
    shards = [ClassBalancedBatches(labels, 16, 4, seed=1, rank=r, world=2) for r in range(2)]
    for step in range(6):
        parts = [s.indices(step) for s in shards]
        assert torch.equal(torch.cat(parts), full.indices(step))
        for p in parts:  # K | local batch: each rank holds whole classes (its positives)
            assert (labels[p].unique(return_counts=True)[1] == 4).all()


def test_every_sample_is_drawn_over_many_steps():
    labels = _labels(5, 8)
    s = ClassBalancedBatches(labels, 8, 2, seed=0)
    seen = torch.cat([s.indices(t) for t in range(200)])
    assert len(seen.unique()) == len(labels)


def test_small_classes_draw_with_replacement_and_truncation():
    labels = torch.tensor([0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    s = ClassBalancedBatches(labels, batch_size=10, samples_per_class=4, seed=0)
    assert s.classes_per_batch == 3
    for step in range(10):
        idx = s.indices(step)
        assert len(idx) == 10  # 3 x 4 = 12 rows truncated to the batch size
        counts = torch.bincount(labels[idx], minlength=3)
        assert counts.sum() == 10 and len(labels[idx].unique()) == 3


def test_clear_errors():
    labels = _labels(3, 10)
    with pytest.raises(ValueError, match="raise samples_per_class to >= 8"):
        ClassBalancedBatches(labels, 24, 4)  # needs 6 classes, has 3
    with pytest.raises(ValueError, match="lower batch_size"):
        ClassBalancedBatches(labels, 64, 32)
    with pytest.raises(ValueError, match="divisible"):
        ClassBalancedBatches(labels, 9, 3, world=2)
    with pytest.raises(ValueError, match="needs labels"):
        ClassBalancedBatches(None, 8, 2)


def test_the_engine_trains_with_it(tmp_path):
    from selfsup.data import InMemoryDataset
    from selfsup.engine import TrainConfig, fit
    from selfsup.methods.base import Method, StepOutput

    class Recorder(Method):
        def __init__(self):
            super().__init__()
            self.backbone = torch.nn.Linear(1, 1)
            self.batches: list[torch.Tensor] = []

        def training_step(self, views, targets=None):
            self.batches.append(targets.clone())
            return StepOutput(loss=self.backbone(views[0][:, :1, 0, 0].float()).sum())

    labels = _labels(4, 6)
    data = InMemoryDataset(torch.zeros(len(labels), 1, 2, 2, dtype=torch.uint8), labels)
    m = Recorder()
    cfg = TrainConfig(steps=3, batch_size=8, out_dir=str(tmp_path), progress=False, device="cpu")
    sampler = ClassBalancedBatches(labels, 8, 4, seed=0)
    fit(m, data, lambda x, generator=None: [x.float()], cfg, sampler=sampler)
    assert len(m.batches) == 3
    for step, y in enumerate(m.batches):
        assert torch.equal(y, labels[sampler.indices(step)])
