"""Rebuild the index from the result store: ``videos``, ``runs``, ``run_components`` and
``artifacts`` restored from ``manifest.json`` files alone (DESIGN.md §3, §7).

Every manifest under ``result_store/`` is read and validated, then written in one transaction
per run, replacing that run's component and artifact rows with what the manifest says. Rows the
manifest does not know keep their values (a video's title, a run's idempotency key) or take
their defaults on a fresh index. A manifest that fails validation is reported, never guessed
at; a run whose user is not in ``users`` is restored with no owner and counted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import asyncpg

from trendflow.contracts.keys import RESULT_STORE, parse_run_key
from trendflow.contracts.manifest import Manifest, load_manifest
from trendflow.db.repositories import components as comp_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.db.repositories._base import domain_errors
from trendflow.errors import TrendflowError
from trendflow.storage.base import ResultStore


@dataclass(slots=True)
class RebuildReport:
    manifests: int = 0
    runs: int = 0
    components: int = 0
    artifacts: int = 0
    runs_without_known_user: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # key -> "code: message"

    @property
    def ok(self) -> bool:
        return not self.failures


_UPSERT_RUN = """
INSERT INTO runs (run_id, platform_id, video_id, user_id, profile_id, config_hash,
                  sampling_policy_version, dataprocessor_version, model_signature, model_mapping,
                  status, error, warnings, created_at, started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (run_id) DO UPDATE SET
    platform_id = EXCLUDED.platform_id, video_id = EXCLUDED.video_id,
    user_id = EXCLUDED.user_id, profile_id = EXCLUDED.profile_id,
    config_hash = EXCLUDED.config_hash,
    sampling_policy_version = EXCLUDED.sampling_policy_version,
    dataprocessor_version = EXCLUDED.dataprocessor_version,
    model_signature = EXCLUDED.model_signature, model_mapping = EXCLUDED.model_mapping,
    status = EXCLUDED.status, error = EXCLUDED.error, warnings = EXCLUDED.warnings,
    created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at,
    finished_at = EXCLUDED.finished_at, updated_at = now()
"""


async def restore_manifest(conn: asyncpg.Connection, manifest: Manifest) -> tuple[int, int, bool]:
    """Write one manifest's rows (in the caller's transaction).

    Returns ``(components, artifacts, user_known)``.
    """
    run, video = manifest.run, manifest.video
    if video is not None:
        await videos_repo.upsert_video(
            conn,
            platform_id=run.platform_id,
            video_id=run.video_id,
            duration_s=video.duration_s,
            fps=video.fps,
            width=video.width,
            height=video.height,
            has_audio=video.has_audio,
            source={"kind": video.source},
            preprocessing=[p.model_dump(mode="json") for p in video.preprocessing],
        )
    else:
        await videos_repo.upsert_video(conn, platform_id=run.platform_id, video_id=run.video_id)
    user_id = uuid.UUID(run.user_id) if run.user_id else None
    user_known = user_id is None or bool(
        await conn.fetchval("SELECT 1 FROM users WHERE user_id = $1", user_id)
    )
    run_id = uuid.UUID(run.run_id)
    with domain_errors(f"restore run {run.run_id}"):
        await conn.execute(
            _UPSERT_RUN,
            run_id,
            run.platform_id,
            run.video_id,
            user_id if user_known else None,
            run.profile_id or "",
            run.config_hash,
            run.sampling_policy_version,
            run.dataprocessor_version,
            run.model_signature,
            {name: ref.ref for name, ref in run.model_mapping.items()},
            run.status,
            None if run.error is None else run.error.model_dump(mode="json"),
            list(run.warnings),
            run.created_at,
            run.started_at,
            run.finished_at,
        )
    await conn.execute("DELETE FROM run_components WHERE run_id = $1", run_id)
    artifacts = 0
    for name, comp in manifest.components.items():
        await comp_repo.record_component(conn, run_id=run_id, name=name, record=comp)
        artifacts += len(comp.artifacts)
    return len(manifest.components), artifacts, user_known


async def manifest_keys(store: ResultStore) -> list[str]:
    """Every manifest key in the store, sorted."""
    keys = await store.list(f"{RESULT_STORE}/")
    found = []
    for key in keys:
        if key.endswith("/manifest.json") and parse_run_key(key).is_manifest:
            found.append(key)
    return found


async def rebuild_index(conn: asyncpg.Connection, store: ResultStore) -> RebuildReport:
    """Restore the index from every manifest in ``store``; see the module docstring."""
    report = RebuildReport()
    for key in await manifest_keys(store):
        report.manifests += 1
        try:
            manifest = await load_manifest(store, key)
            async with conn.transaction():
                n_comp, n_art, user_known = await restore_manifest(conn, manifest)
        except TrendflowError as exc:
            report.failures[key] = f"{exc.code}: {exc.message}"
            continue
        report.runs += 1
        report.components += n_comp
        report.artifacts += n_art
        if not user_known:
            report.runs_without_known_user.append(manifest.run.run_id)
    return report
