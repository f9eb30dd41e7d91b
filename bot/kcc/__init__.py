"""Escalation to the KCC (klantcontactcentrum): queue, office hours, hub.

Modules: ``models`` (queue table), ``queue`` (KccQueue), ``hours`` (office
hours), ``settings`` (gemeente.yml ``kcc.live_chat`` and environment), ``hub``
(InProcessHub / RedisHub), ``texts`` (flows.yml ``kcc:``), ``transcript``.
The Rasa-side bridge and the console are in ``integrations/kcc``; the dialogue
actions in ``bot/actions/handoff.py``. CLI: ``python -m bot.kcc add-user USERNAME --role kcc``.
Keep this package import light: the action server and the case store import it.
"""
