"""300 hostile messages through the REST channel of the running assistant.

Every message must get HTTP 200 and a non-empty Dutch reply: no crash, no 5xx,
no empty answer, no markup echoed back. The messages come from scripts/fuzz.py
(the same generator as the 10,000-message run of `make bench`): a curated list
of injections, JSON-breaking strings, control and format characters, lone
surrogates, Rasa's own slash commands and huge inputs, one test per message,
then Hypothesis-generated text, some of it sent inside a running guided flow.

Messages that take the Rasa process a minute (fuzz.PATHOLOGICAL) are left to
the benchmark; see docs/deployment.md.
"""
from __future__ import annotations

import pytest
import requests

from scripts import fuzz
from tests.servers import new_sender

TOTAL = 300
GENERATED = TOTAL - len(fuzz.CURATED)
MAX_REPEAT = 1_500  # keeps `make test` short; the benchmark goes to 4,000


def _id(message: str) -> str:
    text = message[:24].encode("unicode_escape").decode("ascii")
    return f"{len(message)}:{text}"


def post(bot, sender: str, message: str):
    try:
        response = requests.post(f"{bot.rasa_url}/webhooks/rest/webhook",
                                 json={"sender": sender, "message": message}, timeout=120)
    except requests.RequestException as error:
        return None, None, type(error).__name__
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body if isinstance(body, list) else None, ""


@pytest.mark.parametrize("message", fuzz.CURATED, ids=[_id(m) for m in fuzz.CURATED])
def test_curated_hostile_message_gets_a_dutch_reply(bot, message):
    status, replies, error = post(bot, new_sender(), message)
    assert fuzz.problem_with(status, replies, error) is None, (status, replies, error)


def test_generated_hostile_messages_get_dutch_replies(bot):
    messages = fuzz.generated(GENERATED, seed=20260, max_repeat=MAX_REPEAT)
    assert len(messages) == GENERATED
    conversations = fuzz.RestConversations(lambda sender, text: post(bot, sender, text))
    problems = []
    for message in messages:
        status, replies, error = post(bot, conversations.sender(), message)
        problem = fuzz.problem_with(status, replies, error)
        if problem is not None:
            problems.append((problem, message[:60], status, replies))
    assert problems == [], f"{len(problems)} of {len(messages)} bad replies, first: {problems[:5]}"


def test_the_assistant_still_answers_after_the_fuzzing(bot):
    reply = bot.texts(new_sender(), "wat kost een paspoort")
    assert "€" in reply
