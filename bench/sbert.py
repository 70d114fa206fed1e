"""`make bench-sbert`: SBERT `all-MiniLM-L6-v2` throughput and fidelity, CPU backends against the plain path.

CPU: the plain path (sentence-transformers, fp32, 128 tokens) and each candidate backend encode the same
512 real title + body texts (median of 3 repeats). A backend is adopted only if it reaches >= 100
texts/s with a mean cosine >= 0.99 and a minimum >= 0.97 to the plain embeddings; otherwise the line
says `backend=plain`. Candidates: dynamic int8 quantisation of the linear layers (torch), and fewer
tokens (96, 64).

GPU (`--gpu`, where CUDA is present; the device machine in this workplace): sentence-transformers'
own `encode` in fp16, and the pre-tokenised, length-sorted path `tagger.sbert.encode_pretokenized`
that sotag uses on a GPU, with its cosine to fp32. Only `tagger.sbert` is imported there.

Prints `sbert: cpu_texts_per_s=… backend=… cosine_mean=… cosine_min=… plain_texts_per_s=…`, or with
`--gpu`, `sbert-gpu: gpu_texts_per_s=… st_encode_texts_per_s=… cosine_mean=… cosine_min=… texts=…`.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sotag.infra.argtypes import add_data_argument
from sotag.tagger import sbert

ADOPT = {"texts_per_s": 100.0, "cosine_mean": 0.99, "cosine_min": 0.97}


def timed(encode: Callable[[list[str]], np.ndarray], texts: list[str], repeats: int) -> tuple[float, np.ndarray]:
    """Median texts/s over `repeats` runs (after one warm-up call), and the embeddings."""
    encode(texts[:32])
    rates, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = encode(texts)
        rates.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(rates), out


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def cpu(texts: list[str], repeats: int) -> None:
    import torch

    def st_encode(model) -> Callable[[list[str]], np.ndarray]:
        return lambda xs: model.encode(xs, batch_size=64, normalize_embeddings=True, show_progress_bar=False)

    plain_model = sbert.load_encoder(sbert.model_directory(), 128, "cpu")
    plain_rate, plain = timed(st_encode(plain_model), texts, repeats)
    print(f"plain (fp32, 128 tokens): {plain_rate:.1f} texts/s", flush=True)

    candidates: dict[str, object] = {
        "int8-dynamic": torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(plain_model), {torch.nn.Linear}, dtype=torch.qint8
        ),
    }
    for tokens in (96, 64):
        candidates[f"{tokens}-tokens"] = sbert.load_encoder(sbert.model_directory(), tokens, "cpu")
    best = ("plain", plain_rate, 1.0, 1.0)
    for name, model in candidates.items():
        rate, embeddings = timed(st_encode(model), texts, repeats)
        cos = cosines(plain, embeddings)
        adopted = (
            rate >= ADOPT["texts_per_s"] and cos.mean() >= ADOPT["cosine_mean"] and cos.min() >= ADOPT["cosine_min"]
        )
        print(
            f"{name}: {rate:.1f} texts/s ({rate / plain_rate:.2f}x plain), cosine mean {cos.mean():.4f} "
            f"min {cos.min():.4f}: {'meets' if adopted else 'misses'} the bar",
            flush=True,
        )
        if adopted and rate > best[1]:
            best = (name, rate, float(cos.mean()), float(cos.min()))
    name, rate, mean, low = best
    print(
        f"sbert: cpu_texts_per_s={rate:.1f} backend={name} cosine_mean={mean:.4f} cosine_min={low:.4f} "
        f"plain_texts_per_s={plain_rate:.1f}"
    )


def gpu(texts: list[str], model_dir: Path, repeats: int) -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench-sbert --gpu: no CUDA device here")
    model = sbert.load_encoder(model_dir, 128, "cuda")
    reference = sbert.load_encoder(model_dir, 128, "cuda").float()  # fp32 on the same device: the fidelity baseline

    def synced(encode: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
        def run(xs: list[str]) -> np.ndarray:
            out = encode(xs)
            torch.cuda.synchronize()
            return out

        return run

    st_rate, _ = timed(
        synced(lambda xs: model.encode(xs, batch_size=256, normalize_embeddings=True, show_progress_bar=False)),
        texts,
        repeats,
    )
    fast_rate, fast = timed(synced(lambda xs: sbert.encode_pretokenized(model, xs)), texts, repeats)
    exact = reference.encode(texts, batch_size=256, normalize_embeddings=True, show_progress_bar=False)
    cos = cosines(exact, fast)
    print(f"GPU: {torch.cuda.get_device_name(0)}")
    print(
        f"sbert-gpu: gpu_texts_per_s={fast_rate:.0f} st_encode_texts_per_s={st_rate:.0f} "
        f"cosine_mean={cos.mean():.5f} cosine_min={cos.min():.5f} texts={len(texts)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser, "questions: one or several files or folders (CPU mode)")
    parser.add_argument("--gpu", action="store_true", help="measure the GPU paths instead")
    parser.add_argument("--texts", type=Path, default=None, help="GPU mode: a parquet with a `text` column")
    parser.add_argument("--model-dir", type=Path, default=None, help="GPU mode: the model folder (fp16 is fine)")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.gpu:
        import pandas as pd

        texts = pd.read_parquet(args.texts)["text"].tolist()[: args.n]
        gpu(texts, args.model_dir or sbert.model_directory(), args.repeats)
        return
    from bench.common import bench_settings
    from sotag.data import load_questions, resolve_data_paths
    from sotag.monitoring.job import question_texts

    edge = bench_settings()
    frame, _ = load_questions(resolve_data_paths(getattr(args, "data", None) or edge.data, edge.home))
    sample = frame[frame["creation_date"] >= "2018-04-01"].sample(args.n, random_state=0)
    cpu(question_texts(sample), args.repeats)


if __name__ == "__main__":
    main()
