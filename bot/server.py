"""The HTTP side: the webhook endpoint, health, metrics.

The webhook answers fast and never with a 500 for anything a client can send:

    503  the App is not configured (the body says what is missing)
    413  the body is over 25 MB
    401  X-Hub-Signature-256 missing, malformed or wrong (checked on the raw body, first)
    400  no X-GitHub-Event / X-GitHub-Delivery, or a body that is not the event it claims
    200  understood and needs no work, or a repeat of an accepted X-GitHub-Delivery
    202  a job was stored durably (before this answer) and queued
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Sequence
from typing import TypedDict

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

import handlers
from bot import logs, webhooks
from bot.engine import Engine
from bot.errors import WebhookError
from bot.jobstore import JobStore
from bot.metrics import Metrics
from bot.questions import AwaitedAnswers
from bot.routing import Delivery, JobRequest, Router, check_spec, with_acknowledgements
from bot.settings import Settings
from bot.triggers import RepoTriggers, Words

log = logs.get_logger(__name__)

HEALTH_DATABASE_TIMEOUT = 3.0


def not_configured(problems: list[str]) -> str:
    return "The App is not configured: " + "; ".join(problems) + "."


class BotState(TypedDict):
    """`app.state.bot`: what the running app has learned, for its routes and start-up hooks."""

    ready: bool
    app_slug: str | None


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class WebhookEndpoint:
    def __init__(self, settings: Settings, router: Router, engine: Engine, metrics: Metrics,
                 app_slug: Callable[[], str | None],
                 triggers: Callable[[str], Words],
                 awaited: Callable[[str, int], str | None] = lambda repo, number: None) -> None:
        self.settings = settings
        self.router = router
        self.engine = engine
        self.metrics = metrics
        self.app_slug = app_slug
        self.triggers = triggers
        self.awaited = awaited
        self.secret = (
            settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        )
        # Settings do not change while the process runs (registering writes `.env` and asks
        # for a restart): judge the credentials once, not on every delivery.
        self.credential_problems = settings.credential_problems()
        # Metric labels come from a header anyone can send: only known events get their own
        # series, or each new value would grow /metrics for good.
        self.labelled_events = router.events() | {"ping"}

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        event = request.headers.get("x-github-event", "")
        delivery_id = request.headers.get("x-github-delivery", "")
        with logs.bound(delivery_id=delivery_id or None):
            try:
                status, body = await self._handle(request, event, delivery_id)
            except WebhookError as error:
                status, body = error.status, {"message": error.message}
                log.info("delivery refused (%d): %s", status, error.message)
            except Exception:
                # Our fault (the database is unreachable, say), never the sender's: ask for
                # a redelivery rather than answer 500.
                log.exception("could not store delivery")
                status = 503
                body = {"message": "Could not store the delivery; please redeliver it."}
        label = event if event in self.labelled_events else "other"
        self.metrics.deliveries.labels(event=label, outcome=str(status)).inc()
        self.metrics.latency.observe(time.perf_counter() - started)
        return Response(orjson.dumps(body), status_code=status, media_type="application/json")

    async def _handle(self, request: Request, event: str, delivery_id: str) -> tuple[int, dict]:
        if self.credential_problems:
            raise WebhookError(503, not_configured(self.credential_problems))
        try:
            body = await _read_body(request, webhooks.MAX_BODY_BYTES)
        except _BodyTooLarge:
            raise WebhookError(413, "Body is over 25 MB.") from None
        assert self.secret is not None  # missing_credentials() names WEBHOOK_SECRET when it is unset
        webhooks.check_signature(self.secret, body, request.headers.get("x-hub-signature-256"))
        if not event:
            raise WebhookError(400, "Missing X-GitHub-Event header.")
        if not delivery_id:
            raise WebhookError(400, "Missing X-GitHub-Delivery header.")
        try:
            decided = self._decide(event, delivery_id, webhooks.decode(event, body))
        except WebhookError:
            raise
        except Exception as error:
            # Anything a signed body can make the routing trip over (an object where a string
            # belongs, nesting deeper than the decoder or the job store go) is the body's
            # fault: a 400 that says so, never a 5xx that asks GitHub to send it again.
            raise WebhookError(
                400, f"Body is not a well-formed `{event}` event ({error!r:.200})."
            ) from None
        if isinstance(decided, tuple):
            return decided
        requests = decided
        stored = await self.engine.submit(delivery_id, event, requests)
        if not any(created for _, created in stored):
            log.info("repeat of delivery %s: jobs %s already stored", delivery_id,
                     [job_id for job_id, _ in stored])
            return 200, {"message": "Repeat delivery; already accepted.",
                         "jobs": [job_id for job_id, _ in stored]}
        for (job_id, _), job in zip(stored, requests, strict=True):
            log.info("queued job %s: %s on %s", job_id, job.kind, job.key)
        return 202, {"message": "Queued.", "jobs": [job_id for job_id, _ in stored]}

    def _decide(self, event: str, delivery_id: str,
                payload: dict) -> tuple[int, dict] | list[JobRequest]:
        """The jobs a decoded delivery asks for, or the answer when it asks for none."""
        if event == "ping":
            zen = payload.get("zen")
            return 200, {"message": "pong", "zen": zen if isinstance(zen, str) else None}
        action = payload.get("action")
        if action is not None and not isinstance(action, str):
            raise WebhookError(400, f"Body is not a `{event}` event: `action` is not a string.")
        if not self.router.routes(event, action):
            return 200, {"message": f"Nothing to do for {event}" + (f".{action}" if action else "") + "."}
        repository = payload.get("repository")
        full_name = repository.get("full_name") if isinstance(repository, dict) else None
        repo_name = full_name if isinstance(full_name, str) else ""
        words = self.triggers(repo_name)
        delivery = Delivery(
            event=event,
            delivery_id=delivery_id,
            payload=payload,
            app_slug=self.app_slug(),
            trigger_label=words.label,
            command_word=words.command,
            branch_prefix=words.branch_prefix,
            answer_awaited_from=lambda number: self.awaited(repo_name, number),
        )
        requests = with_acknowledgements(self.router.dispatch(delivery))
        for request in requests:
            check_spec(request.spec)
        if not requests:
            return 200, {"message": "Understood; no work to do."}
        return requests


def create_app(
    settings: Settings,
    *,
    router: Router | None = None,
    engine: Engine | None = None,
    run_workers: bool = True,
    extra_routes: Sequence[BaseRoute] | None = None,
    on_startup: list[Callable] | None = None,
) -> Starlette:
    """The ASGI application: the webhook, `/healthz`, `/metrics`, plus any extra routes."""
    if router is None:
        router = handlers.router
    if engine is None:
        engine = Engine(settings, JobStore(settings.database_url), run_workers=run_workers)
    metrics = Metrics(engine.store)
    triggers = RepoTriggers(engine.trigger_words)
    awaited = AwaitedAnswers(engine.questions)
    # The App's slug is learned at start-up (an on_startup callback), never on the webhook path.
    state: BotState = {"ready": False, "app_slug": None}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await engine.start()
        webhooks.prepare_models(router.events())
        await triggers.refresh()
        refresher = asyncio.create_task(triggers.keep_fresh(), name="trigger-words")
        await asyncio.to_thread(awaited.refresh)
        awaited_refresher = asyncio.create_task(awaited.keep_fresh(), name="awaited-answers")
        for callback in on_startup or []:
            await callback(app)
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise stall every request for 100+ ms.
        gc.collect()
        gc.freeze()
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            refresher.cancel()
            awaited_refresher.cancel()
            await engine.stop()

    work_problems = settings.work_problems()
    missing = settings.missing_credentials()

    async def healthz(request: Request) -> Response:
        """200 `ok` only when the bot can work: the App's credentials parse, the model's key is
        set and the database answers. Otherwise 503, naming each piece that is missing or
        broken, so a load balancer never sends work to a bot that would fail it."""
        if not state["ready"]:
            return JSONResponse({"status": "starting"}, status_code=503)
        problems = list(work_problems)
        try:
            unreachable = await asyncio.wait_for(
                asyncio.to_thread(engine.database.unreachable, HEALTH_DATABASE_TIMEOUT),
                HEALTH_DATABASE_TIMEOUT + 1)
        except TimeoutError:
            unreachable = (f"the database at {engine.database.location.address} did not answer "
                           f"within {HEALTH_DATABASE_TIMEOUT:.0f} s")
        if unreachable:
            problems.append(unreachable)
        if not problems:
            status = "ok"
        else:
            status = "unconfigured" if missing else "unavailable"
        body = {
            "status": status,
            "configured": not missing,
            "missing": missing,
            "problems": problems,
            "workers": settings.workers if engine.run_workers else 0,
            "database": "postgresql" if engine.database.postgres else "sqlite",
            # Unauthenticated: the provider's name, not the cloud project or region behind it.
            "provider": settings.model_provider,
        }
        if problems:
            body["message"] = "The bot cannot work: " + "; ".join(problems) + "."
        return JSONResponse(body, status_code=200 if not problems else 503)

    async def metrics_endpoint(request: Request) -> Response:
        # The spend and job figures are read from the database: off the event loop.
        return Response(await asyncio.to_thread(metrics.render), media_type="text/plain; version=0.0.4")

    webhook = WebhookEndpoint(settings, router, engine, metrics, lambda: state["app_slug"],
                              triggers, awaited)
    routes: list[BaseRoute] = [
        Route(settings.webhook_path, webhook.handle, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *(extra_routes or []),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.bot = state
    return app

