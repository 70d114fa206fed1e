"""The gateway: the seeds' API contract in front of the registered pyfunc.

POST /predict (sotag's {title, body, top_k} or the original Tagger API's {text, topk}), POST /explain,
POST /predict/batch, GET /health, GET /model_info, GET /metrics (Prometheus),
POST /reload and POST /admin/{retrain,rollback} (bearer token), POST /webhooks/mlflow (an MLflow registry
webhook, HMAC-signed), OpenAPI docs at /docs (served offline). The gateway follows the alias it serves
(serving/alias_watch.py): it looks every `reload_poll_s` seconds, and at once on a webhook.

Bad input never reaches the model: pydantic checks every field and the answer is a 400
naming it; a body over the limit is a 413; a batch over the time limit is a 504.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any, get_args

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sotag.infra.prediction_log import PredictionLog, PredictionRecord, now
from sotag.registry.lifecycle import rollback
from sotag.registry.resolve import ResolvedModel, parse_alias_uri, pin
from sotag.registry.store import open_registry
from sotag.serving import contract
from sotag.serving.admin_guard import FailedAttempts, token_matches
from sotag.serving.alias_watch import AliasCheck, AliasWatch
from sotag.serving.config import GatewayConfig
from sotag.serving.content_coding import ContentDecoding
from sotag.serving.jobs import JobRefused, Jobs, RetrainLauncher
from sotag.serving.metrics import GatewayMetrics
from sotag.serving.mlflow_webhook import WebhookRefused, alias_event, verify
from sotag.serving.model_holder import ModelHolder
from sotag.serving.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    ExplainResponse,
    PredictRequest,
    PredictResponse,
    ReloadResponse,
)
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
}
ERRORS = {400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}}
BODIES: dict[str, type[BaseModel]] = {
    "/predict": PredictRequest,
    "/explain": PredictRequest,
    "/predict/batch": BatchRequest,
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


def _problem(error: dict[str, Any], body: type[BaseModel] | None = None) -> str:
    kind, message = error.get("type", ""), error.get("msg", "invalid")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        known = f"; the known fields are {', '.join(_known_fields(body, error['loc']))}" if body else ""
        return f"is not a known field{known}"
    return message[0].lower() + message[1:] if message else "invalid"


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
    metrics.watch_prediction_log(plog)
    metrics.set_model(holder.current.name, holder.current.version)
    jobs = Jobs()
    watch = _alias_watch(config, holder, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if watch is not None:
            watch.start()
        yield
        if watch is not None:
            watch.stop()
        plog.close(timeout_s=config.shutdown_timeout_s)  # drain (or spool): no logged prediction is lost
        jobs.close()  # a retrain still running is stopped (SIGTERM: its runs end KILLED, the registry unchanged)

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
    bearer = HTTPBearer(auto_error=False)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = BODIES.get(request.url.path)
        content_type = request.headers.get("content-type", "")
        details = [
            _body_detail(e, content_type) or {"field": _field(e.get("loc", ())), "problem": _problem(e, body)}
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

    attempts = FailedAttempts(config.admin_max_failures, config.admin_window_s)

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

    def model_ref(model: ResolvedModel) -> dict[str, Any]:
        return {"name": model.name, "version": model.version, "alias": model.alias}

    def record(model: ResolvedModel, route: str, titles, bodies, suggestions, elapsed_ms: float) -> None:
        ts = now()
        for title, body, s in zip(titles, bodies, suggestions, strict=True):
            plog.append(
                PredictionRecord(ts, model.name, model.version, route, title, body, s.tags, s.scores, elapsed_ms)
            )
            for tag in s.tags:
                metrics.predicted_tags.labels(tag).inc()

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

    @app.post("/predict", response_model=PredictResponse, responses=ERRORS, summary="Tags for one question")
    async def predict(request: PredictRequest) -> JSONResponse:
        # Inline on the event loop: a single question takes well under a millisecond, and a thread
        # hop would cost more than the prediction. Inputs are bounded by the field limits.
        start = time.perf_counter()
        title, body, top_k, threshold = question_of(request)
        model = holder.current
        check_threshold_for(model, threshold)
        (suggestion,) = model.tagger.suggest([title], [body], top_k, threshold)
        elapsed_ms = (time.perf_counter() - start) * 1000
        record(model, "/predict", [title], [body], [suggestion], elapsed_ms)
        return JSONResponse({"tags": suggestion.tags, "scores": suggestion.scores, "model": model_ref(model)})

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
        model = holder.current
        check_threshold_for(model, request.threshold)
        titles = [t for t, _ in pairs]
        bodies = [b for _, b in pairs]
        try:
            suggestions = await asyncio.wait_for(
                run_in_threadpool(model.tagger.suggest, titles, bodies, request.top_k, request.threshold),
                timeout=config.timeout_s,
            )
        except TimeoutError:
            raise ApiError(504, f"the batch took longer than {config.timeout_s:.0f} s; send fewer questions") from None
        elapsed_ms = (time.perf_counter() - start) * 1000
        record(model, "/predict/batch", titles, bodies, suggestions, elapsed_ms)
        results = [{"tags": x.tags, "scores": x.scores} for x in suggestions]
        return JSONResponse({"results": results, "model": model_ref(model)})

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
        }

    @app.get("/model_info", summary="Version, alias, run, metrics, training time and data digest of the model")
    async def model_info() -> dict[str, Any]:
        return holder.current.info()

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def _reload() -> JSONResponse:
        result = holder.reload()
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
        check: AliasCheck = await run_in_threadpool(watch.check, "webhook", True)
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
    # Innermost first: a compressed body is decoded (bounded) inside the size limit and metrics, which see it as sent.
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


def _alias_watch(config: GatewayConfig, holder: ModelHolder, metrics: GatewayMetrics) -> AliasWatch | None:
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

    return AliasWatch(holder, lambda: pin(holder.uri, config.tracking).version, config.reload_poll_s, checked)
