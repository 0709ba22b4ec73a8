"""The training loop, its schedules, optimizers, checkpoints and metrics log."""

from selfsup.engine.config import TrainConfig
from selfsup.engine.loop import Callback, NonFiniteLossError, TrainResult, fit

__all__ = ["Callback", "NonFiniteLossError", "TrainConfig", "TrainResult", "fit"]
