"""The handoff hub (bot/kcc/hub.py): in-process and Redis pub/sub behind one
interface. Redis runs on 127.0.0.1:6379 (REDIS_URL)."""
from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from bot.kcc.hub import InProcessHub, RedisHub, make_hub

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def test_in_process_hub_delivers_per_topic_in_order():
    async def scenario():
        hub = InProcessHub()
        citizen = hub.subscribe("citizen")
        console = hub.subscribe("console")
        await hub.publish("citizen", {"n": 1})
        await hub.publish("console", {"n": "c"})
        await hub.publish("citizen", {"n": 2})
        got = [await citizen.get(1), await citizen.get(1), await citizen.get(0.05)]
        assert got == [{"n": 1}, {"n": 2}, None]
        assert await console.get(1) == {"n": "c"}
        console.close()
        await hub.publish("console", {"n": "late"})
        assert await console.get(0.05) is None
        with pytest.raises(TypeError):
            await hub.publish("citizen", ["not", "a", "dict"])

    run(scenario())


def test_a_message_published_on_one_redis_hub_reaches_a_subscriber_on_another():
    prefix = f"test-{uuid.uuid4().hex}:"

    async def scenario():
        sender = RedisHub(REDIS_URL, prefix=prefix)
        receiver = RedisHub(REDIS_URL, prefix=prefix)
        stranger = RedisHub(REDIS_URL, prefix=f"other-{uuid.uuid4().hex}:")
        try:
            async with receiver.subscribe("citizen") as sub, stranger.subscribe("citizen") as other:
                await sender.publish("citizen", {"type": "message", "sender_id": "s1", "payload": {"text": "Hallo"}})
                await sender.publish("console", {"type": "queue"})
                assert await sub.get(5) == {"type": "message", "sender_id": "s1", "payload": {"text": "Hallo"}}
                assert await sub.get(0.3) is None          # other topics are not delivered
                assert await other.get(0.3) is None        # another prefix hears nothing
        finally:
            for hub in (sender, receiver, stranger):
                await hub.close()

    run(scenario())


def test_make_hub_follows_the_environment(monkeypatch):
    async def scenario():
        monkeypatch.setenv("HANDOFF_HUB", "redis")
        hub = make_hub()
        assert isinstance(hub, RedisHub)
        await hub.close()
        monkeypatch.delenv("HANDOFF_HUB")
        assert isinstance(make_hub(), InProcessHub)
        with pytest.raises(ValueError):
            make_hub("carrier-pigeon")

    run(scenario())


def test_redis_settings_come_from_the_production_profile(monkeypatch):
    from bot.kcc.hub import prefix_from_env, redis_url_from_env

    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_USE_SSL",
                 "HANDOFF_HUB_PREFIX", "REDIS_KEY_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    assert redis_url_from_env() == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("REDIS_HOST", "redis.intern")
    monkeypatch.setenv("REDIS_PORT", "6380")
    monkeypatch.setenv("REDIS_PASSWORD", "p@ss")
    monkeypatch.setenv("REDIS_USE_SSL", "true")
    assert redis_url_from_env() == "rediss://:p%40ss@redis.intern:6380/0"
    monkeypatch.setenv("REDIS_URL", "redis://elders:1/2")
    assert redis_url_from_env() == "redis://elders:1/2"
    assert prefix_from_env() == "gemeente-assistent:kcc:"
    monkeypatch.setenv("REDIS_KEY_PREFIX", "bergen")
    assert prefix_from_env() == "bergen:kcc:"
    monkeypatch.setenv("HANDOFF_HUB_PREFIX", "eigen:")
    assert prefix_from_env() == "eigen:"
