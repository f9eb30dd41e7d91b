"""CSV export of the insights tables, ready for Dutch Excel.

UTF-8 with a byte order mark, ``;`` between fields (the Dutch list separator)
and CRLF line ends. A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return gets a leading apostrophe, so a masked citizen message can
never run as a spreadsheet formula (CSV injection).
"""
from __future__ import annotations

import csv
import io
from typing import Any

from bot.insights.report import Table

_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.4f}".rstrip("0").rstrip(".").replace(".", ",")
    else:
        text = str(value)
    if text.startswith(_DANGEROUS) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


def to_csv(table: Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([_cell(c) for c in table.columns])
    for row in table.rows:
        writer.writerow([_cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
