"""CSV and XLSX exports laid out the way federations report upward: one row per unit (the unit
itself first, then its children), and for each indicator three columns: actual, target, %."""
from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from .indicators import CATALOGUE


def _table(view: dict[str, Any]) -> tuple[list[str], list[tuple[dict, list[dict]]]]:
    codes = [r["indicator"] for r in view["total"]]
    units = [(view["unit"], view["total"])] + [(c["unit"], c["rows"]) for c in view["children"]]
    return codes, units


def to_csv(view: dict[str, Any]) -> bytes:
    codes, units = _table(view)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([f"Báo cáo kết quả thực hiện chỉ tiêu — {view['unit']['name']} — kỳ {view['period']['code']}"])
    header = ["Mã đơn vị", "Tên đơn vị"]
    for code in codes:
        name = CATALOGUE[code].name_vi
        header += [f"{name} — thực hiện", f"{name} — chỉ tiêu", f"{name} — % kế hoạch"]
    w.writerow(header)
    for unit, rows in units:
        line = [unit.get("code") or unit["id"], unit["name"]]
        for r in rows:
            line += [_plain(r["actual"]), _plain(r["target"]), _plain(r["attainment_pct"])]
        w.writerow(line)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens Vietnamese text right


def _plain(v):
    return "" if v is None else v


def to_xlsx(view: dict[str, Any]) -> bytes:
    codes, units = _table(view)
    wb = Workbook()
    ws = wb.active
    ws.title = "Chỉ tiêu"
    ws.cell(1, 1, f"BÁO CÁO KẾT QUẢ THỰC HIỆN CHỈ TIÊU — {view['unit']['name'].upper()}").font = Font(bold=True, size=13)
    ws.cell(2, 1, f"Kỳ báo cáo: {view['period']['code']} (tháng {_vn_month(view['period']['first_month'])} "
                  f"đến {_vn_month(view['period']['last_month'])})")
    head = PatternFill("solid", fgColor="DDEBF7")
    ws.cell(4, 1, "Mã đơn vị").font = Font(bold=True)
    ws.cell(4, 2, "Tên đơn vị").font = Font(bold=True)
    ws.merge_cells(start_row=4, start_column=1, end_row=5, end_column=1)
    ws.merge_cells(start_row=4, start_column=2, end_row=5, end_column=2)
    for i, code in enumerate(codes):
        col = 3 + 3 * i
        ind = CATALOGUE[code]
        ws.cell(4, col, f"{ind.name_vi} ({ind.unit})").font = Font(bold=True)
        ws.merge_cells(start_row=4, start_column=col, end_row=4, end_column=col + 2)
        for j, label in enumerate(("Thực hiện", "Chỉ tiêu", "% KH")):
            ws.cell(5, col + j, label).font = Font(bold=True)
        for r in (4, 5):
            for j in range(3):
                ws.cell(r, col + j).fill = head
                ws.cell(r, col + j).alignment = Alignment(horizontal="center", wrap_text=True)
    for n, (unit, rows) in enumerate(units):
        row = 6 + n
        ws.cell(row, 1, unit.get("code") or unit["id"])
        ws.cell(row, 2, unit["name"]).font = Font(bold=(n == 0))
        for i, r in enumerate(rows):
            col = 3 + 3 * i
            pct_kind = CATALOGUE[r["indicator"]].kind == "ratio"
            for j, value in enumerate((r["actual"], r["target"], r["attainment_pct"])):
                cell = ws.cell(row, col + j, value)
                if value is not None:
                    cell.number_format = "0.00" if (j == 2 or pct_kind) else "#,##0"
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 42
    for c in range(3, 3 + 3 * len(codes)):
        ws.column_dimensions[get_column_letter(c)].width = 13
    ws.freeze_panes = "C6"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _vn_month(month: str) -> str:
    return f"{month[5:7]}/{month[:4]}"
