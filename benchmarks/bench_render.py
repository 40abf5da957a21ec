"""The written analysis by a local model: speed and how often its text passes the validator.

Generates clips that differ in length, cut pace and sound (``trendflow.media.synth``), analyses
each with the ``fast`` components (the local runner), builds each run's brief in Russian and in
English, starts the real ``llama-server`` (``make llm``) with each asked model, and renders every
brief through the gateway (:func:`trendflow.render.service.render_brief`: the JSON schema, the
validator, one retry with its complaints). Per model it prints:

- tokens/s of the answers (completion tokens ÷ seconds) and seconds to the whole text (median);
- the share of texts that passed the validator on the first try, and after the retry;
- ungrounded numbers (numbers that no fact of the brief holds) in the failed texts;
- gateway overhead: the median time of the same short request through the gateway and sent
  directly with httpx (goal ≤ 1.05×).

    .venv/bin/python benchmarks/bench_render.py [--clips 3] [--sentences 20-24]
        [--models qwen2.5-coder-1.5b-instruct-q4_k_m,qwen2.5-coder-0.5b-instruct-q4_k_m]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from trendflow.contracts.identity import RunIdentity, upload_video_id
from trendflow.contracts.keys import artifact_key
from trendflow.contracts.npz import decode_npz
from trendflow.contracts.profile import ProfileConfig, config_hash
from trendflow.errors import RenderInvalid
from trendflow.media import synth
from trendflow.pipeline.runner import run_local
from trendflow.pipeline.segmenter import UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.render.brief import Brief, build_brief
from trendflow.render.gateway import LlmGateway
from trendflow.render.prompts import load_prompt
from trendflow.render.server import start_server, stop_server
from trendflow.render.service import render_brief
from trendflow.settings import LlmSettings
from trendflow.storage.local import LocalStore

FAST = ("metadata_features", "shot_detection", "color_stats", "motion", "loudness",
        "audio_features")
PROMPT = "rephrase-v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def analyse(n: int, root: Path) -> list[dict[str, dict[str, np.ndarray]]]:
    """The ``fast`` components' arrays of ``n`` different generated clips."""
    profile = ProfileConfig.parse({"components": [{"name": c} for c in FAST],
                                   "render": {"engine": "template"}})
    store = LocalStore(root / "store")
    out = []
    for i in range(n):
        duration = 8.0 + 6.0 * i
        step = 1.5 + i  # cut pace differs per clip
        cuts = tuple(float(c) for c in np.arange(step, duration - 0.5, step))
        clip = synth.scene_cuts(root / f"clip{i}.mp4", cuts_s=cuts, duration_s=duration,
                                fps=24.0, size=(320, 180),
                                audio="tone" if i % 3 != 2 else "silence")
        identity = RunIdentity.create(platform_id="upload", video_id=upload_video_id(clip.path),
                                      config_hash=config_hash(profile))
        meta = VideoMeta(title=f"Clip number {i}", description="a generated clip " * (i + 1),
                         tags=tuple(f"tag{t}" for t in range(i)))
        manifest = await run_local(identity, profile, UploadSource(clip.path, meta), store,
                                   root / f"work{i}")
        if manifest.run.status != "ok":
            raise SystemExit(f"clip {i}: the run ended {manifest.run.status}: "
                             f"{manifest.run.error}")
        arrays = {}
        for name, rec in manifest.components.items():
            if rec.status == "ok" and rec.artifacts:
                key = artifact_key("upload", identity.video_id, identity.run_id, name)
                arrays[name] = decode_npz(await store.get_bytes(key), where=key).arrays
        out.append(arrays)
    return out


def overhead(llm: LlmSettings, base_url: str, repeats: int = 5) -> float:
    """Median seconds through the gateway ÷ median seconds of the same request sent directly."""
    messages = [{"role": "user", "content": "Answer with the JSON {\"ok\": true}."}]
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    body = {"model": llm.model_name, "messages": messages, "max_tokens": 16, "temperature": 0,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "report", "schema": schema}}}
    direct, through = [], []
    with LlmGateway(llm.model_copy(update={"temperature": 0.0}), base_url=base_url) as gw, \
            httpx.Client(timeout=120) as client:
        for _ in range(repeats):
            t = time.perf_counter()
            client.post(base_url + "/chat/completions", json=body).raise_for_status()
            direct.append(time.perf_counter() - t)
            t = time.perf_counter()
            gw.complete_json(messages, schema, max_tokens=16)
            through.append(time.perf_counter() - t)
    return statistics.median(through) / statistics.median(direct)


def bench_model(model: str, briefs: list[Brief], root: Path) -> dict[str, Any]:
    llm = LlmSettings(local_model=model, timeout_s=1800)
    work = root / f"llama-{model}"
    info = start_server(llm, work, port=_free_port())
    prompt = load_prompt(PROMPT)
    rows = []
    try:
        ratio = overhead(llm, info.base_url)
        for i, brief in enumerate(briefs):
            t = time.perf_counter()
            with LlmGateway(llm, base_url=info.base_url) as gw:
                try:
                    done = render_brief(brief, prompt, gw)
                    row = {"ok": True, "first": done.first_try_ok and done.attempts == 1,
                           "tokens": done.completion_tokens, "llm_s": done.seconds,
                           "ungrounded": done.ungrounded}
                except RenderInvalid as exc:
                    row = {"ok": False, "first": False, "tokens": 0, "llm_s": 0.0,
                           "ungrounded": int(exc.details.get("ungrounded", 0))}
            row["wall_s"] = time.perf_counter() - t
            row["locale"], row["statements"] = brief.locale, len(brief.statements)
            rows.append(row)
            print(f"  {model} brief {i} ({brief.locale}, {len(brief.statements)} statements): "
                  f"{'pass' if row['ok'] else 'FAIL'}{' first try' if row['first'] else ''}, "
                  f"{row['wall_s']:.1f} s", flush=True)
    finally:
        stop_server(work)
    passed = [r for r in rows if r["ok"]]
    tokens = sum(r["tokens"] for r in passed)
    llm_s = sum(r["llm_s"] for r in passed)
    return {
        "model": model, "texts": len(rows),
        "tokens_per_s": tokens / llm_s if llm_s else float("nan"),
        "median_text_s": statistics.median(r["wall_s"] for r in rows),
        "first_try": sum(r["first"] for r in rows) / len(rows),
        "after_retry": len(passed) / len(rows),
        "ungrounded": sum(r["ungrounded"] for r in rows),
        "gateway_overhead": ratio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--sentences", default="20-24", help="the asked range, min-max")
    parser.add_argument("--models", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    args = parser.parse_args()
    lo, hi = (int(x) for x in args.sentences.split("-"))
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        root = Path(tmp)
        runs = asyncio.run(analyse(args.clips, root))
        briefs = [build_brief(a, locale=loc, sentences_min=lo, sentences_max=hi)
                  for a in runs for loc in ("ru", "en")]
        briefs = [b for b in briefs if len(b.statements) >= lo]
        print(f"{len(briefs)} briefs of {len(runs)} runs ({lo}-{hi} sentences asked)")
        results = [bench_model(m, briefs, root) for m in args.models.split(",")]
    print("\n| model | texts | tokens/s | s to the whole text (median) | first try | "
          "after retry | ungrounded numbers | gateway ÷ direct |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['texts']} | {r['tokens_per_s']:.1f} | "
              f"{r['median_text_s']:.1f} | {r['first_try']:.0%} | {r['after_retry']:.0%} | "
              f"{r['ungrounded']} | {r['gateway_overhead']:.2f}× |")


if __name__ == "__main__":
    main()
