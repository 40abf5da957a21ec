"""Rebuild the index from the result store: ``videos``, ``runs``, ``run_components`` and
``artifacts`` restored from ``manifest.json`` files alone (DESIGN.md §3, §7).

Every manifest under ``result_store/`` is read and validated, one video at a time: the video's
row from all its manifests (oldest run first, so the newest run's facts win, as when they were
written), then each run's rows in one transaction per run. A rebuild restores what the index
lost and never moves the index backwards; over an intact index it writes nothing:

- **Runs the index knows** keep their lifecycle — status, stage, error, warnings, timestamps,
  attempts, worker, heartbeat, reuse, idempotency key, callback — because those move only
  through the run's lifecycle (:func:`trendflow.runs.end_run`, with its billing settlement); a
  manifest that says otherwise is stale or ahead of an ending the scheduler still owes, and is
  reported under ``runs_status_kept``. The manifest sets what it records of the run itself
  (owner, profile and its pinned config, source, identity, models) where that differs.
- **Runs the index does not know** are inserted as their manifest says. A manifest that is not
  final (``queued``/``running``) has lost its execution — no scheduler can hold a run the
  index does not list — so the run is restored ended ``error`` with ``execution_lost`` (its
  open components closed as the ending closes them), never queued again, and listed under
  ``runs_restored_lost``. Its billing is not touched: the ledger rows, if any survive, stay.
- **Components and artifacts** are written forward only
  (:func:`~trendflow.db.repositories.components.restore_component`): a manifest's unfinished
  component states only for a run the index has ``running`` (or did not have); rows the
  manifests do not list (the ``render`` row, runs whose manifests are gone) are never deleted.

A manifest that fails validation is reported, never guessed at; a run whose user is not in
``users`` is restored with no owner and counted. The store is only read.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from trendflow.contracts.keys import RESULT_STORE, parse_run_key
from trendflow.contracts.manifest import (
    FINAL_RUN_STATUSES,
    Manifest,
    RunError,
    load_manifest,
)
from trendflow.db.repositories import components as comp_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.db.repositories._base import domain_errors
from trendflow.errors import ExecutionLost, TrendflowError
from trendflow.pipeline.execution import end_manifest
from trendflow.runs.sources import video_title
from trendflow.storage.base import ResultStore


@dataclass(slots=True)
class RebuildReport:
    manifests: int = 0
    runs: int = 0
    components: int = 0
    artifacts: int = 0
    rows_written: int = 0  # run, component and artifact rows inserted or changed
    runs_without_known_user: list[str] = field(default_factory=list)
    # run_id -> "<index status> (manifest: <manifest status>)": the index's status was kept
    runs_status_kept: dict[str, str] = field(default_factory=dict)
    # runs the index did not know whose manifest was not final: restored error execution_lost
    runs_restored_lost: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # key -> "code: message"

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True, slots=True)
class RestoredRun:
    """What restoring one manifest did."""

    components: int
    artifacts: int
    user_known: bool
    rows_written: int
    kept_status: str | None  # the index's status, when it differs from the manifest's
    lost: bool  # restored ``error``/``execution_lost`` from a manifest that was not final


_INSERT_RUN = """
INSERT INTO runs (run_id, user_id, profile_id, config_hash, sampling_policy_version,
                  dataprocessor_version, model_signature, model_mapping, profile_config, source,
                  platform_id, video_id, status, stage, error, warnings, created_at,
                  started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9, '{}'::jsonb), COALESCE($10, '{}'::jsonb),
        $11, $12, $13, $13, $14, $15, $16, $17, $18)
ON CONFLICT (run_id) DO NOTHING
"""

# What the manifest records of the run itself; the lifecycle columns are left alone.
_UPDATE_RUN = """
UPDATE runs r SET user_id = $2, profile_id = $3, config_hash = $4, sampling_policy_version = $5,
    dataprocessor_version = $6, model_signature = $7, model_mapping = $8,
    profile_config = COALESCE($9, r.profile_config), source = COALESCE($10, r.source),
    updated_at = now()
WHERE r.run_id = $1
  AND (r.user_id, r.profile_id, r.config_hash, r.sampling_policy_version,
       r.dataprocessor_version, r.model_signature, r.model_mapping, r.profile_config, r.source)
      IS DISTINCT FROM
      ($2, $3, $4, $5, $6, $7, $8, COALESCE($9, r.profile_config), COALESCE($10, r.source))
"""


async def restore_video(conn: asyncpg.Connection, manifests: Sequence[Manifest]) -> None:
    """Write the video row of ``manifests`` (all of one video, oldest run first), as the runs
    wrote it: its source and title from the newest run that names them, its probed facts from
    the newest run that probed it, created with its first run."""
    first = manifests[0].run
    source = title = probed = None
    for manifest in manifests:
        if manifest.run.source is not None:
            source = manifest.run.source
            named = video_title(source)
            title = title if named is None else named
        if manifest.video is not None:
            probed = manifest.video
    await videos_repo.upsert_video(
        conn,
        platform_id=first.platform_id,
        video_id=first.video_id,
        title=title,
        source=source,
        created_at=min(m.run.created_at for m in manifests),
        **({} if probed is None else videos_repo.probe_columns(probed)),
    )


def _lost(manifest: Manifest) -> Manifest:
    """A copy of a manifest that is not final, ended as its lost execution ends it."""
    closed = manifest.model_copy(deep=True)
    error = ExecutionLost(
        f"run {manifest.run.run_id} was {manifest.run.status} in its manifest and unknown to "
        "the index when the index was rebuilt: its execution is gone",
        run_id=manifest.run.run_id,
        manifest_status=manifest.run.status,
    )
    end_manifest(closed, "error", RunError.of(error))
    return closed


async def restore_run(conn: asyncpg.Connection, manifest: Manifest) -> RestoredRun:
    """Write one manifest's run, component and artifact rows (in the caller's transaction;
    the video row must exist: :func:`restore_video`). See the module docstring for the rules.
    """
    run = manifest.run
    run_id = uuid.UUID(run.run_id)
    user_id = uuid.UUID(run.user_id) if run.user_id else None
    user_known = user_id is None or bool(
        await conn.fetchval("SELECT 1 FROM users WHERE user_id = $1", user_id)
    )
    owner = user_id if user_known else None
    with domain_errors(f"restore run {run.run_id}"):
        current = await conn.fetchval(
            "SELECT status FROM runs WHERE run_id = $1 FOR UPDATE", run_id
        )
        lost = current is None and run.status not in FINAL_RUN_STATUSES
        if lost:
            manifest = _lost(manifest)
            run = manifest.run
        # What the manifest records of the run itself: $1–$10 of both statements.
        recorded = (
            run_id,
            owner,
            run.profile_id or "",
            run.config_hash,
            run.sampling_policy_version,
            run.dataprocessor_version,
            run.model_signature,
            {name: ref.ref for name, ref in run.model_mapping.items()},
            run.profile_config,
            run.source,
        )
        written = 0
        if current is None:
            status = await conn.execute(
                _INSERT_RUN,
                *recorded,
                run.platform_id,
                run.video_id,
                run.status,
                None if run.error is None else run.error.model_dump(mode="json"),
                list(run.warnings),
                run.created_at,
                run.started_at,
                run.finished_at,
            )
        else:
            status = await conn.execute(_UPDATE_RUN, *recorded)
        written += status.endswith(" 1")
    accept_open = current in (None, "running")
    artifacts = 0
    for name, comp in manifest.components.items():
        changed, n_art = await comp_repo.restore_component(
            conn, run_id=run_id, name=name, record=comp, accept_open=accept_open
        )
        written += changed + n_art
        artifacts += len(comp.artifacts)
    return RestoredRun(
        components=len(manifest.components),
        artifacts=artifacts,
        user_known=user_known,
        rows_written=written,
        kept_status=current if current is not None and current != run.status else None,
        lost=lost,
    )


async def restore_manifest(conn: asyncpg.Connection, manifest: Manifest) -> RestoredRun:
    """Write one manifest's video, run, component and artifact rows (in the caller's
    transaction), by the rules of a rebuild: a re-indexed run (retention's rewrite) or one
    run of a test bench."""
    await restore_video(conn, [manifest])
    return await restore_run(conn, manifest)


async def manifest_keys(store: ResultStore) -> list[str]:
    """Every manifest key in the store, sorted."""
    keys = await store.list(f"{RESULT_STORE}/")
    found = []
    for key in keys:
        if key.endswith("/manifest.json") and parse_run_key(key).is_manifest:
            found.append(key)
    return found


def _failure(exc: TrendflowError) -> str:
    return f"{exc.code}: {exc.message}"


async def rebuild_index(conn: asyncpg.Connection, store: ResultStore) -> RebuildReport:
    """Restore the index from every manifest in ``store``; see the module docstring."""
    report = RebuildReport()
    by_video: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key in await manifest_keys(store):
        parsed = parse_run_key(key)
        by_video[(parsed.platform_id, parsed.video_id)].append(key)
    for keys in by_video.values():
        loaded: list[tuple[str, Manifest]] = []
        for key in keys:
            report.manifests += 1
            try:
                loaded.append((key, await load_manifest(store, key)))
            except TrendflowError as exc:
                report.failures[key] = _failure(exc)
        if not loaded:
            continue
        loaded.sort(key=lambda km: (km[1].run.created_at, km[1].run.run_id))
        try:
            async with conn.transaction():
                await restore_video(conn, [m for _, m in loaded])
        except TrendflowError as exc:
            report.failures.update(dict.fromkeys((k for k, _ in loaded), _failure(exc)))
            continue
        for key, manifest in loaded:
            try:
                async with conn.transaction():
                    restored = await restore_run(conn, manifest)
            except TrendflowError as exc:
                report.failures[key] = _failure(exc)
                continue
            run_id = manifest.run.run_id
            report.runs += 1
            report.components += restored.components
            report.artifacts += restored.artifacts
            report.rows_written += restored.rows_written
            if not restored.user_known:
                report.runs_without_known_user.append(run_id)
            if restored.kept_status is not None:
                report.runs_status_kept[run_id] = (
                    f"{restored.kept_status} (manifest: {manifest.run.status})"
                )
            if restored.lost:
                report.runs_restored_lost.append(run_id)
    return report
