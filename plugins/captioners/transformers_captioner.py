"""Captions from a Hugging Face image-to-text model in a local directory (BLIP, GIT, ViT-GPT2 and other
models AutoModelForImageTextToText loads), batched, on the GPU when there is one. Nothing is downloaded:
the hub is switched off and a missing or incomplete directory is a clear start-up error."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from daemon.config.models import CaptionerConfig
from daemon.inference.devices import resolve_device
from plugins.interfaces import CaptionError, CaptionRequest, PluginError

log = logging.getLogger(__name__)

# Before transformers is imported: it must never reach for the hub, not even for a version check.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class TransformersCaptioner:
    needs_image = True

    def __init__(self, config: CaptionerConfig) -> None:
        directory = Path(config.model or "").expanduser()
        if not config.model or not (directory / "config.json").is_file():
            raise PluginError(
                f"captioner plugin transformers: model must be a local model directory with config.json, got "
                f"{config.model!r}; argusd never downloads: fetch it once elsewhere (e.g. `hf download "
                f"Salesforce/blip-image-captioning-base --local-dir DIR`), copy DIR here and set model: DIR")
        try:
            import torch
            import transformers
            from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer
        except ImportError as error:
            raise PluginError(f"captioner plugin transformers needs the transformers package ({error}); "
                              "install argusd with the captions extra") from None
        transformers.utils.logging.disable_progress_bar()
        self.torch = torch
        self.config = config
        self.device = resolve_device(config.device, "captions.captioners.<name>.device")
        try:
            self.image_processor = AutoImageProcessor.from_pretrained(directory, local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            model = AutoModelForImageTextToText.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError, KeyError) as error:
            raise PluginError(f"captioner plugin transformers: cannot load {directory}: {error}") from None
        self.model = model.to(self.device).eval()
        self._lock = threading.Lock()  # one generate at a time: workers > 1 only queue on the model
        log.info("transformers captioner: %s on %s", directory.name, self.device)

    def caption(self, requests: Sequence[CaptionRequest]) -> list[str]:
        images = [request.image for request in requests if request.image is not None]
        if len(images) < len(requests):
            raise CaptionError("transformers captioner: an event has no image (its best frame was not kept)")
        rgb = [np.ascontiguousarray(image[:, :, ::-1]) for image in images]  # the daemon's frames are BGR
        try:
            pixels = self.image_processor(images=rgb, return_tensors="pt").pixel_values.to(self.device)
            with self._lock, self.torch.inference_mode():
                tokens = self.model.generate(pixel_values=pixels, max_new_tokens=self.config.max_tokens)
        except (RuntimeError, ValueError) as error:  # CUDA out of memory, a model that wants other inputs
            raise CaptionError(f"transformers captioner: {error}") from None
        return [text.strip() for text in self.tokenizer.batch_decode(tokens, skip_special_tokens=True)]

    def close(self) -> None:
        del self.model
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()
