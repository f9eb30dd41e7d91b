"""Realistic case payloads per zaaktype, shaped like ``bot.actions.filing.case_payload`` output."""
from __future__ import annotations

import itertools
from typing import Any, Dict, Optional

from bot.cases import Case, CaseStore

_keys = itertools.count(1)

# A BSN that passes the elfproef (test value).
TEST_BSN = "111222333"

PAYLOADS: Dict[str, Dict[str, Any]] = {
    "melding_openbare_ruimte": {
        "data": {
            "categorie": "bestrating",
            "locatie": {"postcode": "4611 AB", "huisnummer": "12", "straat": None, "omschrijving": None},
            "omschrijving": "De stoeptegel ligt los en mensen struikelen erover",
            "foto": None,
            "postcode": "4611 AB",
            "huisnummer": "12",
            "samenvatting": "Soort probleem: Stoep of straat\nPlek: 4611 AB 12\n"
                            "Wat er aan de hand is: De stoeptegel ligt los en mensen struikelen erover\n"
                            "Foto: geen\nContact: melder@example.nl",
        },
        "contact": {"email": "melder@example.nl"},
    },
    "grofvuil_ophalen": {
        "data": {
            "spullen": {"bank": 1, "matras": 2},
            "adres": {"postcode": "4612 CD", "huisnummer": "3"},
            "datum": "2026-12-08",
            "postcode": "4612 CD",
            "huisnummer": "3",
            "samenvatting": "Spullen: 1 bank, 2 matrassen\nAdres: 4612 CD 3\nOphaaldag: dinsdag 8 december\n"
                            "Contact: 06 12345678",
        },
        "contact": {"telefoon": "+31612345678"},
    },
    "verhuizing_doorgeven": {
        "data": {
            "datum": "2026-12-15",
            "adres": {"postcode": "4613 EF", "huisnummer": "45"},
            "personen": "Alleen ik",
            "postcode": "4613 EF",
            "huisnummer": "45",
            "samenvatting": "Verhuisdatum: 15 december 2026\nNieuw adres: 4613 EF 45\n"
                            "Wie verhuizen mee: Alleen ik\nContact: bewoner@example.nl",
        },
        "contact": {"email": "bewoner@example.nl"},
        "bsn": TEST_BSN,
    },
    "huwelijk_partnerschap": {
        "data": {
            "soort": "huwelijk",
            "ceremonie": "eenvoudig",
            "moment": {"slot_id": 7, "start": "2027-05-14T10:00:00+02:00"},
            "locatie": "Stadhuis",
            "partners": "Jan de Vries en Fatima el Amrani",
            "getuigen": "Later doorgeven",
            "samenvatting": "Soort: Trouwen\nCeremonie: Eenvoudig\nDatum en tijd: vrijdag 14 mei 2027 10.00 uur\n"
                            "Plek: Stadhuis\nNamen partners: Jan de Vries en Fatima el Amrani\n"
                            "Getuigen: Later doorgeven\nContact: jan@example.nl",
        },
        "contact": {"email": "jan@example.nl", "telefoon": "0612345678"},
    },
    "afspraak_maken": {
        "data": {
            "actie": "nieuw",
            "product": "paspoort_idkaart",
            "moment": {"slot_id": 3, "start": "2026-12-10T09:20:00+01:00"},
            "naam": "Jan de Vries",
            "samenvatting": "Wat u wilt: Nieuwe afspraak\nWaarvoor: Paspoort of ID-kaart\n"
                            "Datum en tijd: donderdag 10 december 9.20 uur\nNaam: Jan de Vries\n"
                            "Contact: jan@example.nl",
        },
        "contact": {"naam": "Jan de Vries", "email": "jan@example.nl"},
    },
    "terugbelverzoek": {
        "data": {"onderwerp": "Vraag over mijn aanslag", "dagdeel": "ochtend",
                 "samenvatting": "Onderwerp: Vraag over mijn aanslag\nDagdeel: ochtend\nTelefoon: 0612345678"},
        "contact": {"naam": "Anna Jansen", "telefoon": "0612345678"},
    },
}


def file(store: CaseStore, zaaktype: str = "melding_openbare_ruimte", backend: Optional[str] = "zgw",
         data: Optional[Dict[str, Any]] = None, contact: Optional[Dict[str, Any]] = None,
         bsn: Optional[str] = "default", channel: str = "website") -> Case:
    """File a case like the chat does (a fresh idempotency key each call)."""
    payload = PAYLOADS[zaaktype]
    return store.file_case(
        zaaktype=zaaktype,
        channel=channel,
        data=dict(payload["data"]) if data is None else data,
        contact=dict(payload["contact"]) if contact is None else contact,
        idempotency_key=f"test-sender:{next(_keys)}",
        bsn=payload.get("bsn") if bsn == "default" else bsn,
        backend=backend,
    )
