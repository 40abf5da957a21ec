"""Seed data: built-in profiles with models, resources and prices; idempotent loading."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from trendflow.db.repositories import catalog, profiles
from trendflow.db.seed.seed import apply_seed, load_seed
from trendflow.forecast.tier0 import TIER0_COMPONENTS

TIER0 = {
    "metadata_features",
    "text_embeddings",
    "shot_detection",
    "color_stats",
    "motion",
    "loudness",
    "audio_features",
    "speech_activity",
    "faces",
}


async def _snapshot(conn: asyncpg.Connection) -> list[list[asyncpg.Record]]:
    tables = (
        "analysis_profiles",
        "profile_components",
        "profile_model_mapping",
        "component_resource_requirements",
        "component_pricing",
    )
    return [
        await conn.fetch(f"SELECT * FROM {t} ORDER BY 1, 2")
        for t in tables  # noqa: S608
    ]


async def test_seed_is_idempotent(conn: asyncpg.Connection) -> None:
    first = await apply_seed(conn)
    assert first.inserted == {"resource_requirements": 13, "pricing": 14, "profiles": 3}
    snap = await _snapshot(conn)
    second = await apply_seed(conn)
    assert second.inserted == {} and second.updated == {}
    assert await _snapshot(conn) == snap


async def test_seed_keeps_operator_edits_unless_updating(conn: asyncpg.Connection) -> None:
    await apply_seed(conn)
    await conn.execute("UPDATE component_pricing SET markup = 0.5 WHERE component_name = 'motion'")
    await apply_seed(conn)
    assert (await catalog.get_pricing(conn, component_names=["motion"]))[
        "motion"
    ].markup == Decimal("0.5")
    report = await apply_seed(conn, update=True)
    assert report.updated["pricing"] == 14  # the 13 components and the render stage
    seeded = next(p for p in load_seed().prices if p.component_name == "motion")
    assert (await catalog.get_pricing(conn, component_names=["motion"]))["motion"].markup == (
        seeded.markup
    )


async def test_builtin_profiles(conn: asyncpg.Connection) -> None:
    await apply_seed(conn)
    requirements = await catalog.get_resource_requirements(conn)
    fast = await profiles.get_profile(conn, profile_id="fast")
    full = await profiles.get_profile(conn, profile_id="full")
    prediction = await profiles.get_profile(conn, profile_id="prediction")

    fast_names = {c.component_name for c in fast.components}
    assert fast_names and all(requirements[n].engine == "cpu" for n in fast_names)
    # `full`: every feature component (the forecast is its own profile, `prediction`).
    assert {c.component_name for c in full.components} == set(requirements) - {
        "popularity_prediction"
    }
    # `prediction`: exactly the declared Tier-0 list the predictor is trained on, plus it.
    assert set(TIER0_COMPONENTS) == TIER0
    assert {c.component_name for c in prediction.components} == TIER0 | {"popularity_prediction"}

    models = {c.component_name: {m.ref for m in c.models} for c in full.components}
    assert models["ocr_text"] == {"ocr:1"}
    assert models["text_embeddings"] == {"text_embedder:1"}
    assert models["motion"] == set()
    assert {m.ref for c in prediction.components for m in c.models
            if c.component_name == "popularity_prediction"} == {"popularity_predictor:1"}
    pricing = await catalog.get_pricing(conn, component_names=fast_names)
    assert all(p.base_cost >= 0 and p.source for p in pricing.values())
