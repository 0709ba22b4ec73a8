"""A user's own encoder class trains through `fit`; the refusal to save an unloadable encoder
file is said before training, not after it (#19.2)."""

import warnings

import torch

from selfsup.data import InMemoryDataset
from selfsup.engine import TrainConfig, fit
from selfsup.methods.base import Method, StepOutput


class OwnEncoderMethod(Method):
    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Linear(4, 2)  # not built by create_encoder: no registry name

    def training_step(self, views, targets=None):
        return StepOutput(loss=self.backbone(views[0].flatten(1)[:, :4]).pow(2).mean())


def test_own_encoder_trains_warns_first_and_writes_no_unloadable_file(tmp_path):
    data = InMemoryDataset(torch.randint(0, 255, (16, 1, 2, 2), dtype=torch.uint8))
    cfg = TrainConfig(
        steps=2, batch_size=4, out_dir=str(tmp_path / "run"), progress=False, device="cpu"
    )
    method = OwnEncoderMethod()
    seen_at_first_step: list[int] = []
    step = method.training_step

    def recording_step(views, targets=None):
        if not seen_at_first_step:
            seen_at_first_step.append(len(caught))
        return step(views, targets)

    method.training_step = recording_step
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(method, data, lambda x, generator=None: [x.float()], cfg)
    assert any("no registry name" in str(w.message) for w in caught)
    assert seen_at_first_step[0] >= 1  # said before the first step, not after training
    assert result.steps == 2
    assert not (tmp_path / "run" / "encoder.safetensors").exists()
    assert not (tmp_path / "run" / "encoder.json").exists()
    assert list((tmp_path / "run").glob("checkpoint-*.pt"))  # the weights are kept there
