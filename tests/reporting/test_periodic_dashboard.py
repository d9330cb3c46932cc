"""The periodic reports section of the dashboard in headless Chromium, against gunicorn on the real
database, the hierarchy built by the real projector from Kafka (tests/reporting/test_periodic.py's
`world`): the status tree with its rates and drill-down, approving and returning a child's report,
entering and saving the unit's own figures, the refusal of a submission while children are not
approved (shown in Vietnamese, as text), under the strict CSP with no violation."""
from __future__ import annotations

import json

import pytest
import requests

from platformkit.auth import mint
from tests.reporting.browser import Browser, Tab
from tests.reporting.test_periodic import world  # noqa: F401 - the fixture
from tests.support.infra import Proc, free_port, gunicorn_args, wait_http

pytestmark = pytest.mark.integration

SY = "2025-SY"  # cut-off 30 November: C-S4 (founded July 2025) is expected too


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


@pytest.fixture
def server(world, isolated):  # noqa: F811
    port = free_port()
    web = Proc(gunicorn_args("services.reporting.app:create_app()", port), {}, "gunicorn", isolated["tmp"])
    web.start({"WEB_WORKERS": "1", "WEB_THREADS": "4"})
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")
        yield base
    finally:
        web.stop()


def token(unit: str) -> str:
    return mint(f"officer@{unit}", unit, ["officer"])


def post(base, path, unit, body):
    r = requests.post(f"{base}/api/v1/periodic{path}", json=body, headers={"Authorization": f"Bearer {token(unit)}"},
                      timeout=20)
    assert r.status_code == 200, r.text
    return r.json()


READY = "document.getElementById('rp-status').textContent"


def wait_loaded(tab: Tab) -> str:
    tab.wait(f"/^(Báo cáo cập nhật|Lỗi)/.test({READY})")
    return tab.evaluate(READY)


def open_as(browser, base, unit) -> Tab:
    tab = browser.open(f"{base}/dashboard#token={token(unit)}&year=2025")
    # closed at first: nothing is asked of the reports API until the section is opened
    tab.wait("document.getElementById('status').textContent.startsWith('Cập nhật')")
    assert tab.evaluate(f"document.getElementById('reports').open === false && {READY} === ''")
    tab.evaluate("document.querySelector('#reports > summary').click()")
    wait_loaded(tab)
    tab.evaluate(f"(() => {{ const s = document.getElementById('rp-period'); s.value = {json.dumps(SY)}; "
                 "document.getElementById('rp-status').textContent = ''; s.dispatchEvent(new Event('change')); })()")
    assert wait_loaded(tab).startswith("Báo cáo cập nhật")
    return tab


TREE = ("[...document.querySelectorAll('#rp-tree tbody tr')].map(tr => [tr.dataset.unit, "
        "tr.querySelector('td.status').textContent])")


def tree(tab: Tab) -> dict[str, str]:
    return dict(tab.evaluate(TREE))


def act(tab: Tab, unit: str, selector: str, then: str) -> None:
    """Click a button in a child's row, then wait until its status reads `then`."""
    row = f"[...document.querySelectorAll('#rp-tree tbody tr')].find(tr => tr.dataset.unit === {json.dumps(unit)})"
    tab.evaluate(f"{row}.querySelector({json.dumps(selector)}).click()")
    tab.wait(f"(() => {{ const r = {row}; return r && r.querySelector('td.status').textContent === {json.dumps(then)}; }})()")


def test_status_tree_decisions_and_the_own_form(server, browser):
    base = server
    post(base, f"/C-S1/{SY}/report/submit", "C-S1", {"entered": {"initiatives": 4, "workforce": 50}})
    post(base, f"/C-S2/{SY}/report/submit", "C-S2", {"entered": {"initiatives": 2, "workforce": 30}})
    for indicator, value in (("reports.completeness_pct", 80), ("entered.initiatives", 5)):
        r = requests.put(f"{base}/api/v1/targets/C", json={"year": 2025, "indicator": indicator, "value": value},
                         headers={"Authorization": f"Bearer {token('P')}"}, timeout=10)
        assert r.status_code == 200, r.text

    tab = open_as(browser, base, "C")
    try:
        assert tab.evaluate("document.getElementById('rp-title').textContent").startswith("Đơn vị C — kỳ 2025-SY")
        assert tree(tab) == {"C-S1": "Đã gửi, chờ duyệt", "C-S2": "Đã gửi, chờ duyệt", "C-S3": "Chưa nộp",
                             "C-S4": "Chưa nộp"}
        assert "Đã nộp 2/4 (50 %)" in tab.evaluate("document.getElementById('rp-rates').textContent")
        # the rolled-up indicators: rates against their targets, entered figures as approved and live
        ind = dict(tab.evaluate("[...document.querySelectorAll('#rp-indicators tbody tr')].map(tr => "
                                "[tr.dataset.ind, [...tr.cells].slice(1).map(td => td.textContent)])"))
        assert ind["reports.completeness_pct"] == ["50 %", "", "80 %", "Chưa đạt"]
        assert ind["entered.initiatives"] == ["0", "6", "5", "Chưa đạt"]  # none approved yet; 4 + 2 entered
        assert ind["entered.unionisation_pct"][:2] == ["—", "0 %"]  # none approved; live: 0 members of 80 workers

        # approve one, return the other with a reason typed in its row
        act(tab, "C-S1", "button.approve", "Đã duyệt")
        row2 = "[...document.querySelectorAll('#rp-tree tbody tr')].find(tr => tr.dataset.unit === 'C-S2')"
        tab.evaluate(f"{row2}.querySelector('input.reason').value = '<b>Thiếu</b> số lao động'")
        act(tab, "C-S2", "button.return", "Bị trả lại")
        r = requests.get(f"{base}/api/v1/periodic/C-S2/{SY}/report", headers={"Authorization": f"Bearer {token('C')}"},
                         timeout=10).json()
        assert r["status"] == "returned" and r["returned_reason"] == "<b>Thiếu</b> số lao động"
        # the approved one can be reopened from its row
        assert tab.evaluate(f"!![...document.querySelectorAll('#rp-tree tbody tr')].find(tr => tr.dataset.unit === "
                            f"'C-S1').querySelector('button.reopen')")

        # the commune's own form: the entered figures are inputs; saving keeps them as a draft
        form = tab.evaluate("[...document.querySelectorAll('#rp-form tbody tr')].map(tr => tr.dataset.code)")
        assert form[:2] == ["members_active", "members_active_female"] and "initiatives" in form
        tab.evaluate("document.querySelector('#rp-form input[data-code=\"initiatives\"]').value = '7'")
        tab.evaluate("document.getElementById('rp-status').textContent = ''; document.getElementById('rp-save').click()")
        assert wait_loaded(tab).startswith("Báo cáo cập nhật")
        saved = requests.get(f"{base}/api/v1/periodic/C/{SY}/report", headers={"Authorization": f"Bearer {token('C')}"},
                             timeout=10).json()
        own = {row["code"]: row for row in saved["rows"]}
        assert saved["status"] == "draft" and own["initiatives"]["own"] == 7 and own["initiatives"]["value"] == 7 + 4
        assert tab.evaluate("document.querySelector('#rp-form tr[data-code=\"initiatives\"] td.value').textContent") == "11"

        # submitting while children are not all approved: refused, the reason shown as text in Vietnamese
        tab.evaluate("document.getElementById('rp-status').textContent = ''; document.getElementById('rp-submit').click()")
        message = wait_loaded(tab)
        assert message.startswith("Lỗi 422") and "chưa được duyệt hết" in message and "C-S3" in message

        # no markup from data, nothing the policy refused
        assert tab.evaluate("document.querySelectorAll('#reports b').length") == 0
        assert tab.evaluate("window.__csp_violations") == []
    finally:
        tab.close()

    # the province drills down from its communes to a commune's CĐCS
    tab = open_as(browser, base, "P")
    try:
        assert set(tree(tab)) == {"C", "D"}
        tab.evaluate("document.getElementById('rp-status').textContent = ''; "
                     "[...document.querySelectorAll('#rp-tree td.drill')].find(td => td.textContent === 'Đơn vị C').click()")
        assert wait_loaded(tab).startswith("Báo cáo cập nhật")
        assert tree(tab) == {"C-S1": "Đã duyệt", "C-S2": "Bị trả lại", "C-S3": "Chưa nộp", "C-S4": "Chưa nộp"}
        # the province sees C's own form read-only (it is not its own report)
        assert tab.evaluate("document.querySelectorAll('#rp-form input.entered').length") == 0
        assert tab.evaluate("document.getElementById('rp-submit').hidden") is True
        assert tab.evaluate("window.__csp_violations") == []
    finally:
        tab.close()
