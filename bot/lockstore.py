"""A Redis lock store that is safe with several Rasa instances.

Rasa serialises the messages of one conversation with a ticket lock. Rasa OSS
3.6's ``RedisLockStore`` keeps that lock as one JSON value and changes it with
a separate GET and SET (issue a ticket, remove a served or expired ticket).
Two instances that receive a message for the same conversation at the same
moment can both read the same lock, both write it back, and so both hold
"ticket 0" or lose each other's ticket (RasaHQ/rasa#9213). The fix Rasa wrote
(``ConcurrentRedisLockStore``, PR #11256) was reverted in OSS and only ships
in Rasa Pro.

:class:`AtomicRedisLockStore` keeps Rasa's data format and algorithm but runs
every read-modify-write in a Redis transaction (WATCH/MULTI/EXEC, retried on
conflict), and gives the key a time to live so a lock of a killed instance
disappears. Load it from endpoints.yml::

    lock_store:
      type: bot.lockstore.AtomicRedisLockStore
      url: ${REDIS_HOST}
      port: ${REDIS_PORT}
      db: ${REDIS_LOCK_DB}
      key_prefix: ${REDIS_KEY_PREFIX}
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, Optional, Text, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, DEFAULT_SOCKET_TIMEOUT_IN_SECONDS, LockError, RedisLockStore

logger = logging.getLogger(__name__)

# Seconds a lock key lives after its last change, on top of the ticket lifetime.
KEY_TTL_MARGIN = 30


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class AtomicRedisLockStore(RedisLockStore):
    """``RedisLockStore`` whose lock changes are atomic across processes."""

    def __init__(self, endpoint_config: Any = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # how Rasa creates a custom lock store
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs}
            kwargs.pop("type", None)
        # Values from ${ENV} in endpoints.yml arrive as strings.
        settings = {
            "host": kwargs.get("host") or "localhost",
            "port": int(kwargs.get("port") or 6379),
            "db": int(kwargs.get("db") or 1),
            "username": kwargs.get("username") or None,
            "password": kwargs.get("password") or None,
            "use_ssl": _as_bool(kwargs.get("use_ssl", False)),
            "ssl_certfile": kwargs.get("ssl_certfile") or None,
            "ssl_keyfile": kwargs.get("ssl_keyfile") or None,
            "ssl_ca_certs": kwargs.get("ssl_ca_certs") or None,
            "key_prefix": kwargs.get("key_prefix") or None,
            "socket_timeout": float(kwargs.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT_IN_SECONDS),
        }
        super().__init__(**settings)
        self.red.ping()  # fail at start-up, not on the first message

    def _key(self, conversation_id: Text) -> Text:
        return self.key_prefix + conversation_id

    def _change(self, conversation_id: Text,
                change: Callable[[Optional[TicketLock]], Tuple[Any, Optional[TicketLock]]],
                ttl: float = LOCK_LIFETIME) -> Any:
        """Read the lock, apply ``change``, write the result; atomically.

        ``change`` returns ``(result, lock)``; a lock without tickets is deleted.
        """
        key = self._key(conversation_id)

        def transaction(pipe: Any) -> Any:
            raw = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(raw)) if raw else None
            result, new_lock = change(lock)
            pipe.multi()
            if new_lock is None or not new_lock.tickets:
                pipe.delete(key)
            else:
                pipe.set(key, new_lock.dumps(), ex=int(ttl) + KEY_TTL_MARGIN)
            return result

        return self.red.transaction(transaction, key, value_from_callable=True)

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(lock: Optional[TicketLock]) -> Tuple[int, TicketLock]:
            lock = lock or self.create_lock(conversation_id)
            return lock.issue_ticket(lock_lifetime), lock

        try:
            return self._change(conversation_id, change, ttl=lock_lifetime)
        except Exception as error:  # noqa: BLE001 - same contract as Rasa's LockStore
            raise LockError(f"Error while acquiring lock. Error:\n{error}")

    def update_lock(self, conversation_id: Text) -> None:
        def change(lock: Optional[TicketLock]) -> Tuple[None, Optional[TicketLock]]:
            if lock is not None:
                lock.remove_expired_tickets()
            return None, lock

        self._change(conversation_id, change)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock]) -> Tuple[None, Optional[TicketLock]]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return None, lock

        self._change(conversation_id, change)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        # finish_serving deletes the key when nobody else waits, in one transaction.
        self.finish_serving(conversation_id, ticket_number)
