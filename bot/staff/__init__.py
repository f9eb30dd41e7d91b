"""Staff accounts and login, shared by the KCC console and the insights page.

See :mod:`bot.staff.auth` for the API. Accounts and sessions live in the case
store database (``CASES_DB_URL``); the tables are created by the Alembic
migration ``0002_staff_and_kcc``.
"""
