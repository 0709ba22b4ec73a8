"""The environment a run used (versions, device), saved beside its results for the report."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import torch

PACKAGES = ("selfsup", "torch", "torchvision", "timm", "numpy", "scikit-learn", "matplotlib")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(device: str | torch.device = "cpu") -> dict[str, str]:
    """{"python", "platform", <package>: version, "device", "cuda", "threads"} as strings."""
    device = torch.device(device)
    env = {"python": sys.version.split()[0], "platform": platform.platform()}
    env |= {name: _version(name) for name in PACKAGES}
    if device.type == "cuda":
        env["device"] = f"{device} ({torch.cuda.get_device_name(device)})"
    else:
        env["device"] = f"{device} ({platform.processor() or platform.machine()})"
    env["cuda"] = str(torch.version.cuda) if torch.cuda.is_available() else "not available"
    env["threads"] = str(torch.get_num_threads())
    return env
