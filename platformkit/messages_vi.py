"""Error texts in Vietnamese, for callers that ask for it (`Accept-Language: vi`; the dashboard
does). Officers read Vietnamese; integrators read English, the default.

Messages are written in English where they are raised; this catalogue turns them into Vietnamese
when the answer is built (platformkit.web), so the rules stay in one language and the translation in
one place. Each entry is a regular expression over the whole English message and a Vietnamese
template that may reuse its groups. A message with no entry stays in English (and
tests/unit/test_messages_vi.py fails for every message raised in the code that has none).
"""
from __future__ import annotations

import re
from typing import Any

# Generic texts of the answers themselves (platformkit.web) and of marshmallow's validators.
EXACT: dict[str, str] = {
    "invalid input": "dữ liệu không hợp lệ",
    "Missing data for required field.": "Thiếu trường bắt buộc.",
    "Field may not be null.": "Trường này không được để trống (null).",
    "Invalid value.": "Giá trị không hợp lệ.",
    "Not a valid string.": "Không phải chuỗi ký tự hợp lệ.",
    "Not a valid utf-8 string.": "Không phải chuỗi UTF-8 hợp lệ.",
    "Not a valid integer.": "Không phải số nguyên hợp lệ.",
    "Not a valid number.": "Không phải số hợp lệ.",
    "Number too large.": "Số quá lớn.",
    "Special numeric values (nan or infinity) are not permitted.": "Không chấp nhận giá trị NaN hoặc vô cực.",
    "Not a valid boolean.": "Không phải giá trị đúng/sai hợp lệ.",
    "Not a valid date.": "Ngày không hợp lệ (định dạng YYYY-MM-DD).",
    "Not a valid datetime.": "Thời điểm không hợp lệ.",
    "Not a valid list.": "Không phải danh sách hợp lệ.",
    "Not a valid mapping type.": "Không phải đối tượng hợp lệ.",
    "Invalid type.": "Kiểu dữ liệu không hợp lệ.",
    "Invalid input type.": "Kiểu dữ liệu đầu vào không hợp lệ.",
    "Unknown field.": "Trường không được phép.",
    "String does not match expected pattern.": "Chuỗi không đúng định dạng.",
    "must not be in the future": "không được ở tương lai",
    "must be a month as YYYY-MM": "phải là tháng dạng YYYY-MM",
    "Invalid JSON body.": "Nội dung JSON không hợp lệ.",
    "JSON nested too deeply": "JSON lồng quá sâu",
    "the database is unavailable; retry shortly": "cơ sở dữ liệu tạm thời không truy cập được; vui lòng thử lại sau",
    "the request took longer than its time limit; retry shortly":
        "yêu cầu vượt quá thời gian cho phép; vui lòng thử lại sau",
    "too many heavy reads at once on this server; retry shortly":
        "máy chủ đang xử lý quá nhiều truy vấn nặng; vui lòng thử lại sau",
    "internal error; the request id is in the logs": "lỗi hệ thống; mã yêu cầu đã được ghi vào nhật ký",
    "missing 'Authorization: Bearer <token>' header": "thiếu tiêu đề 'Authorization: Bearer <mã truy cập>'",
    "token revoked": "mã truy cập đã bị thu hồi",
    "the unit is outside the caller's subtree": "đơn vị nằm ngoài phạm vi được phân quyền",
    "the destination unit is outside the caller's subtree": "đơn vị chuyển đến nằm ngoài phạm vi được phân quyền",
    "only the platform operator creates a root unit": "chỉ quản trị hệ thống được tạo đơn vị gốc",
}

# (pattern over the whole English message, Vietnamese template with \1.. for its groups)
PATTERNS: list[tuple[str, str]] = [
    # marshmallow validators
    (r"Must be greater than or equal to (.+) and less than or equal to (.+)\.",
     r"Phải lớn hơn hoặc bằng \1 và nhỏ hơn hoặc bằng \2."),
    (r"Must be greater than or equal to (.+)\.", r"Phải lớn hơn hoặc bằng \1."),
    (r"Must be less than or equal to (.+)\.", r"Phải nhỏ hơn hoặc bằng \1."),
    (r"Must be greater than (.+)\.", r"Phải lớn hơn \1."),
    (r"Must be less than (.+)\.", r"Phải nhỏ hơn \1."),
    (r"Length must be between (.+) and (.+)\.", r"Độ dài phải từ \1 đến \2."),
    (r"Length must be (.+)\.", r"Độ dài phải là \1."),
    (r"Longer than maximum length (.+)\.", r"Dài hơn độ dài tối đa \1."),
    (r"Shorter than minimum length (.+)\.", r"Ngắn hơn độ dài tối thiểu \1."),
    (r"Must be one of: (.+)\.", r"Phải là một trong các giá trị: \1."),
    (r'"(.*)" cannot be formatted as a date\.', r'"\1" không phải là ngày hợp lệ.'),
    # platformkit: answers, fields, keys
    (r"must be between (\S+) and (\S+)", r"phải nằm trong khoảng từ \1 đến \2"),
    (r"(.+) was changed by someone else; reload it", r"\1 đã được người khác thay đổi; vui lòng tải lại"),
    (r"(.+) not found", r"không tìm thấy \1"),
    (r"already exists: (.+)", r"đã tồn tại: \1"),
    (r"invalid token: (.+)", r"mã truy cập không hợp lệ: \1"),
    (r"token lifetime exceeds the maximum of (\d+) seconds", r"thời hạn của mã truy cập vượt quá tối đa \1 giây"),
    (r"the roles (.+) may not (.+)", r"vai trò \1 không được phép thực hiện thao tác này (\2)"),
    # reporting periods
    (r"a range spans at most (\d+) months \((\d+) years\), not (\d+)",
     r"một khoảng thời gian dài tối đa \1 tháng (\2 năm), không phải \3 tháng"),
    (r"months run from (\S+) to (\S+)", r"tháng phải nằm trong khoảng từ \1 đến \2"),
    (r"the first month is after the last", r"tháng đầu đứng sau tháng cuối"),
    (r"unknown period (.+): use (.+)", r"kỳ báo cáo không hợp lệ \1: dùng \2"),
]
_COMPILED = [(re.compile(p + r"\Z", re.S), t) for p, t in PATTERNS]


def translate(message: str) -> str:
    """The Vietnamese text of an English message (the message itself when none is known)."""
    if not isinstance(message, str):
        return message
    if message in EXACT:
        return EXACT[message]
    prefix = "invalid input in '"
    if message.startswith(prefix) and "': " in message:  # platformkit.web.invalid_input_message
        field, _, rest = message[len(prefix):].partition("': ")
        return f"dữ liệu không hợp lệ ở trường '{field}': {translate(rest)}"
    for pattern, template in _COMPILED:
        m = pattern.match(message)
        if m:
            return m.expand(template)
    return message


def known(message: str) -> bool:
    return translate(message) != message


def translate_errors(errors: Any) -> Any:
    """Field -> messages (nested for query/json/items), every message translated; keys kept."""
    if isinstance(errors, dict):
        return {k: translate_errors(v) for k, v in errors.items()}
    if isinstance(errors, list):
        return [translate_errors(v) for v in errors]
    return translate(errors) if isinstance(errors, str) else errors
