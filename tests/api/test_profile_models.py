"""A user's own profile with model-backed components pins this deployment's default models when
it is saved, so its runs pin exactly those; a stored profile that pins none (saved before this
rule) is refused when priced, naming the components, with nothing reserved."""

from __future__ import annotations

from tests.api.test_routes import balance, count_runs, upload
from tests.fixtures.api import ApiHarness
from tests.fixtures.media import MediaLibrary
from trendflow.db.repositories import profiles as profiles_repo

BODY = {"profile_id": "alice-faces", "name": "faces and cuts",
        "components": [{"name": "shot_detection"}, {"name": "faces"}]}


async def test_a_saved_profile_pins_the_default_models(api: ApiHarness) -> None:
    alice = api["alice"]
    r = await api.client.put("/api/profiles/alice-faces", json=BODY, headers=alice.headers)
    assert r.status_code == 200, r.text
    async with api.ctx.db.acquire() as conn:
        saved = await profiles_repo.get_profile(conn, profile_id="alice-faces",
                                                user_id=alice.user.user_id)
    pinned = {name: ref.ref for name, ref in saved.pinned_models().items()}
    assert pinned == {"faces": api.ctx.settings.triton.models["faces"]}
    # The API shows the pin, so a copy of the profile (GET → PUT) keeps it.
    shown = (await api.client.get("/api/profiles/alice-faces", headers=alice.headers)).json()
    assert {c["name"]: c["model"] for c in shown["components"]} == {
        "shot_detection": None, "faces": pinned["faces"]}
    explicit = {**BODY, "components": [{"name": "faces", "model": "face_detector:1"}]}
    r = await api.client.put("/api/profiles/alice-faces", json=explicit, headers=alice.headers)
    assert r.json()["components"][0]["model"] == "face_detector:1", r.text


async def test_an_inline_profile_pins_the_default_models(api: ApiHarness) -> None:
    from trendflow.api.runs import _inline_profile
    from trendflow.api.schemas import InlineProfileIn

    inline = InlineProfileIn.model_validate({"components": [{"name": "transcript"}]})
    profile = _inline_profile(inline, user=api["alice"].user, settings=api.ctx.settings)
    assert {n: r.ref for n, r in profile.pinned_models().items()} == {
        "transcript": api.ctx.settings.triton.models["transcript"]}


async def test_a_stored_profile_without_pins_is_refused_when_priced(
    api: ApiHarness, media: MediaLibrary
) -> None:
    alice = api["alice"]
    async with api.ctx.db.acquire() as conn:
        await profiles_repo.save_profile(conn, profile=profiles_repo.Profile(
            profile_id="alice-old", name="saved unpinned", user_id=alice.user.user_id,
            render={"engine": "template"},
            components=(profiles_repo.ProfileComponent("shot_detection"),
                        profiles_repo.ProfileComponent("faces"))))
    up = await upload(api, "alice", media.path("scene_cuts"))
    before = (await balance(api, "alice"), await count_runs(api))
    for path in ("/api/estimate", "/api/runs"):
        r = await api.client.post(path, headers=alice.headers, json={
            "upload_id": up.json()["upload_id"], "profile_id": "alice-old"})
        assert (r.status_code, r.json()["code"]) == (404, "model_not_found"), (path, r.text)
        assert r.json()["details"]["components"] == ["faces"]
        assert "pin no model" in r.json()["message"]
    assert (await balance(api, "alice"), await count_runs(api)) == before
