"""The tiny model in train mode, plain or wrapped in a LoRA whose adapters already change the
forward: what the forward-equivalence tests (prefix sharing, response-only logits) compare on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model

from trice.generation.models import load_model


def train_mode_model(tiny_model_dir: Path, lora: bool) -> Any:
    model, _ = load_model(str(tiny_model_dir))
    if lora:
        torch.manual_seed(0)
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, init_lora_weights=False)
        model = get_peft_model(model, config)  # nonzero lora_B: the adapters change the forward
    model.train()
    return model
