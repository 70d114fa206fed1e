"""SBERT from the installed package, offline, with the on-disk embedding cache."""

import numpy as np
import pytest

from sotag.tagger import sbert
from sotag.tagger.vectorizers import SbertVectorizer, slim

TEXTS = ["how to merge two pandas dataframes", "css flexbox centering a div", "how to merge two pandas dataframes"]


def test_encode_is_normalised_and_cache_is_reused(tmp_path, monkeypatch):
    cache = sbert.EmbeddingCache(tmp_path / "emb.sqlite")
    first = sbert.encode(TEXTS, cache=cache, progress=False)
    assert first.shape == (3, sbert.EMBEDDING_DIM) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first[0], first[2])
    assert float(first[0] @ first[1]) < 0.5  # unrelated questions are far apart

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded when every text is cached")

    monkeypatch.setattr(sbert, "_load_model", no_model)
    again = sbert.encode(TEXTS, cache=cache, progress=False)
    np.testing.assert_array_equal(first, again)
    with pytest.raises(AssertionError, match="must not be loaded"):
        sbert.encode(["a text never seen"], cache=cache, progress=False)


def test_cache_separates_model_identities(tmp_path):
    cache = sbert.EmbeddingCache(tmp_path / "emb.sqlite")
    cache.put("model-a", ["d1"], np.ones((1, 4), dtype=np.float32))
    assert cache.get("model-b", ["d1"]) == {}
    np.testing.assert_array_equal(cache.get("model-a", ["d1"])["d1"], np.ones(4, dtype=np.float32))


def test_vectorizer_forgets_the_training_cache_path_when_saved(tmp_path):
    vec = SbertVectorizer(cache_path=str(tmp_path / "c.sqlite"))
    assert slim(vec).cache_path is None


def test_the_gpu_path_encodes_as_sentence_transformers_does():
    """`encode_pretokenized` (sotag's path on a GPU) runs anywhere: on the CPU it must match `model.encode`."""
    model = (
        sbert._load_model(128) if sbert.device() == "cpu" else sbert.load_encoder(sbert.model_directory(), 128, "cpu")
    )
    texts = [*TEXTS, "a much longer question " * 60, "x"]  # one truncated at 128 tokens, one a single token
    expected = model.encode(texts, batch_size=2, normalize_embeddings=True, show_progress_bar=False)
    got = sbert.encode_pretokenized(model, texts, batch_size=2)  # batches of unequal lengths, padded per batch
    np.testing.assert_allclose((got * expected).sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_the_cache_identity_names_the_precision():
    assert sbert.model_identity(128).endswith(":128:fp32" if sbert.device() == "cpu" else ":128:fp16")


def test_encoding_shows_its_total_and_a_time_estimate_on_stderr(monkeypatch, capsys):
    import re

    class Model:
        def __init__(self) -> None:
            self.calls: list[int] = []

        def encode(self, chunk, **kwargs):
            self.calls.append(len(chunk))
            vectors = np.ones((len(chunk), sbert.EMBEDDING_DIM), dtype=np.float32)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    model = Model()
    monkeypatch.setattr(sbert, "_load_model", lambda max_seq_length: model)
    monkeypatch.setattr(sbert, "device", lambda: "cpu")
    texts = [f"question {i}" for i in range(600)]
    sbert.encode(texts, batch_size=64, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""  # progress goes to stderr, never into a command's output lines
    assert "SBERT encoding on cpu (not in the cache)" in captured.err and "0/600" in captured.err
    assert re.search(r"600/600 \[\d\d:\d\d<\d\d:\d\d", captured.err), captured.err  # elapsed<remaining
    assert model.calls == [256, 256, 88]  # small chunks: the first estimate comes after 256 texts, not 1,024
