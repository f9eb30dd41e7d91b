"""Rasa's REST channel, with the request body checked before Rasa reads it.

Configured in ``credentials.yml`` as ``integrations.rest.channel.RestInput``
instead of ``rest:``. The name stays ``rest``, so the URL stays
``/webhooks/rest/webhook`` (and ``GET /webhooks/rest/`` the health check), and
``input_channel`` on the events stays ``rest``.

Rasa's own channel calls ``request.json.get(...)`` without looking: a body that
is a JSON array, string, number, ``null`` or empty ends in HTTP 500, and a
``message`` that is not a string (or a ``metadata`` that is not an object)
fails inside Rasa and is answered with ``200 []``, no answer at all. A body
without ``sender`` lands in the one shared conversation ``default``.

Here a request that does not have this shape gets ``400 {"error": "..."}``
(in English: it is meant for the developer of the client, not the citizen):

    {"sender": "<1-255 characters>", "message": "<text, may be empty>",
     "metadata": {...} (optional), "input_channel": "<text>" (optional)}

The ``input_channel`` a client sends is ignored: events from this channel
always say ``rest``. Otherwise a REST client could claim to be the website
chat, which decides whether a live KCC chat is offered (bot/actions/handoff.py).

Everything else is Rasa's ``RestInput`` unchanged, also ``?stream=true``. An
empty ``message`` still gets the assistant's "U heeft nog niets getypt".
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import speedups

# Rasa loads this module from credentials.yml: install the profiled speed fixes
# in the Rasa server process (also done by the website chat channel).
speedups.apply()

# Rasa's SQL tracker store keeps sender_id in a VARCHAR(255).
MAX_SENDER_CHARS = 255


def body_problem(body: Any) -> Optional[str]:
    """Why ``body`` (parsed JSON) is not a valid message request; None when it is."""
    if not isinstance(body, dict):
        return "the body must be a JSON object with \"sender\" and \"message\""
    sender = body.get("sender")
    if not isinstance(sender, str) or not sender:
        return "\"sender\" must be a non-empty string"
    if len(sender) > MAX_SENDER_CHARS:
        return f"\"sender\" must be at most {MAX_SENDER_CHARS} characters"
    if not isinstance(body.get("message"), str):
        return "\"message\" must be a string"
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        return "\"metadata\" must be a JSON object"
    if body.get("input_channel") is not None and not isinstance(body["input_channel"], str):
        return "\"input_channel\" must be a string"
    return None


def bad_request(error: Text) -> HTTPResponse:
    return response.json({"error": error}, status=400)


class RestInput(RasaRestInput):
    """``rest`` with a checked body; see the module docstring."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = super().blueprint(on_new_message)

        @bp.middleware("request")
        async def check_body(request: Request) -> Optional[HTTPResponse]:
            # The blueprint's only POST route is /webhook; GET / is the health check.
            if request.method != "POST":
                return None
            try:
                body = request.json
            except InvalidUsage:
                return bad_request("the body is not valid JSON")
            problem = body_problem(body)
            return bad_request(problem) if problem else None

        return bp
