"""``GET/PATCH /api/me/settings``: each user's own settings, partial changes, refusals in words."""

from __future__ import annotations

from tests.fixtures.api import ApiHarness


async def test_settings_are_read_changed_and_kept_per_user(api: ApiHarness) -> None:
    alice, bob = api["alice"].headers, api["bob"].headers
    first = await api.client.get("/api/me/settings", headers=alice)
    assert first.json() == {"cache_ttl_days": 3, "report_sentences_min": 50,
                            "report_sentences_max": 60, "report_locale": "ru"}
    changed = await api.client.patch("/api/me/settings", headers=alice,
                                     json={"report_sentences_max": 80, "report_locale": "en"})
    assert changed.status_code == 200
    assert changed.json()["report_sentences_max"] == 80 and changed.json()["cache_ttl_days"] == 3
    assert (await api.client.get("/api/me/settings", headers=alice)).json() == changed.json()
    assert (await api.client.get("/api/me/settings", headers=bob)).json()["report_locale"] == "ru"


async def test_bad_settings_are_refused_with_their_field(api: ApiHarness) -> None:
    alice = api["alice"].headers
    for body in ({"report_sentences_min": 10}, {"report_locale": "de"},
                 {"report_sentences_min": 90, "report_sentences_max": 30},
                 {"report_sentences_min": 70}):  # above the stored maximum (60)
        refused = await api.client.patch("/api/me/settings", headers=alice, json=body)
        assert refused.status_code == 400, body
        assert refused.json()["code"] == "invalid_input", refused.json()
    assert (await api.client.get("/api/me/settings", headers=alice)).json()[
        "report_sentences_min"] == 50
