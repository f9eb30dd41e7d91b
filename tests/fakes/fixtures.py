"""pytest fixtures for the fakes; import them into a test module to use them.

``zgw`` is one running FakeZGW per test module (starting it and loading the
OpenAPI files takes a moment); each test gets it reset, and a test fails when
the fake saw a request or gave an answer that violates the specification.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from bot.cases import CaseStore
from tests.fakes.signalen import FakeSignalen
from tests.fakes.zgw import FakeZGW, ZaaktypeURLs


@pytest.fixture(scope="module")
def zgw_server() -> Iterator[FakeZGW]:
    fake = FakeZGW().start()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def zaaktypen(zgw_server: FakeZGW) -> dict:
    """One published zaaktype per zaaktype of gemeente.yml (the catalogus of the fake)."""
    from bot import config

    return {
        key: zgw_server.add_zaaktype(f"ZT-{key.upper()[:30]}", str(value.get("omschrijving") or key))
        for key, value in (config.gemeente().get("zaaktypen") or {}).items()
    }


@pytest.fixture
def zgw(zgw_server: FakeZGW, zaaktypen) -> Iterator[FakeZGW]:
    zgw_server.reset()
    if not zgw_server.server.running:
        zgw_server.start()
    yield zgw_server
    zgw_server.clear_faults()
    if not zgw_server.server.running:
        zgw_server.start()
    violations = list(zgw_server.violations)
    assert not violations, "the fake ZGW saw spec violations:\n" + "\n\n".join(violations)


@pytest.fixture(scope="module")
def signalen_server() -> Iterator[FakeSignalen]:
    fake = FakeSignalen().start()
    yield fake
    fake.close()


@pytest.fixture
def signalen(signalen_server: FakeSignalen) -> Iterator[FakeSignalen]:
    signalen_server.reset()
    if not signalen_server.server.running:
        signalen_server.start()
    yield signalen_server
    signalen_server.clear_faults()
    if not signalen_server.server.running:
        signalen_server.start()
    violations = list(signalen_server.violations)
    assert not violations, "the fake Signalen saw violations:\n" + "\n\n".join(violations)


@pytest.fixture
def store(sqlite_url) -> Iterator[CaseStore]:
    s = CaseStore(sqlite_url)
    s.migrate()
    yield s
    s.dispose()


__all__ = ["zgw_server", "zaaktypen", "zgw", "signalen_server", "signalen", "store", "ZaaktypeURLs"]
