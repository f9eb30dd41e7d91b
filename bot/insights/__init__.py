"""Insights for the municipality: how much is handled digitally, and what to improve.

Figures come from the tracker store (Rasa's ``events`` table) and the case
store; nothing is logged twice. The definitions of every figure are in
:mod:`bot.insights.definitions`.

Modules:

* ``extract``   — folds new tracker events into the insights cache (incremental);
* ``cache``     — the cache tables (derived, disposable; ``INSIGHTS_DB_URL``);
* ``report``    — the figures and tables for a period (``build_report``);
* ``grouping``  — unrecognised questions grouped by similarity;
* ``charts``    — server-side charts (matplotlib, Agg, PNG);
* ``export``    — CSV for Dutch spreadsheets;
* ``review``    — assign a question to an intent: ``data/nlu/review.yml``;
* ``synthetic`` — conversations as Rasa stores them, for tests and the benchmark.

The page itself is ``integrations/insights`` (``/inzichten``). CLI:
``python -m bot.insights refresh`` and ``python -m bot.insights report``.
"""
