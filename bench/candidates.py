"""`python -m bench.candidates`: model kinds for thousands of tags against today's one-vs-rest default (issue 23).

Every candidate is fitted on the shared split's training window over the SAME TF-IDF unigram+bigram features
(sotag's default vectorizer, fitted once) and scored on its evaluation window with the all-tags metrics
(`tagger.metrics.all_tags_metrics`) and the in-vocabulary P@1 / R@5 of the 100 most frequent training tags
(each candidate's ranking restricted to those tags, the questions that carry one). The baseline, the default
one-vs-rest logistic regression over the top-100 tags, is fitted in the same run so fit times compare on the
same (shared, loaded) machine: `ratio` is a candidate's fit time over the baseline's.

fit_s: the model fit alone (the features are shared; fitting the vectorizer took `vectorize_s`, printed once).
p50_ms: one question, text in -> top-5 tags out (cleaning, compiled TF-IDF, scoring, names), the median over
`--latency-questions` evaluation questions, the median of `--repeats` such medians. batch_qps: the whole
evaluation window the same way in one batch (per question where the library has no batch call).

One line per candidate, `candidate: name=… fit_s=… ratio=… …`; the baseline's line is `baseline:`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.common import default_config, parse_args
from sotag.data import load_questions
from sotag.tagger.compiled import CompiledVectorizer
from sotag.tagger.fused import FusedLinearModel
from sotag.tagger.kinds.linear import fit_one_vs_rest
from sotag.tagger.kinds.plt import HeadAndTree, tree_settings
from sotag.tagger.label_tree import LabelTree, tag_indicator
from sotag.tagger.mentions import TagMentions
from sotag.tagger.metrics import all_tags_metrics, top_k_indices, vocabulary_coverage
from sotag.tagger.questions import question_texts, titles_and_bodies
from sotag.tagger.text import PREPROCESSING_VERSION, clean_question
from sotag.tagger.vectorizers import tfidf_vectorizer
from sotag.tagger.vocabulary import head_then_frequent_tags, tag_vocabulary
from sotag.training.config import TrainConfig
from sotag.training.fit import prepare

RANK_DEPTH = 10  # suggestions kept per question: enough to re-rank within the top-100 tags for in-vocabulary P@1
TOP_K = 5


def frame_texts(frame: pd.DataFrame, config) -> list[str]:
    """The cleaned texts sotag's TF-IDF default reads (tagger.questions)."""
    return question_texts(frame["title"].tolist(), frame["body"].tolist(), config.keep_code, config.title_repeat)


def label_ids(tag_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> list[list[int]]:
    index = {t: i for i, t in enumerate(vocabulary)}
    return [sorted({index[t] for t in row if t in index}) for row in tag_lists]


# The questions behind a feature matrix's rows: their raw titles and cleaned texts (what tag mentions are read from).
Questions = tuple[Sequence[str], Sequence[str]]


@dataclass
class Fitted:
    """A fitted candidate: `rank(X, depth, questions)` gives each row's best tag ids (best first, up to `depth`);
    only a candidate reading tag mentions (the `plt` kind as served) looks at `questions`."""

    rank: Callable[[sp.csr_matrix, int, Questions], list[list[int]]]
    single: Callable[[sp.csr_matrix, Questions], list[int]]  # one row -> its top-5 ids (the latency path)
    fused: FusedLinearModel | None = None
    tree: LabelTree | None = None
    fit_s: float = 0.0
    reused_fit_s: float = 0.0  # fit time of reused parts (a combination's), added to its measured fit time


def fit_ovr(x: sp.csr_matrix, ids: list[list[int]], n_tags: int, C: float) -> Fitted:
    y = tag_indicator(ids, n_tags).toarray().astype(np.int64)
    fused = FusedLinearModel.from_one_vs_rest(fit_one_vs_rest(x, y, C, n_jobs=2))

    def rank(features: sp.csr_matrix, depth: int, questions: Questions | None = None) -> list[list[int]]:
        return top_k_indices(fused.scores(features), depth).tolist()

    return Fitted(rank, lambda row, questions=None: top_k_indices(fused.scores(row), TOP_K)[0].tolist(), fused=fused)


def write_omikuji_data(path: Path, x: sp.csr_matrix, ids: list[list[int]], n_tags: int) -> None:
    """The Extreme Classification Repository text format omikuji trains from. Its parser refuses rows with no
    label or no feature (they teach Parabel nothing) and exponents in values (so fixed-point)."""
    x = sp.csr_matrix(x)
    x.sort_indices()
    rows = [i for i, r in enumerate(ids) if r and x.indptr[i + 1] > x.indptr[i]]
    with open(path, "w", encoding="ascii") as out:
        out.write(f"{len(rows)} {x.shape[1]} {n_tags}\n")
        for i in rows:
            lo, hi = x.indptr[i], x.indptr[i + 1]
            pairs = " ".join(
                f"{j}:{v:.6f}" for j, v in zip(x.indices[lo:hi].tolist(), x.data[lo:hi].tolist(), strict=True)
            )
            out.write(f"{','.join(map(str, ids[i]))} {pairs}\n")


def fit_omikuji(x: sp.csr_matrix, ids: list[list[int]], n_tags: int, settings: str, **hyper: float) -> Fitted:
    import omikuji

    hp = omikuji.Model.default_hyper_param()
    if settings == "bonsai":  # Bonsai: a shallow, wide tree (k=100, depth 3), no layer collapsing
        hp.cluster_k, hp.max_depth = 100, 3
    for key, value in hyper.items():
        setattr(hp, key, value)
    workdir = Path(tempfile.mkdtemp(prefix="omikuji-"))
    try:
        path = workdir / "train.txt"
        write_omikuji_data(path, x, ids, n_tags)
        model = omikuji.Model.train_on_data(str(path), hp, n_threads=2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    model.init_prediction_thread_pool(1)
    beam = int(hyper.get("beam_size", 10))

    def one(row: sp.csr_matrix, depth: int) -> list[int]:
        pairs = list(zip(row.indices.tolist(), row.data.tolist(), strict=True))
        return [label for label, _ in model.predict(pairs, beam_size=beam, top_k=depth)]

    def rank(features: sp.csr_matrix, depth: int, questions: Questions | None = None) -> list[list[int]]:
        features.sort_indices()
        return [one(features[i], depth) for i in range(features.shape[0])]

    return Fitted(rank, lambda row, questions=None: one(row, TOP_K))


def fit_plt(x: sp.csr_matrix, ids: list[list[int]], n_tags: int, **settings: object) -> Fitted:
    """sotag's LabelTree (stacked sparse scoring of label trees) with the `plt` kind's settings (its trees, C and
    pruning) and 2 threads, unless `settings` say otherwise."""
    tree = LabelTree(tree_settings(2, **settings)).fit(x, tag_indicator(ids, n_tags))

    def rank(features: sp.csr_matrix, depth: int, questions: Questions | None = None) -> list[list[int]]:
        return top_k_indices(tree.scores(features), depth).tolist()

    return Fitted(rank, lambda row, questions=None: top_k_indices(tree.scores(row), TOP_K)[0].tolist(), tree=tree)


def ovr_plus_plt(
    ovr: FusedLinearModel,
    tree: LabelTree,
    head: list[int],
    n_tags: int,
    mentions: TagMentions | None,
    title_repeat: int,
) -> Fitted:
    """The baseline's one-vs-rest for the `head` tag ids (the top-100, the vocabulary's first columns) and a fitted
    tree over the whole vocabulary, combined as the `plt` kind serves them (tagger.kinds.plt.HeadAndTree: a head
    column's score is the geometric mean of the two), then raised by the tags the question names when `mentions`
    is given (tagger.mentions, as `TreeKind.scores` does). Its fit time is the sum of the fits (all reused)."""
    if head != list(range(len(head))):
        raise ValueError("ovr+plt: the head tags must be the vocabulary's first columns")
    combined = HeadAndTree(ovr, tree, combine="geometric", mentions=mentions)

    def scores(features: sp.csr_matrix, questions: Questions | None) -> np.ndarray:
        if mentions is not None and questions is None:
            raise ValueError("ovr+plt with mentions: the questions' titles and texts are needed")
        out = combined.scores(features)
        return out if questions is None else combined.raised(out, *questions, title_repeat, PREPROCESSING_VERSION)

    def merged(features: sp.csr_matrix, depth: int, questions: Questions | None = None) -> list[list[int]]:
        return top_k_indices(scores(features, questions), depth).tolist()

    return Fitted(merged, lambda row, questions=None: top_k_indices(scores(row, questions), TOP_K)[0].tolist())


def fit_pecos(x: sp.csr_matrix, ids: list[list[int]], n_tags: int, beam: int = 10) -> Fitted:
    from pecos.xmc import Indexer, LabelEmbeddingFactory
    from pecos.xmc.xlinear.model import XLinearModel

    x32 = x.astype(np.float32)
    y = tag_indicator(ids, n_tags)
    chain = Indexer.gen(LabelEmbeddingFactory.create(y, x32, method="pifa"), seed=7, threads=2)
    model = XLinearModel.train(x32, y, C=chain, threads=2)

    def rank(features: sp.csr_matrix, depth: int, questions: Questions | None = None) -> list[list[int]]:
        pred = model.predict(features.astype(np.float32), beam_size=beam, only_topk=depth, threads=2).tocsr()
        out = []
        for i in range(pred.shape[0]):
            lo, hi = pred.indptr[i], pred.indptr[i + 1]
            order = np.argsort(-pred.data[lo:hi], kind="stable")
            out.append(pred.indices[lo:hi][order].tolist())
        return out

    return Fitted(rank, lambda row, questions=None: rank(row, TOP_K)[0])


def parse_settings(text: str) -> dict[str, object]:
    """`C=30,max_leaves=16` as LabelTree settings (ints, floats or strings)."""
    out: dict[str, object] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        for cast in (int, float, str):
            try:
                out[key.strip()] = cast(value)
                break
            except ValueError:
                continue
    return out


def fit_knn(x: sp.csr_matrix, ids: list[list[int]], n_tags: int, k: int = 25, power: float = 2.0) -> Fitted:
    """Nearest training questions (cosine over the l2-normalised TF-IDF rows) vote for their tags with weight
    similarity**power; nothing to fit but the matrix and the tag indicator."""
    train_t = sp.csr_matrix(x.T, dtype=np.float32)
    y = tag_indicator(ids, n_tags)

    def rank(features: sp.csr_matrix, depth: int, questions: Questions | None = None) -> list[list[int]]:
        out: list[list[int]] = []
        for lo in range(0, features.shape[0], 512):
            sims = (features[lo : lo + 512].astype(np.float32) @ train_t).toarray()
            kk = min(k, sims.shape[1])
            nbrs = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
            weights = np.take_along_axis(sims, nbrs, axis=1) ** power
            rows = np.repeat(np.arange(sims.shape[0]), kk)
            votes = sp.csr_matrix((weights.ravel(), (rows, nbrs.ravel())), shape=(sims.shape[0], sims.shape[1])) @ y
            out.extend(top_k_indices(np.asarray(votes.todense()), depth).tolist())
        return out

    return Fitted(rank, lambda row, questions=None: rank(row, TOP_K)[0])


def in_vocabulary(ranked: list[list[str]], truth: Sequence[Sequence[str]], top100: list[str]) -> dict[str, float]:
    """P@1 / R@5 of the ranking restricted to the top-100 tags, on the questions carrying one of them."""
    known = set(top100)
    keep = [i for i, row in enumerate(truth) if any(t in known for t in row)]
    restricted = [[t for t in ranked[i] if t in known] for i in keep]
    true = [[t for t in truth[i] if t in known] for i in keep]
    m = all_tags_metrics(restricted, true)
    return {"P@1_top100": m["precision_at_1_all"], "R@5_top100": m["recall_at_5_all"]}


def measure(
    name: str,
    fit: Callable[[], Fitted],
    vocabulary: list[str],
    compiled: CompiledVectorizer,
    x_eval: sp.csr_matrix,
    eval_texts: list[str],
    eval_frame,
    truth: list[list[str]],
    top100: list[str],
    args: CandidateRun | argparse.Namespace,
    extra: tuple[sp.csr_matrix, list[list[str]], Questions] | None = None,
) -> dict[str, float]:
    start = time.perf_counter()
    fitted = fit()
    fit_s = time.perf_counter() - start + fitted.reused_fit_s
    names = np.asarray(vocabulary, dtype=object)
    figures_extra = {}
    if extra is not None:  # the extra file's own later questions: quality only
        x_extra, truth_extra, questions_extra = extra
        ranked_extra = [names[r].tolist() if len(r) else [] for r in fitted.rank(x_extra, RANK_DEPTH, questions_extra)]
        m = all_tags_metrics(ranked_extra, truth_extra)
        figures_extra = {
            "x_P@1": m["precision_at_1_all"],
            "x_R@3": m["recall_at_3_all"],
            "x_R@5": m["recall_at_5_all"],
            "x_F1@3": m["f1_at_3_all"],
            "x_coverage": vocabulary_coverage(vocabulary, truth_extra),
            "x_n": m["n_all"],
        }
    titles, bodies = eval_frame["title"].tolist(), eval_frame["body"].tolist()
    ranked = [names[r].tolist() if len(r) else [] for r in fitted.rank(x_eval, RANK_DEPTH, (titles, eval_texts))]
    fitted.fit_s = fit_s
    figures = {"fit_s": fit_s, "n_tags": float(len(vocabulary))}
    figures.update(in_vocabulary(ranked, truth, top100))
    all_tags = all_tags_metrics(ranked, truth)
    figures.update(
        {
            "P@1": all_tags["precision_at_1_all"],
            "R@3": all_tags["recall_at_3_all"],
            "R@5": all_tags["recall_at_5_all"],
            "F1@3": all_tags["f1_at_3_all"],
            "coverage": vocabulary_coverage(vocabulary, truth),
        }
    )

    def suggest_one(i: int) -> list[str]:
        text = clean_question(titles[i], bodies[i], keep_code=True, title_repeat=2)
        return names[fitted.single(compiled.transform([text]), ([titles[i]], [text]))].tolist()

    medians = []
    for _ in range(args.repeats):
        times = []
        for i in range(args.latency_questions):
            t0 = time.perf_counter()
            suggest_one(i)
            times.append(time.perf_counter() - t0)
        medians.append(statistics.median(times))
    figures["p50_ms"] = 1000 * statistics.median(medians)
    t0 = time.perf_counter()
    texts = [clean_question(t, b, keep_code=True, title_repeat=2) for t, b in zip(titles, bodies, strict=True)]
    _ = [names[r[:TOP_K]].tolist() for r in fitted.rank(compiled.transform(texts), TOP_K, (titles, texts))]
    figures["batch_qps"] = len(titles) / (time.perf_counter() - t0)
    figures.update(figures_extra)
    figures["fitted"] = fitted
    return figures


def line(label: str, name: str, f: dict[str, float], baseline_fit_s: float) -> str:
    return (
        f"{label}: name={name} n_tags={int(f['n_tags'])} fit_s={f['fit_s']:.1f} "
        f"ratio={f['fit_s'] / baseline_fit_s:.2f} "
        f"inv_P@1={f['P@1_top100']:.3f} inv_R@5={f['R@5_top100']:.3f} P@1={f['P@1']:.3f} R@3={f['R@3']:.3f} "
        f"R@5={f['R@5']:.3f} F1@3={f['F1@3']:.3f} coverage={f['coverage']:.3f} p50_ms={f['p50_ms']:.2f} "
        f"batch_qps={f['batch_qps']:.0f}"
    ) + (
        f" | extra-later: n={int(f['x_n'])} P@1={f['x_P@1']:.3f} R@3={f['x_R@3']:.3f} R@5={f['x_R@5']:.3f} "
        f"F1@3={f['x_F1@3']:.3f} coverage={f['x_coverage']:.3f}"
        if "x_n" in f
        else ""
    )


CANDIDATES = ("ovr", "parabel", "bonsai", "plt", "pecos", "ovr+plt", "knn")


@dataclass(frozen=True)
class CandidateRun:
    """What one measurement fits: `candidates` (of CANDIDATES), each vocabulary floor in `min_tag_questions`,
    LabelTree settings per configuration (`plt`, '' = the plt kind's), the extra questions (`extra`, evaluated
    from `extra_from` or the cutoff, trained on before the cutoff with `train_extra`), the latency repeats."""

    candidates: tuple[str, ...] = CANDIDATES
    min_tag_questions: tuple[int, ...] = (5,)
    ovr_large: bool = False
    plt: tuple[str, ...] = ("",)
    extra: Path | None = None
    train_extra: bool = False
    extra_from: str | None = None
    repeats: int = 3
    latency_questions: int = 200


def candidate_lines(config: TrainConfig, run: CandidateRun) -> Iterator[str]:
    """Fit the baseline then every candidate of `run` on `config`'s split (its data, split date, features);
    yield the `data:` and `features:` lines, the `baseline:` line and one `candidate:` line per fit, each as
    soon as it is measured."""
    prepared = prepare(config)
    split = prepared.split
    train = split.train
    extra_later = None
    if run.extra is not None:
        extra, _ = load_questions(run.extra)
        later_from = max(split.cutoff, pd.Timestamp(run.extra_from)) if run.extra_from else split.cutoff
        extra_later = extra[extra["creation_date"] >= later_from].reset_index(drop=True)
        if run.train_extra:
            train = pd.concat([train, extra[extra["creation_date"] < split.cutoff]], ignore_index=True)
    train_tags = train["tags"].tolist()
    truth = split.evaluation["tags"].tolist()
    top100 = tag_vocabulary(train["tags"], config.top_n_tags)
    yield (
        f"data: n_train={len(train)} n_eval={len(split.evaluation)} cutoff={split.cutoff.date()} "
        f"extra_later={0 if extra_later is None else len(extra_later)} train_extra={run.train_extra}"
    )

    texts = frame_texts(train, config)
    start = time.perf_counter()
    vectorizer = tfidf_vectorizer(max_features=config.max_features, ngram_max=config.ngram_max, min_df=config.min_df)
    x_train = sp.csr_matrix(vectorizer.fit_transform(texts))
    yield f"features: n_features={x_train.shape[1]} vectorize_s={time.perf_counter() - start:.1f}"
    compiled = CompiledVectorizer(vectorizer)
    eval_texts = frame_texts(split.evaluation, config)
    x_eval = compiled.transform(eval_texts)
    common = dict(
        compiled=compiled,
        x_eval=x_eval,
        eval_texts=eval_texts,
        eval_frame=split.evaluation,
        truth=truth,
        top100=top100,
        args=run,
    )
    if extra_later is not None:
        extra_texts = frame_texts(extra_later, config)
        common["extra"] = (
            compiled.transform(extra_texts),
            extra_later["tags"].tolist(),
            (extra_later["title"].tolist(), extra_texts),
        )

    baseline = measure(
        "ovr-top100",
        lambda: fit_ovr(x_train, label_ids(train_tags, top100), len(top100), config.C),
        top100,
        **common,
    )
    yield line("baseline", f"ovr-top{len(top100)}", baseline, baseline["fit_s"])
    base_s = baseline["fit_s"]
    wanted = run.candidates
    base_fused = baseline["fitted"].fused

    def fit_and_line(name: str, fit: Callable[[], Fitted], vocabulary: list[str]) -> tuple[Fitted | None, str]:
        try:
            figures = measure(name, fit, vocabulary, **common)
        except Exception as exc:  # a library that fails to fit (or is not installed) is reported, the others run
            return None, f"candidate: name={name} failed: {type(exc).__name__}: {exc}"
        return figures["fitted"], line("candidate", name, figures, base_s)

    for m in run.min_tag_questions:
        vocabulary = head_then_frequent_tags(train_tags, config.top_n_tags, m)  # the plt kind's
        ids = label_ids(train_tags, vocabulary)
        n = len(vocabulary)
        head = [vocabulary.index(t) for t in top100 if t in vocabulary]
        mentions, mentions_s = None, 0.0
        if "ovr+plt" in wanted:
            start = time.perf_counter()
            mentions = TagMentions.fit(
                vocabulary,
                *titles_and_bodies(train["title"].tolist(), texts, config.title_repeat),
                tag_indicator(ids, n),
            )
            mentions_s = time.perf_counter() - start
        if "ovr" in wanted and run.ovr_large:
            yield fit_and_line(f"ovr-min{m}", partial(fit_ovr, x_train, ids, n, config.C), vocabulary)[1]
        for text in run.plt:
            suffix = f"-{text.replace(' ', '')}" if text else ""
            if "plt" in wanted or "ovr+plt" in wanted:
                fit = partial(fit_plt, x_train, ids, n, **parse_settings(text))
                plt, said = fit_and_line(f"plt-min{m}{suffix}", fit, vocabulary)
                yield said
                if plt is not None and "ovr+plt" in wanted:
                    # Without the mentions, then as the kind serves it (the kind's fit: head, trees, mentions).
                    for named, with_mentions in (("", None), ("+mentions", mentions)):
                        combo = ovr_plus_plt(base_fused, plt.tree, head, n, with_mentions, config.title_repeat)
                        combo.reused_fit_s = base_s + plt.fit_s + (mentions_s if with_mentions else 0.0)
                        name = f"ovr100+plt-min{m}{suffix}{named}"
                        yield fit_and_line(name, lambda combo=combo: combo, vocabulary)[1]
        if "knn" in wanted:
            yield fit_and_line(f"knn-min{m}", partial(fit_knn, x_train, ids, n), vocabulary)[1]
        if "pecos" in wanted:
            yield fit_and_line(f"pecos-xlinear-min{m}", partial(fit_pecos, x_train, ids, n), vocabulary)[1]
        if "parabel" in wanted:
            yield fit_and_line(f"omikuji-parabel-min{m}", partial(fit_omikuji, x_train, ids, n, "parabel"), vocabulary)[
                1
            ]
        if "bonsai" in wanted:
            yield fit_and_line(f"omikuji-bonsai-min{m}", partial(fit_omikuji, x_train, ids, n, "bonsai"), vocabulary)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help=f"comma-separated, of {CANDIDATES}")
    parser.add_argument("--min-tag-questions", default="5", help="comma-separated vocabulary thresholds")
    parser.add_argument("--ovr-large", action="store_true", help="also fit one-vs-rest on the large vocabulary")
    parser.add_argument(
        "--plt",
        default="",
        help=(
            "LabelTree settings over the plt kind's, ';' between configurations ('' = the kind's): "
            "';n_trees=3;C=1,prune=0.1'"
        ),
    )
    parser.add_argument(
        "--extra",
        type=Path,
        default=None,
        help="more questions: its rows after the cutoff are a second evaluation set (quality only)",
    )
    parser.add_argument("--train-extra", action="store_true", help="also train on --extra's rows before the cutoff")
    parser.add_argument(
        "--extra-from",
        default=None,
        help="evaluate on --extra's rows from this date (YYYY-MM-DD; default: the cutoff; never before it)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-questions", type=int, default=200)
    args = parse_args(__doc__, parser)
    run = CandidateRun(
        candidates=tuple(args.candidates.split(",")),
        min_tag_questions=tuple(int(v) for v in args.min_tag_questions.split(",")),
        ovr_large=args.ovr_large,
        plt=tuple(args.plt.split(";")),
        extra=args.extra,
        train_extra=args.train_extra,
        extra_from=args.extra_from,
        repeats=args.repeats,
        latency_questions=args.latency_questions,
    )
    for said in candidate_lines(default_config(args.data), run):
        print(said, flush=True)


if __name__ == "__main__":
    main()
