"""The readable conversation for KCC employees and for call-back requests.

Works on serialised tracker events (``event.as_dict()`` in the Rasa process,
``tracker.events`` in the action server): both have the same shape.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Iterable, List, Mapping, Optional

from bot.cases.models import LOCAL_TZ

MAX_ENTRIES = 300
KCC_METADATA_KEY = "kcc"  # BotUttered metadata of messages written by an employee


def _time(timestamp: Any) -> Optional[str]:
    try:
        moment = dt.datetime.fromtimestamp(float(timestamp), tz=dt.timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None
    return moment.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


def current_session(events: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """The events since the newest ``session_started`` (all events when there is none)."""
    events = list(events)
    for index in range(len(events) - 1, -1, -1):
        if events[index].get("event") == "session_started":
            return events[index + 1:]
    return events


def shown_user_text(event: Mapping[str, Any]) -> Optional[str]:
    """What the citizen sees of their own message: the clicked button's title or
    the typed text; None for a bare ``/intent`` payload without a title (the
    widget's hidden greeting). Used by this transcript and the chat history."""
    text = event.get("text") or ""
    title = (event.get("metadata") or {}).get("button_title")
    if text.startswith("/") and not title:
        return None
    return title or text


def transcript(events: Iterable[Mapping[str, Any]], *, whole: bool = False) -> List[Dict[str, Any]]:
    """``[{"van": "inwoner"|"assistent"|"medewerker", "tekst", "tijd", "knoppen"?}]``.

    Clicked buttons show their title; the widget's hidden greeting payload is
    left out. Metadata (identity tokens, page URLs) never appears here.
    """
    chosen = list(events) if whole else current_session(events)
    lines: List[Dict[str, Any]] = []
    for event in chosen:
        kind = event.get("event")
        if kind == "user":
            shown = shown_user_text(event)
            if shown is not None:
                lines.append({"van": "inwoner", "tekst": shown, "tijd": _time(event.get("timestamp"))})
        elif kind == "bot":
            text = event.get("text") or ""
            if not text:
                continue
            kcc = (event.get("metadata") or {}).get(KCC_METADATA_KEY) or {}
            line: Dict[str, Any] = {
                "van": "medewerker" if kcc.get("medewerker") else "assistent",
                "tekst": text, "tijd": _time(event.get("timestamp")),
            }
            if kcc.get("medewerker"):
                line["medewerker"] = str(kcc["medewerker"])
            titles = [b.get("title") for b in ((event.get("data") or {}).get("buttons") or [])
                      if isinstance(b, Mapping) and b.get("title")]
            if titles:
                line["knoppen"] = titles
            lines.append(line)
    return lines[-MAX_ENTRIES:]


def flow_answers(slots: Mapping[str, Any], *, exclude_flows: Iterable[str] = ()) -> List[Dict[str, str]]:
    """The answers given so far in any guided flow: ``[{"flow", "vraag", "antwoord"}]``."""
    from bot.actions import flows as engine  # rasa_sdk only; importable in both processes

    skip = set(exclude_flows)
    answers: List[Dict[str, str]] = []
    for name, flow in engine.all_flows().items():
        if name in skip:
            continue
        for step in flow.steps:
            value = slots.get(step.slot)
            if value in (None, ""):
                continue
            try:
                shown = engine.display(step, value)
            except Exception:  # noqa: BLE001 - an odd stored value is shown as it is
                shown = str(value)
            answers.append({"flow": name.replace("_", " "), "vraag": step.label, "antwoord": shown})
    return answers


def as_text(lines: List[Dict[str, Any]]) -> str:
    """Plain-text rendering (for the case data and exports)."""
    names = {"inwoner": "Inwoner", "assistent": "Assistent", "medewerker": "Medewerker"}
    out = []
    for line in lines:
        when = (line.get("tijd") or "")[11:16]
        out.append(f"[{when}] {names.get(line['van'], line['van'])}: {line['tekst']}")
    return "\n".join(out)
