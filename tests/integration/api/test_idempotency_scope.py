"""The Idempotency-Key store: keys are the caller's own, and bodies are kept as HMACs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.integration.engine.conftest import engine_client, start, timer, upload, workflow

EXECUTIONS = "/api/v1/workflows/executions"


async def test_the_same_key_from_another_caller_is_another_request(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/flowyard.db"
    flags = {"auth.enabled": False, "server.data_dir": str(tmp_path / "data")}
    async with engine_client(url, **flags) as client:
        await upload(client, workflow([timer("nap", "1h")]))
        execution = await start(client, "wf")

        async def cancel(user: str) -> int:
            response = await client.post(
                f"{EXECUTIONS}/{execution['id']}/cancel",
                headers={"Idempotency-Key": "stop-it", "X-Flowyard-User": user},
            )
            return response.status_code

        alice_first = await cancel("alice")
        alice_again = await cancel("alice")
        bob = await cancel("bob")
    assert (alice_first, alice_again) == (200, 200)  # alice's repeat: her first answer
    assert bob == 409  # bob's own request, not alice's answer: it is cancelled already
    engine = create_engine(f"sqlite:///{tmp_path}/flowyard.db")
    with engine.connect() as connection:
        query = text("SELECT request_hash FROM idempotency_keys")
        stored = [row[0] for row in connection.execute(query)]
    engine.dispose()
    assert len(stored) == 1  # alice's (bob's 409 was raised, not stored)
    assert hashlib.sha256(b"").hexdigest() not in stored  # an HMAC, not a bare digest
