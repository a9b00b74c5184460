"""Shared fixtures. The tiny model is randomly initialised and built offline (no downloads):
a byte-level BPE tokenizer trained on a few sentences plus a 2-layer Llama."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_DIR = Path(os.environ.get("TRICE_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data"))

_CORPUS = [
    "Below is an instruction that describes a task, paired with an input that provides further context.",
    "Write a response that appropriately completes the request.",
    "### Instruction:\nGiven a math problem, please answer it and you can use a calculator for help.",
    "### Input:\nNatalia sold clips to 48 of her friends in April. How many clips? ### Response:\n",
    "calculator(48+48/2) 0123456789 + - * / ( ) . , = The answer is 72.",
]


def build_tiny_model(out_dir: Path, seed: int = 0, hidden_size: int = 32, num_hidden_layers: int = 2) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>")
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=None,
    )
    LlamaForCausalLM(config).save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a tiny random causal LM and its tokenizer, loadable by trice.generation.models."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real benchmark data (../shared/data, or $TRICE_DATA_DIR)."""
    if not (DATA_DIR / "MANIFEST.md").is_file():
        pytest.skip(f"real data not found at {DATA_DIR}; set TRICE_DATA_DIR")
    return DATA_DIR


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matmuls gain nothing from threads, and on a shared 2-core machine OpenMP barriers with a
    busy neighbour make them 10-20x slower; the code under test never sets threads itself."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def tool_outputs_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where tools built from options cache their outputs in this test: a fresh directory, so no test
    writes into the user's ~/.cache or reads answers a run left there. (Only this default moves:
    converted models and indexes stay in the real cache, being slow to rebuild.)"""
    import trice.tools.cache

    root = tmp_path_factory.mktemp("tool-outputs")
    monkeypatch.setattr(trice.tools.cache, "default_dir", lambda: root)
    return root
