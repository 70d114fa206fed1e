"""SBERT embeddings on Spark for the drift job (`sotag drift --engine spark`).

The driver looks every text up in the on-disk embedding cache first; only the missing ones go to Spark,
where a pandas UDF over partitions (`mapInPandas`) encodes them. Each Python worker loads the model once
(`tagger.sbert` keeps it per process) and runs torch on one thread, since Spark already runs one task per
core. The vectors come back to the driver, which writes them to its cache: workers never share the SQLite
file, so a cluster whose executors cannot reach it works the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from sotag.infra.spark import SparkSettings, start_session
from sotag.tagger.sbert import EMBEDDING_DIM

# Texts per Spark task: small enough that both cores of a small machine stay busy and progress moves.
TEXTS_PER_PARTITION = 512


def _embed_partition(max_seq_length: int) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def embed(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import torch

        from sotag.tagger.sbert import encode

        torch.set_num_threads(1)
        for batch in batches:
            vectors = encode(batch["text"].tolist(), max_seq_length=max_seq_length, progress=False)
            yield pd.DataFrame({"i": batch["i"].to_numpy(), "v": list(vectors)})

    return embed


class SparkEncoder:
    """Encodes texts on Spark; `seconds` and `texts` record the last call (for the job's throughput figure)."""

    def __init__(self, settings: SparkSettings, max_seq_length: int = 128) -> None:
        self.settings = settings
        self.max_seq_length = max_seq_length
        self.seconds = 0.0
        self.texts = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        spark = start_session(self.settings)
        n = len(texts)
        # A multiple of the cores, so the last round of tasks keeps every core busy.
        cores = max(1, spark.sparkContext.defaultParallelism)
        partitions = cores * max(1, min(-(-n // (cores * TEXTS_PER_PARTITION)), 4096))
        frame = spark.createDataFrame(pd.DataFrame({"i": np.arange(n, dtype=np.int64), "text": list(texts)}))
        rows = (
            frame.repartition(partitions)
            .mapInPandas(_embed_partition(self.max_seq_length), "i long, v array<float>")
            .toPandas()
        )
        out = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
        if len(rows):
            out[rows["i"].to_numpy()] = np.stack(rows["v"].to_numpy())
        self.seconds += time.perf_counter() - start
        self.texts += n
        return out
