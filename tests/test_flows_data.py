"""flows.yml and domain.yml must agree, so a municipality that edits a flow
gets a clear failure naming what is missing in the domain."""
from __future__ import annotations

import yaml

from bot import config
from bot.actions import flows
from tests.servers import ROOT

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
RULES = (ROOT / "data" / "stories" / "rules.yml").read_text(encoding="utf-8")
ENGINE_TYPES = {"keuze", "ceremonie", "keuze_uit_lijst", "tekst", "naam", "locatie", "adres", "postcode",
                "contact", "url", "zaaknummer", "boekingscode", "verhuisdatum", "spullen", "ophaaldag",
                "tijdslot", "telefoon"}


def test_every_step_has_its_slot_ask_action_and_form_entry():
    for flow in flows.all_flows().values():
        required = DOMAIN["forms"][flow.form]["required_slots"]
        assert f"validate_{flow.form}" in DOMAIN["actions"], flow.form
        for step in flow.steps:
            assert step.type in ENGINE_TYPES, f"{step.slot}: unknown type {step.type}"
            slot = DOMAIN["slots"].get(step.slot)
            assert slot, f"domain.yml has no slot {step.slot}"
            conditions = slot["mappings"][0]["conditions"]
            assert {"active_loop": flow.form, "requested_slot": step.slot} in conditions, step.slot
            assert f"action_ask_{step.slot}" in DOMAIN["actions"], step.slot
            assert step.slot in required, f"{flow.form} must list {step.slot}"
            assert f"action_ask_{step.slot}" in flows.ACTIONS


def test_every_flow_can_be_started_and_finished_by_the_rules():
    for name, flow in flows.all_flows().items():
        assert f"- intent: {name}" in RULES
        assert f"- action: {flow.form}" in RULES
        assert f"active_loop: {flow.form}" in RULES
        if flow.zaaktype:
            assert flow.zaaktype in config.gemeente()["zaaktypen"], name


def test_choice_synonyms_do_not_point_at_two_choices():
    for flow in flows.all_flows().values():
        for step in flow.steps:
            if step.type != "keuze":
                continue
            seen = {}
            for key, choice in step.raw["keuzes"].items():
                for word in choice.get("synoniemen", []):
                    assert seen.setdefault(word, key) == key, f"{step.slot}: {word!r} in {seen[word]} and {key}"
