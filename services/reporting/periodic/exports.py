"""A periodic report as CSV and XLSX in the upward-report layout: a title block (unit, period,
cut-off, status), then one row per figure: STT, chỉ tiêu, đơn vị tính, của đơn vị, cấp dưới
(approved children), tổng số, and for computed figures the live figure and the adjustment. Text
cells are neutralised against formula injection as in services/reporting/exports.py."""
from __future__ import annotations

import csv
import io

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

from ..exports import safe

HEADER = ["STT", "Chỉ tiêu", "Đơn vị tính", "Của đơn vị", "Cấp dưới (đã duyệt)", "Tổng số", "Số liệu hiện tại",
          "Điều chỉnh sau duyệt"]
STATUS_VI = {"draft": "Đang soạn", "submitted": "Đã gửi", "approved": "Đã duyệt", "returned": "Bị trả lại"}


def _lines(view: dict) -> list[list]:
    unit = view["unit"]
    out: list[list] = [
        ["Đơn vị", unit.get("name"), unit.get("code") or ""],
        [view["kind_name"], view["period"], "Số liệu đến ngày", view["cutoff"]],
        ["Trạng thái", STATUS_VI.get(view["status"], view["status"]), "Hạn nộp", view["due_date"]],
        [],
        HEADER,
    ]
    for i, r in enumerate(view["rows"], 1):
        if r["source"] == "entered":
            out.append([i, r["name_vi"], r["unit"], r["own"], r["from_children"], r["value"], None, None])
        else:
            out.append([i, r["name_vi"], r["unit"], None, None, r["value"], r["live"], r["adjustment"]])
    if view.get("unionisation_pct") is not None:
        out.append([len(view["rows"]) + 1, "Tỷ lệ đoàn viên trong CNVCLĐ", "%", None, None, view["unionisation_pct"],
                    None, None])
    return out


def to_csv(view: dict) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    for line in _lines(view):
        writer.writerow(["" if v is None else safe(v) for v in line])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(view: dict) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Bao cao"
    for line in _lines(view):
        ws.append([ILLEGAL_CHARACTERS_RE.sub("", safe(v)) if isinstance(v, str) else v for v in line])
    for cell in ws[5]:
        cell.font = Font(bold=True)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
