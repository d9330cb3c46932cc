"""CSV and XLSX exports laid out the way federations report upward: one row per unit (the unit
itself first, then its children) with its status, and for each indicator four columns: actual,
target, % of plan, reached ("Đạt" / "Chưa đạt").

Every text cell is neutralised against formula injection (OWASP, "CSV injection"): a text that
starts with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with a single quote, so a
spreadsheet shows it as text instead of running it (a unit named `=HYPERLINK(...)` reads
`'=HYPERLINK(...)`). Numbers are written as numbers and never prefixed."""
from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from .indicators import CATALOGUE

FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ("thực hiện", "chỉ tiêu", "% kế hoạch", "đánh giá")
REACHED = {True: "Đạt", False: "Chưa đạt", None: ""}
STATUS = {"dissolved": "Đã giải thể", "merged": "Đã sáp nhập"}


def safe(value):
    """A text cell as a spreadsheet may hold it without evaluating it; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_LEAD):
        return "'" + value
    return value


def status_text(unit: dict) -> str:
    """'Đang hoạt động', or 'Đã giải thể 25/11/2025', 'Đã sáp nhập 05/12/2025 vào <id>'."""
    status = unit.get("status") or "active"
    if status not in STATUS:
        return "Đang hoạt động"
    text = STATUS[status]
    if unit.get("closed_on"):
        text += " " + _vn_date(unit["closed_on"])
    if status == "merged" and unit.get("merged_into"):
        text += f" vào {unit['merged_into']}"
    return text


def _table(view: dict[str, Any]) -> tuple[list[str], list[tuple[dict, list[dict]]]]:
    codes = [r["indicator"] for r in view["total"]]
    units = [(view["unit"], view["total"])] + [(c["unit"], c["rows"]) for c in view["children"]]
    return codes, units


def _cells(r: dict) -> list:
    return [r["actual"], r["target"], r["attainment_pct"], REACHED[r.get("reached")]]


def to_csv(view: dict[str, Any]) -> bytes:
    codes, units = _table(view)
    buf = io.StringIO()
    w = csv.writer(buf)

    def row(values):
        w.writerow([safe(_plain(v)) for v in values])

    row([f"Báo cáo kết quả thực hiện chỉ tiêu — {view['unit']['name']} — kỳ {view['period']['code']}"
         f"{_hierarchy_note(view)}"])
    header = ["Mã đơn vị", "Tên đơn vị", "Trạng thái"]
    for code in codes:
        name = CATALOGUE[code].name_vi
        header += [f"{name} — {col}" for col in COLUMNS]
    row(header)
    for unit, rows in units:
        line = [unit.get("code") or unit["id"], unit["name"], status_text(unit)]
        for r in rows:
            line += _cells(r)
        row(line)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens Vietnamese text right


def _plain(v):
    return "" if v is None else v


def to_xlsx(view: dict[str, Any]) -> bytes:
    codes, units = _table(view)
    wb = Workbook()
    ws = wb.active
    ws.title = "Chỉ tiêu"

    def put(row: int, col: int, value):
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)  # control characters XML cannot carry
        cell = ws.cell(row, col, safe(value))
        if isinstance(value, str):
            cell.data_type = "s"  # text, never a formula, whatever it starts with
        return cell

    put(1, 1, f"BÁO CÁO KẾT QUẢ THỰC HIỆN CHỈ TIÊU — {view['unit']['name'].upper()}").font = Font(bold=True, size=13)
    put(2, 1, f"Kỳ báo cáo: {view['period']['code']} (tháng {_vn_month(view['period']['first_month'])} "
              f"đến {_vn_month(view['period']['last_month'])}){_hierarchy_note(view)}")
    head = PatternFill("solid", fgColor="DDEBF7")
    first = 4  # the first indicator column
    for col, label in enumerate(("Mã đơn vị", "Tên đơn vị", "Trạng thái"), start=1):
        put(4, col, label).font = Font(bold=True)
        ws.merge_cells(start_row=4, start_column=col, end_row=5, end_column=col)
    for i, code in enumerate(codes):
        col = first + len(COLUMNS) * i
        ind = CATALOGUE[code]
        put(4, col, f"{ind.name_vi} ({ind.unit})").font = Font(bold=True)
        ws.merge_cells(start_row=4, start_column=col, end_row=4, end_column=col + len(COLUMNS) - 1)
        for j, label in enumerate(("Thực hiện", "Chỉ tiêu", "% KH", "Đánh giá")):
            put(5, col + j, label).font = Font(bold=True)
        for r in (4, 5):
            for j in range(len(COLUMNS)):
                ws.cell(r, col + j).fill = head
                ws.cell(r, col + j).alignment = Alignment(horizontal="center", wrap_text=True)
    for n, (unit, rows) in enumerate(units):
        row = 6 + n
        put(row, 1, unit.get("code") or unit["id"])
        put(row, 2, unit["name"]).font = Font(bold=(n == 0))
        put(row, 3, status_text(unit))
        for i, r in enumerate(rows):
            col = first + len(COLUMNS) * i
            pct_kind = CATALOGUE[r["indicator"]].kind == "ratio"
            for j, value in enumerate(_cells(r)):
                if value is None or value == "":
                    continue
                cell = put(row, col + j, value)
                if j < 3:
                    cell.number_format = "0.00" if (j == 2 or pct_kind) else "#,##0"
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 42
    ws.column_dimensions["C"].width = 22
    for c in range(first, first + len(COLUMNS) * len(codes)):
        ws.column_dimensions[get_column_letter(c)].width = 13
    ws.freeze_panes = "D6"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _hierarchy_note(view: dict[str, Any]) -> str:
    """Said only when the view used the hierarchy of a past date (the default title is unchanged)."""
    day = (view.get("hierarchy") or {}).get("as_of")
    return f" — theo hệ thống tổ chức ngày {_vn_date(day)}" if day else ""


def _vn_month(month: str) -> str:
    return f"{month[5:7]}/{month[:4]}"


def _vn_date(day: str) -> str:
    return f"{day[8:10]}/{day[5:7]}/{day[:4]}"
