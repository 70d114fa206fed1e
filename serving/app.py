"""The gateway: the seeds' API contract in front of the registered pyfunc.

POST /predict (sotag's {title, body, top_k} or the original Tagger API's {text, topk}), POST /explain,
POST /predict/batch, GET /health, GET /model_info, GET /metrics (Prometheus),
POST /reload and POST /admin/{retrain,rollback} (bearer token), POST /webhooks/mlflow (an MLflow registry
webhook, HMAC-signed), POST /feedback (the tags the asker kept), OpenAPI docs at /docs (served offline). The
gateway follows the alias it serves (serving/alias_watch.py): it looks every `reload_poll_s` seconds, and at once
on a webhook. Every answer carries a `prediction_id` and says which version gave it (body and
`X-Sotag-Model-Version`); with a canary share some questions are answered by @challenger (serving.traffic), and
with a shadow every question is scored by the other model too (serving.shadow).

One app is one worker process; `sotag gateway --workers N` starts N of them (serving.worker), sharing the
prediction log database, a folder (serving.workers: merged Prometheus files, the alias nudge, the jobs, the admin
lockout) and nothing else.

Bad input never reaches the model: pydantic checks every field and the answer is a 400
naming it; a body over the limit is a 413; a batch over the time limit is a 504.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any, get_args

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import exc as sa_errors
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sotag.infra.prediction_log import PredictionLog, PredictionRecord, log_summary, new_prediction_id, now
from sotag.registry.lifecycle import rollback
from sotag.registry.resolve import ResolvedModel, parse_alias_uri, pin
from sotag.registry.store import open_registry
from sotag.serving import contract
from sotag.serving.admin_guard import FailedAttempts, token_matches
from sotag.serving.alias_watch import AliasCheck, AliasWatch
from sotag.serving.challenger import ChallengerSlot
from sotag.serving.config import GatewayConfig
from sotag.serving.content_coding import ContentDecoding
from sotag.serving.feedback import FeedbackBook
from sotag.serving.jobs import JobRefused, Jobs, RetrainLauncher
from sotag.serving.metrics import DriftCollector, GatewayMetrics, exposition
from sotag.serving.mlflow_webhook import WebhookRefused, alias_event, verify
from sotag.serving.model_holder import ModelHolder
from sotag.serving.schemas import (
    SHAPES,
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    ExplainResponse,
    FeedbackRequest,
    FeedbackResponse,
    PredictRequest,
    PredictResponse,
    ReloadResponse,
)
from sotag.serving.shadow import Shadow
from sotag.serving.traffic import Traffic
from sotag.serving.workers import Nudge, RunDir
from sotag.settings import CHALLENGER
from sotag.tagger.errors import InputError, SotagError
from sotag.tagger.explain import explain
from sotag.tagger.kinds.base import NotExplainable
from sotag.tagger.params import check_threshold

log = logging.getLogger("sotag.gateway")
KNOWN_ROUTES = {
    "/predict",
    "/explain",
    "/predict/batch",
    "/health",
    "/model_info",
    "/metrics",
    "/reload",
    "/admin/retrain",
    "/admin/rollback",
    "/webhooks/mlflow",
    "/feedback",
}
VERSION_HEADER = "X-Sotag-Model-Version"
ERRORS = {400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}}
BODIES: dict[str, type[BaseModel]] = {
    "/predict": PredictRequest,
    "/explain": PredictRequest,
    "/predict/batch": BatchRequest,
    "/feedback": FeedbackRequest,
}


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, details: list[dict[str, str]] | None = None, headers: dict | None = None
    ):
        self.status, self.error, self.details, self.headers = status, error, details or [], headers


def _json(status: int, payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class GatewayMiddleware:
    """Body-size limit and per-route metrics as plain ASGI (no per-request task or copy)."""

    def __init__(self, app, metrics: GatewayMetrics, max_body_bytes: int):
        self.app, self.metrics, self.max_body = app, metrics, max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in KNOWN_ROUTES else "other"
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._too_large(send_wrapper)
        else:
            received = 0

            async def receive_limited():
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        raise _BodyTooLarge
                return message

            try:
                await self.app(scope, receive_limited, send_wrapper)
            except _BodyTooLarge:
                await self._too_large(send_wrapper)
        code = str(status["code"])
        self.metrics.latency.labels(route).observe(time.perf_counter() - start)
        self.metrics.requests.labels(route, code).inc()
        if not code.startswith("2"):
            self.metrics.errors.labels(route, code).inc()

    async def _too_large(self, send) -> None:
        body = _json(
            413,
            {
                "error": f"request body is over the limit of {self.max_body} bytes",
                "details": [{"field": "body", "problem": f"larger than {self.max_body} bytes"}],
            },
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


class PredictFastPath:
    """POST /predict (a JSON body) answered without FastAPI's routing, dependency and response machinery, which cost
    about as much as the model's scoring of one question (measured in process: 1.8 ms per request, 0.87 of them
    the model's). Written by hand because the gateway's throughput is what it exists for.

    Same validation (the route's pydantic model, in the same mode), the same answer function, the same bytes out
    (Starlette's JSON encoding). Anything else, and any request the fast path does not answer with a 200 (a body
    that is not JSON or not valid, a question the rules refuse, an unexpected error), goes to the FastAPI route
    with its body replayed, so every error keeps the one shape and status the route gives it."""

    def __init__(self, app, answer: Callable[[PredictRequest], tuple[dict[str, Any], dict[str, str]]]):
        self.app, self.answer = app, answer

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            payload, headers = self.answer(PredictRequest.model_validate(json.loads(body)))
        except Exception:  # the route answers it (its error shape, its status), from the same bytes
            replay = iter(messages)

            async def replayed():
                return next(replay, None) or await receive()

            await self.app(scope, replayed, send)
            return
        data = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        head += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": data})


def _is_json(scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


def _field(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def _known_fields(body: type[BaseModel], loc: tuple | list) -> list[str]:
    """The fields of the object holding the field at `loc` (the request body's, or a batch question's)."""
    model = body
    for part in loc[1:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is not None:
            nested = [a for a in (field.annotation, *get_args(field.annotation)) if isinstance(a, type)]
            model = next(a for a in nested if issubclass(a, BaseModel))
    return sorted(model.model_fields)


def _problem(error: dict[str, Any], body: type[BaseModel] | None = None, path: str = "", sent: Any = None) -> str:
    """The problem of one validation error; `body`: the route's request model, `sent`: the body as sent."""
    kind, message = error.get("type", ""), error.get("msg", "invalid")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return _unknown_field(tuple(error["loc"]), body, path, sent)
    return message[0].lower() + message[1:] if message else "invalid"


def _unknown_field(loc: tuple, body: type[BaseModel] | None, path: str, sent: Any) -> str:
    """An unknown field, named with the fields of the shape its object was recognised as (schemas.Shapes) where
    the object may take several shapes, else with the object's fields."""
    shapes = SHAPES.get((path, tuple(part for part in loc[1:-1] if isinstance(part, str))))
    if shapes is not None:
        return shapes.unknown_field(_fields_sent(sent, loc))
    known = f"; the known fields are {', '.join(_known_fields(body, loc))}" if body else ""
    return f"is not a known field{known}"


def _fields_sent(sent: Any, loc: tuple) -> list[str]:
    """The fields of the object holding the field at `loc` in the body as sent ([] where there is none)."""
    node = sent
    for part in loc[1:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return []
    return [str(name) for name in node] if isinstance(node, dict) else []


def _body_detail(error: dict[str, Any], content_type: str) -> dict[str, str] | None:
    """The body as a whole is not a JSON object: say so, naming `body` (not the parser's character position)."""
    loc, kind = tuple(error.get("loc", ())), error.get("type", "")
    if kind == "json_invalid":
        position = f" at character {loc[-1]}" if len(loc) > 1 else ""
        reason = error.get("ctx", {}).get("error", "parse error")
        return {"field": "body", "problem": f"is not valid JSON ({reason}{position})"}
    if loc == ("body",) and kind in {"model_attributes_type", "dict_type"}:
        if "json" not in content_type.lower():
            return {
                "field": "body",
                "problem": f"is not JSON (content-type {content_type or 'missing'}); send a JSON object",
            }
        return {"field": "body", "problem": "must be a JSON object"}
    return None


def create_app(
    config: GatewayConfig,
    holder: ModelHolder | None = None,
    prediction_log: PredictionLog | None = None,
    retrain: RetrainLauncher | None = None,
) -> FastAPI:
    """Build the gateway; the model loads here (before the first request), not lazily.

    `retrain` is what /admin/retrain starts: `sotag retrain` as a child process with the gateway's settings
    (`sotag gateway` gives `RetrainProcess(settings)`, sotag.infra.retrain_job); without it the route answers 503."""
    metrics = GatewayMetrics.create()
    holder = holder or ModelHolder(config.model_uri, config.tracking)
    plog = (
        prediction_log
        if prediction_log is not None
        else PredictionLog(
            config.prediction_log_url,
            log_text=config.log_text,
            flush_s=config.log_flush_s,
            max_pending=config.log_max_pending,
            spool_dir=config.spool_dir,
        )
    )
    plog.observer = _LogCounts(metrics)
    metrics.log_counts(plog)
    metrics.set_model(holder.current.name, holder.current.version)
    run_dir = RunDir(config.run_dir) if config.run_dir is not None else None
    nudge = Nudge(run_dir.nudge_file) if run_dir is not None and config.workers > 1 else None
    metrics_dir = run_dir.metrics if run_dir is not None and config.multiprocess_metrics else None
    challenger = _challenger_slot(config, holder, metrics)
    traffic = Traffic(holder, challenger, config.canary_percent)
    shadow = (
        Shadow(traffic, plog, metrics, config.shadow_queue, config.shadow_batch, config.shadow_max_share)
        if config.shadow
        else None
    )
    feedback = FeedbackBook(plog.engine, wait_s=max(2.0, 4 * config.log_flush_s))
    jobs = Jobs(directory=run_dir.jobs if run_dir is not None and config.workers > 1 else None)
    watch = _alias_watch(config, holder, metrics, nudge, challenger)
    if watch is not None:
        metrics.following(config.reload_poll_s)
    scraped = [DriftCollector(config.drift_reports_dir)] if config.drift_reports_dir is not None else []

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if watch is not None:
            watch.start()
        yield
        if watch is not None:
            watch.stop()
        if shadow is not None:
            shadow.close(timeout_s=min(10.0, config.shutdown_timeout_s))  # what it cannot score is logged unshadowed
        plog.close(timeout_s=config.shutdown_timeout_s)  # drain (or spool): no logged prediction is lost
        jobs.close()  # a retrain still running is stopped (SIGTERM: its runs end KILLED, the registry unchanged)
        if config.workers > 1:  # one worker: `sotag gateway` says it once uvicorn has stopped
            print(f"gateway: worker {os.getpid()} stopped; {log_summary(plog.status(), config.spool_dir)}", flush=True)

    # /docs and /redoc load Swagger UI and ReDoc from the installed fastapi-offline package (served under
    # /static-offline-docs), not from a CDN: sotag runs where nothing beyond the package registries is reachable.
    app = FastAPIOffline(
        title="sotag gateway",
        description="StackOverflow tag suggestion: the registered champion behind a small, fast API.",
        version="1",
        lifespan=lifespan,
    )
    app.state.holder, app.state.prediction_log, app.state.metrics, app.state.config = holder, plog, metrics, config
    app.state.jobs = jobs
    app.state.alias_watch = watch
    app.state.traffic, app.state.shadow, app.state.challenger = traffic, shadow, challenger
    bearer = HTTPBearer(auto_error=False)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = BODIES.get(request.url.path)
        content_type = request.headers.get("content-type", "")
        details = [
            _body_detail(e, content_type)
            or {"field": _field(e.get("loc", ())), "problem": _problem(e, body, request.url.path, exc.body)}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        return JSONResponse({"error": f"invalid request: {summary}", "details": details}, status_code=400)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.error, "details": exc.details}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Keep the router's headers: a 405 carries `Allow` (RFC 9110).
        return JSONResponse({"error": str(exc.detail), "details": []}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the gateway log"}, status_code=500)

    attempts = FailedAttempts(
        config.admin_max_failures,
        config.admin_window_s,
        path=run_dir.path / "admin-failures.db" if run_dir is not None and config.workers > 1 else None,
    )

    def admin(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        if not config.admin_token:
            raise ApiError(403, "admin routes are disabled: set SOTAG_ADMIN_TOKEN on the gateway")
        client = request.client.host if request.client else "unknown"
        wait = attempts.retry_after(client)
        if wait is not None:
            raise ApiError(
                429,
                f"too many failed admin attempts from this client; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        if credentials is None or not token_matches(credentials.credentials, config.admin_token):
            attempts.failed(client)
            metrics.admin_failures.inc()
            raise ApiError(401, "admin route: a valid bearer token is required (Authorization: Bearer <token>)")

    def model_ref(model: ResolvedModel, arm: str | None = None) -> dict[str, Any]:
        """The answer's `model` (schemas.ModelRef); `arm` None: the served model's own (champion, or pinned)."""
        return {
            "name": model.name,
            "version": model.version,
            "alias": model.alias,
            "arm": arm or traffic.served_arm,
            "uri": model.source,
        }

    def record(
        model: ResolvedModel, arm: str, route: str, titles, bodies, suggestions, elapsed_ms: float, ids, options
    ) -> None:
        ts = now()
        version = model.version or "local"
        metrics.answers.labels(version, arm).inc(len(ids))
        for title, body, s, prediction_id in zip(titles, bodies, suggestions, ids, strict=True):
            row = PredictionRecord(
                ts, model.name, model.version, route, title, body, s.tags, s.scores, elapsed_ms, prediction_id, arm
            )
            if shadow is not None:
                shadow.submit(row, *options)
            else:
                plog.append(row)
            for tag in s.tags:
                metrics.predicted_tags.labels(tag).inc()
            if not s.tags:
                metrics.no_tag_answers.labels(version).inc()

    def question_of(request: PredictRequest) -> tuple[str, str, int | None, float | None]:
        try:
            title, body = request.question()
            top_k, threshold = request.options()
        except InputError as exc:
            raise ApiError(400, f"invalid request: {exc}", [{"field": exc.field, "problem": exc.problem}]) from None
        return title, body, top_k, threshold

    def check_threshold_for(model: ResolvedModel, threshold: float | None) -> None:
        if threshold is None:
            return
        try:
            check_threshold(threshold, model.tagger.config.score_kind)
        except InputError as exc:
            raise ApiError(400, f"invalid request: {exc}", [{"field": exc.field, "problem": exc.problem}]) from None

    def answer_predict(request: PredictRequest) -> tuple[dict[str, Any], dict[str, str]]:
        """One question's answer and headers (the route's, and the fast path's: PredictFastPath)."""
        # Inline on the event loop: a single question takes well under a millisecond, and a thread
        # hop would cost more than the prediction. Inputs are bounded by the field limits.
        start = time.perf_counter()
        title, body, top_k, threshold = question_of(request)
        model, arm = traffic.pick(title, body)
        check_threshold_for(model, threshold)
        (suggestion,) = model.tagger.suggest([title], [body], top_k, threshold)
        elapsed_ms = (time.perf_counter() - start) * 1000
        prediction_id = new_prediction_id()
        record(model, arm, "/predict", [title], [body], [suggestion], elapsed_ms, [prediction_id], (top_k, threshold))
        payload = {
            "tags": suggestion.tags,
            "scores": suggestion.scores,
            "model": model_ref(model, arm),
            "prediction_id": prediction_id,
        }
        return payload, {VERSION_HEADER: str(model.version)}

    @app.post("/predict", response_model=PredictResponse, responses=ERRORS, summary="Tags for one question")
    async def predict(request: PredictRequest) -> JSONResponse:
        payload, headers = answer_predict(request)
        return JSONResponse(payload, headers=headers)

    @app.post("/explain", response_model=ExplainResponse, responses=ERRORS, summary="Tags for one question, and why")
    async def explain_route(request: PredictRequest) -> JSONResponse:
        title, body, top_k, threshold = question_of(request)
        model = holder.current
        check_threshold_for(model, threshold)
        (suggestion,) = model.tagger.suggest([title], [body], top_k, threshold)
        try:
            explanations = [asdict(e) for e in explain(model.tagger, title, body, suggestion.tags)]
        except NotExplainable as exc:
            raise ApiError(422, f"explain: {exc}; /predict answers for this model") from None
        return JSONResponse(
            {
                "tags": suggestion.tags,
                "scores": suggestion.scores,
                "model": model_ref(model),
                "explanations": explanations,
            }
        )

    @app.post("/predict/batch", response_model=BatchResponse, responses=ERRORS, summary="Tags for many questions")
    async def predict_batch(request: BatchRequest) -> JSONResponse:
        if len(request.questions) > config.max_batch:
            raise ApiError(
                400,
                f"questions: {len(request.questions)} questions, the limit is {config.max_batch}",
                [{"field": "questions", "problem": f"more than {config.max_batch} items"}],
            )
        start = time.perf_counter()
        try:
            pairs = [q.question(prefix=f"questions.{i}.") for i, q in enumerate(request.questions)]
        except InputError as exc:
            raise ApiError(400, f"invalid request: {exc}", [{"field": exc.field, "problem": exc.problem}]) from None
        check_threshold_for(holder.current, request.threshold)
        titles = [t for t, _ in pairs]
        bodies = [b for _, b in pairs]
        arms = [traffic.pick(t, b) for t, b in pairs]
        groups: dict[int, list[int]] = {}
        for i, (model, _) in enumerate(arms):
            groups.setdefault(id(model), []).append(i)

        def score_all() -> list:
            out: list = [None] * len(pairs)
            for indices in groups.values():
                model = arms[indices[0]][0]
                found = model.tagger.suggest(
                    [titles[i] for i in indices], [bodies[i] for i in indices], request.top_k, request.threshold
                )
                for i, s in zip(indices, found, strict=True):
                    out[i] = s
            return out

        try:
            suggestions = await asyncio.wait_for(run_in_threadpool(score_all), timeout=config.timeout_s)
        except TimeoutError:
            raise ApiError(504, f"the batch took longer than {config.timeout_s:.0f} s; send fewer questions") from None
        elapsed_ms = (time.perf_counter() - start) * 1000
        ids = [new_prediction_id() for _ in pairs]
        for indices in groups.values():
            model, arm = arms[indices[0]]
            record(
                model,
                arm,
                "/predict/batch",
                [titles[i] for i in indices],
                [bodies[i] for i in indices],
                [suggestions[i] for i in indices],
                elapsed_ms,
                [ids[i] for i in indices],
                (request.top_k, request.threshold),
            )
        results = [
            {"tags": x.tags, "scores": x.scores, "prediction_id": pid, "model": model_ref(*arm)}
            for x, pid, arm in zip(suggestions, ids, arms, strict=True)
        ]
        versions = {str(model.version) for model, _ in arms} or {str(holder.current.version)}
        return JSONResponse(
            {"results": results, "model": model_ref(holder.current)},
            headers={VERSION_HEADER: ",".join(sorted(versions))},
        )

    @app.get("/health", summary="Liveness and the model being served")
    async def health() -> dict[str, Any]:
        model = holder.current
        return {
            "status": "ok",
            "model": model_ref(model),
            "predictions_logged": plog.written,
            "prediction_log": plog.status(),
            "last_reload": holder.last_reload,
            "alias_watch": watch.status() if watch is not None else {"poll_s": 0, "polling": False, "last_check": None},
            "challenger": challenger.status() if challenger is not None else None,
            "shadow": shadow.status() if shadow is not None else None,
            "workers": config.workers,
            "worker_pid": os.getpid(),  # which worker answered (with several, each has its own model holder)
        }

    @app.get("/model_info", summary="Version, alias, run, metrics, training time and data digest of the model")
    async def model_info() -> dict[str, Any]:
        # The champion's card at the top (as always); `traffic`: the challenger beside it and how traffic is split.
        return {**holder.current.info(), "traffic": {"shadow": shadow is not None, **traffic.status()}}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(exposition(metrics.registry, metrics_dir, scraped), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/feedback",
        response_model=FeedbackResponse,
        responses={**ERRORS, 404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
        summary="The tags the asker kept for a prediction (once per prediction_id)",
    )
    async def post_feedback(request: FeedbackRequest) -> JSONResponse:
        try:
            outcome = await run_in_threadpool(feedback.record, request.prediction_id, request.tags)
        except sa_errors.SQLAlchemyError as exc:
            first = str(exc).splitlines()[0]
            raise ApiError(503, f"feedback: the prediction log database cannot be asked ({first})") from None
        field = [{"field": "prediction_id", "problem": "no prediction with this id"}]
        if outcome.status == "unknown":
            raise ApiError(404, f"prediction_id: no prediction {request.prediction_id} in the log", field)
        if outcome.status == "conflict":
            raise ApiError(
                409,
                f"prediction_id: feedback for {request.prediction_id} was already recorded with other tags",
                [{"field": "tags", "problem": f"already recorded as {json.loads(outcome.row['tags'])}"}],
            )
        row = outcome.row
        if outcome.status == "recorded":
            version = row["model_version"] or "local"
            metrics.live_precision_at_1.labels(version).observe(row["precision_at_1"])
            metrics.live_recall_at_5.labels(version).observe(row["recall_at_5"])
        return JSONResponse(
            {
                "prediction_id": request.prediction_id,
                "recorded": outcome.status == "recorded",
                "model_version": row["model_version"],
                "precision_at_1": row["precision_at_1"],
                "recall_at_5": row["recall_at_5"],
            }
        )

    def _reload() -> JSONResponse:
        result = holder.reload()
        if nudge is not None:
            nudge.touch()  # every other worker looks at the alias now
        metrics.reloads.labels("ok" if result.ok else "failed").inc()
        if result.ok:
            metrics.set_model(holder.current.name, holder.current.version)
        body = {
            "ok": result.ok,
            "message": result.message,
            "previous_version": result.previous_version,
            "version": result.version,
            "seconds": round(result.seconds, 3),
        }
        # 409: the request was understood but the new model could not replace the old one.
        return JSONResponse(body, status_code=200 if result.ok else 409)

    @app.post("/reload", dependencies=[Depends(admin)], summary="Swap to the current champion atomically")
    async def reload() -> JSONResponse:
        return await run_in_threadpool(_reload)

    @app.post(
        "/webhooks/mlflow",
        summary="An MLflow registry webhook (model_version_alias.created, HMAC-signed): follow the alias now",
        responses={
            401: {"description": "the signature or timestamp does not verify"},
            403: {"description": "the webhook route is disabled (no SOTAG_WEBHOOK_SECRET)"},
            409: {"description": "the alias names a version that was refused or could not be read"},
        },
    )
    async def mlflow_webhook(request: Request) -> JSONResponse:
        if not config.webhook_secret:
            raise ApiError(403, "the webhook route is disabled: set SOTAG_WEBHOOK_SECRET on the gateway")
        try:
            payload = verify(config.webhook_secret, dict(request.headers), await request.body())
        except WebhookRefused as exc:
            metrics.admin_failures.inc()
            raise ApiError(401, f"webhook refused: {exc}") from None
        event = alias_event(payload)
        served = parse_alias_uri(holder.uri)
        if event is None or watch is None or served is None or (event.name, event.alias) != served:
            what = f"{payload.get('entity')}.{payload.get('action')}"
            if event is not None:
                what = f"models:/{event.name}@{event.alias} -> v{event.version}"
            return JSONResponse({"ignored": f"{what}: not the alias this gateway serves ({holder.uri})"})
        # The registry, not the payload, says which version the alias names now (deliveries may arrive late).
        check: AliasCheck = await run_in_threadpool(watch.check_all, "webhook", True)
        if nudge is not None:
            nudge.touch()  # every other worker looks at the alias now
        return JSONResponse(check.as_dict(), status_code=409 if check.outcome in ("refused", "error") else 200)

    @app.post("/admin/rollback", dependencies=[Depends(admin)], summary="Roll the registry back, then reload")
    async def admin_rollback() -> JSONResponse:
        def work() -> JSONResponse:
            try:
                target = rollback(open_registry(config.tracking, holder.current.name), "rollback through the gateway")
            except SotagError as exc:
                raise ApiError(409, f"rollback refused: {exc}") from None
            response = _reload()
            payload = json.loads(response.body)
            payload["rolled_back_to"] = target.version
            return JSONResponse(payload, status_code=response.status_code)

        return await run_in_threadpool(work)

    @app.post("/admin/retrain", dependencies=[Depends(admin)], status_code=202, summary="Start `sotag retrain`")
    async def admin_retrain() -> dict[str, Any]:
        if retrain is None:
            raise ApiError(503, "retrain is not available in this gateway (start it with `sotag gateway`)")
        try:
            return await run_in_threadpool(jobs.start, retrain)  # starting a process forks: not on the event loop
        except JobRefused as running:
            raise ApiError(409, f"a retrain is already running (job {running})") from None

    @app.get("/admin/jobs/{job_id}", dependencies=[Depends(admin)], summary="State of a retrain job")
    async def admin_job(job_id: str) -> dict[str, Any]:
        job = jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"job_id: no job {job_id} (the gateway remembers the last {jobs.keep} jobs)")
        return job

    def openapi() -> dict[str, Any]:
        # Rebuilt when the served model's score kind changes (a reload): the threshold bounds follow it.
        kind = holder.current.tagger.config.score_kind
        if app.openapi_schema is None or app.state.openapi_kind != kind:
            from fastapi.openapi.utils import get_openapi

            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            document["components"]["schemas"]["ReloadResponse"] = ReloadResponse.model_json_schema()
            app.openapi_schema = contract.apply(document, kind, config.max_batch)
            app.state.openapi_kind = kind
        return app.openapi_schema

    app.state.openapi_kind = None
    app.openapi = openapi
    # Innermost first: /predict's fast path sees the decoded body; a compressed body is decoded (bounded) inside the
    # size limit and metrics, which see it as sent.
    app.add_middleware(PredictFastPath, answer=answer_predict)
    app.add_middleware(
        ContentDecoding,
        max_body_bytes=config.max_body_bytes,
        max_decoded_bytes=config.max_body_bytes,
        error_body=_decoding_error,
    )
    app.add_middleware(GatewayMiddleware, metrics=metrics, max_body_bytes=config.max_body_bytes)
    return app


def _decoding_error(status: int, message: str, coding: str) -> dict[str, Any]:
    """The gateway's error shape for a body in a content coding it cannot take (serving.content_coding)."""
    return {"error": message, "details": [{"field": "Content-Encoding", "problem": message}]}


class _LogCounts:
    """The prediction log's observer: its counts to Prometheus."""

    def __init__(self, metrics: GatewayMetrics):
        self.metrics = metrics

    def rows(self, log: PredictionLog) -> None:
        self.metrics.log_counts(log)


def _challenger_slot(config: GatewayConfig, holder: ModelHolder, metrics: GatewayMetrics) -> ChallengerSlot | None:
    """@challenger of the served model, when shadow or canary asks for it (it needs a registry alias URI)."""
    if not config.uses_challenger:
        return None
    served = parse_alias_uri(holder.uri)
    if served is None:
        raise SotagError(
            f"shadow and canary need the gateway to serve a registry alias (models:/name@champion), not {holder.uri}"
        )
    uri = f"models:/{served[0]}@{CHALLENGER}"
    slot = ChallengerSlot(
        uri,
        config.tracking,
        on_change=lambda model: metrics.set_challenger(
            model.name if model else served[0], model.version if model else None
        ),
    )
    slot.check("start")
    return slot


def _alias_watch(
    config: GatewayConfig,
    holder: ModelHolder,
    metrics: GatewayMetrics,
    nudge: Nudge | None = None,
    challenger: ChallengerSlot | None = None,
) -> AliasWatch | None:
    """The watch on the served alias; None when the gateway serves no alias (a version, a folder)."""
    if parse_alias_uri(holder.uri) is None or holder.current.version is None:
        return None

    def checked(check: AliasCheck) -> None:
        metrics.alias_checked(check.outcome, check.registry_version)
        if check.outcome == "swapped":
            metrics.reloads.labels("ok").inc()
            metrics.set_model(holder.current.name, holder.current.version)
        elif check.outcome == "refused":
            metrics.reloads.labels("failed").inc()

    return AliasWatch(
        holder,
        lambda: pin(holder.uri, config.tracking).version,
        config.reload_poll_s,
        checked,
        nudge=nudge,
        followers=[challenger.check] if challenger is not None else None,
    )
