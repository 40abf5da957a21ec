"""``trendflow analyze``: one video through the HTTP API, with live progress and a summary.

:func:`analyze` uploads a file (or submits a YouTube URL), prices it, starts the run, prints a
line whenever the stage or a component changes, then reads the results, the written report and
the ledger, and validates the stored run (``validate_run``) when the store is reachable from
here (the local stack's store is). :func:`demo_sample` writes the sample clip of ``trendflow demo``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from trendflow.billing.ledger import format_credits
from trendflow.errors import InputError, ServiceUnavailable, TrendflowError
from trendflow.forecast.present import TOP_WHATIFS, whatif_text
from trendflow.progress import RunProgress
from trendflow.render import RENDER_FAILED
from trendflow.settings import Settings
from trendflow.web import studio_url

Print = Callable[[str], None]


@dataclass
class AnalysisResult:
    """What :func:`analyze` saw: the final status, the artifacts and the checks."""

    run_id: str
    status: str
    error: dict[str, Any] | None
    price: Decimal
    charged: Decimal
    artifacts: str | None
    findings: dict[str, list[str]] = field(default_factory=dict)
    report: list[str] = field(default_factory=list)
    # How the report was written (GET /api/runs/{id}/report less its sentences), or why the
    # run has none: {"engine": …, "llm_model": …, "sections": […], …} | {"error": {code, …}}
    report_info: dict[str, Any] = field(default_factory=dict)
    forecast: dict[str, Any] | None = None  # GET /api/runs/{id}/forecast, when the run has one
    problems: list[str] | None = None  # None: validation not possible from here
    wall_s: float = 0.0
    studio_url: str | None = None  # the run's result page in the Studio

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.problems == []

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON (``trendflow analyze --json``): credits as decimal strings."""
        out = dataclasses.asdict(self)
        out.update(price=str(self.price), charged=str(self.charged), ok=self.ok)
        return out


def _raise_for(r: httpx.Response, what: str) -> dict[str, Any]:
    if r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            body = {"code": "http_error", "message": r.text[:300]}
        raise _ApiError(f"{what}: HTTP {r.status_code} {body.get('code')}: "
                        f"{body.get('message')}", status=r.status_code, body=body)
    out: dict[str, Any] = r.json()
    return out


class _ApiError(TrendflowError):
    code = "api_request_failed"
    status = 502


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


_SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "metadata_features": ("duration_s", "width", "height"),
    "shot_detection": ("n_cuts", "cuts_per_minute", "mean_shot_length_s"),
    "color_stats": ("brightness_mean", "saturation_mean", "colorfulness_mean"),
    "motion": ("motion_mean", "static_ratio"),
    "loudness": ("integrated_lufs", "true_peak_dbtp", "loudness_range_lu"),
    "audio_features": ("tempo_bpm", "n_beats", "onset_rate_per_s"),
}


def key_findings(components: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """A few headline values per component from the presentation JSON of ``GET /api/runs/{id}``.

    Components without chosen keys show their first scalar keys.
    """
    out: dict[str, list[str]] = {}
    for name, doc in sorted(components.items()):
        if doc.get("status") == "empty":
            out[name] = [f"empty: {doc.get('empty_reason')}"]
            continue
        keys = doc["keys"]
        chosen = _SUMMARY_KEYS.get(name) or tuple(
            k for k, v in keys.items() if v["shape"] == [] and k not in ("frame_indices",))[:4]
        lines = []
        for key in chosen:
            item = keys.get(key)
            if item is None or item["value"] is None:
                continue
            value = item["value"]
            shown = f"{value:.3g}" if isinstance(value, float) else str(value)
            lines.append(f"{key} = {shown}" + (f" {item['unit']}" if item.get("unit") else ""))
        out[name] = lines
    return out


def analyze(
    source: str,
    *,
    api_url: str,
    token: str,
    profile: str = "fast",
    settings: Settings | None = None,
    poll_s: float = 1.0,
    timeout_s: float = 1800.0,
    out: Print = print,
    progress: RunProgress | None = None,
) -> AnalysisResult:
    """Run one analysis through the API at ``api_url``; ``settings`` locate the result store
    for validation (None: not validated from here, and said so). ``progress`` shows the run
    while it analyses (default: rich bars on a terminal, plain lines otherwise, on stdout)."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=120.0) as http:
        request: dict[str, Any] = {"profile_id": profile}
        path = Path(source)
        if path.exists():
            if not path.is_file():
                raise InputError(f"{source} is not a file")
            meta = {"title": path.stem[:200]}
            out(f"uploading {path} ({path.stat().st_size / 1e6:.1f} MB)")
            up = _raise_for(http.post(
                "/api/uploads", content=_file_chunks(path),
                headers={"X-Filename": path.name, "X-Upload-Meta": json.dumps(meta)},
            ), "upload")
            out(f"upload {up['upload_id']}: video {up['video_id']}, {up['duration_s']:.1f} s, "
                f"{up['width']}x{up['height']}")
            request["upload_id"] = up["upload_id"]
        elif source.startswith(("http://", "https://")):
            request["youtube_url"] = source  # the API reads its duration and size from YouTube
        else:
            raise InputError(f"{source!r} is neither an existing file nor a YouTube URL")

        est = _raise_for(http.post("/api/estimate", json=request), "estimate")
        if est.get("source_url"):  # the video a pasted URL stands for
            out(f"video {est['video_id']}: {est['source_url']}")
        eta = est.get("eta_s")
        out(f"estimate: {format_credits(est['total'])} credits"
            + (f", about {eta:.0f} s" if isinstance(eta, (int, float)) else "")
            + f" (available {format_credits(est['available'])})")
        run = _raise_for(http.post("/api/runs", json={**request, "max_total": est["total"]},
                                   headers={"Idempotency-Key": str(uuid.uuid4())}), "run")
        run_id = run["run_id"]
        out(f"run {run_id}: {run['status']} (profile {profile})")

        deadline = time.monotonic() + timeout_s
        with progress or RunProgress() as shown:
            while True:
                st = _raise_for(http.get(f"/api/runs/{run_id}/status"), "status")
                shown.update(st)
                if st["status"] in ("ok", "error", "cancelled"):
                    break
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(f"run {run_id} did not finish in {timeout_s:.0f} s")
                time.sleep(poll_s)

        me = _raise_for(http.get("/api/me"), "me")
        charged = sum((Decimal(str(e["amount"])) for e in me["ledger"]
                       if e["run_id"] == run_id and e["kind"] == "charge"), Decimal(0))
        result = AnalysisResult(run_id=run_id, status=st["status"], error=st.get("error"),
                                price=Decimal(str(est["total"])), charged=charged, artifacts=None,
                                studio_url=studio_url(api_url, run_id=run_id))
        if st["status"] == "ok":
            res = _raise_for(http.get(f"/api/runs/{run_id}"), "results")
            result.findings = key_findings(res["components"])
            result.report, result.report_info = _report(http, run_id, res["run"])
            if "popularity_prediction" in res["components"]:
                result.forecast = _raise_for(http.get(f"/api/runs/{run_id}/forecast"),
                                             "forecast")
            r = res["run"]
            source_run = r.get("reused_from_run_id") or run_id
            from trendflow.contracts.keys import run_prefix

            prefix = run_prefix(r["platform_id"], r["video_id"], source_run)
            if settings is not None:
                result.artifacts, result.problems = asyncio.run(_validate(settings, prefix))
            else:
                result.artifacts = prefix
    result.wall_s = time.monotonic() - started
    return result


def _report(http: httpx.Client, run_id: str,
            run: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The run's written analysis, and how it was written. A run whose render failed (it ends
    ``ok`` with the warning ``render failed: <code>``) shows that code instead of asking the
    API to render again."""
    failed = [w for w in run.get("warnings") or [] if w.startswith(RENDER_FAILED)]
    if failed:
        return [], {"error": {"code": failed[0].removeprefix(RENDER_FAILED).strip(),
                              "message": "the written analysis failed; the results stand"}}
    r = http.get(f"/api/runs/{run_id}/report", timeout=None)
    if r.status_code >= 400:
        body = r.json()
        return [], {"error": {"code": body.get("code"), "message": body.get("message")}}
    rep = r.json()
    sentences = list(rep.pop("sentences"))
    rep.pop("text", None)
    return sentences, rep


async def _validate(settings: Settings, prefix: str) -> tuple[str, list[str]]:
    from trendflow.contracts.validate import validate_run
    from trendflow.storage.factory import open_store

    store = open_store(settings)
    try:
        problems = await validate_run(store, prefix)
    finally:
        await store.close()
    where = (str(settings.store_root / prefix) if settings.storage.backend == "local"
             else f"{store.describe()}/{prefix}")
    return where, problems


def print_summary(res: AnalysisResult, out: Print = print) -> None:
    """The closing summary of ``trendflow analyze``."""
    out("")
    out(f"run {res.run_id}: {res.status} in {res.wall_s:.1f} s")
    if res.error:
        out(f"error: {res.error.get('code')}: {res.error.get('message')}")
    out(f"price {format_credits(res.price)} credits, charged {format_credits(res.charged)}")
    if res.artifacts:
        out(f"artifacts: {res.artifacts}")
    for name, lines in res.findings.items():
        out(f"  {name}: " + ("; ".join(lines) if lines else "(no scalar findings)"))
    if res.forecast:
        fc = res.forecast
        out(f"forecast ({fc['model']}): {fc['display']['views']}")
        out(f"          {fc['display']['likes']}")
        for w in fc["whatifs"][:TOP_WHATIFS]:
            out(f"  what if: {whatif_text(w)}")
    _print_report(res, out)
    if res.problems is None:
        if res.status == "ok":
            out("validation: not run (the result store is not reachable from this machine)")
    elif res.problems:
        out(f"validation: FAILED, {len(res.problems)} problem(s):")
        for p in res.problems:
            out(f"  - {p}")
    else:
        out("validation: passed (manifest and every NPZ match their schemas)")
    if res.studio_url:
        out(f"Studio: {res.studio_url}")


def _print_report(res: AnalysisResult, out: Print) -> None:
    info = res.report_info
    if "error" in info:
        out(f"report: not written: {info['error']['code']}: {info['error']['message']}")
        return
    if not res.report:
        return
    if info.get("engine") != "llm":
        out(f"report (template, {len(res.report)} sentences):")
        for sentence in res.report:
            out(f"  {sentence}")
        return
    cached = ", from the cache" if info.get("cached") else ""
    out(f"report ({info['llm_model']}, prompt {info['prompt_version']}, {info['locale']}, "
        f"{len(res.report)} sentences, {len(info.get('recommendations') or [])} "
        f"recommendations{cached}):")
    for section in info.get("sections") or []:
        out(f"  {section['title']}")
        for sentence in section["sentences"]:
            out(f"    {sentence}")


def demo_clip(path: Path, *, duration_s: float = 8.0, fps: float = 24.0,
              size: tuple[int, int] = (192, 108), bpm: float = 120.0) -> Path:
    """A test sample: scenes that pan and cut every 2 s over a click track at ``bpm``.

    Each scene is a differently tinted random texture sliding left at its own speed (motion), a
    hard cut starts the next (shots), and 10 ms 1 kHz clicks sound on every beat (tempo, loudness).
    """
    from trendflow.media.synth import write_video

    n = int(round(duration_s * fps))
    return write_video(path, _panning_scenes(n, fps, size), fps=fps,
                       audio=_clicks(duration_s, bpm))


def _panning_scenes(n: int, fps: float, size: tuple[int, int],
                    scene_s: float = 2.0) -> Iterator[np.ndarray]:
    width, height = size
    rng = np.random.default_rng(7)
    speeds = (1, 3, 2, 4)
    tints = np.array([(220, 60, 40), (40, 180, 70), (50, 80, 220), (230, 210, 60)], np.float32)
    block = 8
    strips = [
        (0.8 * tint + 0.2 * rng.integers(0, 256, (height // block + 1,
                                                 (width + 4 * n) // block + 1, 3))
         ).astype(np.uint8).repeat(block, 0).repeat(block, 1)[:height]
        for tint in tints
    ]
    for i in range(n):
        k = int(i / fps // scene_s) % len(speeds)
        x = (i * speeds[k]) % (strips[k].shape[1] - width)
        yield np.ascontiguousarray(strips[k][:, x:x + width])


def _clicks(duration_s: float, bpm: float, peak: float = 0.8) -> np.ndarray:
    from trendflow.media.synth import AUDIO_RATE

    samples = np.zeros(int(round(duration_s * AUDIO_RATE)), np.float32)
    click_n = int(0.010 * AUDIO_RATE)
    t = np.arange(click_n) / AUDIO_RATE
    click = (peak * np.sin(2 * np.pi * 1000.0 * t) * np.hanning(click_n)).astype(np.float32)
    for beat in np.arange(0.0, duration_s - 0.02, 60.0 / bpm):
        start = int(round(beat * AUDIO_RATE))
        samples[start:start + click_n] += click
    return samples


DEMO_NARRATION = ("Привет! Сегодня я покажу, как снять короткое видео за один вечер. "
                  "Сначала выберите тему и напишите план. Потом снимайте короткими планами.")


def demo_sample(path: Path, *, duration_s: float = 30.0, fps: float = 24.0,
                size: tuple[int, int] = (384, 216)) -> Path:
    """The sample of ``trendflow demo``: something for every component of the ``full`` and
    ``prediction`` profiles to find. A title card with on-screen text (0–3 s), panning scenes
    cut every 2.5 s, a real face (the astronaut of ``skimage.data``, 15–21 s), a Russian
    narration by espeak-ng from 3 s, and clicks at 120 BPM under everything."""
    import cv2
    from skimage import data

    from trendflow.media.synth import AUDIO_RATE, spoken, write_video

    width, height = size
    n = int(round(duration_s * fps))
    face = cv2.resize(data.astronaut(), (height, height), interpolation=cv2.INTER_AREA)
    scenes = _panning_scenes(n, fps, size, scene_s=2.5)

    def frames() -> Iterator[np.ndarray]:
        for i, frame in enumerate(scenes):
            t = i / fps
            if t < 3.0:
                frame = frame.copy()
                cv2.rectangle(frame, (0, height // 3), (width, 2 * height // 3), (255, 255, 255),
                              -1)
                cv2.putText(frame, "TRENDFLOW DEMO", (width // 12, height // 2 + 12),
                            cv2.FONT_HERSHEY_SIMPLEX, 1.1, (0, 0, 0), 3, cv2.LINE_AA)
            elif 15.0 <= t < 21.0:
                frame = frame.copy()
                x = (width - height) // 2 + int(10 * np.sin(t))  # a slow sway: some motion
                frame[:, x:x + height] = face
            yield frame

    audio = _clicks(duration_s, 120.0, peak=0.25)
    voice = spoken(DEMO_NARRATION, voice="ru")
    start = int(3.0 * AUDIO_RATE)
    voice = voice[:len(audio) - start]
    audio[start:start + len(voice)] += 0.8 * voice
    return write_video(path, frames(), fps=fps, audio=np.clip(audio, -1.0, 1.0))
