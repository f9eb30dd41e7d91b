"""The handoff hub: small publish/subscribe between the parts of the assistant.

It carries *notifications*, never the only copy of anything: the tracker store
and the queue table stay the source of truth, so a lost notification only
delays a screen update (the console re-reads at least every second).

Topics used:

* ``citizen``: ``{"type": "message"|"state", "sender_id", ...}`` -- deliver to
  the citizen's open sockets (the Rasa process that holds them does it);
* ``console``: ``{"type": "conversation"|"queue", "sender_id"?}`` -- wake up
  the KCC consoles (a citizen wrote, the queue changed).

Implementations:

* :class:`InProcessHub` -- one process (the embedded profile, ``make run``);
* :class:`RedisHub` -- Redis pub/sub, for several Rasa instances. Channel
  names get a prefix (``HANDOFF_HUB_PREFIX``; else ``<REDIS_KEY_PREFIX>:kcc:``;
  else ``gemeente-assistent:kcc:``) so several assistants can share one Redis.

:func:`get_hub` picks one from ``HANDOFF_HUB`` (``inprocess`` default, or
``redis``). Redis: ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), or the
production profile's ``REDIS_HOST``/``REDIS_PORT``/``REDIS_PASSWORD``/``REDIS_USE_SSL``.
"""
from __future__ import annotations

import abc
import asyncio
import json
import logging
import os
from typing import Any, Dict, Iterable, Optional, Set

logger = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "gemeente-assistent:kcc:"
MAX_PENDING = 1000  # per subscription; older notifications are dropped beyond this


class Subscription:
    """Messages of some topics, in order. Use ``await sub.get(timeout)``; close when done."""

    def __init__(self, hub: "Hub", topics: Iterable[str]) -> None:
        self.hub = hub
        self.topics = frozenset(topics)
        self._queue: "asyncio.Queue[Dict[str, Any]]" = asyncio.Queue(maxsize=MAX_PENDING)
        self.closed = False

    def _put(self, message: Dict[str, Any]) -> None:
        if self._queue.full():
            try:
                self._queue.get_nowait()
            except asyncio.QueueEmpty:
                pass
        self._queue.put_nowait(message)

    async def get(self, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """The next message, or None after ``timeout`` seconds."""
        try:
            if timeout is None:
                return await self._queue.get()
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub._unsubscribe(self)

    async def __aenter__(self) -> "Subscription":
        await self.hub.ready()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class Hub(abc.ABC):
    """Publish JSON-able dicts on a topic; every subscription of that topic, in
    every process connected to the same hub, receives them."""

    def __init__(self) -> None:
        self._subscriptions: Set[Subscription] = set()

    @abc.abstractmethod
    async def publish(self, topic: str, message: Dict[str, Any]) -> None:
        ...

    def subscribe(self, *topics: str) -> Subscription:
        sub = Subscription(self, topics)
        self._subscriptions.add(sub)
        self._on_subscribe()
        return sub

    async def ready(self) -> None:
        """Returns when subscriptions made so far receive messages published from now on."""

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            sub.close()

    def _on_subscribe(self) -> None:
        pass

    def _unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    def _dispatch(self, topic: str, message: Dict[str, Any]) -> None:
        for sub in list(self._subscriptions):
            if topic in sub.topics:
                sub._put(message)


def _encode(message: Dict[str, Any]) -> str:
    if not isinstance(message, dict):
        raise TypeError("hub messages are dicts")
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class InProcessHub(Hub):
    """Everything in one process: publish hands the message to local subscriptions."""

    async def publish(self, topic: str, message: Dict[str, Any]) -> None:
        # Same serialisation as Redis, so both behave the same (no shared mutable dicts).
        self._dispatch(topic, json.loads(_encode(message)))


def redis_url_from_env() -> str:
    """``REDIS_URL``; else built from the production profile's ``REDIS_HOST``,
    ``REDIS_PORT``, ``REDIS_PASSWORD``, ``REDIS_USE_SSL`` (pub/sub ignores the DB index)."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    host = os.environ.get("REDIS_HOST")
    if not host:
        return DEFAULT_REDIS_URL
    from urllib.parse import quote

    scheme = "rediss" if os.environ.get("REDIS_USE_SSL", "").lower() in ("1", "true", "yes") else "redis"
    password = os.environ.get("REDIS_PASSWORD") or ""
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"{scheme}://{auth}{host}:{os.environ.get('REDIS_PORT', '6379')}/0"


def prefix_from_env() -> str:
    """``HANDOFF_HUB_PREFIX``; else ``<REDIS_KEY_PREFIX>:kcc:`` when that is set; else the default."""
    if os.environ.get("HANDOFF_HUB_PREFIX"):
        return os.environ["HANDOFF_HUB_PREFIX"]
    if os.environ.get("REDIS_KEY_PREFIX"):
        return f"{os.environ['REDIS_KEY_PREFIX']}:kcc:"
    return DEFAULT_PREFIX


class RedisHub(Hub):
    """Redis pub/sub. One connection per process listens on ``<prefix>*`` and
    hands messages to the local subscriptions; publishing uses the pool."""

    def __init__(self, url: Optional[str] = None, prefix: Optional[str] = None) -> None:
        super().__init__()
        import redis.asyncio as aioredis

        self.url = url or redis_url_from_env()
        self.prefix = prefix if prefix is not None else prefix_from_env()
        self._redis = aioredis.Redis.from_url(self.url)
        self._reader: Optional[asyncio.Task] = None
        self._ready = asyncio.Event()
        self._closing = False

    async def publish(self, topic: str, message: Dict[str, Any]) -> None:
        await self._redis.publish(self.prefix + topic, _encode(message))

    def _on_subscribe(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._listen())

    async def ready(self) -> None:
        self._on_subscribe()
        await self._ready.wait()

    async def _listen(self) -> None:
        backoff = 0.5
        while not self._closing:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(self.prefix + "*")
                self._ready.set()
                backoff = 0.5
                while not self._closing:
                    item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if not item or item.get("type") != "pmessage":
                        continue
                    channel = item["channel"].decode() if isinstance(item["channel"], bytes) else item["channel"]
                    try:
                        message = json.loads(item["data"])
                    except (TypeError, ValueError):
                        logger.warning("hub: ignoring a message that is not JSON")
                        continue
                    if isinstance(message, dict):
                        self._dispatch(channel[len(self.prefix):], message)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - reconnect; the tracker/queue stay the truth
                self._ready.clear()
                logger.warning("hub: Redis connection lost; retrying in %.1f s", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                try:
                    await pubsub.close()
                except Exception:  # noqa: BLE001
                    pass

    async def close(self) -> None:
        await super().close()
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        await self._redis.close()


_hubs: Dict[int, Hub] = {}


def make_hub(kind: Optional[str] = None) -> Hub:
    kind = (kind or os.environ.get("HANDOFF_HUB") or "inprocess").strip().lower()
    if kind == "redis":
        return RedisHub()
    if kind in ("inprocess", "in-process", "memory"):
        return InProcessHub()
    raise ValueError(f"HANDOFF_HUB must be 'inprocess' or 'redis', not {kind!r}")


def get_hub() -> Hub:
    """The hub of this process (one per event loop), chosen by ``HANDOFF_HUB``."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(id(loop))
    if hub is None:
        hub = _hubs[id(loop)] = make_hub()
    return hub
