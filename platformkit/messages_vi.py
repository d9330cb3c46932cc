"""Error texts in Vietnamese, for callers that ask for it (`Accept-Language: vi`; the dashboard
does). Officers read Vietnamese; integrators read English, the default.

Messages are written in English where they are raised; this catalogue turns them into Vietnamese
when the answer is built (platformkit.web), so the rules stay in one language and the translation in
one place. Each entry is a regular expression over the whole English message and a Vietnamese
template that may reuse its groups. A message with no entry stays in English (and
tests/unit/test_messages_vi.py fails for every message raised in the code that has none).
"""
from __future__ import annotations

import itertools
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
    "not a cursor from next_cursor": "không phải con trỏ trang lấy từ next_cursor",
    "the cursor belongs to another list": "con trỏ trang thuộc về một danh sách khác",
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
    # platformkit: tokens, keys
    "tokens cannot be verified: no signing key is configured":
        "không thể xác thực mã truy cập: hệ thống chưa được cấu hình khóa ký",
    "token lacks 'unit' or 'roles'": "mã truy cập thiếu thông tin 'unit' hoặc 'roles'",
    "invalid token: 'iat' and 'exp' must be numbers": "mã truy cập không hợp lệ: 'iat' và 'exp' phải là số",
    "invalid token: Signature has expired": "mã truy cập đã hết hạn; vui lòng đăng nhập lại",
    "invalid token: Signature verification failed": "mã truy cập không hợp lệ: chữ ký không đúng",
    "invalid token: Not enough segments": "mã truy cập không hợp lệ: sai định dạng",
    "invalid token: The token is not yet valid (iat)": "mã truy cập chưa đến thời điểm có hiệu lực (iat)",
    "invalid token: The token is not yet valid (nbf)": "mã truy cập chưa đến thời điểm có hiệu lực (nbf)",
    "this Idempotency-Key was used for a different request":
        "Idempotency-Key này đã được dùng cho một yêu cầu khác",
    # membership: units, founding, committees, ratings
    "a unit is renamed, moved, merged or dissolved by a level above it, not by itself":
        "việc đổi tên, chuyển, hợp nhất hoặc giải thể một đơn vị do công đoàn cấp trên của đơn vị đó quyết định, "
        "không phải do chính đơn vị",
    "this is decided by the trade union level above the CĐCS":
        "việc này do công đoàn cấp trên trực tiếp cơ sở quyết định",
    "a CĐCS needs its sector": "CĐCS phải có khu vực (sector)",
    "only a CĐCS has a sector": "chỉ CĐCS mới có khu vực (sector)",
    "founding a CĐCS needs its founding record": "thành lập CĐCS phải kèm hồ sơ thành lập (founding)",
    "only a CĐCS is founded": "chỉ CĐCS mới có hồ sơ thành lập (founding)",
    "a unit cannot move under itself or its own descendant":
        "không thể chuyển đơn vị về trực thuộc chính nó hoặc một đơn vị cấp dưới của nó",
    "the unit is already under that parent": "đơn vị đã trực thuộc đơn vị cấp trên này",
    "a unit cannot merge into itself or its own descendant":
        "không thể hợp nhất đơn vị vào chính nó hoặc một đơn vị cấp dưới của nó",
    "the unit has members; merge it into a CĐCS that can take them":
        "đơn vị còn đoàn viên; hãy hợp nhất vào một CĐCS có thể tiếp nhận các đoàn viên này",
    "only a CĐCS has an executive committee here": "trên hệ thống chỉ CĐCS mới ghi nhận ban chấp hành (BCH)",
    "the committee has exactly one chair": "BCH phải có đúng một chủ tịch",
    "only a CĐCS is rated": "chỉ CĐCS mới được xếp loại",
    "the rating is confirmed by the level above": "xếp loại do công đoàn cấp trên xác nhận",
    "a proposal names its rating": "đề xuất phải nêu mức xếp loại (rating)",
    # membership: members
    "citizen ID (CCCD) must be exactly 12 digits": "số CCCD phải gồm đúng 12 chữ số",
    "members are admitted into a CĐCS": "đoàn viên chỉ được kết nạp vào CĐCS",
    "admission date is in the future": "ngày kết nạp không được ở tương lai",
    "full name is required": "phải nhập họ và tên",
    "the admission was refused by the level above; a refused admission is never approved "
    "(the person may be admitted again)":
        "việc kết nạp đã bị công đoàn cấp trên từ chối; trường hợp đã bị từ chối không thể được công nhận "
        "(người này có thể được kết nạp lại)",
    "admission is approved by the level above the CĐCS":
        "việc kết nạp do công đoàn cấp trên trực tiếp cơ sở công nhận",
    "an admission is refused by the level above the CĐCS":
        "việc từ chối kết nạp do công đoàn cấp trên trực tiếp cơ sở quyết định",
    "a refusal states its reason": "phải nêu lý do từ chối",
    "a card is issued to an approved, active member":
        "thẻ đoàn viên chỉ cấp cho đoàn viên đã được công nhận và đang sinh hoạt",
    "a member who is left cannot be transferred":
        "đoàn viên đã ra khỏi tổ chức công đoàn nên không thể chuyển sinh hoạt",
    "a member who is refused cannot be transferred":
        "người đã bị từ chối kết nạp nên không thể chuyển sinh hoạt",
    "the member is already in that CĐCS": "đoàn viên đang sinh hoạt tại CĐCS này",
    "members are transferred into a CĐCS": "đoàn viên chỉ được chuyển sinh hoạt đến một CĐCS",
    "a transfer request carries the transfer letter's number":
        "đề nghị chuyển sinh hoạt phải ghi số giấy giới thiệu chuyển sinh hoạt",
    "a transfer request carries the transfer letter's date":
        "đề nghị chuyển sinh hoạt phải ghi ngày của giấy giới thiệu chuyển sinh hoạt",
    "the member has no pending transfer request": "đoàn viên không có đề nghị chuyển sinh hoạt nào đang chờ",
    "the member has no pending transfer request to this unit":
        "đoàn viên không có đề nghị chuyển sinh hoạt nào đang chờ đến đơn vị này",
    "a scheduled change is dated after today": "thay đổi theo lịch phải có ngày hiệu lực sau ngày hôm nay",
    "the member has already left": "đoàn viên đã ra khỏi tổ chức công đoàn",
    "the admission was refused: there is no membership to leave":
        "việc kết nạp đã bị từ chối: người này chưa là đoàn viên nên không thể ra khỏi tổ chức",
    "only a member who left can be reinstated":
        "chỉ khôi phục tư cách đoàn viên cho người đã ra khỏi tổ chức công đoàn",
    "a deceased member cannot be reinstated": "không thể khôi phục tư cách đoàn viên cho đoàn viên đã từ trần",
    "the effective date is in the future": "ngày hiệu lực không được ở tương lai",
    "dues are recorded for active members": "đoàn phí chỉ được ghi nhận cho đoàn viên đang sinh hoạt",
    "salary cannot be negative": "tiền lương (salary) không được âm",
    "paid cannot be negative": "số tiền đã đóng (paid) không được âm",
    "a member with this citizen ID is already active": "đã có đoàn viên đang sinh hoạt với số CCCD này",
    "no member with this citizen ID": "không có đoàn viên nào có số CCCD này",
    "no member with this card number": "không có đoàn viên nào có số thẻ đoàn viên này",
    "give exactly one of citizen_id or member_number": "hãy nhập đúng một trong hai: citizen_id hoặc member_number",
    # membership: imports and batches
    "upload the file as multipart field 'file'": "hãy tải tệp lên qua trường multipart 'file'",
    "upload a .csv or .xlsx file": "hãy tải lên tệp .csv hoặc .xlsx",
    "the CSV file must be UTF-8": "tệp CSV phải dùng bảng mã UTF-8",
    "the file has no rows": "tệp không có dòng dữ liệu nào",
    "this batch was just pruned; retry": "lô yêu cầu này vừa được dọn khỏi hệ thống; vui lòng thử lại",
    "a request with this Idempotency-Key is running this batch; retry in a few seconds":
        "một yêu cầu khác có cùng Idempotency-Key đang xử lý lô này; vui lòng thử lại sau vài giây",
    "a retry with the same Idempotency-Key took this batch over (this request seemed dead); "
    "retry to get its answer":
        "một lần gửi lại có cùng Idempotency-Key đã tiếp quản lô này (yêu cầu này tưởng như đã dừng); "
        "hãy gửi lại để nhận kết quả",
    # reporting
    "first month is after the last": "tháng đầu đứng sau tháng cuối",
    "targets are assigned by the level above the unit": "chỉ tiêu do công đoàn cấp trên của đơn vị giao",
    "a ratio's target is a percentage (0-100)": "chỉ tiêu dạng tỷ lệ là phần trăm (0-100)",
    "not a number": "không phải là số",
    # training: courses and classes
    "code: 2-40 characters, capital letters, digits, '.', '_' or '-'":
        "code: 2-40 ký tự, gồm chữ in hoa, chữ số, '.', '_' hoặc '-'",
    "2-40 characters: capital letters, digits, '.', '_' or '-'":
        "2-40 ký tự: chữ in hoa, chữ số, '.', '_' hoặc '-'",
    "the course is already retired": "khóa học đã được ngừng sử dụng từ trước",
    "no such course": "không có khóa học này",
    "the course is retired": "khóa học đã ngừng sử dụng",
    "the course belongs to a unit that is neither the organising unit nor above it":
        "khóa học thuộc một đơn vị không phải là đơn vị tổ chức lớp hay cấp trên của đơn vị đó",
    "the course is outside the caller's reach": "khóa học nằm ngoài phạm vi được phân quyền",
    "days must not repeat a date": "các ngày học (days) không được trùng nhau",
    "the first class day must be start_date": "ngày học đầu tiên phải là start_date",
    "certificates were already issued in this class; close it instead":
        "lớp tập huấn đã cấp chứng nhận nên không thể hủy; hãy kết thúc lớp",
    "the member's unit is not known to training yet": "đơn vị của đoàn viên chưa có trong dữ liệu phân hệ đào tạo",
    "the member is outside the organising unit's subtree": "đoàn viên không thuộc phạm vi của đơn vị tổ chức",
    "score must be from 0 to 10": "điểm (score) phải từ 0 đến 10",
    "the certificate is outside the caller's subtree": "chứng nhận nằm ngoài phạm vi được phân quyền",
    # training: dissemination sessions
    "list the members reached (member_ids) and/or head counts per unit of attendees not identified (reached)":
        "hãy liệt kê các đoàn viên được quán triệt (member_ids) và/hoặc số người tham dự không xác định danh tính "
        "theo từng đơn vị (reached)",
    "a unit is listed twice": "một đơn vị được kê hai lần",
    # welfare: programmes and cases
    "budget is a whole number of đồng above 0": "kinh phí (budget) phải là số nguyên đồng lớn hơn 0",
    "name at least one funding source": "hãy nêu ít nhất một nguồn kinh phí",
    "a funding source is listed twice": "một nguồn kinh phí được kê hai lần",
    "a programme is owned by a CĐCS or a level above it":
        "chương trình chăm lo phải do CĐCS hoặc công đoàn cấp trên quản lý",
    "funding lists at least one source": "phần nguồn kinh phí (funding) phải có ít nhất một nguồn",
    "every share is a whole number of đồng above 0": "mỗi phần kinh phí phải là số nguyên đồng lớn hơn 0",
    "amount is a whole number of đồng above 0": "số tiền (amount) phải là số nguyên đồng lớn hơn 0",
    "the member's unit is unknown here": "đơn vị của đoàn viên chưa có trong dữ liệu phân hệ chăm lo",
    "the programme does not cover the member's unit": "chương trình chăm lo không áp dụng cho đơn vị của đoàn viên",
    "approved_on is before the request": "approved_on trước ngày đề nghị hỗ trợ",
    "give the reason for rejecting": "hãy nêu lý do từ chối",
    "rejected_on is before the request": "rejected_on trước ngày đề nghị hỗ trợ",
    "disbursed_on is before the approval": "disbursed_on trước ngày duyệt",
    "the programme's budget is busy; retry": "kinh phí của chương trình đang được cập nhật; vui lòng thử lại",
    "this Idempotency-Key already paid another case":
        "Idempotency-Key này đã được dùng để chi cho một hồ sơ hỗ trợ khác",
    # welfare: micro-loans (Quỹ Trợ vốn)
    "a micro-loan needs loan.term_months": "khoản vay Quỹ Trợ vốn phải có loan.term_months",
    "a micro-loan is paid in cash": "khoản vay Quỹ Trợ vốn được giải ngân bằng tiền mặt (cash)",
    "loan terms belong only to a micro_loan programme":
        "điều kiện vay (loan) chỉ dùng cho chương trình micro_loan (Quỹ Trợ vốn)",
    "principal and term_months are above 0": "principal và term_months phải lớn hơn 0",
    "paid_on is before the disbursement": "paid_on trước ngày giải ngân",
    "the loan is busy; retry": "khoản vay đang được cập nhật; vui lòng thử lại",
    "this Idempotency-Key was used for a different repayment":
        "Idempotency-Key này đã được dùng cho một lần trả nợ khác",
}

# Generated entries (placed in PATTERNS before their general forms): the states and actions named
# in a few messages are code values; these give each combination its Vietnamese sentence.
# training: a class's state (domain._require_status) and what each command needed
_CLASS_STATES = {"planned": "mới lên kế hoạch", "open": "đang mở đăng ký", "running": "đang diễn ra",
                 "closed": "đã kết thúc", "cancelled": "đã bị hủy"}
_CLASS_ACTS = {  # doing -> (needs, as the message says it; Vietnamese verb phrase)
    "open enrolment of": ("planned", "mở đăng ký cho"),
    "start": ("open", "khai giảng"),
    "close": ("running", "kết thúc"),
    "cancel": ("planned or open or running", "hủy"),
    "enrol in": ("open", "ghi danh vào"),
    "withdraw from": ("open or running", "rút tên khỏi"),
    "take attendance in": ("running", "điểm danh"),
    "assess completion in": ("running", "đánh giá kết quả học viên của"),
}
_CLASS_STATUS_PATTERNS = [
    (rf"cannot {re.escape(doing)} a class that is {state} \(needs {re.escape(needs)}\)",
     f"không thể {verb} lớp tập huấn {state_vi} (chỉ thực hiện được khi lớp "
     + " hoặc ".join(_CLASS_STATES[n] for n in needs.split(" or ")) + ")")
    for doing, (needs, verb) in _CLASS_ACTS.items() for state, state_vi in _CLASS_STATES.items()]
# training: members refused by a dissemination session, by reason (domain._REFUSALS, in order)
_REACH_REFUSALS = (
    ("not known to training", "chưa có trong dữ liệu phân hệ đào tạo"),
    ("have left the union", "đã ra khỏi tổ chức công đoàn"),
    ("are not active members (yet)", "chưa ở trạng thái đang sinh hoạt"),
    ("sit in a unit not known to training yet", "thuộc đơn vị chưa có trong dữ liệu phân hệ đào tạo"),
    ("are outside the organising unit's subtree", "nằm ngoài phạm vi của đơn vị tổ chức"),
)
_REACH_PATTERNS = [
    ("; ".join(f"members {re.escape(_REACH_REFUSALS[i][0])}: ([^;]+)" for i in combo),
     "; ".join(f"đoàn viên {_REACH_REFUSALS[i][1]}: \\{n}" for n, i in enumerate(combo, 1)))
    for size in range(1, len(_REACH_REFUSALS) + 1)
    for combo in itertools.combinations(range(len(_REACH_REFUSALS)), size)]
# welfare: a case's state, and the transitions that need another one (domain._expect_status)
_CASE_STATES = {"requested": "đang chờ duyệt", "approved": "đã được duyệt", "rejected": "đã bị từ chối",
                "disbursed": "đã được chi"}
_CASE_ACTS = {"approved": "duyệt", "rejected": "từ chối", "disbursed": "chi"}
_CASE_STATUS_PATTERNS = [
    (rf"case (\S+) is {state}; only a {wanted} case can be {action}",
     rf"hồ sơ hỗ trợ \1 {state_vi}; chỉ hồ sơ {_CASE_STATES[wanted]} mới được {_CASE_ACTS[action]}")
    for wanted, action in (("requested", "approved"), ("requested", "rejected"), ("approved", "disbursed"))
    for state, state_vi in _CASE_STATES.items() if state != wanted]
_LOAN_STATES = {"requested": "đang chờ duyệt", "approved": "đã được duyệt nhưng chưa giải ngân",
                "rejected": "đã bị từ chối"}
# the roles' capabilities (platformkit.permissions), as platformkit.web names them in a refusal
_CAPABILITIES = {
    "read": "xem dữ liệu",
    "unit structure": "thay đổi cơ cấu tổ chức (thành lập, đổi tên, chuyển, hợp nhất, giải thể đơn vị)",
    "unit committee": "ghi nhận kiện toàn BCH của CĐCS",
    "rating propose": "đề xuất xếp loại CĐCS",
    "rating confirm": "xác nhận xếp loại CĐCS",
    "member enter": "nhập và cập nhật dữ liệu đoàn viên",
    "member approve": "công nhận kết nạp đoàn viên và cấp thẻ đoàn viên",
    "member transfer": "chuyển sinh hoạt đoàn viên",
    "training manage": "quản lý khóa học và lớp tập huấn",
    "training record": "ghi nhận học viên, điểm danh, kết quả học tập và buổi quán triệt",
    "welfare programme": "tạo chương trình chăm lo",
    "welfare request": "lập hồ sơ hỗ trợ, chi hỗ trợ và ghi nhận trả nợ vay",
    "welfare decide": "duyệt hoặc từ chối hồ sơ hỗ trợ",
    "target assign": "giao chỉ tiêu",
}

# (pattern over the whole English message, Vietnamese template with \1.. for its groups)
# reporting: periodic reports (services/reporting/periodic)
_REPORT_STATUS = {"draft": "đang soạn", "submitted": "đã gửi", "approved": "đã duyệt", "returned": "bị trả lại"}
_REPORT_STEP = {"saved": "lưu", "submitted": "gửi", "approved": "duyệt", "returned": "trả lại", "reopened": "mở lại"}
_PERIODIC: list[tuple[str, str]] = [
    (r"a report period is YYYY-H1 \(half-year\), YYYY-SY \(year\) or YYYY-Qn \(quarter\), not (.+)",
     r"kỳ báo cáo là YYYY-H1 (6 tháng), YYYY-SY (năm) hoặc YYYY-Qn (quý), không phải \1"),
    (r"(\S+) is not a figure of a (\S+) report", r"\1 không phải là chỉ tiêu của báo cáo loại \2"),
    (r"(\S+) must be a whole number", r"\1 phải là số nguyên"),
    (r"(\S+) may not be negative", r"\1 không được âm"),
    (r"workforce_members \((\S+)\) exceeds the workforce \((\S+)\)",
     r"số đoàn viên trong CNVCLĐ (\1) vượt quá số CNVCLĐ (\2)"),
    (r"level (.+) is not 1\.\.4", r"cấp \1 không thuộc 1..4"),
    (r"days after the cut-off are 0\.\.366", r"số ngày sau ngày chốt số liệu phải từ 0 đến 366"),
    (r"level (\S+) is due before level (\S+)", r"hạn nộp của cấp \1 không được sớm hơn cấp \2"),
    (r"(\S+) is not a form kind", r"\1 không phải là loại biểu mẫu báo cáo"),
    (r"unknown step (\S+)", r"bước xử lý không hợp lệ: \1"),
    (r"a unit saves and submits only its own report", r"đơn vị chỉ được lưu và gửi báo cáo của chính mình"),
    (r"nobody approves, returns or reopens their own report",
     r"không đơn vị nào được tự duyệt, trả lại hoặc mở lại báo cáo của chính mình"),
    (r"only a unit above the reporting unit approves, returns or reopens its report",
     r"chỉ cấp trên của đơn vị báo cáo mới được duyệt, trả lại hoặc mở lại báo cáo"),
    *[(rf"the report is {st}; it cannot be {sp}", rf"báo cáo {st_vi} thì không thể {sp_vi}")
      for st, st_vi in _REPORT_STATUS.items() for sp, sp_vi in _REPORT_STEP.items()],
    *[(rf"a report is {sp} with a reason", rf"phải nêu lý do khi {sp_vi} báo cáo") for sp, sp_vi in _REPORT_STEP.items()],
    (r"the report is (\S+); it cannot be (\S+)", r"báo cáo ở trạng thái \1 thì không thể \2"),
    (r"a report is (\S+) with a reason", r"phải nêu lý do (\1)"),
    (r"unit (\S+) is not active at the cut-off (\S+)", r"đơn vị \1 không hoạt động tại ngày chốt số liệu \2"),
    (r"children's reports are not all approved: (.+)", r"báo cáo của các đơn vị cấp dưới chưa được duyệt hết: \1"),
    (r"the report is at step (\S+), not (\S+); reload it", r"báo cáo đang ở bước \1, không phải \2; vui lòng tải lại"),
    (r"report (\S+) was changed by a concurrent request; reload it",
     r"báo cáo \1 vừa được một yêu cầu khác thay đổi; vui lòng tải lại"),
    (r"unit (\S+) has not submitted its (\S+) report", r"đơn vị \1 chưa gửi báo cáo kỳ \2"),
    (r"the quarterly member changes have no entered figures",
     r"báo cáo biến động đoàn viên quý không có chỉ tiêu nhập tay"),
]

PATTERNS: list[tuple[str, str]] = [
    *_PERIODIC,
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
    # platformkit: tokens, roles, versions (before the general forms below)
    (r'invalid token: Token is missing the "(\w+)" claim', r'mã truy cập không hợp lệ: thiếu trường "\1"'),
    (r"token lifetime exceeds the maximum of (\S+) seconds", r"thời hạn của mã truy cập vượt quá tối đa \1 giây"),
    (r"roles (.+) may not change data", r"vai trò \1 không được phép thay đổi dữ liệu"),
    *[(rf"the roles (.+) may not {re.escape(capability)}", rf"vai trò \1 không được phép {what}")
      for capability, what in _CAPABILITIES.items()],
    (r"(\S+) is at version (\S+), not (\S+?);? was changed by someone else; reload it",
     r"\1 đã được người khác thay đổi (phiên bản hiện tại \2, không phải \3); vui lòng tải lại"),
    # field checks shared by the services (field names stay as they are)
    (r"(\S+) must be one of (.+)", r"\1 phải là một trong các giá trị: \2"),
    (r"(\S+) must not be blank", r"\1 không được để trống"),
    (r"(\S+) is longer than (\S+) characters", r"\1 dài quá \2 ký tự"),
    (r"(\S+) must be from (\S+) to (\S+)", r"\1 phải từ \2 đến \3"),
    (r"(\S+) must be a whole number from (\S+) to (\S+)", r"\1 phải là số nguyên từ \2 đến \3"),
    # membership: units
    (r"unit (\S+) not found", r"không tìm thấy đơn vị \1"),
    (r"unit (\S+) is merged", r"đơn vị \1 đã được hợp nhất"),
    (r"unit (\S+) is dissolved", r"đơn vị \1 đã giải thể"),
    (r"unit (\S+) is merging", r"đơn vị \1 đang trong quá trình hợp nhất"),
    (r"unit (\S+) is (\S+)", r"đơn vị \1 không còn hoạt động (trạng thái \2)"),
    (r"a root unit is one of (.+), not (\S+)", r"đơn vị gốc phải thuộc một trong các loại \1, không phải \2"),
    (r"a (\S+) cannot sit under a (\S+) \(allowed: (.+)\)",
     r"đơn vị loại \1 không thể trực thuộc đơn vị loại \2 (chỉ được: \3)"),
    (r"a (\S+) cannot sit under a (\S+) \(it holds no units\)",
     r"đơn vị loại \1 không thể trực thuộc đơn vị loại \2 (loại đơn vị này không có đơn vị trực thuộc)"),
    (r"level (\S+) must be below the parent's level (\S+)", r"cấp \1 phải thấp hơn cấp \2 của đơn vị cấp trên"),
    (r"the new parent's level (\S+) must be above (\S+)",
     r"cấp của đơn vị cấp trên mới (\1) phải cao hơn cấp của đơn vị (\2)"),
    (r"unit is already merging into (\S+)", r"đơn vị đang trong quá trình hợp nhất vào \1"),
    (r"a (\S+) merges into a unit of the same tier, not a (\S+)",
     r"đơn vị loại \1 chỉ được hợp nhất vào đơn vị cùng cấp, không phải đơn vị loại \2"),
    (r"the unit still has (\S+) members: transfer them or merge the unit",
     r"đơn vị vẫn còn \1 đoàn viên: hãy chuyển sinh hoạt cho các đoàn viên này hoặc hợp nhất đơn vị"),
    (r"the unit still has (\S+) active child units", r"đơn vị vẫn còn \1 đơn vị trực thuộc đang hoạt động"),
    (r"unit code (\S+) is taken", r"mã đơn vị \1 đã được sử dụng"),
    # membership: founding, committees, ratings
    (r"a CĐCS is founded with at least (\S+) members or applicants",
     r"CĐCS được thành lập khi có ít nhất \1 đoàn viên hoặc người lao động đăng ký"),
    (r"the founding group \(ban vận động\) has at least (\S+) workers",
     r"ban vận động thành lập CĐCS phải có ít nhất \1 người lao động"),
    (r"(\S+) is not an active member of this CĐCS", r"\1 không phải là đoàn viên đang sinh hoạt tại CĐCS này"),
    (r"the CĐCS has not operated 12 months by 30/11/(\S+)", r"CĐCS chưa hoạt động đủ 12 tháng tính đến ngày 30/11/\1"),
    (r"the (\S+) rating is already confirmed", r"xếp loại năm \1 đã được xác nhận"),
    (r"no rating proposed for (\S+)", r"chưa có đề xuất xếp loại năm \1"),
    # membership: members, dues, imports
    (r"member (\S+) not found", r"không tìm thấy đoàn viên \1"),
    (r"no member with this (.+)", r"không có đoàn viên nào có \1 này"),
    (r"a member is at least (\S+) years old", r"đoàn viên phải từ đủ \1 tuổi trở lên"),
    (r"only an admitted member awaiting approval can be approved \(status (\S+)\)",
     r"chỉ công nhận được người đã được kết nạp và đang chờ công nhận (trạng thái hiện tại: \1)"),
    (r"only an admitted member awaiting approval can be refused \(status (\S+)\)",
     r"chỉ từ chối được người đã được kết nạp và đang chờ công nhận (trạng thái hiện tại: \1)"),
    (r"card (\S+) was already issued", r"thẻ đoàn viên \1 đã được cấp"),
    (r"a transfer request to (\S+) awaits its decision",
     r"đề nghị chuyển sinh hoạt đến \1 đang chờ quyết định"),
    (r"no transfer request of (\S+) to unit (\S+)", r"không có đề nghị chuyển sinh hoạt của \1 đến đơn vị \2"),
    (r"no scheduled change (\S+) on unit (\S+)", r"không có thay đổi theo lịch \1 của đơn vị \2"),
    (r"a member who is (\S+) cannot be transferred", r"không thể chuyển sinh hoạt cho đoàn viên ở trạng thái \1"),
    (r"no rule in force on (\S+)", r"không có quy định nào có hiệu lực vào ngày \1"),
    (r"an import holds at most (\S+) rows; split the file", r"mỗi lần nhập tối đa \1 dòng; hãy chia nhỏ tệp"),
    (r"an import file is at most (\S+) MB; split the file", r"tệp nhập tối đa \1 MB; hãy chia nhỏ tệp"),
    (r"not a readable XLSX file: (.+)", r"không đọc được tệp XLSX: \1"),
    (r"missing columns (.+)", r"thiếu các cột \1"),
    # reporting
    (r"unit (\S+) is not known to reporting \(yet\)", r"đơn vị \1 chưa có trong dữ liệu phân hệ báo cáo"),
    (r"unknown indicators (.+)", r"chỉ số không xác định: \1"),
    (r"a target of (\S+) counts (.+): a whole number", r"chỉ tiêu \1 tính bằng \2 nên phải là số nguyên"),
    # training: courses, classes, enrolments, certificates
    (r"course (\S+) not found", r"không tìm thấy khóa học \1"),
    (r"class (\S+) not found", r"không tìm thấy lớp tập huấn \1"),
    (r"certificate (\S+) not found", r"không tìm thấy chứng nhận \1"),
    (r"dissemination session (\S+) not found", r"không tìm thấy buổi quán triệt \1"),
    (r"unit (\S+) is not known to training", r"đơn vị \1 chưa có trong dữ liệu phân hệ đào tạo"),
    (r"unit (\S+) already has a course coded (\S+)", r"đơn vị \1 đã có khóa học mã \2"),
    (r"class code (\S+) is taken", r"mã lớp \1 đã được sử dụng"),
    (r"course (\S+) lasts (\S+) day\(s\); (\S+) given", r"khóa học \1 kéo dài \2 ngày; đã nhập \3 ngày"),
    *_CLASS_STATUS_PATTERNS,
    (r"cannot (.+) a class that is (\S+) \(needs (.+)\)",
     r"không thể thực hiện thao tác '\1' với lớp tập huấn ở trạng thái \2 (cần trạng thái: \3)"),
    (r"(\S+) enrolment\(s\) are not assessed yet; record their completion first",
     r"còn \1 học viên chưa được đánh giá kết quả; hãy ghi nhận kết quả hoàn thành trước"),
    (r"member (\S+) is not known to training", r"đoàn viên \1 chưa có trong dữ liệu phân hệ đào tạo"),
    (r"member (\S+) has left the union", r"đoàn viên \1 đã ra khỏi tổ chức công đoàn"),
    (r"member (\S+) is not an active member yet \(status (\S+)\)",
     r"\1 chưa phải là đoàn viên đang sinh hoạt (trạng thái \2)"),
    (r"member (\S+) is already enrolled", r"đoàn viên \1 đã được ghi danh vào lớp"),
    (r"the class is full \((\S+) seats\)", r"lớp tập huấn đã đủ chỗ (\1 chỗ)"),
    (r"member (\S+) is not enrolled in this class", r"đoàn viên \1 không có tên trong lớp tập huấn này"),
    (r"member (\S+) was already assessed \(completed\)", r"đoàn viên \1 đã được đánh giá kết quả (hoàn thành)"),
    (r"member (\S+) was already assessed \(not_completed\)",
     r"đoàn viên \1 đã được đánh giá kết quả (không hoàn thành)"),
    (r"member (\S+) was already assessed \((\S+)\)", r"đoàn viên \1 đã được đánh giá kết quả (\2)"),
    (r"(\S+) is not a day of this class \((.+)\)", r"\1 không phải là ngày học của lớp (\2)"),
    (r"not enrolled \(or already assessed\): (.+)", r"không có tên trong lớp (hoặc đã được đánh giá kết quả): \1"),
    # training: dissemination sessions
    (r"at most (\S+) members per session; record a larger gathering as several sessions",
     r"mỗi buổi quán triệt ghi tối đa \1 đoàn viên; hãy ghi buổi đông người hơn thành nhiều buổi"),
    (r"at most (\S+) units per session", r"mỗi buổi quán triệt ghi tối đa \1 đơn vị"),
    (r"members_reached of unit (\S+) must be a whole number >= 1",
     r"members_reached của đơn vị \1 phải là số nguyên >= 1"),
    (r"unit (\S+) is outside the organising unit", r"đơn vị \1 nằm ngoài phạm vi của đơn vị tổ chức"),
    *_REACH_PATTERNS,
    # welfare: programmes
    (r"programme (\S+) not found", r"không tìm thấy chương trình chăm lo \1"),
    (r"programme (\S+) is closed", r"chương trình chăm lo \1 đã đóng"),
    (r"programme (\S+) is (\S+)", r"chương trình chăm lo \1 không còn mở (trạng thái \2)"),
    (r"unknown funding sources (.+); known: (.+)", r"nguồn kinh phí không hợp lệ \1; các nguồn hợp lệ: \2"),
    (r"unit (\S+) is unknown here \(not yet received from membership\)",
     r"đơn vị \1 chưa có trong dữ liệu phân hệ chăm lo (chưa nhận được từ phân hệ đoàn viên)"),
    (r"amount (\S+) đồng exceeds the (\S+) đồng left in programme (\S+)",
     r"số tiền \1 đồng vượt quá \2 đồng còn lại của chương trình chăm lo \3"),
    # welfare: cases
    (r"case (\S+) not found", r"không tìm thấy hồ sơ hỗ trợ \1"),
    (r"source (\S+) appears twice", r"nguồn kinh phí \1 được kê hai lần"),
    (r"funding shares add up to (\S+) đồng, the amount is (\S+)",
     r"tổng các nguồn kinh phí là \1 đồng, trong khi số tiền hỗ trợ là \2 đồng"),
    (r"the programme is not funded by (.+); its sources: (.+)",
     r"chương trình không có nguồn kinh phí \1; các nguồn của chương trình: \2"),
    (r"member (\S+) is unknown here \(not yet received from membership\)",
     r"đoàn viên \1 chưa có trong dữ liệu phân hệ chăm lo (chưa nhận được từ phân hệ đoàn viên)"),
    *_CASE_STATUS_PATTERNS,
    (r"case (\S+) is (\S+); only a (\S+) case can be (\S+)",
     r"hồ sơ hỗ trợ \1 đang ở trạng thái \2; chỉ hồ sơ ở trạng thái \3 mới được xử lý (\4)"),
    (r"this unit may not approve the case: a level above the CĐCS decides",
     r"đơn vị này không được duyệt hồ sơ hỗ trợ: việc này do công đoàn cấp trên trực tiếp cơ sở quyết định"),
    (r"this unit may not reject the case: a level above the CĐCS decides",
     r"đơn vị này không được từ chối hồ sơ hỗ trợ: việc này do công đoàn cấp trên trực tiếp cơ sở quyết định"),
    (r"this unit may not (\S+) the case: a level above the CĐCS decides",
     r"đơn vị này không được quyết định hồ sơ hỗ trợ (\1): việc này do công đoàn cấp trên trực tiếp cơ sở quyết định"),
    (r"case (\S+) is already being approved", r"hồ sơ hỗ trợ \1 đang được duyệt trong một yêu cầu khác"),
    (r"case (\S+) is already being rejected", r"hồ sơ hỗ trợ \1 đang được từ chối trong một yêu cầu khác"),
    (r"case (\S+) is already being disbursed", r"hồ sơ hỗ trợ \1 đang được chi trong một yêu cầu khác"),
    (r"case (\S+) is already being (\S+)", r"hồ sơ hỗ trợ \1 đang được xử lý trong một yêu cầu khác (\2)"),
    # welfare: micro-loans (Quỹ Trợ vốn)
    (r"term_months is 1\.\.(\S+)", r"term_months phải từ 1 đến \1"),
    (r"a micro-loan is at most (\S+) đồng", r"khoản vay Quỹ Trợ vốn tối đa \1 đồng"),
    (r"case (\S+) is not a micro-loan", r"hồ sơ hỗ trợ \1 không phải là khoản vay Quỹ Trợ vốn"),
    *[(rf"loan (\S+) is {state}; repayments start after disbursement",
       rf"khoản vay \1 {state_vi}; chỉ nhận trả nợ sau khi đã giải ngân") for state, state_vi in _LOAN_STATES.items()],
    (r"loan (\S+) is (\S+); repayments start after disbursement",
     r"khoản vay \1 đang ở trạng thái \2; chỉ nhận trả nợ sau khi đã giải ngân"),
    (r"amount (\S+) exceeds the outstanding (\S+) đồng", r"số tiền \1 vượt quá dư nợ còn lại \2 đồng"),
    # shared general forms (after the specific ones above)
    (r"(\S+) appears twice", r"\1 xuất hiện hai lần"),
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
