"""Real resources of every kind, seeded through the services' own APIs, for tests that need them
(the authorisation matrix, the OpenAPI fuzzing).

    VN (central, platform) > A (province) > A commune > A CĐCS (+ spare CĐCS and a second commune)
                           > B (province) > B commune > B CĐCS

`seed_membership(s)` fills a namespace `s` with the units and members (membership's API, as the
platform operator); `SEEDERS[service](s)` then returns that service's app with its own resources
created in subtree A: training (courses, classes in each status, enrolments, a certificate, a
dissemination session), welfare (programmes, cases in each status, a disbursed micro-loan),
reporting (a target). Training and welfare read units and members from their local view, reporting
from its own hierarchy: they get membership's events exactly as membership wrote them (its outbox),
through the same handlers their Kafka consumers run. Runs on the caller's databases (`isolated`)."""
from __future__ import annotations

import importlib

from platformkit import mongo
from platformkit.auth import mint
from platformkit.consumer import Record
from platformkit.envelope import encode, from_dict
from tests.support.aggregates import WithOutboxes

API = "/api/v1"


def founding(code):
    return {"method": "standard", "founding_member_count": 7, "founding_group": ["Lê Văn An", "Phạm Thị Bình", "Hoàng Công"],
            "decision_no": f"QĐ-{code}", "decision_date": "2020-01-01"}


def bearer(unit: str, roles=("admin", "officer"), subject: str | None = None) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint(subject or f"officer@{unit}", unit, list(roles))}


PLATFORM = bearer("*", ("admin",), "platform-operator")


def make_app(service: str):
    return importlib.import_module(f"services.{service}.app").create_app()


class Seeder:
    def __init__(self, client, headers=PLATFORM):
        self.client = client
        self.headers = headers

    def call(self, method: str, path: str, body=None, headers=None, status=(200, 201), **kw):
        resp = self.client.open(API + path, method=method, json=body, headers=headers or self.headers, **kw)
        assert resp.status_code in status, (method, path, resp.status_code, resp.get_json())
        return resp.get_json()


def seed_membership(s) -> None:
    """The two subtrees, through membership's API, as the platform operator."""
    m = Seeder(make_app("membership").test_client())

    def unit(name, code, kind, level, parent=None):
        body = {"name": name, "code": code, "kind": kind, "level": level, "parent_id": parent,
                "effective_date": "2020-01-01"}
        if kind == "cdcs":
            body.update(sector="non_state", founding=founding(code))
        return m.call("POST", "/units", body)["id"]

    def member(unit_id, name, cid, approve=True):
        mid = m.call("POST", f"/units/{unit_id}/members",
                     {"full_name": name, "citizen_id": cid, "date_of_birth": "1990-05-17", "gender": "female",
                      "employer": "Công ty May Ánh Dương", "admitted_on": "2025-02-01"})["id"]
        if approve:
            m.call("POST", f"/members/{mid}/approve", {"on": "2025-02-10"})
        return mid

    s.vn = unit("Tổng Liên đoàn Lao động Việt Nam", "VN", "central", 1)
    s.pa = unit("LĐLĐ tỉnh Ánh Dương A", "A", "province", 2, s.vn)
    s.ca = unit("Công đoàn xã Ánh Dương A1", "A-1", "commune", 3, s.pa)
    s.ca2 = unit("Công đoàn phường Ánh Dương A2", "A-2", "commune", 3, s.pa)
    s.sa = unit("CĐCS Công ty May Ánh Dương A", "A-1-001", "cdcs", 4, s.ca)
    s.sa2 = unit("CĐCS Trường Ánh Dương A", "A-1-002", "cdcs", 4, s.ca)
    s.sm = unit("CĐCS Xí nghiệp sáp nhập A", "A-1-003", "cdcs", 4, s.ca)
    s.sd = unit("CĐCS Hợp tác xã giải thể A", "A-1-004", "cdcs", 4, s.ca)
    s.smv = unit("CĐCS Chi nhánh chuyển A", "A-1-005", "cdcs", 4, s.ca)
    s.pb = unit("LĐLĐ tỉnh Bến Bờ B", "B", "province", 2, s.vn)
    s.cb = unit("Công đoàn xã Bến Bờ B1", "B-1", "commune", 3, s.pb)
    s.sb = unit("CĐCS Công ty Bến Bờ B", "B-1-001", "cdcs", 4, s.cb)
    s.ma = member(s.sa, "Trần Thị Ánh Nguyệt", "079190000001")
    s.m_admitted = member(s.sa, "Lê Thị Chờ Duyệt", "079190000002", approve=False)
    s.m_transfer = member(s.sa, "Phạm Văn Chuyển Đi", "079190000003")
    s.m_leave = member(s.sa, "Hoàng Văn Nghỉ Việc", "079190000004")
    s.mb = member(s.sb, "Ngô Thị Bến Bờ", "079190000005")
    # admissions awaiting the level above (one refused alone, one decided in a batch) and an active
    # member without a card (issued in a batch)
    s.m_refuse = member(s.sa, "Đặng Thị Bị Từ Chối", "079190000006", approve=False)
    s.m_batch = member(s.sa, "Đinh Văn Duyệt Loạt", "079190000007", approve=False)
    s.m_card = member(s.sa, "Lý Thị Thẻ Loạt", "079190000008")
    # transfer requests across the two subtrees (each side's officer asks; the other side decides):
    # two from B into A (one accepted, one refused by A), one from A into B (cancelled by A)
    letter = {"letter_no": "GGT-01", "letter_date": "2025-09-01"}
    s.m_incoming = member(s.sb, "Ngô Văn Đến Một", "079190000009")
    s.m_incoming2 = member(s.sb, "Ngô Văn Đến Hai", "079190000010")
    for mid in (s.m_incoming, s.m_incoming2):
        m.call("POST", f"/members/{mid}/transfer", {"to_unit_id": s.sa, **letter}, headers=bearer(s.pb))
    s.m_outgoing = member(s.sa, "Phạm Thị Xin Đi", "079190000011")
    m.call("POST", f"/members/{s.m_outgoing}/transfer", {"to_unit_id": s.sb, **letter}, headers=bearer(s.pa))
    # a dissolution scheduled for a future date (cancellable)
    scheduled = m.call("POST", f"/units/{s.sa2}/dissolve", {"effective_date": "2099-12-31"})["scheduled"]
    s.change_sa2 = next(iter(scheduled))
    s.secrets = ["Ánh Dương", "Ánh Nguyệt", "Chờ Duyệt", "Chuyển Đi", "Nghỉ Việc", "sáp nhập A", "giải thể A",
                 "chuyển A", "079190000001", "079190000002", "079190000003", "079190000004", "079190000101",
                 "079190000102", "Nhập A", "Mới A", "Bị Từ Chối", "Duyệt Loạt", "Thẻ Loạt", "079190000006",
                 "079190000007", "079190000008", "Xin Đi", "079190000011"]
    s.a_ids = [s.pa, s.ca, s.ca2, s.sa, s.sa2, s.sm, s.sd, s.smv, s.ma, s.m_admitted, s.m_transfer, s.m_leave,
               s.m_refuse, s.m_batch, s.m_card, s.m_outgoing]


def membership_records() -> list[Record]:
    """Membership's events as it wrote them (its outbox; no relay runs here): units by depth, then
    members, each aggregate's events in order, as Kafka records."""
    db = WithOutboxes(mongo.database("membership"), ("units", "members"))  # events of their change documents
    units = sorted(db.units.find({}, {"outbox": 1, "ancestors": 1}), key=lambda d: (len(d["ancestors"]), d["_id"]))
    members = sorted(db.members.find({}, {"outbox": 1}), key=lambda d: d["_id"])
    envs = [from_dict(e) for d in units + members for e in d.get("outbox") or []]
    return [Record("membership.events", 0, i, e.subject.encode(), encode(e), 0, e) for i, e in enumerate(envs)]


def seed_training(s):
    from services.training.stores import stores
    from services.training.view import apply_membership_batch
    app = make_app("training")
    assert apply_membership_batch(membership_records(), stores()) == {}
    t = Seeder(app.test_client(), bearer(s.pa))
    course = {"name": "An toàn, vệ sinh lao động Ánh Dương", "topic": "osh", "audience": "members",
              "duration_days": 2, "min_attendance_percent": 50, "owner_unit_id": s.pa}
    s.course = t.call("POST", "/courses", {**course, "code": "A-ATVS"})["id"]
    s.course_retire = t.call("POST", "/courses", {**course, "code": "A-OLD"})["id"]
    s.session = t.call("POST", "/dissemination-sessions", {
        "organising_unit_id": s.pa, "topic": "Nghị quyết Ánh Dương", "held_on": "2025-09-01",
        "member_ids": [s.ma], "reached": [{"unit_id": s.sa, "members_reached": 30}]})["id"]

    def klass(code, *steps):
        kid = t.call("POST", "/classes", {"course_id": s.course, "code": code, "organising_unit_id": s.ca,
                                          "name": f"Lớp {code} Ánh Dương", "start_date": "2025-10-06",
                                          "capacity": 10})["id"]
        for step in steps:
            if step == "enrol":
                t.call("POST", f"/classes/{kid}/enrolments", {"member_id": s.ma, "on": "2025-10-01"})
            elif step == "attend":
                for day in ("2025-10-06", "2025-10-07"):
                    t.call("POST", f"/classes/{kid}/attendance", {"date": day, "present": [s.ma]})
            elif step == "assess":
                t.call("POST", f"/classes/{kid}/enrolments/{s.ma}/completion", {"score": 9})
            else:
                t.call("POST", f"/classes/{kid}/{step}", {} if step == "close" else None)
        return kid

    s.k_plan = klass("A-K-PLAN")
    s.k_start = klass("A-K-START", "open")
    s.k_close = klass("A-K-CLOSE", "open", "start")
    s.k_cancel = klass("A-K-CANCEL")
    s.k_enrol = klass("A-K-ENROL", "open")
    s.k_withdraw = klass("A-K-WD", "open", "enrol")
    s.k_run = klass("A-K-RUN", "open", "enrol", "start")
    s.k_done = klass("A-K-DONE", "open", "enrol", "start", "attend", "assess")
    cert = t.call("GET", f"/classes/{s.k_done}/certificates")
    s.certificate = cert[0]["certificate_no"]
    s.secrets += ["Lớp A-K", "Kỹ năng đối thoại"]
    s.a_ids += [s.course, s.course_retire, s.session, s.k_plan, s.k_start, s.k_close, s.k_cancel, s.k_enrol,
                s.k_withdraw, s.k_run, s.k_done, s.certificate]
    return app


def seed_welfare(s):
    from services.welfare.description import membership_view_handler as make_handler
    from services.welfare.stores import stores
    app = make_app("welfare")
    assert make_handler(stores().db)(membership_records()) == {}
    w = Seeder(app.test_client(), bearer(s.pa))

    def programme(name, kind):
        return w.call("POST", "/programmes", {"name": name, "kind": kind, "unit_id": s.pa, "year": 2025,
                                              "budget": 100_000_000, "funding_sources": ["union_fund"]})["id"]

    def case(programme_id, *steps, loan=None):
        body = {"programme_id": programme_id, "member_id": s.ma, "hardship_type": "illness", "amount": 2_000_000,
                "form": "cash", "requested_on": "2025-03-01", "note": "Ánh Dương: hoàn cảnh khó khăn",
                "funding": [{"source": "union_fund", "amount": 2_000_000}]}
        if loan:
            body.update(hardship_type="poverty", amount=6_000_000, loan={"term_months": 12},
                        funding=[{"source": "union_fund", "amount": 6_000_000}])
        cid = w.call("POST", "/cases", body)["id"]
        dated = {"approve": {"approved_on": "2025-03-02"}, "disburse": {"disbursed_on": "2025-03-05"}}
        for step in steps:
            w.call("POST", f"/cases/{cid}/{step}", dated[step])
        return cid

    s.programme = programme("Thăm hỏi đoàn viên Ánh Dương 2025", "hardship_visit")
    s.loan_programme = programme("Quỹ Trợ vốn Ánh Dương", "micro_loan")
    s.case_approve = case(s.programme)
    s.case_reject = case(s.programme)
    s.case_disburse = case(s.programme, "approve")
    s.loan = case(s.loan_programme, "approve", "disburse", loan=True)
    s.secrets += ["Sum vầy tỉnh A", "Ốm dài ngày"]
    s.a_ids += [s.programme, s.loan_programme, s.case_approve, s.case_reject, s.case_disburse, s.loan]
    return app


def seed_reporting(s):
    from services.reporting.projector import ProjectorHandler, db
    from services.reporting.store import Generation, active_generation
    app = make_app("reporting")
    handler = ProjectorHandler(Generation(db(), active_generation(db())))
    assert handler(membership_records()) == {}
    r = Seeder(app.test_client(), bearer(s.pa))
    r.call("PUT", f"/targets/{s.ca}", {"year": 2025, "indicator": "members.active", "value": 50})
    # periodic reports: one submitted (to approve), one approved (to reopen); each by its own unit
    Seeder(app.test_client(), bearer(s.sa2)).call("POST", f"/periodic/{s.sa2}/2025-H1/report/submit",
                                                  {"entered": {"initiatives": 2, "workforce": 40}})
    Seeder(app.test_client(), bearer(s.sa)).call("POST", f"/periodic/{s.sa}/2025-SY/report/submit", {})
    Seeder(app.test_client(), bearer(s.ca)).call("POST", f"/periodic/{s.sa}/2025-SY/report/approve", {})
    return app


SEEDERS = {"membership": lambda s: make_app("membership"), "training": seed_training,
           "welfare": seed_welfare, "reporting": seed_reporting}
