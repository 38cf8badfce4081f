"""With Veo clips and the local voice step, the clips speak in Veo's own voice and the voice step keeps it: a
`voice_id` would be accepted and never heard, so it gets a 422 instead. With ElevenLabs as the voice step it is an
ElevenLabs voice id, as before.

Only the gateway runs (no workers, as in the distributed mode): the check is the gateway's, and a Veo renderer
would need Vertex AI credentials to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import start_server
from tests.gateway.jobs_client import body, client_for

ELEVENLABS_VOICE = "JBFqnCBsd6RMkjVDRZzb"


@pytest.mark.parametrize("voice_id", ["joe", "nobody", ELEVENLABS_VOICE])
@pytest.mark.parametrize("route", ["/api/ad-agent/create", "/api/ad-agent/create-stream"])
async def test_a_voice_id_with_veo_clips_and_the_local_voice_is_refused(
    tmp_path: Path, avatar_data_uri: str, route: str, voice_id: str
) -> None:
    async for server in start_server(tmp_path / "home", {"workers": ()}, renderer="veo", voice="local"):
        async with client_for(server.url, server.token) as client:
            response = await client.post(route, json=body(avatar_data_uri, voice_id=voice_id))
            assert response.status_code == 422, response.text
            error = response.json()
            assert error["field"] == "voice_id"
            assert "Veo clips speak in Veo's own voice" in error["detail"]
            assert "ADAGENT_VOICE=elevenlabs" in error["detail"]
            assert (await client.get("/api/ad-agent/jobs")).json()["jobs"] == []


async def test_no_voice_id_with_veo_clips_and_the_local_voice_is_accepted(tmp_path: Path, avatar_data_uri: str) -> None:
    async for server in start_server(tmp_path / "home", {"workers": ()}, renderer="veo", voice="local"):
        async with client_for(server.url, server.token) as client:
            for payload in (body(avatar_data_uri), body(avatar_data_uri, voice_id=None)):
                response = await client.post("/api/ad-agent/create", json=payload)
                assert response.status_code == 202, response.text


async def test_with_elevenlabs_a_voice_id_is_an_elevenlabs_one_with_veo_clips_too(
    tmp_path: Path, avatar_data_uri: str
) -> None:
    async for server in start_server(tmp_path / "home", {"workers": ()}, renderer="veo", voice="elevenlabs"):
        async with client_for(server.url, server.token) as client:
            accepted = await client.post("/api/ad-agent/create", json=body(avatar_data_uri, voice_id=ELEVENLABS_VOICE))
            assert accepted.status_code == 202, accepted.text
            local = await client.post("/api/ad-agent/create", json=body(avatar_data_uri, voice_id="joe"))
            assert local.status_code == 422
            assert local.json()["field"] == "voice_id"
            assert "not an ElevenLabs voice id" in local.json()["detail"]
