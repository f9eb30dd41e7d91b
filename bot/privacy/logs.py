"""Mask personal data in every log record of the process.

:func:`install` wraps :meth:`logging.Logger.makeRecord`, so every record of
every logger (Rasa, rasa-sdk, Sanic's access log, SQLAlchemy, our own) is
masked when it is created: the formatted message, the ``extra`` fields (Sanic
puts the request line in ``record.request``) and the traceback. Handlers that
Rasa, Sanic or coloredlogs replace later therefore cannot bypass it.

It is installed explicitly, no ``sitecustomize``:

* ``--logging-config-file deploy/logging.yml`` for ``rasa run`` and the action
  server: that file creates a :class:`MaskingFilter`, and creating one installs
  the hook for the whole process;
* :mod:`bot.privacy.store` installs it when Rasa loads the tracker store;
* :func:`install` can be called by any other entry point.

Names are not recognised by a pattern; keep ``LOG_LEVEL`` at ``INFO`` (Rasa
logs whole messages only at ``DEBUG``). See docs/deployment.md.
"""
from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from typing import Any

from bot.privacy.masking import mask_text

# SQLAlchemy puts statement parameters (answers, e-mail addresses) into its errors.
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\n|$|\s*\(Background)", re.DOTALL)
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "", (), None))) | {"message", "asctime"}
_MARK = "_pii_masked"
_lock = threading.Lock()
_installed = False
_original_make_record = logging.Logger.makeRecord


def mask_log_text(text: str) -> str:
    return mask_text(_SQL_PARAMETERS.sub("[parameters: verborgen]", text))


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask a record in place (once): message, extra fields, traceback and stack."""
    if getattr(record, _MARK, False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string must not break logging
        message = f"{record.msg!r} {record.args!r}"
    record.msg = mask_log_text(message)
    record.args = ()
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_info = None
    if record.exc_text:
        record.exc_text = mask_log_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_log_text(record.stack_info)
    for key, value in list(vars(record).items()):
        if key not in _STANDARD and isinstance(value, str):
            setattr(record, key, mask_log_text(value))
    setattr(record, _MARK, True)
    return record


def _make_record(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
    return mask_record(_original_make_record(self, *args, **kwargs))


def _excepthook(kind, value, tb) -> None:
    logging.getLogger("uncaught").error("Uncaught exception", exc_info=(kind, value, tb))


def install() -> None:
    """Mask every log record of this process from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        logging.Logger.makeRecord = _make_record  # type: ignore[assignment]
        # Warnings and uncaught exceptions go through logging, so they are masked too.
        logging.captureWarnings(True)
        sys.excepthook = _excepthook
        _installed = True


def installed() -> bool:
    return _installed


class MaskingFilter(logging.Filter):
    """Logging filter for dictConfig (``"()": bot.privacy.logs.MaskingFilter``).

    Creating it installs the process-wide hook; as a handler filter it also
    masks records that were created before the hook existed.
    """

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        install()

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True
