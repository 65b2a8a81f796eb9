"""Small models built offline, for tests that need real model files but not a trained detector."""

from __future__ import annotations

from pathlib import Path


def random_yolo11n(path: Path, seed: int = 0) -> Path:
    """yolo11n built from its YAML with random weights drawn from ``seed`` (other seeds: other weights, so
    another SHA-256), saved as a .pt at ``path``. The class scores are lifted so that some boxes pass
    `conf`, as a trained model's do; the compute is the trained model's."""
    import torch
    from ultralytics import YOLO

    torch.manual_seed(seed)
    model = YOLO("yolo11n.yaml")
    for branch in model.model.model[-1].cv3:
        branch[-1].bias.data += 8.5
    model.save(str(path))
    return path
