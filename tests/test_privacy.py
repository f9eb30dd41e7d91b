"""Personal data protection: masking, the log hook, the masking tracker store on
PostgreSQL, and the purge/erase command line.

The end-to-end proof (real servers, greps of the database, logs and var/) is in
tests/test_production_profile.py.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.privacy.masking import mask_text, normalise, public_findings
from bot.privacy.protect import ENC_KEY, SCRUBBED, PrivacyConfigError, Protector, load_cipher
from tests.conftest import DEFAULT_TEST_PG_URL

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BSN = "111222333"
EMAIL = "j.de-vries+test@voorbeeld-mail.nl"
PHONE = "06 12345678"
IBAN = "NL91 ABNA 0417 1643 00"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJic24iOiIxMTEyMjIzMzMifQ.c2lnbmF0dXJl"


# --------------------------------------------------------------------------- masking
@pytest.mark.parametrize("typed,secret,mask", [
    (f"mijn bsn is {BSN}", BSN, "[bsn]"),
    ("bsn 1112.22.333", "1112.22.333", "[bsn]"),
    (f"mail {EMAIL} maar", EMAIL, "[e-mailadres]"),
    (f"bel {PHONE}", PHONE, "[telefoonnummer]"),
    ("bel 0612345678.", "0612345678", "[telefoonnummer]"),
    ("+31 6 1234 5678 graag", "+31 6 1234 5678", "[telefoonnummer]"),
    ("(013) 123 45 67", "(013) 123 45 67", "[telefoonnummer]"),
    (f"rekening {IBAN} en", IBAN, "[iban]"),
    ("rekening nl91abna0417164300", "nl91abna0417164300", "[iban]"),
    ("ik woon op 4611 AB 12", "4611 AB 12", "[adres]"),
    ("4611ab12a", "4611ab12a", "[adres]"),
    ("Kerkstraat 12, 4611 AB Bergen op Zoom", "12, 4611 AB", "[adres]"),
    (f"token {TOKEN}", TOKEN, "[token]"),
])
def test_personal_data_is_masked(typed, secret, mask):
    masked = mask_text(typed)
    assert secret not in masked and mask in masked, masked


@pytest.mark.parametrize("harmless", [
    "Uw nummer is BOZ-2026-000123.", "Bel 14 0164, maandag tot en met vrijdag van 8.30 tot 17.00 uur.",
    "Een paspoort kost € 84,45.", "Op 15-03-2026 om 10.00 uur", "2026-11-29T21:38:12.123456+00:00",
    "postcode 4611 AB", "ik wil een bank en twee matrassen", "Uw code is K7M2PQ.", "1700000000.123",
    "Straatverlichting bij de speeltuin", "Wie verhuizen mee? Alleen ik.",
])
def test_ordinary_text_is_left_alone(harmless):
    assert mask_text(harmless) == harmless


def test_public_municipal_data_may_stay_when_kept():
    public = public_findings()
    address = "Jacob Obrechtlaan 1, 4611 AR Bergen op Zoom"
    assert "[adres]" in mask_text(address)
    assert mask_text(address, keep=public) == address
    assert mask_text("Mail info@bergenopzoom.nl", keep=public) == "Mail info@bergenopzoom.nl"
    assert EMAIL not in mask_text(f"Mail {EMAIL}", keep=public)


def test_phone_numbers_compare_in_national_form():
    assert normalise("+31 6 1234 5678") == normalise("06-12345678") == normalise("0031(0)612345678") == "0612345678"


def test_known_names_are_masked_as_whole_words():
    values = {"Fatima el Amrani": "name", "Jo": "name"}
    masked = mask_text("Namen: Jan en FATIMA EL AMRANI. Jo komt ook. Johan niet.", values=values)
    assert masked == "Namen: Jan en [naam]. [naam] komt ook. Johan niet."


PII = st.sampled_from([BSN, EMAIL, PHONE, IBAN, "4611 AB 12", TOKEN, "+31612345678", "0031 6 12345678"])
WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(WORDS, PII, WORDS)
def test_masking_never_lets_the_data_through_and_is_stable(before, secret, after):
    masked = mask_text(f"{before} {secret} {after}")
    assert normalise(secret) not in normalise(masked)
    assert mask_text(masked) == masked


# --------------------------------------------------------------------------- the protector
NAME = "Fatima el Amrani"


@pytest.fixture
def protector():
    cipher = load_cipher(Fernet.generate_key().decode())
    conversation = {"melding_contact", "afspraak_naam", "grofvuil_adres", "requested_slot_never"}
    return Protector(cipher, conversation, {"afspraak_naam"}, {"melding_contact", "grofvuil_adres"},
                     public_findings())


def _user(text_, **metadata):
    return {"event": "user", "text": text_, "timestamp": 1.0, "metadata": metadata,
            "parse_data": {"text": text_, "intent": {"name": "inform", "confidence": 0.9},
                           "entities": [{"entity": "x", "value": text_}]}}


def _slot(name, value):
    return {"event": "slot", "name": name, "value": value, "timestamp": 1.0}


def _bot(text_):
    return {"event": "bot", "text": text_, "timestamp": 1.0, "data": {"buttons": [{"title": text_, "payload": "/x"}]}}


def test_answers_are_encrypted_at_rest_and_decrypted_for_the_next_turn(protector):
    contact = {"email": EMAIL, "telefoon": "+31612345678"}
    events = [_user(f"{EMAIL} {PHONE}"), _slot("melding_contact", contact)]
    stored = protector.protect(events, 0)
    raw = json.dumps(stored)
    assert EMAIL not in raw and "612345678" not in raw
    assert set(stored[1]["value"]) == {ENC_KEY}
    assert protector.reveal(stored[1])["value"] == contact
    assert stored[0]["text"] == "[e-mailadres] [telefoonnummer]"
    assert stored[0]["parse_data"]["intent"]["name"] == "inform"


def test_name_answers_token_and_summary_are_masked(protector):
    events = [
        _slot("requested_slot", "afspraak_naam"),
        _user(NAME, identity_token=TOKEN, page_url=f"https://www.bergenopzoom.nl/?mail={EMAIL}"),
        _slot("afspraak_naam", NAME),
        _slot("requested_slot", "afspraak_contact"),
        _user("/explain"),
        _bot(f"Dit heeft u ingevuld:\n- Naam: {NAME}\nBel 14 0164 of kom naar Jacob Obrechtlaan 1, 4611 AR."),
    ]
    stored = protector.protect(events, 0)
    raw = json.dumps(stored, ensure_ascii=False)
    assert NAME not in raw and TOKEN not in raw and EMAIL not in raw
    assert stored[1]["text"] == "[naam]" and stored[1]["parse_data"]["entities"][0]["value"] == "[naam]"
    assert stored[1]["metadata"]["identity_token"] is None
    assert stored[4]["text"] == "/explain"  # a button payload is not a name
    assert "- Naam: [naam]" in stored[5]["text"]
    assert "14 0164" in stored[5]["text"] and "Jacob Obrechtlaan 1, 4611 AR" in stored[5]["text"]


def test_a_public_example_typed_as_own_address_is_still_masked(protector):
    events = [_user("4611 AB 12"), _slot("grofvuil_adres", {"postcode": "4611 AB", "huisnummer": "12"}),
              _bot("Adres: 4611 AB 12")]
    assert normalise("4611 AB 12") in public_findings()  # the example in flows.yml
    stored = protector.protect(events, 0)
    assert stored[2]["text"] == "Adres: [adres]"


def test_municipal_values_in_other_slots_are_kept(protector):
    events = [_slot("balie_adres", "Jacob Obrechtlaan 1, 4611 AR Bergen op Zoom"),
              _slot("kcc_telefoon", "14 0164"), _slot("status_pogingen", ["2026-11-29T21:38:12+00:00"])]
    assert protector.protect(events, 0) == events


def test_reset_answers_are_wiped(protector):
    events = [_slot("melding_contact", {"email": EMAIL}), _slot("afspraak_naam", NAME),
              _slot("melding_contact", None)]
    assert protector.slots_to_scrub(events, 2) == {"melding_contact"}
    assert protector.slots_to_scrub(events, 1) == {"melding_contact"}
    assert protector.slots_to_scrub(events + [{"event": "restart"}], 3) == protector.conversation_slots


def test_a_wrong_key_reads_as_not_answered(protector):
    stored = protector.protect([_slot("melding_contact", {"email": EMAIL})], 0)[0]
    other = Protector(load_cipher(Fernet.generate_key().decode()), set(), set(), set())
    assert other.reveal(stored)["value"] is None


def test_key_rotation_reads_old_rows():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = Protector(load_cipher(old), {"melding_contact"}, set(), set())
    stored = before.protect([_slot("melding_contact", "x")], 0)[0]
    after = Protector(load_cipher(f"{new},{old}"), {"melding_contact"}, set(), set())
    assert after.reveal(stored)["value"] == "x"


def test_no_key_means_no_start(monkeypatch):
    monkeypatch.delenv("TRACKER_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(PrivacyConfigError, match="genkey"):
        load_cipher()
    with pytest.raises(PrivacyConfigError):
        load_cipher("not-a-key")


# --------------------------------------------------------------------------- logs
LOG_SCRIPT = textwrap.dedent(r'''
    import logging, sys, warnings
    import rasa.utils.common, rasa.utils.io
    # Rasa's own start-up order: our logging file, then coloredlogs replaces the handler.
    rasa.utils.common.configure_logging_and_warnings(logging.INFO, "deploy/logging.yml")
    rasa.utils.io.configure_colored_logging("INFO")
    for handler in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(handler)
    plain = logging.StreamHandler(sys.stdout)  # a handler without any filter
    plain.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logging.getLogger().addHandler(plain)
    access = logging.getLogger("sanic.access")
    access.handlers = [logging.StreamHandler(sys.stdout)]
    access.handlers[0].setFormatter(logging.Formatter("%(request)s %(status)s"))
    access.setLevel(logging.INFO)
    log = logging.getLogger("rasa.core.processor")
    log.info("Received user message %r from %s", "mijn bsn is BSN_", "EMAIL_")
    access.info("", extra={"request": "GET /conversations/EMAIL_/tracker?tel=PHONE_", "status": 404})
    try:
        raise ValueError("rekening IBAN_ hoort bij 4611 AB 12")
    except ValueError:
        log.exception("failed for %s", "PHONE_")
    logging.getLogger("sqlalchemy").error("(psycopg2.Error) boom\n[SQL: INSERT ...]\n[parameters: {'naam': 'Fatima el Amrani'}]\n(Background on this error at: x)")
    warnings.warn("warning about EMAIL_")
    raise RuntimeError("uncaught with BSN_")
''').replace("BSN_", BSN).replace("EMAIL_", EMAIL).replace("PHONE_", PHONE).replace("IBAN_", IBAN)


def test_every_log_line_is_masked_even_after_rasa_replaces_the_handlers():
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([PY, "-c", LOG_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    logged = out.stdout + out.stderr
    assert "Received user message" in logged and "uncaught with" in logged, logged
    assert "GET /conversations/[e-mailadres]/tracker?tel=[telefoonnummer] 404" in logged, logged
    for secret in (BSN, EMAIL, PHONE, IBAN, "4611 AB 12", "Fatima el Amrani"):
        assert secret not in logged, (secret, logged)


# --------------------------------------------------------------------------- the store on PostgreSQL
@pytest.fixture(scope="module")
def domain():
    from rasa.shared.core.domain import Domain

    return Domain.load(str(ROOT / "domain.yml"))


def _store(base, domain, key):
    from bot.privacy.store import MaskingSQLTrackerStore

    return MaskingSQLTrackerStore(domain=domain, dialect="postgresql", host=base.host, port=base.port,
                                  db=base.database, username=base.username, password=base.password or "",
                                  encryption_keys=key)


def _rows(admin, schema):
    with admin.connect() as conn:
        return [r[0] for r in conn.execute(text(f'SELECT data FROM "{schema}".events ORDER BY id'))]


def test_store_on_postgresql_masks_encrypts_and_wipes(pg_schema, domain):
    from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    base, schema, admin = pg_schema
    key = Fernet.generate_key().decode()
    instance_a, instance_b = _store(base, domain, key), _store(base, domain, key)
    sender = f"test-{uuid.uuid4().hex}"
    contact = {"email": EMAIL, "telefoon": "+31612345678"}
    tracker = DialogueStateTracker.from_events(sender, [
        ActionExecuted("action_listen"),
        UserUttered(f"mijn mail is {EMAIL}, bsn {BSN}", {"intent": {"name": "inform", "confidence": 1.0}},
                    metadata={"identity_token": TOKEN}),
        SlotSet("melding_contact", contact), SlotSet("requested_slot", "afspraak_naam"),
        BotUttered(f"Klopt dit? Contact: {EMAIL} en {PHONE}"), ActionExecuted("action_listen"),
        UserUttered(NAME, {"intent": {"name": "inform", "confidence": 1.0}}),
        SlotSet("afspraak_naam", NAME), BotUttered(f"Naam: {NAME}"),
    ], domain.slots)
    asyncio.run(instance_a.save(tracker))
    raw = "\n".join(_rows(admin, schema))
    for secret in (EMAIL, BSN, TOKEN, NAME, "612345678", PHONE):
        assert secret not in raw, secret
    # The other instance reads the same conversation, with the answers it needs.
    loaded = asyncio.run(instance_b.retrieve(sender))
    assert loaded.get_slot("melding_contact") == contact and loaded.get_slot("afspraak_naam") == NAME
    # The flow ends: the answers are reset, and the stored answers are wiped.
    loaded.update(SlotSet("melding_contact", None))
    loaded.update(SlotSet("afspraak_naam", None))
    asyncio.run(instance_b.save(loaded))
    rows = [json.loads(r) for r in _rows(admin, schema)]
    answers = [r["value"] for r in rows if r["event"] == "slot" and r["name"] in ("melding_contact", "afspraak_naam")]
    assert answers == [SCRUBBED, SCRUBBED, None, None]
    assert not any(isinstance(v, dict) and ENC_KEY in v for v in answers)
    again = asyncio.run(instance_a.retrieve(sender))
    assert again.get_slot("melding_contact") is None and len(again.events) == len(loaded.events)


def test_rasa_refuses_to_start_without_a_key_instead_of_falling_back(pg_schema, domain, monkeypatch):
    from rasa.core.tracker_store import TrackerStore
    from rasa.utils.endpoints import EndpointConfig

    base, _, _ = pg_schema
    monkeypatch.delenv("TRACKER_ENCRYPTION_KEYS", raising=False)
    config = EndpointConfig(url=base.host, type="bot.privacy.store.MaskingSQLTrackerStore",
                            dialect="postgresql", port=base.port, db=base.database, username=base.username)
    with pytest.raises(PrivacyConfigError):
        TrackerStore.create(config, domain)


# --------------------------------------------------------------------------- purge and erase
def _insert(admin, schema, sender, timestamp, kind="user", data=None):
    with admin.begin() as conn:
        conn.execute(text(f'INSERT INTO "{schema}".events (sender_id, type_name, timestamp, data) '
                          "VALUES (:s, :t, :ts, :d)"),
                     {"s": sender, "t": kind, "ts": timestamp, "d": json.dumps(data or {"event": kind})})


def _cli(tmp_path, schema, *args, cases_url=None):
    base = make_url(os.environ.get("TEST_PG_URL", DEFAULT_TEST_PG_URL))
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(textwrap.dedent(f"""\
        tracker_store:
          type: bot.privacy.store.MaskingSQLTrackerStore
          dialect: postgresql
          url: {base.host}
          port: {base.port or 5432}
          db: {base.database}
          username: {base.username}
        """))
    env = dict(os.environ, PYTHONPATH=str(ROOT), POSTGRESQL_SCHEMA=schema, TF_CPP_MIN_LOG_LEVEL="3",
               PRIVACY_AUDIT_LOG=str(tmp_path / "audit.log"), BOT_VAR_DIR=str(tmp_path),
               SQLALCHEMY_SILENCE_UBER_WARNING="1")
    if cases_url:
        env["CASES_DB_URL"] = cases_url
    return subprocess.run([PY, "-m", "bot.privacy", "--endpoints", str(endpoints), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _senders(admin, schema):
    with admin.connect() as conn:
        return sorted(r[0] for r in conn.execute(text(f'SELECT DISTINCT sender_id FROM "{schema}".events')))


def _audit(tmp_path):
    return [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]


def test_purge_erase_and_audit_command_line(pg_schema, domain, tmp_path):
    base, schema, admin = pg_schema
    _store(base, domain, Fernet.generate_key().decode())  # creates the events table
    now, old = time.time(), time.time() - 40 * 86400
    _insert(admin, schema, "stale", old, "session_started")
    _insert(admin, schema, "stale", old + 60)
    _insert(admin, schema, "active", old, "session_started")
    _insert(admin, schema, "active", old + 60)
    _insert(admin, schema, "active", now - 60, "session_started")
    _insert(admin, schema, "active", now - 30)
    _insert(admin, schema, "recent", now - 3 * 86400)

    out = _cli(tmp_path, schema, "purge", "--older-than", "30d")
    assert out.returncode == 0, out.stderr
    assert "1 gesprekken" in out.stdout
    assert _senders(admin, schema) == ["active", "recent"]
    with admin.connect() as conn:
        assert conn.execute(text(f"""SELECT count(*) FROM "{schema}".events WHERE sender_id = 'active'""")).scalar() == 2

    # Erase by conversation id, and by the zaaknummer its flow filed.
    from bot.cases.store import CaseStore

    cases_url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    store = CaseStore(cases_url)
    store.migrate()
    case = store.file_case(zaaktype="melding_openbare_ruimte", channel="website", data={"omschrijving": "x"},
                           contact={"email": EMAIL}, idempotency_key="recent:run-1")
    store.dispose()
    out = _cli(tmp_path, schema, "erase", "--sender", "active", "--reference", "AVG-2026-17")
    assert out.returncode == 0 and "Gesprek verwijderd (2 gebeurtenissen)" in out.stdout, out
    out = _cli(tmp_path, schema, "erase", "--zaaknummer", case.zaaknummer, cases_url=cases_url)
    assert out.returncode == 0 and "De zaak zelf is niet verwijderd" in out.stdout, out
    assert _senders(admin, schema) == []
    assert CaseStore(cases_url).get(case.zaaknummer) is not None

    audit = _audit(tmp_path)
    assert [a["action"] for a in audit] == ["purge", "erase", "erase"]
    assert audit[0]["conversations"] == 1 and audit[0]["events_deleted"] == 4
    assert audit[1]["by"] == "sender" and audit[1]["reference"] == "AVG-2026-17" and audit[1]["events_deleted"] == 2
    assert audit[2]["by"] == "zaaknummer" and audit[2]["events_deleted"] == 1
    written = (tmp_path / "audit.log").read_text() + "".join(
        p.read_text() for p in tmp_path.glob("**/*.log"))
    for what in ("active", "recent", case.zaaknummer, EMAIL):
        assert what not in written, what

    # audit: nothing found now; an unmasked row written by someone else is counted, not shown.
    assert _cli(tmp_path, schema, "audit").returncode == 0
    _insert(admin, schema, "legacy", now, data={"event": "user", "text": f"mail {EMAIL}"})
    out = _cli(tmp_path, schema, "audit")
    assert out.returncode == 1 and "email: 1" in out.stdout and EMAIL not in out.stdout + out.stderr
