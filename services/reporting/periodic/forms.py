"""Report forms, pure: period kinds with their cut-off, the figures each form holds, validation of
what a unit enters, and the deadlines per level.

Period codes are those of services/reporting/periods.py:
  2025-H1   half-year report, statistics half-year 1 Dec 2024 .. 31 May 2025, cut-off 31 May
  2025-SY   year report, statistics year 1 Dec 2024 .. 30 Nov 2025, cut-off 30 November
  2025-Q3   quarterly member changes, cut-off the quarter's last day
(QĐ 1454/QĐ-TLĐ.)

A form holds COMPUTED figures (taken from reporting's views at the cut-off: the service's own
events) and ENTERED figures (what no event carries: initiatives, the workforce, enterprises, labour
agreements, emulation and commendations). Upper levels enter their own figures too; the figure of
a unit is its own entry plus its children's approved figures (sum over sum).
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from ..periods import BadPeriod, Period, add_months, parse


@dataclass(frozen=True)
class Field:
    code: str
    name_vi: str
    name_en: str
    unit: str
    source: str = "entered"        # entered | computed
    indicator: str | None = None   # computed: the catalogue indicator read at the cut-off


# Entered figures, the same on every form kind except the quarterly member changes.
ENTERED = [
    Field("initiatives", "Sáng kiến", "Initiatives", "sáng kiến"),
    Field("workforce", "Công nhân, viên chức, lao động (CNVCLĐ)", "Workforce", "người"),
    Field("workforce_members", "Đoàn viên trong số CNVCLĐ", "Members among the workforce", "người"),
    Field("enterprises_with_union", "Doanh nghiệp có tổ chức công đoàn", "Enterprises with a union", "doanh nghiệp"),
    Field("enterprises_without_union", "Doanh nghiệp chưa có tổ chức công đoàn", "Enterprises without a union",
          "doanh nghiệp"),
    Field("cla_signed", "Thỏa ước lao động tập thể đã ký", "Collective labour agreements signed", "bản"),
    Field("emulation_titles", "Danh hiệu thi đua", "Emulation titles awarded", "danh hiệu"),
    Field("commendations", "Khen thưởng", "Commendations", "lượt"),
]
ENTERED_CODES = [f.code for f in ENTERED]

COMPUTED_HALF_YEAR = [
    Field("members_active", "Đoàn viên hiện có", "Active members", "người", "computed", "members.active"),
    Field("members_active_female", "Đoàn viên nữ", "Active women members", "người", "computed",
          "members.active_female"),
    Field("members_admitted", "Kết nạp đoàn viên mới", "Members admitted", "người", "computed", "members.admitted"),
    Field("members_left", "Giảm đoàn viên", "Members who left", "người", "computed", "members.left"),
    Field("cdcs_active", "CĐCS đang hoạt động", "Active grassroots unions", "đơn vị", "computed", "cdcs.active"),
    Field("cdcs_founded", "Thành lập CĐCS mới", "Grassroots unions founded", "đơn vị", "computed", "cdcs.founded"),
    Field("dues_due", "Đoàn phí phải thu", "Dues due", "đồng", "computed", "dues.due"),
    Field("dues_collected", "Đoàn phí đã thu", "Dues collected", "đồng", "computed", "dues.collected"),
    Field("officials_trained", "Cán bộ công đoàn được tập huấn", "Officials trained", "người", "computed",
          "officials.trained"),
    Field("welfare_amount", "Kinh phí chăm lo", "Welfare amount disbursed", "đồng", "computed", "welfare.amount"),
]
# Quarterly member changes: closing = opening + admitted + transferred in - transferred out - left
# (+ `adjustment`: changes dated in earlier quarters that arrived after those were reported).
COMPUTED_QUARTER = [
    Field("opening_balance", "Số đoàn viên đầu kỳ", "Opening balance", "người", "computed"),
    Field("admitted", "Kết nạp", "Admitted", "người", "computed", "members.admitted"),
    Field("transferred_in", "Chuyển đến", "Transferred in", "người", "computed", "members.transferred_in"),
    Field("transferred_out", "Chuyển đi", "Transferred out", "người", "computed", "members.transferred_out"),
    Field("left", "Giảm (thôi, xóa tên, từ trần)", "Left", "người", "computed", "members.left"),
    Field("adjustment", "Điều chỉnh số liệu kỳ trước", "Adjustment of earlier quarters", "người", "computed"),
    Field("closing_balance", "Số đoàn viên cuối kỳ", "Closing balance", "người", "computed", "members.active"),
]

KINDS = {"half_year": "Báo cáo 6 tháng (đến 31/5)", "year": "Báo cáo năm (đến 30/11)",
         "quarter": "Báo cáo biến động đoàn viên quý"}


class FormError(ValueError):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ReportPeriod:
    code: str
    kind: str
    period: Period
    cutoff: date

    @property
    def previous_quarter(self) -> str | None:
        if self.kind != "quarter":
            return None
        y, q = int(self.code[:4]), int(self.code[-1])
        return f"{y - 1}-Q4" if q == 1 else f"{y}-Q{q - 1}"

    def fields(self) -> list[Field]:
        return COMPUTED_QUARTER if self.kind == "quarter" else COMPUTED_HALF_YEAR + ENTERED

    @property
    def entered(self) -> list[Field]:
        return [] if self.kind == "quarter" else ENTERED


def _last_day(month: str) -> date:
    y, m = int(month[:4]), int(month[5:7])
    return date(y, m, calendar.monthrange(y, m)[1])


def report_period(code: str) -> ReportPeriod:
    """The report period of a code; FormError(field='period') for anything but H1, SY or a quarter."""
    code = (code or "").strip()
    if not re.fullmatch(r"\d{4}-(H1|SY|Q[1-4])", code):
        raise FormError(f"a report period is YYYY-H1 (half-year), YYYY-SY (year) or YYYY-Qn (quarter), not {code!r}",
                        "period")
    try:
        period = parse(code)
        parse(add_months(period.first, -1))  # a quarter's opening balance is read a month before
    except BadPeriod as exc:
        raise FormError(str(exc), "period") from None
    kind = "half_year" if code.endswith("H1") else "year" if code.endswith("SY") else "quarter"
    return ReportPeriod(code, kind, period, _last_day(period.last))


def quarter_opening_period(rp: ReportPeriod) -> Period:
    """The month whose stock is the quarter's opening balance (the previous quarter's last month)."""
    last = add_months(rp.period.first, -1)
    return Period(last, last, last)


# ---------------------------------------------------------------------------------- validation

def check_entered(entered: dict, rp: ReportPeriod) -> dict[str, int]:
    """The unit's own entered figures, checked: known codes, whole non-negative counts, members
    among the workforce not above the workforce. Returns them complete (missing ones are 0)."""
    allowed = {f.code for f in rp.entered}
    for code in entered:
        if code not in allowed:
            raise FormError(f"{code} is not a figure of a {rp.kind} report", f"entered.{code}")
    out: dict[str, int] = {}
    for code in sorted(allowed):
        value = entered.get(code, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise FormError(f"{code} must be a whole number", f"entered.{code}")
        if value < 0:
            raise FormError(f"{code} may not be negative", f"entered.{code}")
        out[code] = value
    return out


def check_totals(totals: dict[str, int]) -> None:
    """Rules over a unit's totals (own entry plus its children's approved figures)."""
    if totals.get("workforce_members", 0) > totals.get("workforce", 0):
        raise FormError(f"workforce_members ({totals.get('workforce_members', 0)}) exceeds the workforce "
                        f"({totals.get('workforce', 0)})", "entered.workforce_members")


def unionisation_pct(totals: dict[str, int]) -> float | None:
    workforce = totals.get("workforce", 0)
    return round(100.0 * totals.get("workforce_members", 0) / workforce, 2) if workforce else None


# ---------------------------------------------------------------------------------- deadlines

# Days after the cut-off a report is due, by the level of the unit that submits it (4 = CĐCS,
# 3 = commune / district / industrial zone, 2 = province or sector union, 1 = central). A province
# may set its own in its settings document (service.py); these are the defaults.
DEFAULT_DUE_DAYS = {"half_year": {4: 5, 3: 10, 2: 15, 1: 20},
                    "year": {4: 5, 3: 10, 2: 15, 1: 20},
                    "quarter": {4: 5, 3: 8, 2: 12, 1: 15}}


def level_of(unit: dict) -> int:
    """A unit's level (1 central .. 4 grassroots); from the event when known, else from its depth."""
    level = unit.get("level")
    if isinstance(level, int) and level > 0:
        return min(level, 4)
    return min(len(unit.get("ancestors") or []) + 1, 4)


def check_due_days(days: dict) -> dict[str, dict[int, int]]:
    """A province's deadline settings: per form kind, per level, days after the cut-off, each level
    above not earlier than the one below."""
    out: dict[str, dict[int, int]] = {}
    for kind, default in DEFAULT_DUE_DAYS.items():
        given = (days or {}).get(kind) or {}
        per_level = dict(default)
        for level, n in given.items():
            try:
                lv = int(level)
            except (TypeError, ValueError):
                raise FormError(f"level {level!r} is not 1..4", f"due_days.{kind}") from None
            if lv not in default:
                raise FormError(f"level {level!r} is not 1..4", f"due_days.{kind}")
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 366:
                raise FormError("days after the cut-off are 0..366", f"due_days.{kind}.{lv}")
            per_level[lv] = n
        for lv in (3, 2, 1):
            if per_level[lv] < per_level[lv + 1]:
                raise FormError(f"level {lv} is due before level {lv + 1}", f"due_days.{kind}.{lv}")
        out[kind] = per_level
    unknown = set(days or {}) - set(DEFAULT_DUE_DAYS)
    if unknown:
        raise FormError(f"{sorted(unknown)[0]} is not a form kind", f"due_days.{sorted(unknown)[0]}")
    return out


def due_date(rp: ReportPeriod, level: int, due_days: dict[str, dict[int, int]] | None = None) -> date:
    table = (due_days or DEFAULT_DUE_DAYS)[rp.kind]
    return rp.cutoff + timedelta(days=table[min(max(level, 1), 4)])


def on_time(submitted_on: str | None, due: date) -> bool | None:
    """Whether the FIRST submission (YYYY-MM-DD, Vietnam's day) was on or before the due date."""
    return None if submitted_on is None else date.fromisoformat(submitted_on[:10]) <= due
