"""The staff command line `python -m bot.cases`, run as a real subprocess."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys

import pytest

from bot.cases import CaseStore
from bot.config import REPO_ROOT


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def cli(*args: str, env_db: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CASES_DB_URL", None)
    if env_db is not None:
        env["CASES_DB_URL"] = env_db
    return subprocess.run(
        [sys.executable, "-m", "bot.cases", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def filled(db_url):
    """Two cases: a melding (embedded) and a grofvuil case whose delivery was parked."""
    store = CaseStore(db_url)
    store.migrate()
    melding = store.file_case(
        "melding_openbare_ruimte", "website",
        {"postcode": "4611 AB", "omschrijving": "Losliggende stoeptegel, Zuivelstraat"},
        {"email": "a.de.vries@example.nl"}, "sender-1:run-1", bsn="111222333",
    )
    store.set_status(melding.zaaknummer, "in_behandeling", "Buitendienst ingepland")
    grofvuil = store.file_case(
        "grofvuil_ophalen", "hulpplein", {"postcode": "4614 BC", "kuub": 2}, {}, "sender-2:run-1",
        backend="zgw",
    )
    (entry,) = store.claim_outbox("worker-1")
    store.park(entry.id, "worker-1", "HTTP 400: zaaktype onbekend bij ZGW")
    store.dispose()
    return db_url, melding, grofvuil


def test_export_json_lists_every_case(filled):
    url, melding, grofvuil = filled
    result = cli("--db", url, "export", "--format", "json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    by_number = {r["zaaknummer"]: r for r in records}
    assert set(by_number) == {melding.zaaknummer, grofvuil.zaaknummer}
    m = by_number[melding.zaaknummer]
    assert (m["zaaktype"], m["status"], m["channel"]) == (
        "melding_openbare_ruimte", "in_behandeling", "website",
    )
    assert m["data"]["omschrijving"] == "Losliggende stoeptegel, Zuivelstraat"
    created = dt.datetime.fromisoformat(m["created_at"])
    assert created.tzinfo is not None and created == melding.created_at
    assert [h["status"] for h in m["status_history"]] == ["ontvangen", "in_behandeling"]
    assert "bsn" not in m and "111222333" not in result.stdout  # no BSN in exports
    assert by_number[grofvuil.zaaknummer]["data"] == {"postcode": "4614 BC", "kuub": 2}


def test_export_csv_and_list(filled):
    url, melding, grofvuil = filled
    result = cli("export", "--format", "csv", "--db", url)  # --db also after the command
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["zaaknummer"] for r in rows} == {melding.zaaknummer, grofvuil.zaaknummer}
    row = next(r for r in rows if r["zaaknummer"] == grofvuil.zaaknummer)
    assert row["channel"] == "hulpplein" and json.loads(row["data"])["kuub"] == 2

    listed = cli("--db", url, "list")
    assert listed.returncode == 0, listed.stderr
    assert melding.zaaknummer in listed.stdout and grofvuil.zaaknummer in listed.stdout
    filtered = cli("--db", url, "list", "--zaaktype", "grofvuil_ophalen")
    assert grofvuil.zaaknummer in filtered.stdout and melding.zaaknummer not in filtered.stdout


def test_show_prints_history_and_outbox_error(filled):
    url, melding, grofvuil = filled
    shown = cli("--db", url, "show", melding.zaaknummer.lower())
    assert shown.returncode == 0, shown.stderr
    assert melding.zaaknummer in shown.stdout
    assert "ontvangen" in shown.stdout and "in_behandeling" in shown.stdout
    assert "Buitendienst ingepland" in shown.stdout
    assert "111222333" not in shown.stdout and "******333" in shown.stdout

    remote = cli("--db", url, "show", grofvuil.zaaknummer)
    assert remote.returncode == 0, remote.stderr
    assert "parked" in remote.stdout
    assert "HTTP 400: zaaktype onbekend bij ZGW" in remote.stdout


def test_show_unknown_zaaknummer_exits_1(filled):
    url, _, _ = filled
    result = cli("--db", url, "show", "BOZ-2026-999999")
    assert result.returncode == 1
    assert "BOZ-2026-999999" in result.stderr and "niet gevonden" in result.stderr
    assert result.stdout == ""


def test_outbox_listing_and_requeue(filled):
    url, _, grofvuil = filled
    parked = cli("--db", url, "outbox", "--state", "parked")
    assert parked.returncode == 0, parked.stderr
    assert grofvuil.zaaknummer in parked.stdout and "HTTP 400" in parked.stdout
    store = CaseStore(url)
    try:
        entry_id = store.outbox_entries(state="parked")[0].id
        assert cli("--db", url, "requeue", str(entry_id)).returncode == 0
        assert "Geen outbox-items" in cli("--db", url, "outbox", "--state", "parked").stdout
        assert [e.state for e in store.outbox_entries()] == ["pending"]
    finally:
        store.dispose()
    assert cli("--db", url, "requeue", "424242").returncode == 1


def test_cli_migrates_a_new_database_and_reads_cases_db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = cli("list", env_db=url)
    assert result.returncode == 0, result.stderr
    assert "Geen zaken" in result.stdout
    exported = cli("export", "--format", "json", env_db=url)
    assert json.loads(exported.stdout) == []
