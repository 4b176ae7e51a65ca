"""Sentence embeddings through sentence-transformers: the bundled MiniLM gives the vectors the hand-written mean
pooling gave, another model embeds with its own pooling, and caches say which model made them."""
from pathlib import Path

import numpy as np
import pytest

from data.embedding import EMBEDDING_DIM, TextEmbedder, bundled_minilm_path, embed_cached, get_embedder, text_key

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"


def mean_pool_reference(texts: list[str], path: Path, max_length: int = 128, batch_size: int = 64) -> np.ndarray:
    """The embedder as it was written by hand before sentence-transformers: mean over real tokens, then L2 norm."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tok(texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out)


def test_bundled_minilm_gives_the_hand_pooled_vectors_of_256_corpus_questions():
    from data.loaders import load_items

    items, _ = load_items(sorted(str(p) for p in CORPUS.glob("*.jsonl")))
    questions = [it.question for it in items[:: max(1, len(items) // 256)]][:256]
    assert len(questions) == 256
    # one long text as well, so the 128-token cut is compared too
    questions[-1] = " ".join(questions[:40])
    got = get_embedder().encode(questions)
    want = mean_pool_reference(questions, bundled_minilm_path())
    assert got.shape == (256, EMBEDDING_DIM) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-5


@pytest.fixture(scope="module")
def cls_model(tmp_path_factory) -> Path:
    """A tiny random BERT saved as a sentence-transformers folder whose pooling is the [CLS] token, not the mean."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    base = tmp_path_factory.mktemp("tiny_bert")
    tok = AutoTokenizer.from_pretrained(bundled_minilm_path())
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(base)
    tok.save_pretrained(base)
    word = models.Transformer(str(base), max_seq_length=64)
    folder = tmp_path_factory.mktemp("cls_st")
    SentenceTransformer(modules=[word, models.Pooling(16, pooling_mode="cls")]).save(str(folder))
    return folder


def test_another_model_embeds_with_its_own_pooling(cls_model):
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["What is a hash table?", "Explain the bias-variance trade-off in a few words."]
    got = TextEmbedder(cls_model).encode(texts)
    tok, bert = AutoTokenizer.from_pretrained(cls_model), AutoModel.from_pretrained(cls_model).eval()
    with torch.inference_mode():
        enc = tok(texts, padding=True, return_tensors="pt")
        hidden = bert(**enc).last_hidden_state
    cls = torch.nn.functional.normalize(hidden[:, 0], dim=-1).numpy()
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    assert got.shape == (2, 16)
    assert np.abs(got - cls).max() < 1e-5 and np.abs(got - mean).max() > 1e-3


def test_a_cache_from_before_keeps_its_vectors_and_another_model_never_reads_it(tmp_path, cls_model):
    cache = tmp_path / "embeddings.npz"
    marked = np.full(EMBEDDING_DIM, 0.5, dtype=np.float32)
    np.savez(cache, keys=np.array([text_key("kept")]), vectors=marked[None])  # the old format: no model recorded
    both = embed_cached(["kept", "new"], cache)
    assert np.array_equal(both[0], marked)  # read, not recomputed: old files were the bundled MiniLM's
    assert abs(np.linalg.norm(both[1]) - 1) < 1e-5
    with np.load(cache) as z:
        assert "bundled" in str(z["model"]) and len(z["keys"]) == 2
    other = embed_cached(["kept"], cache, model=str(cls_model))
    assert other.shape == (1, 16)  # computed by the other model, not taken from the MiniLM file
    with np.load(cache) as z:
        assert str(cls_model) in str(z["model"]) and len(z["keys"]) == 1
    assert embed_cached([], tmp_path / "none.npz").shape == (0, EMBEDDING_DIM)


def test_a_model_that_is_not_on_disk_is_named(tmp_path):
    with pytest.raises(RuntimeError, match="cannot load the sentence-transformers model"):
        TextEmbedder(str(tmp_path / "missing-model"))
