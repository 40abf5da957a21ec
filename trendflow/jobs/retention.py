"""Retention: delete kept frames and raw text once their time is up (DESIGN.md §9).

Two rules, applied to the configured result store (local directory or S3 bucket):

- **Frames**: ``frames/<run_id>/`` is deleted whole once its run started more than
  ``segmenter.frames_retention_days`` (7) days ago (``run.started_at`` in the run's manifest;
  ``run.created_at`` for a run that never started). A ``frames/<run_id>/`` whose run has no
  manifest in the store (an orphan) is reported, and deleted only with ``--delete-orphans``.
- **Raw text**: an artifact that holds raw user text (``ocr_text`` with ``raw_text_stored`` true)
  loses that text once its component finished more than ``retention.raw_text_max_days`` (at most
  60) days ago — or at once, whatever its age, while ``retention.store_raw_ocr_text`` is off
  (turning the policy off removes the text stored under it). The NPZ is rewritten exactly as
  the component writes it when the policy forbids raw text — text buffer empty, spans
  ``[0, 0]``, the flag false — while every other key (boxes, lengths, sha256 hashes, the
  embedding) and its ``meta`` stay as they were. The manifest then
  lists the new size and sha256 and gets a component note ``retention: raw text removed on
  <date> …``, so ``trendflow validate`` still passes and the manifest says what happened. The
  index rows of each rewritten run are then restored from its manifest (as ``trendflow index
  rebuild`` would), unless ``--no-index``.

Transcripts are not raw text in this sense: their text is the product (``store_transcript_text``)
and stays. ``--dry-run`` reports everything and changes nothing. Each action prints one line
(keys and counts only, never content), then a summary line.

Submit it to the cluster (token auth on; docs/operations.md)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        -- python -m trendflow.jobs.retention --dry-run
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import numpy as np

from trendflow import jobs
from trendflow.contracts.keys import (
    FRAMES,
    RESULT_STORE,
    frames_prefix,
    parse_run_key,
    validate_run_id,
)
from trendflow.contracts.manifest import Manifest, load_manifest, save_manifest
from trendflow.contracts.npz import check_artifact, decode_npz, encode_npz
from trendflow.contracts.schemas import load_component_schema
from trendflow.errors import TrendflowError, UnsafeStorageKey
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore


@dataclass(frozen=True, slots=True)
class RawTextKeys:
    """Where a component keeps raw text: its flag, its UTF-8 buffer and the byte spans into it."""

    flag: str
    text: str
    spans: str


#: Components whose artifacts may hold raw user text, and the keys that hold it. A component that
#: stores raw comments adds its line here with the same three-key layout.
RAW_TEXT_COMPONENTS: Final[dict[str, RawTextKeys]] = {
    "ocr_text": RawTextKeys(flag="raw_text_stored", text="text_utf8", spans="text_spans"),
}
NOTE_PREFIX: Final = "retention: raw text removed on "


@dataclass(frozen=True, slots=True)
class StrippedArtifact:
    """An artifact whose raw text was removed (or would be, in a dry run)."""

    platform_id: str
    video_id: str
    run_id: str
    component: str
    key: str
    size: int
    sha256: str


@dataclass(slots=True)
class RetentionReport:
    """What one pass did (or, in a dry run, would do)."""

    dry_run: bool
    frames_deleted_runs: list[str] = field(default_factory=list)
    frames_deleted_objects: int = 0
    frames_kept_runs: int = 0
    frames_orphans: list[str] = field(default_factory=list)
    orphans_deleted: bool = False
    raw_text_stripped: list[StrippedArtifact] = field(default_factory=list)
    manifests_read: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        orphans = len(self.frames_orphans)
        return (
            f"retention: {verb} frames of {len(self.frames_deleted_runs)} runs "
            f"({self.frames_deleted_objects} objects), kept {self.frames_kept_runs}; "
            f"{orphans} orphan frame folders"
            f"{' (deleted)' if orphans and self.orphans_deleted else ''}; "
            f"raw text {'to remove' if self.dry_run else 'removed'} from "
            f"{len(self.raw_text_stripped)} artifacts; {self.manifests_read} manifests read, "
            f"{len(self.failures)} failures"
        )


async def _manifests(
    store: ResultStore, report: RetentionReport
) -> dict[str, tuple[str, Manifest]]:
    """run_id → (manifest key, manifest) for every readable manifest; failures are reported."""
    found: dict[str, tuple[str, Manifest]] = {}
    for key in await store.list(f"{RESULT_STORE}/"):
        try:
            if not parse_run_key(key).is_manifest:
                continue
        except UnsafeStorageKey:
            report.failures[key] = "not a run manifest or artifact key"
            continue
        try:
            manifest = await load_manifest(store, key)
        except TrendflowError as exc:
            report.failures[key] = f"{exc.code}: {exc.message}"
            continue
        report.manifests_read += 1
        found[manifest.run.run_id] = (key, manifest)
    return found


async def _frame_runs(store: ResultStore, report: RetentionReport) -> list[str]:
    """The run ids that have a ``frames/<run_id>/`` folder."""
    runs: set[str] = set()
    for key in await store.list(f"{FRAMES}/"):
        run_id = key.split("/")[1]
        try:
            runs.add(validate_run_id(run_id))
        except UnsafeStorageKey:
            report.failures[key] = "frames key without a run id"
    return sorted(runs)


def _strip(data: bytes, component: str, keys: RawTextKeys, where: str) -> bytes | None:
    """The artifact without its raw text, or None when it holds none."""
    artifact = decode_npz(data, where=where)
    flag = artifact.arrays.get(keys.flag)
    if artifact.meta.status != "ok" or flag is None or not bool(flag):
        return None
    arrays = dict(artifact.arrays)
    arrays[keys.text] = np.zeros(0, np.uint8)
    arrays[keys.spans] = np.zeros_like(arrays[keys.spans])
    arrays[keys.flag] = np.array(False)
    meta = artifact.meta
    return encode_npz(
        meta.identity,
        component=component,
        schema_version=meta.schema_version,
        producer_version=meta.producer_version,
        model=meta.model,
        status="ok",
        empty_reason=None,
        arrays=arrays,
        specs=load_component_schema(component).specs,
        created_at=meta.created_at,
    )


def _is_stripped(
    data: bytes, component: str, keys: RawTextKeys, where: str, manifest: Manifest
) -> bool:
    """Whether ``data`` is a valid artifact of this run with its raw text already removed."""
    artifact = decode_npz(data, where=where)
    schema = load_component_schema(component)
    return (
        not check_artifact(artifact, schema, expected_identity=manifest.identity, where=where)
        and artifact.meta.status == "ok"
        and not bool(artifact.arrays[keys.flag])
        and artifact.arrays[keys.text].size == 0
    )


async def _strip_raw_text(
    store: ResultStore,
    manifest: Manifest,
    cutoff: datetime,
    now: datetime,
    why: str,
    report: RetentionReport,
) -> None:
    changed = False
    for component, keys in RAW_TEXT_COMPONENTS.items():
        record = manifest.components.get(component)
        if record is None or record.status != "ok" or record.finished_at is None:
            continue
        if record.finished_at >= cutoff or any(n.startswith(NOTE_PREFIX) for n in record.notes):
            continue
        for art in record.artifacts:
            data = await store.get_bytes(art.key)
            stripped = _strip(data, component, keys, art.key)
            if stripped is None:
                if hashlib.sha256(data).hexdigest() == art.sha256 or not _is_stripped(
                    data, component, keys, art.key, manifest
                ):
                    continue
                # A previous pass rewrote the file and died before the manifest: finish it.
                stripped, resumed = data, True
            else:
                resumed = False
            if not report.dry_run:
                if not resumed:
                    await store.put_bytes(art.key, stripped)
                art.size, art.sha256 = len(stripped), hashlib.sha256(stripped).hexdigest()
                record.notes.append(
                    f"{NOTE_PREFIX}{now.date().isoformat()} "
                    f"({why}; lengths, hashes and embedding remain)"
                )
                changed = True
            report.raw_text_stripped.append(
                StrippedArtifact(manifest.run.platform_id, manifest.run.video_id,
                                 manifest.run.run_id, component, art.key, len(stripped),
                                 hashlib.sha256(stripped).hexdigest())
            )
            print(f"{'would remove' if report.dry_run else 'removed'} raw text: {art.key}"
                  f"{' (manifest update of an interrupted pass)' if resumed else ''}", flush=True)
    if changed:
        await save_manifest(store, manifest)


async def apply_retention(
    store: ResultStore,
    settings: Settings,
    *,
    now: datetime,
    dry_run: bool = False,
    delete_orphans: bool = False,
) -> RetentionReport:
    """One retention pass over ``store`` at time ``now`` (timezone-aware); see the module doc.

    Frames are listed before manifests, so a run whose frames are listed already has its
    manifest in the listing (runs write their manifest before any frame).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    report = RetentionReport(dry_run=dry_run)
    frame_runs = await _frame_runs(store, report)
    manifests = await _manifests(store, report)

    frames_cutoff = now - timedelta(days=settings.segmenter.frames_retention_days)
    for run_id in frame_runs:
        entry = manifests.get(run_id)
        if entry is None:
            report.frames_orphans.append(run_id)
            print(f"orphan frames (no manifest): {frames_prefix(run_id)}", flush=True)
            if not delete_orphans:
                continue
        else:
            run = entry[1].run
            if (run.started_at or run.created_at) >= frames_cutoff:
                report.frames_kept_runs += 1
                continue
            report.frames_deleted_runs.append(run_id)
        prefix = frames_prefix(run_id)
        if dry_run:
            count = len(await store.list(prefix))
        else:
            count = await store.delete_prefix(prefix)
        report.frames_deleted_objects += count
        print(f"{'would delete' if dry_run else 'deleted'} {prefix} ({count} objects)",
              flush=True)
    report.orphans_deleted = delete_orphans and not dry_run

    max_days = settings.retention.raw_text_max_days
    if settings.retention.store_raw_ocr_text:
        text_cutoff, why = now - timedelta(days=max_days), f"kept at most {max_days} days"
    else:  # the policy forbids raw text now: what was stored under it goes too
        text_cutoff, why = now, "storing raw text is turned off"
    for run_id, (key, manifest) in manifests.items():
        try:
            await _strip_raw_text(store, manifest, text_cutoff, now, why, report)
        except TrendflowError as exc:
            report.failures[key] = f"{exc.code}: {exc.message}"
            print(f"failed on run {run_id}: {exc.code}", flush=True)
    return report


async def update_index(
    store: ResultStore, settings: Settings, stripped: Sequence[StrippedArtifact]
) -> int:
    """Restore the rewritten runs' rows from their manifests (new artifact size and sha256,
    the retention note); returns how many runs were restored."""
    from trendflow.contracts.keys import manifest_key
    from trendflow.db.pool import open_database
    from trendflow.db.rebuild import restore_manifest

    runs = {(a.platform_id, a.video_id, a.run_id) for a in stripped}
    db = await open_database(settings, migrate=False)
    try:
        async with db.acquire() as conn:
            for platform_id, video_id, run_id in sorted(runs):
                manifest = await load_manifest(store, manifest_key(platform_id, video_id, run_id))
                async with conn.transaction():
                    await restore_manifest(conn, manifest)
    finally:
        await db.close()
    return len(runs)


async def run_job(
    args: argparse.Namespace, settings: Settings, *, clock: Callable[[], datetime] | None = None
) -> int:
    """The job: one pass, then the index update; exit 1 when anything failed."""
    from trendflow.contracts.manifest import utc_now
    from trendflow.storage.factory import open_store

    store = open_store(settings)
    try:
        report = await apply_retention(
            store, settings, now=(clock or utc_now)(), dry_run=args.dry_run,
            delete_orphans=args.delete_orphans,
        )
        if report.raw_text_stripped and not args.dry_run and not args.no_index:
            runs = await update_index(store, settings, report.raw_text_stripped)
            print(f"index: {runs} runs restored from their rewritten manifests", flush=True)
    finally:
        await store.close()
    for key, problem in sorted(report.failures.items()):
        print(f"failure: {key}: {problem}", file=sys.stderr, flush=True)
    print(report.summary(), flush=True)
    return 1 if report.failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trendflow.jobs.retention",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="report, change nothing")
    parser.add_argument("--delete-orphans", action="store_true",
                        help="also delete frames/<run_id>/ folders whose run has no manifest")
    parser.add_argument("--no-index", action="store_true",
                        help="do not update the index database (store only)")
    return parser


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    return jobs.run_job(build_parser(), run_job, argv, settings)


if __name__ == "__main__":
    sys.exit(main())
