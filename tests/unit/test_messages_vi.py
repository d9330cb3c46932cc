"""Error texts in Vietnamese on request (Accept-Language: vi), English by default, the field named in
both; and every refusal the code raises has its Vietnamese text in platformkit/messages_vi.py."""
import ast
from pathlib import Path

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from platformkit import messages_vi
from platformkit.auth import mint
from platformkit.web import RuleViolated, create_app, requires

ROOT = Path(__file__).resolve().parents[2]
REFUSALS = {"InvalidInput", "RuleViolated", "Conflict", "Missing", "NotFound", "TooLarge", "Forbidden", "Unauthorized",
            "Unauthenticated", "FormError", "StepRefused"}  # the last two: periodic reports, re-raised with their text


class CountIn(Schema):
    count = fields.Integer(required=True, validate=validate.Range(min=0, max=10))


def client():
    bp = Blueprint("counts", __name__, url_prefix="/counts")

    @bp.route("", methods=["POST"])
    @requires("member.enter")
    @bp.arguments(CountIn)
    def post(body):
        raise RuleViolated("a CĐCS is founded with at least 5 members or applicants",
                           field="founding.founding_member_count")

    return create_app("counts", [bp], ready=lambda: {}).test_client()


def headers(lang=None):
    h = {"Authorization": "Bearer " + mint("t", "root", ["officer"])}
    if lang:
        h["Accept-Language"] = lang
    return h


def test_400_and_422_name_the_field_in_english_by_default_and_in_vietnamese_on_request():
    c = client()
    r = c.post("/api/v1/counts", json={"count": 99}, headers=headers())
    assert r.status_code == 400 and r.headers["Content-Language"] == "en"
    assert r.json["message"] == "invalid input in 'count': Must be greater than or equal to 0 and less than or equal to 10."
    r = c.post("/api/v1/counts", json={"count": 99}, headers=headers("vi-VN,vi;q=0.9,en;q=0.5"))
    assert r.status_code == 400 and r.headers["Content-Language"] == "vi"
    assert r.json["message"] == "dữ liệu không hợp lệ ở trường 'count': Phải lớn hơn hoặc bằng 0 và nhỏ hơn hoặc bằng 10."
    assert r.json["errors"] == {"count": ["Phải lớn hơn hoặc bằng 0 và nhỏ hơn hoặc bằng 10."]}
    r = c.post("/api/v1/counts", json={}, headers=headers("vi"))
    assert r.json["errors"] == {"count": ["Thiếu trường bắt buộc."]}
    r = c.post("/api/v1/counts", json={"count": 1}, headers=headers("vi"))
    assert r.status_code == 422
    assert r.json["message"] == "CĐCS được thành lập khi có ít nhất 5 đoàn viên hoặc người lao động đăng ký"
    assert r.json["errors"] == {"founding.founding_member_count": [r.json["message"]]}
    r = c.post("/api/v1/counts", json={"count": 1}, headers=headers("en"))
    assert r.json["message"] == "a CĐCS is founded with at least 5 members or applicants"


def raised_messages():
    """(file:line, a sample rendering) of every refusal raised with a literal or f-string text."""
    out = []
    for path in sorted([*ROOT.glob("services/*/*.py"), *ROOT.glob("services/*/*/*.py"), *ROOT.glob("platformkit/*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in REFUSALS or not node.exc.args:
                continue
            arg = node.exc.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                text = arg.value
            elif isinstance(arg, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "X7" for v in arg.values)
            else:
                continue
            out.append((f"{path.relative_to(ROOT)}:{node.lineno}", text))
    return out


def test_every_refusal_raised_in_the_code_has_a_vietnamese_text():
    messages = raised_messages()
    assert len(messages) > 100
    missing = [f"{where}: {text}" for where, text in messages if not messages_vi.known(text)]
    assert not missing, f"{len(missing)} refusals without a Vietnamese text:\n" + "\n".join(missing)
