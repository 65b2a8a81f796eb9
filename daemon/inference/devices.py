"""Choosing the compute device for model-based plugins."""

from __future__ import annotations

from plugins.interfaces import PluginError


def resolve_device(requested: str, setting: str) -> str:
    """``auto`` becomes cuda:0 when CUDA is available, else cpu; a CUDA device that is not there is a
    PluginError naming the config ``setting`` (e.g. detector.device)."""
    import torch

    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PluginError(f"{setting} is {requested!r} but no CUDA device is available")
        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise PluginError(f"{setting} {requested!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return f"cuda:{index}"
    return requested
