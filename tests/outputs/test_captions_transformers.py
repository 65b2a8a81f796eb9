"""The transformers captioner with a tiny randomly initialised ViT + GPT-2 captioning model that the test
builds and saves locally (with a word-level tokenizer built here too): proves loading from a directory
without the hub, batching and the device choice, not caption quality."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from tests.support.events import event

from daemon.config.models import CaptionerConfig
from daemon.core.events import ObjectStory
from plugins.interfaces import CaptionError, CaptionRequest, PluginError
from plugins.registry import load_captioner

WORDS = ["<pad>", "<s>", "</s>", "<unk>", "a", "person", "on", "bike", "red", "car", "street", "walks"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        GPT2Config, PreTrainedTokenizerFast, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig,
        ViTImageProcessor,
    )

    directory = tmp_path_factory.mktemp("tiny-captioner")
    word_level = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=word_level, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(directory)
    encoder = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                        image_size=32, patch_size=8)
    decoder = GPT2Config(vocab_size=len(WORDS), n_embd=32, n_layer=1, n_head=2, n_positions=64, bos_token_id=1,
                         eos_token_id=2, pad_token_id=0, add_cross_attention=True, is_decoder=True)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = 1, 0, 2
    model = VisionEncoderDecoderModel(config)
    generation = model.generation_config
    generation.decoder_start_token_id, generation.pad_token_id, generation.eos_token_id = 1, 0, 2
    generation.suppress_tokens = [0, 1, 2, 3]  # random weights: make them say words rather than stop at once
    model.save_pretrained(directory)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


def requests(count: int) -> list[CaptionRequest]:
    rng = np.random.default_rng(7)
    return [CaptionRequest(event("new", step=i), ObjectStory(), rng.integers(0, 255, (50 + i, 40, 3), np.uint8))
            for i in range(count)]


def test_batched_captions_from_a_local_directory(tiny_model: Path) -> None:
    import torch

    captioner = load_captioner(CaptionerConfig(plugin="transformers", model=str(tiny_model), max_tokens=5,
                                               batch_size=3))
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert captioner.device == ("cuda:0" if torch.cuda.is_available() else "cpu")
    batches = []
    hook = captioner.model.encoder.register_forward_pre_hook(
        lambda _m, args, kwargs: batches.append(kwargs["pixel_values"].shape[0]), with_kwargs=True)
    texts = captioner.caption(requests(3))
    hook.remove()
    assert batches == [3]  # one encoder pass for the whole batch
    assert len(texts) == 3
    for text in texts:
        words = text.split()
        assert 1 <= len(words) <= 5 and set(words) <= set(WORDS[4:]), text
    captioner.close()


def test_an_event_without_an_image_fails_clearly(tiny_model: Path) -> None:
    captioner = load_captioner(CaptionerConfig(plugin="transformers", model=str(tiny_model)))
    with pytest.raises(CaptionError, match="no image"):
        captioner.caption([CaptionRequest(event("new"), ObjectStory(), None)])


@pytest.mark.parametrize("model", ["Salesforce/blip-image-captioning-base", "/nonexistent/blip", None])
def test_anything_but_a_local_model_directory_is_refused_without_download(model: str | None) -> None:
    with pytest.raises(PluginError, match="must be a local model directory .* never downloads"):
        load_captioner(CaptionerConfig(plugin="transformers", model=model))


def test_a_directory_without_weights_is_a_clear_error(tmp_path: Path, tiny_model: Path) -> None:
    (tmp_path / "config.json").write_text((tiny_model / "config.json").read_text())
    with pytest.raises(PluginError, match=f"cannot load {tmp_path}"):
        load_captioner(CaptionerConfig(plugin="transformers", model=str(tmp_path)))
