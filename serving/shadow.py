"""The shadow: every answered question scored again, off the request path, by the model that did not answer it.

The request path only puts the question on a bounded queue (`submit`, microseconds); one thread takes what is
waiting, up to `batch` questions, and scores them in one call per model and options (batched scoring costs a
fraction of one call per question). The shadow takes at most `max_share` of the worker's time (measured over the
last second): past it, it waits, so at saturation the user's answers keep at least the rest of the worker; its
queue fills meanwhile, and when the queue is full a question is not shadowed: the drop is counted and the user's
answer is never delayed. At low traffic every question is shadowed. Each question's log row is written once its
shadow answer is known (or at once when it is not shadowed), so the prediction log holds one row per answer, with
both answers side by side, and Prometheus counts the agreement (first tag equal, Jaccard of the tag sets) per
shadow version.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sotag.infra.prediction_log import PredictionLog, PredictionRecord, ShadowAnswer
from sotag.registry.resolve import ResolvedModel
from sotag.serving.metrics import GatewayMetrics
from sotag.serving.traffic import Traffic

log = logging.getLogger("sotag.gateway")


@dataclass(frozen=True)
class _Job:
    record: PredictionRecord
    top_k: int | None
    threshold: float | None
    model: ResolvedModel


def agreement(served: Sequence[str], shadow: Sequence[str]) -> tuple[bool, float]:
    """(first tag equal, Jaccard similarity of the two tag sets); two empty answers agree."""
    a, b = set(served), set(shadow)
    first = (served[0] if served else None) == (shadow[0] if shadow else None)
    return first, (len(a & b) / len(a | b)) if a | b else 1.0


class Shadow:
    def __init__(
        self,
        traffic: Traffic,
        plog: PredictionLog,
        metrics: GatewayMetrics,
        max_queue: int = 2000,
        batch: int = 16,
        max_share: float = 0.15,
    ):
        self.traffic, self.plog, self.metrics, self.batch = traffic, plog, metrics, batch
        self.max_share = max_share
        self._window_start, self._window_busy = time.monotonic(), 0.0
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self.scored = self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="sotag-shadow", daemon=True)
        self._thread.start()

    def submit(self, record: PredictionRecord, top_k: int | None, threshold: float | None) -> None:
        """Queue the question for the shadow (or log it unshadowed when there is no other model or no room)."""
        model = self.traffic.other(record.arm or "")
        if model is None or self._stop.is_set():
            self.plog.append(record)
            return
        try:
            self._queue.put_nowait(_Job(record, top_k, threshold, model))
        except queue.Full:
            self.dropped += 1
            self.metrics.shadow_dropped.inc()
            self.plog.append(record)

    def _take(self) -> list[_Job]:
        try:
            jobs = [self._queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        while len(jobs) < self.batch:
            try:
                jobs.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return jobs

    def _wait_for_budget(self) -> None:
        """Sleep while the shadow's busy time in the current one-second window is over its share of it."""
        while not self._stop.is_set():
            now = time.monotonic()
            if now - self._window_start >= 1.0:
                self._window_start, self._window_busy = now, 0.0
                return
            allowed = self.max_share * (now - self._window_start)
            if self._window_busy <= allowed:
                return
            time.sleep(min(0.05, (self._window_busy - allowed) / self.max_share))

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            self._wait_for_budget()
            jobs = self._take()
            if not jobs:
                continue
            self.metrics.shadow_queue.set(self._queue.qsize())
            groups: dict[tuple, list[_Job]] = defaultdict(list)
            for job in jobs:
                groups[(id(job.model), job.top_k, job.threshold)].append(job)
            start = time.monotonic()
            for group in groups.values():
                try:
                    self._score(group)
                except Exception:  # the shadow never costs the user a row: log them unshadowed
                    log.exception("shadow: scoring %d questions failed", len(group))
                    for job in group:
                        self.plog.append(job.record)
            self._window_busy += time.monotonic() - start

    def _score(self, jobs: list[_Job]) -> None:
        model, first = jobs[0].model, jobs[0]
        start = time.perf_counter()
        suggestions = model.tagger.suggest(
            [j.record.title for j in jobs], [j.record.body for j in jobs], first.top_k, first.threshold
        )
        each_ms = (time.perf_counter() - start) * 1000 / len(jobs)
        version = model.version or "local"
        for job, s in zip(jobs, suggestions, strict=True):
            top1, jaccard = agreement(job.record.tags, s.tags)
            self.metrics.shadow_compared.labels(version).inc()
            if top1:
                self.metrics.shadow_top1_agree.labels(version).inc()
            self.metrics.shadow_jaccard.labels(version).observe(jaccard)
            self.metrics.shadow_latency.observe(each_ms / 1000)
            answer = ShadowAnswer(model.version, s.tags, s.scores, each_ms)
            self.plog.append(replace(job.record, shadow=answer))
        self.scored += len(jobs)

    def close(self, timeout_s: float = 10.0) -> None:
        """Score what is queued within `timeout_s`; what is left is logged unshadowed (no row is lost)."""
        self._stop.set()
        self._thread.join(timeout_s)
        while True:
            try:
                self.plog.append(self._queue.get_nowait().record)
            except queue.Empty:
                break

    def status(self) -> dict:
        return {"queued": self._queue.qsize(), "scored": self.scored, "dropped": self.dropped}
