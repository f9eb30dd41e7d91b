"""The KCC bridge inside a Rasa process: the employee's side of a live chat.

One :class:`KccBridge` per Sanic app (``KccBridge.of(app)``), started by the
KCC console channel and by the website chat channel after the server starts.
It

* changes conversations on behalf of employees: accept (pause + "a colleague
  chats with you now"), an employee's message (``BotUttered`` with metadata
  ``{"kcc": {"medewerker": username}}``), hand back (``ConversationResumed`` +
  "can I help with anything else?") -- always under the conversation lock of
  the agent's lock store, appended to the agent's tracker store;
* sends what the citizen must see through the hub (topic ``citizen``); every
  Rasa process delivers it to the sockets it holds (``add_citizen_sink``);
* runs a small timer loop: the call-back offer after the wait, and the end of
  queue entries whose citizen closed the window (``gemeente.yml kcc.live_chat``).

Several Rasa processes may run it at once: every queue change is a conditional
update with one winner (``bot.kcc.queue``), so each timer fires once.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional

from bot.kcc import settings, texts
from bot.kcc.hub import Hub, get_hub
from bot.kcc.models import STATE_ACTIVE, STATE_CLOSED, STATE_EXPIRED, STATE_WAITING
from bot.kcc.queue import KccQueue, QueueEntry
from bot.kcc.transcript import KCC_METADATA_KEY

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 2.0
CITIZEN_TOPIC = "citizen"
CONSOLE_TOPIC = "console"
EMPLOYEE_LABEL = "Medewerker"
MAX_EMPLOYEE_TEXT = 2000

Sink = Callable[[str, str, Dict[str, Any]], Awaitable[None]]  # (sender_id, event, payload)


def socket_payloads(text: str, data: Optional[Dict[str, Any]] = None,
                    employee: bool = False) -> List[Dict[str, Any]]:
    """What the website chat receives for one bot message (same form as Rasa's output)."""
    from integrations.webchat.channel import bot_payloads

    payloads = bot_payloads(text, data or {})
    if employee:
        for payload in payloads:
            payload.update({"from": "medewerker", "label": EMPLOYEE_LABEL})
    return payloads


def forget_flow(tracker: Any) -> List[Any]:
    """``SlotSet(None)`` for every filled flow answer and the flow bookkeeping."""
    from rasa.shared.core.events import SlotSet

    from bot.actions import flows as engine

    names = {step.slot for flow in engine.all_flows().values() for step in flow.steps}
    names |= {*engine.VIRTUAL_SLOTS, engine.RUN_SLOT, engine.OUTCOME_SLOT, engine.ERRORS_SLOT,
              engine.DATE_FILTER_SLOT, engine.FLOW_SLOT, engine.RESUME_SLOT}
    values = tracker.current_slot_values()
    return [SlotSet(name, None) for name in sorted(names) if values.get(name) is not None]


class KccBridge:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._queue: Optional[KccQueue] = None
        self.hub: Optional[Hub] = None
        self._sinks: List[Sink] = []
        self._tasks: List[asyncio.Task] = []
        self._started = False

    @classmethod
    def of(cls, app: Any) -> "KccBridge":
        bridge = getattr(app.ctx, "kcc_bridge", None)
        if bridge is None:
            bridge = cls(app)
            app.ctx.kcc_bridge = bridge
        return bridge

    # -- plumbing -------------------------------------------------------------

    @property
    def agent(self) -> Any:
        return getattr(self.app.ctx, "agent", None)

    @property
    def queue(self) -> KccQueue:
        if self._queue is None:
            self._queue = KccQueue()
        return self._queue

    def add_citizen_sink(self, sink: Sink) -> None:
        if sink not in self._sinks:
            self._sinks.append(sink)

    async def start(self) -> None:
        """Idempotent; call from an ``after_server_start`` listener."""
        if self._started:
            return
        self._started = True
        self.hub = get_hub()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._deliver()), loop.create_task(self._sweep())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        self._started = False

    async def publish(self, topic: str, message: Dict[str, Any]) -> None:
        try:
            await (self.hub or get_hub()).publish(topic, message)
        except Exception:  # noqa: BLE001 - a lost notification only delays a screen update
            logger.warning("kcc: publishing on the hub failed", exc_info=True)

    async def _deliver(self) -> None:
        """Hand citizen-bound hub messages to this process's sockets."""
        assert self.hub is not None
        sub = self.hub.subscribe(CITIZEN_TOPIC)
        try:
            while True:
                message = await sub.get()
                if not message or not isinstance(message.get("sender_id"), str):
                    continue
                if message.get("type") == "message":
                    event, payload = "bot_uttered", message.get("payload") or {}
                elif message.get("type") == "state":
                    event, payload = "kcc_state", {"state": message.get("state")}
                else:
                    continue
                for sink in list(self._sinks):
                    try:
                        await sink(message["sender_id"], event, payload)
                    except Exception:  # noqa: BLE001
                        logger.warning("kcc: delivering to a citizen socket failed", exc_info=True)
        finally:
            sub.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - try again next round
                logger.warning("kcc: timer round failed", exc_info=True)

    async def sweep_once(self) -> None:
        config = settings.handoff()
        for entry in self.queue.due_for_expiry(config.left_timeout_seconds, config.max_wait_minutes):
            await self.expire(entry)
        for entry in self.queue.due_for_callback_offer():
            await self.offer_callback(entry)

    async def _change_tracker(self, sender_id: str,
                              build: Callable[[Any], Awaitable[List[Any]]]) -> Optional[List[Any]]:
        """Append the events ``build(tracker)`` returns, under the conversation lock."""
        agent = self.agent
        if agent is None or agent.tracker_store is None:
            return None
        async with agent.lock_store.lock(sender_id):
            tracker = await agent.tracker_store.retrieve(sender_id)
            if tracker is None:
                return None
            events = await build(tracker)
            for event in events:
                tracker.update(event)
            await agent.tracker_store.save(tracker)
            return events

    async def _to_citizen(self, sender_id: str, events: List[Any]) -> None:
        """Send the bot messages among ``events`` to the citizen's sockets."""
        from rasa.shared.core.events import BotUttered

        for event in events:
            if isinstance(event, BotUttered) and event.text:
                employee = bool(((event.metadata or {}).get(KCC_METADATA_KEY) or {}).get("medewerker"))
                for payload in socket_payloads(event.text, event.data, employee):
                    await self.publish(CITIZEN_TOPIC, {"type": "message", "sender_id": sender_id,
                                                       "payload": payload})

    async def _state(self, sender_id: str, state: str) -> None:
        await self.publish(CITIZEN_TOPIC, {"type": "state", "sender_id": sender_id, "state": state})

    async def _consoles(self, sender_id: Optional[str] = None) -> None:
        await self.publish(CONSOLE_TOPIC, {"type": "queue" if sender_id is None else "conversation",
                                           **({"sender_id": sender_id} if sender_id else {})})

    # -- employee actions -----------------------------------------------------

    async def accept(self, entry_id: int, employee: str) -> Optional[QueueEntry]:
        """Take a waiting conversation. None when a colleague was first."""
        from rasa.shared.core.events import BotUttered, ConversationPaused

        entry = self.queue.accept(entry_id, employee)
        if entry is None:
            return None

        async def build(tracker: Any) -> List[Any]:
            events: List[Any] = []
            if not tracker.is_paused():  # after the call-back offer the bot was talking again
                events.append(ConversationPaused())
            if tracker.active_loop_name:  # a flow started meanwhile: the employee takes it over
                from rasa.shared.core.events import ActiveLoop, SlotSet

                events += [ActiveLoop(None), SlotSet("requested_slot", None)]
            events.append(BotUttered(texts.text("medewerker_komt"),
                                     metadata={KCC_METADATA_KEY: {"systeem": "aangenomen"}}))
            return events

        events = await self._change_tracker(entry.sender_id, build) or []
        await self._state(entry.sender_id, STATE_ACTIVE)
        await self._to_citizen(entry.sender_id, events)
        await self._consoles()
        return entry

    async def send(self, entry_id: int, employee: str, text: str) -> str:
        """An employee's message. Returns "ok", "not_yours", "closed" or "empty"/"too_long"."""
        from rasa.shared.core.events import BotUttered

        text = (text or "").strip()
        if not text:
            return "empty"
        if len(text) > MAX_EMPLOYEE_TEXT:
            return "too_long"
        entry = self.queue.get(entry_id)
        if entry is None or entry.state != STATE_ACTIVE:
            return "closed"
        if entry.employee != employee:
            return "not_yours"

        async def build(tracker: Any) -> List[Any]:
            return [BotUttered(text, metadata={KCC_METADATA_KEY: {"medewerker": employee}})]

        events = await self._change_tracker(entry.sender_id, build)
        if events is None:
            return "closed"
        await self._to_citizen(entry.sender_id, events)
        await self._consoles(entry.sender_id)
        return "ok"

    async def _resume(self, tracker: Any, closing_text: Optional[str],
                      anything_else: bool) -> List[Any]:
        from rasa.shared.core.events import (ActionExecuted, BotUttered, ConversationResumed)

        events: List[Any] = []
        if tracker.is_paused():
            events.append(ConversationResumed())
        if closing_text:
            events.append(BotUttered(closing_text, metadata={KCC_METADATA_KEY: {"systeem": "einde"}}))
        if anything_else and self.agent is not None:
            name = "utter_anything_else"
            rendered = await self.agent.nlg.generate(name, tracker, "webchat") or {}
            if rendered.get("text"):
                data = {key: rendered.get(key) for key in ("buttons", "quick_replies", "custom")
                        if rendered.get(key)}
                events += [ActionExecuted(name), BotUttered(rendered["text"], data=data,
                                                            metadata={"utter_action": name})]
        events.append(ActionExecuted("action_listen"))
        return events

    async def hand_back(self, entry_id: int, employee: str) -> bool:
        """End the employee's part: the assistant takes over again."""
        entry = self.queue.close(entry_id, STATE_CLOSED, "teruggegeven", employee=employee)
        if entry is None:
            return False

        async def build(tracker: Any) -> List[Any]:
            # The employee handled the question: forget the answers of an interrupted
            # flow (as a finished flow does), so nothing resumes it later by surprise.
            return forget_flow(tracker) + await self._resume(tracker, texts.text("einde"),
                                                              anything_else=True)

        events = await self._change_tracker(entry.sender_id, build) or []
        await self._state(entry.sender_id, "bot")
        await self._to_citizen(entry.sender_id, events)
        await self._consoles()
        return True

    # -- timers ---------------------------------------------------------------

    async def expire(self, entry: QueueEntry) -> bool:
        """The citizen left: drop the entry and let the bot answer again on return."""
        closed = self.queue.close(entry.id, STATE_EXPIRED, "inwoner_weg")
        if closed is None:
            return False

        async def build(tracker: Any) -> List[Any]:
            return await self._resume(tracker, None, anything_else=False) if tracker.is_paused() else []

        await self._change_tracker(entry.sender_id, build)
        await self._state(entry.sender_id, "bot")
        await self._consoles()
        return True

    async def offer_callback(self, entry: QueueEntry) -> bool:
        """Nobody accepted in time: the bot talks again and offers a call-back;
        the citizen keeps their place ("Ik wacht nog even")."""
        from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationResumed

        if entry.citizen_left_at is not None or self.queue.mark_callback_offered(entry.id) is None:
            return False

        async def build(tracker: Any) -> List[Any]:
            events: List[Any] = [ConversationResumed()] if tracker.is_paused() else []
            events += [BotUttered(texts.text("niemand_vrij"),
                                  data={"buttons": texts.buttons("bel_mij_terug", "wachten")},
                                  metadata={KCC_METADATA_KEY: {"systeem": "terugbellen_aanbod"}}),
                       ActionExecuted("action_listen")]
            return events

        events = await self._change_tracker(entry.sender_id, build) or []
        await self._state(entry.sender_id, "bot")
        await self._to_citizen(entry.sender_id, events)
        await self._consoles()
        return True

    # -- the citizen's side (called by the website chat channel) --------------

    async def citizen_connected(self, sender_id: str) -> Optional[str]:
        """A socket (re)joined the conversation. Returns the KCC state to show, if any."""
        try:
            entry = self.queue.open_entry(sender_id)
            if entry is None:
                return None
            if entry.citizen_left_at is not None:
                self.queue.citizen_back(sender_id)
                await self._consoles(sender_id)
            return entry.state
        except Exception:  # noqa: BLE001 - never break the chat
            logger.warning("kcc: citizen_connected failed", exc_info=True)
            return None

    async def citizen_disconnected(self, sender_id: str) -> None:
        try:
            if self.queue.citizen_left(sender_id):
                await self._consoles(sender_id)
        except Exception:  # noqa: BLE001
            logger.warning("kcc: citizen_disconnected failed", exc_info=True)

    async def citizen_closed(self, sender_id: str) -> None:
        """The citizen ended the conversation ("gesprek afsluiten"): leave the queue now."""
        from bot.kcc.models import STATE_CANCELLED

        try:
            if self.queue.close_open(sender_id, STATE_CANCELLED, "inwoner_sloot_chat"):
                await self._consoles()
        except Exception:  # noqa: BLE001
            logger.warning("kcc: citizen_closed failed", exc_info=True)

    async def citizen_message(self, sender_id: str) -> Optional[str]:
        """A citizen message was handled: wake the consoles if an employee may be
        reading. Returns the KCC state to show the citizen ("waiting"/"active"), if any."""
        try:
            entry = self.queue.open_entry(sender_id)
            if entry is None:
                return None
            await self._consoles(sender_id)
            return entry.state
        except Exception:  # noqa: BLE001
            logger.warning("kcc: citizen_message failed", exc_info=True)
            return None


__all__ = ["KccBridge", "STATE_WAITING", "socket_payloads"]
