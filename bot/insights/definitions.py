"""What each figure on the insights page counts. One place, so the page, the
CSV export, the tests and the README say the same thing.

Conversation ("gesprek")
    One Rasa session (``session_started`` up to the next one) of one sender with
    at least one message of the citizen. Its week, day and period are those of
    the session start (Europe/Amsterdam).

Channel ("kanaal")
    ``channel`` in the metadata of the session start or of the first message
    that carries one, with the same rule as the case store
    (:func:`bot.actions.common.channel_of`): ``website``, ``hulpplein``,
    ``rest`` or ``test``; anything else, or nothing, counts as ``website``.

Answer ("vraag beantwoord")
    The bot gave a product answer (``utter_<product intent>``, see
    :data:`bot.actions.common.PRODUCT_INTENTS`). The answer that only
    introduces a flow which starts in the same turn (melding openbare ruimte,
    afspraak, status) is not an answer by itself: that flow must be completed.

Completed flow ("flow afgerond")
    The citizen confirmed the summary (or answered the last question of a flow
    without summary) and ``action_flow_submit`` finished the flow: the case was
    filed, the booking was changed or the status was shown. The flow engine then
    resets ``flow_run_id``; that reset after outcome ``bevestigd`` is the signal.
    A run whose filing failed stays open and is not completed.

Filed case ("aanvraag ingediend")
    A case in the case store. Cases per zaaktype and channel come from the case
    store itself (``zaak.created_at`` in the period). A flow run and its case are
    linked by the idempotency key ``<sender>:<flow_run_id>``.

Handoff ("overdracht naar het KCC")
    A turn in which the KCC escalation ran: the action ``action_kcc_handoff``
    (``bot/actions/handoff.py``: the queue for live chat, or the call-back offer
    when no live chat is possible), or any action whose name starts with
    ``action_handoff``; or a turn with the intent ``human_handoff`` outside a
    guided flow, or inside a flow when the flow engine treats it as the
    "Medewerker" control (a button payload, or confidence >= 0.8 with at most 8
    words: ``bot.actions.flows._is_control``). The rules run
    ``action_kcc_handoff`` for every such intent, so both signals normally come
    together; one turn counts once. "Ik wacht nog even" (``/human_handoff``
    again while waiting) is a new turn and counts again. Pointing the citizen to
    the phone number (``utter_fallback_kcc`` text, three wrong answers in a flow)
    is not a handoff.

Call-back request ("terugbelverzoek")
    A case of zaaktype ``terugbelverzoek`` in the case store. It belongs to the
    conversation of the sender in its idempotency key (``<sender>:...``) that
    was running when the case was created.

Fully digital ("volledig digitaal afgehandeld", the headline KPI)
    A conversation with at least one answer or one completed flow, and without a
    handoff or a call-back request. Share = fully digital / conversations.

Fallback
    A message of the citizen after which ``action_fallback`` ran (not
    understood, or unusable input). Fallback rate = such messages / all messages
    of citizens (also the answers inside flows, which never hit the fallback).

Unrecognised question ("niet herkende vraag")
    A fallback message whose kind (slot ``fallback_soort``) is ``niet_begrepen``
    or ``opnieuw_niet_begrepen``: the NLU gave ``nlu_fallback`` (confidence below
    the FallbackClassifier threshold, or ambiguous) or an intent that has no
    answer outside a flow. Empty, too long, markup or letter-less messages are
    fallbacks but not questions. Stored and shown only masked.

Funnel ("trechter")
    A flow run starts when the flow engine sets a new ``flow_run_id``. A step is
    reached when ``requested_slot`` is set to it (``flow_bevestiging`` = the
    summary; ``digid`` = the flow waited for a DigiD login). A run ends completed
    (see above), stopped (the citizen chose Stoppen and confirmed) or abandoned
    (the session ended, expired or a new flow started). The drop-out step is the
    last question asked (the stop question and "what do you want to change" do
    not count). A run with recent activity that is not finished is "bezig".
    A run that ended without completing after a handoff in it is also counted
    as "naar medewerker" (the "Medewerker" button ends the form).

Satisfaction ("tevredenheid")
    When ``gemeente.yml`` has ``tevredenheid: {aan: true}``, the bot asks once per
    conversation, when the citizen says goodbye after an answer or a finished
    flow, "Heb ik u goed geholpen?" (slot ``tevredenheid_onderwerp`` = the topic
    of the last answer or flow). The first ``tevreden``/``ontevreden`` intent
    after that question is the rating of that topic.
"""
from __future__ import annotations

HANDOFF_INTENT = "human_handoff"
HANDOFF_ACTIONS = ("action_kcc_handoff",)
HANDOFF_ACTION_PREFIX = "action_handoff"
CALLBACK_ZAAKTYPE = "terugbelverzoek"

FALLBACK_ACTION = "action_fallback"
FALLBACK_SLOT = "fallback_soort"
QUESTION_FALLBACK_KINDS = ("niet_begrepen", "opnieuw_niet_begrepen")

SUBMIT_ACTION = "action_flow_submit"
RUN_SLOT = "flow_run_id"
FLOW_SLOT = "flow_naam"
OUTCOME_SLOT = "flow_uitkomst"
REQUESTED_SLOT = "requested_slot"
STOP_STEP = "flow_stop"
CHANGE_STEP = "flow_wijzigen"
DIGID_STEP = "digid"
SESSION_METADATA_SLOT = "session_started_metadata"

SATISFACTION_SLOT = "tevredenheid_onderwerp"
SATISFIED_INTENT = "tevreden"
UNSATISFIED_INTENT = "ontevreden"

# Slots whose values the figures need; every other slot event is skipped.
TRACKED_SLOTS = (RUN_SLOT, FLOW_SLOT, OUTCOME_SLOT, REQUESTED_SLOT, FALLBACK_SLOT,
                 SESSION_METADATA_SLOT, SATISFACTION_SLOT)

# Run outcomes.
RUN_COMPLETED = "afgerond"
RUN_STOPPED = "gestopt"
RUN_ABANDONED = "afgebroken"
RUN_OPEN = "open"      # stored: not finished yet
RUN_BUSY = "bezig"     # reported: open and active within the session expiry

# Same rule as bot.actions.common.channel_of.
KNOWN_CHANNELS = ("website", "hulpplein", "rest", "test")
DEFAULT_CHANNEL = "website"


def normal_channel(value: object) -> str:
    return value if value in KNOWN_CHANNELS else DEFAULT_CHANNEL  # type: ignore[return-value]


def is_handoff_action(name: str) -> bool:
    return name in HANDOFF_ACTIONS or name.startswith(HANDOFF_ACTION_PREFIX)


def is_flow_control(text: str, confidence: float) -> bool:
    """Does the flow engine treat this ``human_handoff`` message as the
    "Medewerker" control? Mirrors ``bot.actions.flows._is_control`` (not imported:
    that module pulls in Rasa's NLU stack, which the insights CLI and bench do not need)."""
    if text.startswith("/"):
        return True
    return confidence >= 0.8 and len(text.split()) <= 8
