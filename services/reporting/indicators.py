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
    Indicator("welfare.cases", "Lượt chăm lo", "Welfare cases disbursed", "lượt", "flow", group="welfare"),
    Indicator("welfare.amount", "Kinh phí chăm lo", "Welfare amount disbursed", "đồng", "flow", group="welfare"),
    Indicator("loans.outstanding", "Dư nợ Quỹ Trợ vốn", "Loans outstanding", "đồng", "stock", group="welfare"),
    Indicator("cdcs.rated", "CĐCS được xếp loại", "Grassroots unions rated", "đơn vị", "flow", group="rating"),
]
_DERIVED: list[Indicator] = []
for kind, (vi, en) in WELFARE_KINDS.items():
    _DERIVED.append(Indicator(f"welfare.cases.{kind}", f"Lượt chăm lo: {vi}", f"Cases: {en}", "lượt", "flow", group="welfare"))
    _DERIVED.append(Indicator(f"welfare.amount.{kind}", f"Kinh phí: {vi}", f"Amount: {en}", "đồng", "flow", group="welfare"))
for rating, (vi, en) in RATINGS.items():
    _DERIVED.append(Indicator(f"cdcs.rated.{rating}", f"CĐCS {vi.lower()}", f"Rated {en.lower()}", "đơn vị", "flow",
                              group="rating"))
    _DERIVED.append(Indicator(f"cdcs.rated.{rating}_pct", f"Tỷ lệ CĐCS {vi.lower()}", f"Share rated {en.lower()}", "%",
                              "ratio", f"cdcs.rated.{rating}", "cdcs.rated", group="rating"))
    for sector, svi in SECTORS.items():
        _DERIVED.append(Indicator(f"cdcs.rated.{rating}.{sector}", f"CĐCS {svi} {vi.lower()}",
                                  f"{sector} rated {en.lower()}", "đơn vị", "flow", group="rating"))
for sector, svi in SECTORS.items():
    _DERIVED.append(Indicator(f"cdcs.rated.{sector}", f"CĐCS {svi} được xếp loại", f"{sector} rated", "đơn vị", "flow",
                              group="rating"))

CATALOGUE: dict[str, Indicator] = {i.code: i for i in _BASE + _DERIVED}
# Shown first on the dashboard and in exports, in this order.
HEADLINE = ["members.active", "members.admitted", "members.transferred_in", "members.transferred_out",
            "members.left", "members.female_pct", "cdcs.active", "cdcs.founded", "cdcs.founded_new_method",
            "committees.consolidated", "dues.collected", "dues.collected_pct", "officials.total",
            "officials.trained", "officials.trained_pct", "training.classes_held", "training.certificates",
            "training.members_reached", "welfare.cases", "welfare.amount", "loans.outstanding"]


def stored(code: str) -> bool:
    """Indicators whose monthly values are stored (every stock and flow; ratios are computed)."""
    return CATALOGUE[code].kind != "ratio"
