"""The indicator catalogue. A `stock` is a level at the end of a period (summed deltas since the
beginning); a `flow` is what happened within the period (summed deltas of its months). A `ratio`
divides two other indicators AFTER both were summed over the subtree and the period: percentages
are never averaged."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Indicator:
    code: str
    name_vi: str
    name_en: str
    unit: str            # "người", "đơn vị", "đồng", "lớp", "%"
    kind: str            # stock | flow | ratio
    numerator: str | None = None
    denominator: str | None = None
    group: str = "membership"

    @property
    def annual(self) -> bool:
        """A figure of the statistics year's 30 November cut-off (the CĐCS quality ratings): a view
        reads it at the last 30 November its period contains, and has none without one."""
        return self.group == "rating"


WELFARE_KINDS = {
    "tet_gift": ("Tết Sum vầy", "Tết gifts"),
    "workers_month": ("Tháng Công nhân", "Workers' Month"),
    "housing_new": ("Mái ấm Công đoàn (xây mới)", "Union housing (new)"),
    "housing_repair": ("Mái ấm Công đoàn (sửa chữa)", "Union housing (repair)"),
    "hardship_visit": ("Thăm hỏi, trợ cấp khó khăn", "Hardship visits"),
    "death_support": ("Hỗ trợ khi qua đời", "Death support"),
    "micro_loan": ("Quỹ Trợ vốn", "Micro-loans"),
    "member_benefit": ("Phúc lợi đoàn viên", "Member benefit deals"),
}
RATINGS = {
    "excellent": ("Hoàn thành xuất sắc nhiệm vụ", "Excellent"),
    "good": ("Hoàn thành tốt nhiệm vụ", "Good"),
    "completed": ("Hoàn thành nhiệm vụ", "Completed"),
    "not_completed": ("Không hoàn thành nhiệm vụ", "Not completed"),
}
SECTORS = {
    "public_admin": "Hành chính sự nghiệp", "state_enterprise": "Doanh nghiệp nhà nước",
    "non_state": "Ngoài nhà nước", "cooperative": "Hợp tác xã", "informal": "Nghiệp đoàn",
}
SECTORS_EN = {
    "public_admin": "public administration", "state_enterprise": "state enterprises", "non_state": "non-state",
    "cooperative": "cooperatives", "informal": "informal sector",
}
# "Hoàn thành tốt nhiệm vụ trở lên": the grades counted together as good or better.
GOOD_OR_BETTER = ("excellent", "good")
RATING_GROUPS = {"good_or_better": ("Hoàn thành tốt nhiệm vụ trở lên", "Good or better")}

_BASE = [
    Indicator("members.active", "Đoàn viên hiện có", "Active members", "người", "stock"),
    Indicator("members.active_female", "Đoàn viên nữ", "Active women members", "người", "stock"),
    Indicator("members.female_pct", "Tỷ lệ đoàn viên nữ", "Share of women members", "%", "ratio",
              "members.active_female", "members.active"),
    Indicator("members.admitted", "Kết nạp đoàn viên mới", "Members admitted", "người", "flow"),
    Indicator("members.transferred_in", "Chuyển đến", "Members transferred in", "người", "flow"),
    Indicator("members.transferred_out", "Chuyển đi", "Members transferred out", "người", "flow"),
    Indicator("members.left", "Giảm đoàn viên (thôi, xóa tên, từ trần)", "Members who left", "người", "flow"),
    Indicator("cdcs.active", "CĐCS đang hoạt động", "Active grassroots unions", "đơn vị", "stock"),
    Indicator("cdcs.founded", "Thành lập CĐCS mới", "Grassroots unions founded", "đơn vị", "flow"),
    Indicator("cdcs.founded_new_method", "Thành lập CĐCS theo phương thức mới",
              "Founded by the new method", "đơn vị", "flow"),
    Indicator("committees.consolidated", "Kiện toàn BCH", "Committees consolidated", "lần", "flow"),
    Indicator("dues.due", "Đoàn phí phải thu", "Dues due", "đồng", "flow"),
    Indicator("dues.collected", "Đoàn phí đã thu", "Dues collected", "đồng", "flow"),
    Indicator("dues.collected_pct", "Tỷ lệ thu đoàn phí", "Dues collection rate", "%", "ratio",
              "dues.collected", "dues.due"),
    Indicator("officials.total", "Cán bộ công đoàn", "Union officials", "người", "stock"),
    Indicator("officials.trained", "Cán bộ công đoàn được tập huấn", "Officials trained", "người", "flow",
              group="training"),
    Indicator("officials.trained_pct", "Tỷ lệ cán bộ được tập huấn", "% of officials trained", "%", "ratio",
              "officials.trained", "officials.total", group="training"),
    Indicator("training.classes_held", "Lớp tập huấn đã tổ chức", "Classes held", "lớp", "flow", group="training"),
    Indicator("training.certificates", "Chứng nhận đã cấp", "Certificates issued", "người", "flow", group="training"),
    Indicator("training.members_reached", "Lượt đoàn viên được quán triệt", "Members reached by dissemination",
              "lượt", "flow", group="training"),
    # Distinct within a calendar year: a member (a CĐCS) counts in the month of its first session of
    # the year (projection/training.py). Summed over a period that starts in January they are the
    # members (CĐCS) reached so far that year; over a later period, those first reached in it.
    Indicator("training.members_reached_distinct", "Đoàn viên được quán triệt (mỗi người một lần trong năm)",
              "Members reached by dissemination (each once a year)", "người", "flow", group="training"),
    Indicator("training.members_reached_pct", "Tỷ lệ đoàn viên được quán triệt", "Share of members reached",
              "%", "ratio", "training.members_reached_distinct", "members.active", group="training"),
    Indicator("training.cdcs_reached", "CĐCS được quán triệt (có đoàn viên được quán triệt)",
              "Grassroots unions reached by dissemination", "đơn vị", "flow", group="training"),
    Indicator("training.cdcs_reached_pct", "Tỷ lệ CĐCS được quán triệt", "Share of grassroots unions reached",
              "%", "ratio", "training.cdcs_reached", "cdcs.active", group="training"),
    Indicator("welfare.cases", "Lượt chăm lo", "Welfare cases disbursed", "lượt", "flow", group="welfare"),
    Indicator("welfare.amount", "Kinh phí chăm lo", "Welfare amount disbursed", "đồng", "flow", group="welfare"),
    Indicator("loans.outstanding", "Dư nợ Quỹ Trợ vốn", "Loans outstanding", "đồng", "stock", group="welfare"),
    Indicator("cdcs.rated", "CĐCS được xếp loại", "Grassroots unions rated", "đơn vị", "flow", group="rating"),
]
_DERIVED: list[Indicator] = []
for kind, (vi, en) in WELFARE_KINDS.items():
    _DERIVED.append(Indicator(f"welfare.cases.{kind}", f"Lượt chăm lo: {vi}", f"Cases: {en}", "lượt", "flow", group="welfare"))
    _DERIVED.append(Indicator(f"welfare.amount.{kind}", f"Kinh phí: {vi}", f"Amount: {en}", "đồng", "flow", group="welfare"))
# CĐCS quality ratings (all annual, at the 30 November cut-off). The shares divide by the CĐCS
# ELIGIBLE for rating that year (operating at least 12 months by 30/11 and still active then:
# `rating_eligible` in services/membership/domain.py), not by those rated; the counts are the
# confirmed ratings of eligible CĐCS.
_DERIVED.append(Indicator("cdcs.rating_eligible", "CĐCS thuộc diện xếp loại (hoạt động đủ 12 tháng đến 30/11)",
                          "Grassroots unions eligible for rating (12 months operating by 30 Nov)", "đơn vị", "stock",
                          group="rating"))
_DERIVED.append(Indicator("cdcs.rated_pct", "Tỷ lệ CĐCS được xếp loại", "Share of eligible grassroots unions rated",
                          "%", "ratio", "cdcs.rated", "cdcs.rating_eligible", group="rating"))
for sector, svi in SECTORS.items():
    sen = SECTORS_EN[sector]
    _DERIVED.append(Indicator(f"cdcs.rating_eligible.{sector}", f"CĐCS {svi} thuộc diện xếp loại",
                              f"Eligible for rating: {sen}", "đơn vị", "stock", group="rating"))
    _DERIVED.append(Indicator(f"cdcs.rated.{sector}", f"CĐCS {svi} được xếp loại", f"{sector} rated", "đơn vị", "flow",
                              group="rating"))
    _DERIVED.append(Indicator(f"cdcs.rated_pct.{sector}", f"Tỷ lệ CĐCS {svi} được xếp loại",
                              f"Share of eligible rated: {sen}", "%", "ratio", f"cdcs.rated.{sector}",
                              f"cdcs.rating_eligible.{sector}", group="rating"))
for rating, (vi, en) in {**RATINGS, **RATING_GROUPS}.items():
    _DERIVED.append(Indicator(f"cdcs.rated.{rating}", f"CĐCS {vi.lower()}", f"Rated {en.lower()}", "đơn vị", "flow",
                              group="rating"))
    _DERIVED.append(Indicator(f"cdcs.rated.{rating}_pct", f"Tỷ lệ CĐCS {vi.lower()}",
                              f"Share of eligible rated {en.lower()}", "%", "ratio", f"cdcs.rated.{rating}",
                              "cdcs.rating_eligible", group="rating"))
    for sector, svi in SECTORS.items():
        _DERIVED.append(Indicator(f"cdcs.rated.{rating}.{sector}", f"CĐCS {svi} {vi.lower()}",
                                  f"{sector} rated {en.lower()}", "đơn vị", "flow", group="rating"))
        _DERIVED.append(Indicator(f"cdcs.rated.{rating}_pct.{sector}", f"Tỷ lệ CĐCS {svi} {vi.lower()}",
                                  f"Share of eligible rated {en.lower()}: {SECTORS_EN[sector]}", "%", "ratio",
                                  f"cdcs.rated.{rating}.{sector}", f"cdcs.rating_eligible.{sector}", group="rating"))

CATALOGUE: dict[str, Indicator] = {i.code: i for i in _BASE + _DERIVED}
# Shown first on the dashboard and in exports, in this order.
HEADLINE = ["members.active", "members.admitted", "members.transferred_in", "members.transferred_out",
            "members.left", "members.female_pct", "cdcs.active", "cdcs.founded", "cdcs.founded_new_method",
            "cdcs.rating_eligible", "cdcs.rated.good_or_better_pct", "committees.consolidated", "dues.collected", "dues.collected_pct", "officials.total",
            "officials.trained", "officials.trained_pct", "training.classes_held", "training.certificates",
            "training.members_reached", "training.members_reached_pct", "training.cdcs_reached_pct",
            "welfare.cases", "welfare.amount", "loans.outstanding"]


def stored(code: str) -> bool:
    """Indicators whose monthly values are stored (every stock and flow; ratios are computed)."""
    return CATALOGUE[code].kind != "ratio"

# Periodic reports (services/reporting/periodic): figures no event carries, entered by each unit in
# its half-year and year reports, and the reporting rates themselves. They are read from the
# reports (GET /periodic/{unit}/entered, /periodic/{unit}/{period}/completeness), not from the
# monthly views; listed here so that targets can be set on them and they roll up the same way (sums,
# ratios of sums).
_PERIODIC = [
    Indicator("entered.initiatives", "Sáng kiến", "Initiatives", "sáng kiến", "flow", group="periodic"),
    Indicator("entered.workforce", "Công nhân, viên chức, lao động (CNVCLĐ)", "Workforce", "người", "stock",
              group="periodic"),
    Indicator("entered.workforce_members", "Đoàn viên trong số CNVCLĐ", "Members among the workforce", "người", "stock",
              group="periodic"),
    Indicator("entered.unionisation_pct", "Tỷ lệ đoàn viên trong CNVCLĐ", "Unionisation rate", "%", "ratio",
              "entered.workforce_members", "entered.workforce", group="periodic"),
    Indicator("entered.enterprises_with_union", "Doanh nghiệp có tổ chức công đoàn", "Enterprises with a union",
              "doanh nghiệp", "stock", group="periodic"),
    Indicator("entered.enterprises_without_union", "Doanh nghiệp chưa có tổ chức công đoàn",
              "Enterprises without a union", "doanh nghiệp", "stock", group="periodic"),
    Indicator("entered.cla_signed", "Thỏa ước lao động tập thể đã ký", "Collective labour agreements signed", "bản",
              "flow", group="periodic"),
    Indicator("entered.emulation_titles", "Danh hiệu thi đua", "Emulation titles awarded", "danh hiệu", "flow",
              group="periodic"),
    Indicator("entered.commendations", "Khen thưởng", "Commendations", "lượt", "flow", group="periodic"),
    Indicator("reports.expected", "Báo cáo phải nộp", "Reports expected", "báo cáo", "flow", group="periodic"),
    Indicator("reports.submitted", "Báo cáo đã nộp", "Reports submitted", "báo cáo", "flow", group="periodic"),
    Indicator("reports.on_time", "Báo cáo nộp đúng hạn", "Reports on time", "báo cáo", "flow", group="periodic"),
    Indicator("reports.late", "Báo cáo nộp muộn hoặc quá hạn", "Reports late", "báo cáo", "flow", group="periodic"),
    Indicator("reports.missing", "Báo cáo chưa nộp", "Reports missing", "báo cáo", "flow", group="periodic"),
    Indicator("reports.completeness_pct", "Tỷ lệ báo cáo đã nộp", "Reporting completeness", "%", "ratio",
              "reports.submitted", "reports.expected", group="periodic"),
    Indicator("reports.on_time_pct", "Tỷ lệ báo cáo đúng hạn", "Reporting on time", "%", "ratio",
              "reports.on_time", "reports.expected", group="periodic"),
]
CATALOGUE.update({i.code: i for i in _PERIODIC})
