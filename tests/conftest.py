import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from data.schema import QAItem  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer():
    """The bundled model's tokenizer (from the converted cache; converted on first use)."""
    from model.load import load_tokenizer
    from model.resolve import resolve_model

    return load_tokenizer(resolve_model("bundled").path)


@pytest.fixture
def tiny_model(tokenizer):
    """A 2-layer random Llama with the bundled tokenizer's vocabulary (design notes, section 8)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(cfg).eval()


def make_items(n_per_domain: int = 6) -> list[QAItem]:
    topics = {"cs": ["hashing", "graphs"], "stats": ["probability", "regression"],
              "ai": ["transformers", "optimisation"]}
    items = []
    for domain, tops in topics.items():
        for k in range(n_per_domain):
            topic = tops[k % 2]
            items.append(
                QAItem(
                    id=f"{domain}-{k:03d}",
                    domain=domain,
                    question=f"Question {k} about {topic} number {k * 7} in {domain}?",
                    answer=f"Answer about {topic}. " + " ".join(f"word{j}" for j in range(60 + k)) + ".",
                    difficulty=("basic", "intermediate", "advanced")[k % 3],
                    tags=(topic, domain),
                )
            )
    return items


@pytest.fixture
def items():
    return make_items()
