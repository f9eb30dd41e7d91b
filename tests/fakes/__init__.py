"""Fakes at the network edge for systems that cannot run here (Open Zaak, Signalen).

* ``zgw.FakeZGW``: Zaken API 1.5.1 + Catalogi API 1.3.1; every request and
  response is validated against the official OpenAPI files in ../shared/specs.
* ``signalen.FakeSignalen``: Signalen's public signals endpoint.

Both run as Sanic apps on 127.0.0.1 in a thread (``runner.SanicThread``), keep
their data in memory and can inject faults (HTTP errors, slow answers, down).
"""
