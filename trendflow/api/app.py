"""The API application: a FastAPI app, served by Ray Serve as an ingress deployment.

- :func:`create_app` builds the FastAPI app around an :class:`AppResources` factory (the lifespan
  opens the database, store, billing and scheduler link; tests pass their own).
- :class:`ApiIngress` is the (undecorated) deployment class; :meth:`ApiIngress.deployment_options`
  derives replicas and Serve's request limits from :class:`~trendflow.settings.ApiSettings`.
- :func:`build_app` is what ``serve deploy serve_config.yaml`` imports: typed, validated args.

Nothing is opened at build time: the app (and its lifespan) is pickled into each replica, which
opens its own database pool, store and scheduler link on start-up. Load shedding
(:mod:`trendflow.api.shedding`) runs inside the replica so refused requests get the JSON error
body (``503 overloaded``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from trendflow.api.context import ApiContext, RaySchedulerLink, SchedulerLink
from trendflow.api.docs import install_docs
from trendflow.api.errors import CatchUnexpected, install_error_handlers
from trendflow.api.openapi import install_openapi
from trendflow.api.routes import (
    admin,
    forecast,
    frames,
    me,
    profiles,
    report,
    runs,
    system,
    uploads,
    videos,
)
from trendflow.api.serving import bind_internal_grpc_to_loopback, check_serve_environment
from trendflow.api.shedding import LoadShedder
from trendflow.api.webhooks import WebhookDispatcher
from trendflow.contracts.identity import dataprocessor_version
from trendflow.db import connect_and_migrate
from trendflow.pipeline.fetch import Extract, extract_info
from trendflow.settings import Settings, get_settings
from trendflow.storage.factory import open_store
from trendflow.web import install_studio

ContextFactory = Callable[[], Awaitable[ApiContext]]

DESCRIPTION = """Analyse creators' videos: features (NPZ), predictions and recommendations.

Authenticate with `Authorization: Bearer <token>` (`trendflow users token <email>`).
Typical flow: `POST /api/uploads` (or a YouTube URL) → `POST /api/estimate` → `POST /api/runs`
→ poll `GET /api/runs/{id}/status` → `GET /api/runs/{id}`. Errors are
`{"code", "message", "details"}` with stable codes.
"""


async def open_context(
    settings: Settings,
    *,
    scheduler: SchedulerLink | None = None,
    extract_youtube: Extract = extract_info,
) -> ApiContext:
    """Open what the routes share, from settings (production wiring; ``extract_youtube`` is
    yt-dlp's extraction step, which tests replace with recorded info dicts)."""
    db = await connect_and_migrate(settings)
    return ApiContext(
        settings=settings,
        db=db,
        store=open_store(settings),
        scheduler=scheduler,
        extract_youtube=extract_youtube,
    )


def create_app(
    factory: ContextFactory, *, webhooks: bool = True, shedding: tuple[int, int] | None = None
) -> FastAPI:
    """The FastAPI app; ``factory`` opens its :class:`ApiContext` on start-up.

    ``shedding = (max_running, max_waiting)`` adds the :class:`LoadShedder` middleware.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await factory()
        app.state.ctx = ctx
        dispatcher: asyncio.Task[None] | None = None
        if webhooks and ctx.settings.api.webhook_key is not None:
            dispatcher = asyncio.create_task(WebhookDispatcher(ctx.settings, ctx.db).run_forever())
        try:
            yield
        finally:
            if dispatcher is not None:
                dispatcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dispatcher
            for task in list(ctx.background):
                task.cancel()
            await ctx.store.close()
            await ctx.db.close()

    app = FastAPI(
        title="TrendFlow API",
        version=dataprocessor_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    for module in (uploads, runs, frames, report, forecast, videos, profiles, me, admin,
                   system):
        app.include_router(module.router)
    install_studio(app)  # last: the Studio at "/" never shadows a route
    if shedding is not None:
        app.add_middleware(LoadShedder, max_running=shedding[0], max_waiting=shedding[1])
    app.add_middleware(CatchUnexpected)  # last added = outermost: every unexpected error
    return app


class BuildArgs(BaseModel):
    """Arguments of :func:`build_app` (``args:`` in ``serve_config.yaml``); settings come from
    the environment (``TRENDFLOW_*``) unless overridden here."""

    model_config = ConfigDict(extra="forbid")

    replicas: int | None = Field(default=None, ge=1)
    max_ongoing_requests: int | None = Field(default=None, ge=1)
    max_queued_requests: int | None = Field(default=None, ge=0)

    def limits(self, settings: Settings) -> tuple[int, int]:
        """(requests handled at once, requests waiting) per replica."""
        api = settings.api
        running = self.max_ongoing_requests or api.max_ongoing_requests
        waiting = api.max_queued_requests if self.max_queued_requests is None \
            else self.max_queued_requests
        return running, waiting


class ApiIngress:
    """Deployment body; Serve wraps it with ``serve.ingress(app)`` at build time."""

    def __init__(self, settings: Settings) -> None:
        bind_internal_grpc_to_loopback()
        self.settings = settings

    @classmethod
    def deployment_options(cls, settings: Settings, args: BuildArgs) -> dict[str, Any]:
        """Serve hands a replica what it runs, what waits, and a few more to refuse quickly
        (JSON 503 from :class:`LoadShedder`); Serve's own queue limit is only a backstop,
        whose refusals are Serve's plain-text 503."""
        api = settings.api
        running, waiting = args.limits(settings)
        return {
            "name": "trendflow-api",
            "num_replicas": args.replicas or api.replicas,
            "max_ongoing_requests": running + waiting + api.overload_answer_slots,
            "max_queued_requests": max(waiting, api.overload_answer_slots),
            "ray_actor_options": {"num_cpus": api.replica_cpus},
            "logging_config": {"enable_access_log": api.access_log},
        }


def build_app(
    args: dict[str, Any] | BuildArgs | None = None, *, settings: Settings | None = None
) -> Any:
    """The Serve application (``serve deploy serve_config.yaml`` / ``serve.run``).

    ``settings`` default to the environment's (:func:`get_settings`); they are pickled into
    every replica, which opens its own resources in the app's lifespan.
    """
    from ray import serve

    parsed = args if isinstance(args, BuildArgs) else BuildArgs.model_validate(args or {})
    settings = settings or get_settings()
    if parsed.replicas is not None:
        settings = settings.model_copy(deep=True)
        settings.api.replicas = parsed.replicas
    check_serve_environment(settings.api)

    async def factory() -> ApiContext:
        return await open_context(settings, scheduler=RaySchedulerLink(settings))

    fastapi_app = create_app(factory, shedding=parsed.limits(settings))
    ingress = serve.ingress(fastapi_app)(ApiIngress)
    deployment = serve.deployment(**ApiIngress.deployment_options(settings, parsed))(ingress)
    return deployment.bind(settings)
