"""An import file (CSV or XLSX) read into rows for service.import_members: the reader, bounded
(rows and bytes), with the columns' values cleaned the way spreadsheets mangle them."""
from __future__ import annotations

import csv
import io
import re
from typing import Any

from platformkit.errors import InvalidInput, TooLarge

# An import is answered synchronously, one admission per row: bounded so that a request ends in
# well under a minute (larger files: split them; a background import job is not built yet).
IMPORT_MAX_ROWS = 1000
IMPORT_MAX_BYTES = 2 * 1024 * 1024
IMPORT_COLUMNS = ("full_name", "citizen_id", "date_of_birth", "gender", "phone", "employer",
                  "is_official", "admitted_on")
GENDER_WORDS = {"nữ": "female", "nu": "female", "nam": "male", "khác": "other", "khac": "other"}
TRUE_WORDS = {"1", "true", "yes", "x", "có", "co"}


def _too_many_rows(count: int) -> None:
    if count > IMPORT_MAX_ROWS:
        raise TooLarge(f"an import holds at most {IMPORT_MAX_ROWS} rows; split the file", field="file")


def rows_from_file(filename: str, content: bytes) -> list[dict[str, Any]]:
    if len(content) > IMPORT_MAX_BYTES:
        raise TooLarge(f"an import file is at most {IMPORT_MAX_BYTES // (1024 * 1024)} MB; split the file",
                       field="file")
    name = filename.lower()
    if name.endswith(".xlsx"):
        from openpyxl import load_workbook
        try:
            sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).active
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the caller's input error
            raise InvalidInput(f"not a readable XLSX file: {exc}", field="file") from exc
        rows = []
        for row in sheet.iter_rows(values_only=True):  # stop early: a sheet may claim millions of rows
            rows.append(row)
            _too_many_rows(len(rows) - 1)
        header = [str(h or "").strip().lower() for h in (rows[0] if rows else [])]
        body = [dict(zip(header, r)) for r in rows[1:]]
    elif name.endswith(".csv"):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput("the CSV file must be UTF-8", field="file") from exc
        reader = csv.DictReader(io.StringIO(text))
        reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
        body = []
        for row in reader:
            body.append(row)
            _too_many_rows(len(body))
    else:
        raise InvalidInput("upload a .csv or .xlsx file", field="file")
    missing = [c for c in ("full_name", "citizen_id", "date_of_birth", "gender") if body and c not in body[0]]
    if missing or not body:
        raise InvalidInput(f"missing columns {missing}" if missing else "the file has no rows", field="file")
    return body


def clean_row(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in IMPORT_COLUMNS:
        value = raw.get(col)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if hasattr(value, "date") and callable(value.date):  # XLSX cells give datetimes
            value = value.date().isoformat()
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        value = str(value).strip() if not isinstance(value, bool) else value
        if col == "gender":
            value = GENDER_WORDS.get(value.lower(), value.lower())
        if col == "is_official":
            value = str(value).lower() in TRUE_WORDS
        if col == "citizen_id" and re.fullmatch(r"\d{11}", value):
            value = "0" + value  # a spreadsheet dropped the leading zero of the province code
        out[col] = value
    return out
