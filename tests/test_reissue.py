"""The reissue (재발급) flow in the core: every step, every allowed and refused move, restarts, the form."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.clock import to_iso
from bot.config import load_config
from bot.demo import seed
from bot.helpdesk import Helpdesk
from bot.registry import CertificateRecord, Registry
from bot.reissue import (REQUEST_TRANSITIONS, TRANSITIONS, Reissue, TransitionError, check_request_transition,
                         check_transition)
from bot.render import to_plain
from bot.types import Inbound, Reply
from tests.conftest import Talk

HOLDER = "S0001"  # 김하늘: a valid 행정기관 개인용 sig+env pair; phone 010-0000-1001
PHONE = "010-0000-1001"
STAFF_CHAT = "-100777"


@pytest.fixture
def seeded(hd: Helpdesk) -> Helpdesk:
    seed(hd)
    return hd


def linked(hd: Helpdesk, employee_id: str = HOLDER, chat_id: str | None = None) -> Talk:
    talk = Talk(hd, chat_id=chat_id or f"console:{employee_id}", user_name="김하늘")
    Registry(hd).link_chat(employee_id, talk.chat_id)
    return talk


def tags(talk: Talk) -> list[str]:
    return talk.tags()


def step(talk: Talk) -> str:
    """The step the last replies show (tag reissue:<step>)."""
    steps = [t.split(":", 1)[1] for t in talk.tags() if t.startswith("reissue:")]
    return steps[-1]


def flow_button(talk: Talk, verb: str, arg: str = "") -> str:
    """The data of the shown button with this verb (and argument)."""
    for button in talk.buttons():
        parts = button.action.split(":")
        if parts[0] == "rf" and parts[1] != "q" and parts[2] == verb and (not arg or parts[3:] == [arg]):
            return button.action
    raise AssertionError(f"no rf {verb}:{arg} button among {[b.action for b in talk.buttons()]}")


def draft_row(hd: Helpdesk, chat_id: str) -> tuple | None:
    return hd.store.db.execute("SELECT step, data, reminded_at FROM reissue_drafts WHERE chat_id = ?",
                               [chat_id]).fetchone()


def requests(hd: Helpdesk) -> list[dict]:
    return [r.as_json() for r in Reissue(hd).requests()]


def to_summary(talk: Talk, reason: str = "password") -> None:
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", reason))
    assert step(talk) == "certificate"
    talk.press_data(flow_button(talk, "c"))
    if reason in ("media", "leak"):
        assert step(talk) == "revoke"
        talk.press_data(flow_button(talk, "v", "self"))
    assert step(talk) == "phone"
    talk.say(PHONE)
    assert step(talk) == "summary"


# -- the state machine as data --------------------------------------------------------------------------

@pytest.mark.parametrize("source, target", [
    (None, "summary"), ("reason", "submitted"), ("identity", "edit"), ("certificate", "submitted"),
    ("revoke", "certificate"), ("phone", "revoke"), ("summary", "phone"), ("edit", "submitted"),
])
def test_transitions_not_in_the_table_are_refused(source, target) -> None:
    with pytest.raises(TransitionError):
        check_transition(source, target)


def test_every_listed_transition_and_the_ends_are_allowed() -> None:
    for source, targets in TRANSITIONS.items():
        for target in targets | {"cancelled", "expired"}:
            check_transition(source, target)


@pytest.mark.parametrize("status, target, ok", [
    ("submitted", "approved", True), ("submitted", "rejected", True), ("submitted", "cancelled", True),
    ("approved", "issued", True), ("approved", "cancelled", True), ("submitted", "issued", False),
    ("approved", "rejected", False), ("rejected", "approved", False), ("issued", "cancelled", False),
    ("cancelled", "approved", False),
])
def test_request_status_transitions(status, target, ok) -> None:
    assert (target in REQUEST_TRANSITIONS[status]) is ok
    if ok:
        check_request_transition(status, target)
    else:
        with pytest.raises(TransitionError):
            check_request_transition(status, target)


# -- the way through --------------------------------------------------------------------------------------

def test_from_forgotten_password_to_a_submitted_request_and_its_form(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    talk.say("인증서 비밀번호를 잊어버렸어요")
    assert "answer:password.forgotten" in tags(talk)
    talk.press("act:reissue")
    assert step(talk) == "reason" and "1/5" in talk.text()
    talk.press("비밀번호를 잊어버렸어요")
    assert step(talk) == "certificate"
    assert "김하늘님" in talk.text() and "행정기관 개인용" in talk.text() and "서명용" in talk.text()
    talk.press_data(flow_button(talk, "c"))
    assert step(talk) == "phone"
    talk.say("010 0000 1001")
    assert "reissue:phone_ok" in tags(talk) and step(talk) == "summary"
    summary = talk.text()
    assert "비밀번호 분실" in summary and "010-****-**01" in summary and "0000-1001" not in summary
    talk.press("제출")
    assert "reissue:submitted" in tags(talk)
    assert "R-2026-000001" in talk.text() and "소속 기관 등록기관 인증담당자" in talk.text()
    documents = {r.document.filename: r.document for r in talk.last if r.document is not None}
    html = documents["reissue-form-R-2026-000001.html"].content.decode()
    assert "재발급" in html and "김하늘" in html and "주민등록번호" in html and "A4" in html
    assert "900101" not in html and "0000-1001" not in html  # the demo RRN and the full phone never appear
    assert list(documents) == ["reissue-form-R-2026-000001.html"]
    talk.press("PDF로 받기")  # on request: laying out the Korean font takes most of a second
    [pdf] = [r.document for r in talk.last if r.document is not None]
    assert pdf.filename == "reissue-form-R-2026-000001.pdf" and pdf.content.startswith(b"%PDF")
    assert b"NotoSansKR" in pdf.content  # the Korean font travels inside the file
    [request] = requests(seeded)
    assert request["status"] == "submitted" and request["employee_id"] == HOLDER
    assert request["reason"] == "password" and request["phone_masked"] == "010-****-**01"
    assert request["cert_usage"] == "personal-admin" and "," in request["cert_serial"]  # the sig+env pair
    assert draft_row(seeded, talk.chat_id) is None and seeded.flows.get(talk.chat_id) is None
    history = Reissue(seeded).history(Reissue(seeded).request("R-2026-000001"))
    assert [(h["from"], h["to"], h["actor"]) for h in history] == [(None, "submitted", "user")]


def test_no_full_phone_number_is_stored_anywhere(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    to_summary(talk)
    talk.press("제출")
    for table in ("reissue_requests", "reissue_drafts", "turns", "conversations", "outbox", "reissue_history"):
        dump = json.dumps(seeded.store.db.execute(f"SELECT * FROM {table}").fetchall(), ensure_ascii=False)
        assert "00001001" not in dump and "0000-1001" not in dump and "0000 1001" not in dump, table


def test_unlinked_user_is_told_how_to_link_and_resumes_after(seeded: Helpdesk) -> None:
    talk = Talk(seeded, chat_id="console:new")
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "expired"))
    assert step(talk) == "identity" and "/link" in talk.text()
    talk.press_data(flow_button(talk, "i"))  # not linked yet: the same step again
    assert step(talk) == "identity"
    code = Registry(seeded).create_link_code(HOLDER).code
    talk.say(f"/link {code}")
    talk.say("/reissue")
    assert step(talk) == "certificate" and "이어서" in talk.text()  # resumed, the reason kept
    assert json.loads(draft_row(seeded, talk.chat_id)[1])["reason"] == "expired"


def test_linked_meanwhile_the_button_goes_on(seeded: Helpdesk) -> None:
    talk = Talk(seeded, chat_id="console:new")
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "password"))
    Registry(seeded).link_chat(HOLDER, talk.chat_id)
    talk.press("연결했어요, 계속할게요")
    assert step(talk) == "certificate"
    Registry(seeded).unlink(talk.chat_id)  # unlinked in the middle: back to identity, answers kept
    talk.press_data(flow_button(talk, "c"))
    assert step(talk) == "identity"


def test_a_request_of_a_lost_token_asks_to_revoke_first(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "media"))
    talk.press_data(flow_button(talk, "c"))
    assert step(talk) == "revoke" and "www.gpki.go.kr" in talk.text() and "4/6" in talk.text()
    assert [b.action.split(":")[-1] for b in talk.buttons() if ":v:" in b.action] == ["self", "later"]
    token = flow_button(talk, "v", "self").split(":")[1]
    talk.press_data(f"rf:{token}:v:document")  # 공문 is not offered for a personal certificate
    assert "reissue:wrong_step" in tags(talk) and step(talk) == "revoke"
    talk.press_data(flow_button(talk, "v", "later"))
    assert "reissue:revoke_later" in tags(talk) and draft_row(seeded, talk.chat_id)[0] == "revoke"
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "v", "self"))
    assert step(talk) == "phone"
    talk.say(PHONE)
    assert "gpki.go.kr에서 본인이 폐지함" in talk.text()


def test_an_epki_certificate_is_revoked_by_document(seeded: Helpdesk) -> None:
    talk = linked(seeded, "S0008")
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "leak"))
    talk.press_data(flow_button(talk, "c"))
    assert step(talk) == "revoke" and "공문" in talk.text() and "교육" in talk.text()
    talk.press_data(flow_button(talk, "v", "document"))
    assert step(talk) == "phone"


def test_an_already_revoked_certificate_skips_the_revoke_step(seeded: Helpdesk) -> None:
    talk = linked(seeded, "S0005")  # revoked for keyCompromise
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "leak"))
    assert "폐지됨" in talk.text()
    talk.press_data(flow_button(talk, "c"))
    assert step(talk) == "phone"
    talk.say("010-0000-1005")
    assert "이미 폐지됨" in talk.text()


def test_certificate_typed_by_serial_is_accepted(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "password"))
    serial = Registry(seeded).certificates(HOLDER)[0].serial
    talk.say(":".join(serial[i:i + 2] for i in range(0, len(serial), 2)).lower())
    assert step(talk) == "phone"


def test_a_certificate_not_in_the_registry_leaves_the_form_blank(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "other"))
    talk.press_data(flow_button(talk, "c", "none"))
    talk.say(PHONE)
    assert "목록에 없음" in talk.text()
    talk.press("제출")
    assert "개인용은" in talk.text() and "KLID" in talk.text()  # where to send, both, as the kind is unknown


# -- edit -------------------------------------------------------------------------------------------------

def test_edit_reason_then_the_revoke_step_then_back_to_the_summary(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    to_summary(talk)
    talk.press("수정")
    assert step(talk) == "edit"
    talk.press_data(flow_button(talk, "e", "reason"))
    assert step(talk) == "reason"
    talk.press_data(flow_button(talk, "r", "leak"))
    assert step(talk) == "revoke"  # the certificate and phone are kept; only the new step is asked
    talk.press_data(flow_button(talk, "v", "self"))
    assert step(talk) == "summary" and "인증키 누설 의심" in talk.text()


def test_edit_phone_and_back(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    to_summary(talk)
    talk.press("수정")
    talk.press_data(flow_button(talk, "e", "back"))
    assert step(talk) == "summary"
    talk.press("수정")
    talk.press_data(flow_button(talk, "e", "phone"))
    assert step(talk) == "phone"
    talk.say(PHONE)
    assert step(talk) == "summary"


# -- bad input at every step: a short explanation and the same step, nothing lost -------------------------

@pytest.mark.parametrize("reason, at", [
    ("password", "reason"), ("password", "certificate"), ("media", "revoke"), ("password", "summary"),
    ("password", "edit"),
])
def test_free_text_where_a_button_is_expected(seeded: Helpdesk, reason: str, at: str) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    moves = {"reason": [], "certificate": [("r", reason)], "revoke": [("r", reason), ("c", "")],
             "summary": None, "edit": None}[at]
    if moves is None:
        to_summary(talk, reason)
        if at == "edit":
            talk.press("수정")
    else:
        for verb, arg in moves:
            talk.press_data(flow_button(talk, verb, arg))
    before = draft_row(seeded, talk.chat_id)
    talk.say("그냥 아무 말이나 적어요")
    assert "reissue:use_buttons" in tags(talk) and step(talk) == at
    assert draft_row(seeded, talk.chat_id)[:2] == before[:2]


def test_a_button_of_another_step_is_explained(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    reason_button = flow_button(talk, "r", "password")
    talk.press_data(reason_button)
    talk.press_data(flow_button(talk, "c"))
    talk.press_data(reason_button)  # pressed again from the history while the phone is asked
    assert "reissue:wrong_step" in tags(talk) and step(talk) == "phone"


def test_a_stale_button_of_an_earlier_flow(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    old = flow_button(talk, "r", "password")
    talk.say("/cancel")
    assert "reissue:cancelled" in tags(talk)
    talk.press_data(old)
    assert "reissue:gone" in tags(talk)
    talk.say("/reissue")
    talk.press_data(old)
    assert "reissue:stale" in tags(talk) and step(talk) == "reason"


def test_another_holders_certificate_in_the_callback_is_refused(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "password"))
    token = flow_button(talk, "c").split(":")[1]
    other = Registry(seeded).certificates("S0002")[0].id
    for arg in (str(other), "999999", "abc"):
        talk.press_data(f"rf:{token}:c:{arg}")
        assert "reissue:not_yours" in tags(talk) and step(talk) == "certificate"
    assert "cert" not in json.loads(draft_row(seeded, talk.chat_id)[1])


@pytest.mark.parametrize("typed, tag", [
    ("전화번호 몰라요", "reissue:phone_format"), ("02-123-4567", "reissue:phone_format"),
    ("010-9999-8888", "reissue:phone_mismatch"),
])
def test_phone_step_refusals(seeded: Helpdesk, typed: str, tag: str) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "password"))
    talk.press_data(flow_button(talk, "c"))
    talk.say(typed)
    assert tag in tags(talk) and step(talk) == "phone"
    if tag == "reissue:phone_mismatch":
        assert "010-****-**88" in talk.text() and "9999" not in talk.text()
        assert "act:staff" in [b.action for b in talk.buttons()]
    talk.say(PHONE)
    assert step(talk) == "summary"


def test_double_submit_creates_one_request(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    to_summary(talk)
    submit = flow_button(talk, "s", "submit")
    talk.press_data(submit)
    talk.press_data(submit)
    assert "reissue:duplicate" in tags(talk) and "R-2026-000001" in talk.text()
    assert len(requests(seeded)) == 1


def test_references_count_per_year(seeded: Helpdesk, clock) -> None:
    first = linked(seeded)
    to_summary(first)
    first.press("제출")
    second = linked(seeded, "S0002")
    second.say("/reissue")
    second.press_data(flow_button(second, "r", "password"))
    second.press_data(flow_button(second, "c"))
    second.say("010-0000-1002")
    second.press("제출")
    clock.advance(days=40)  # 2027
    third = linked(seeded, "S0003")
    third.say("/reissue")
    third.press_data(flow_button(third, "r", "password"))
    third.press_data(flow_button(third, "c"))
    third.say("010-0000-1003")
    third.press("제출")
    assert [r["ref"] for r in requests(seeded)] == ["R-2026-000001", "R-2026-000002", "R-2027-000001"]


# -- cancel, restart, status ------------------------------------------------------------------------------

def test_cancel_button_and_command_drop_the_draft(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "password"))
    talk.press("신청 그만두기")
    assert "reissue:cancelled" in tags(talk) and draft_row(seeded, talk.chat_id) is None
    assert seeded.flows.get(talk.chat_id) is None
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "password"))
    talk.say("/cancel")
    assert "reissue:cancelled" in tags(talk) and draft_row(seeded, talk.chat_id) is None


def test_restart_resumes_at_the_same_step(config, clock) -> None:
    first = Helpdesk(config, clock=clock)
    seed(first)
    talk = linked(first)
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "password"))
    cert_button = flow_button(talk, "c")
    first.store.db.conn.close()  # as after kill -9: nothing but the database file survives
    second = Helpdesk(config, clock=clock)
    try:
        again = Talk(second, chat_id=talk.chat_id)
        again.press_data(cert_button)  # a button shown before the restart still works
        assert step(again) == "phone"
        third = Helpdesk(config, clock=clock)
        try:
            after = Talk(third, chat_id=talk.chat_id)
            after.say(PHONE)  # the phone step survived another restart
            assert step(after) == "summary"
        finally:
            third.close()
    finally:
        second.close()


def test_reissue_shows_the_open_request_and_lets_the_user_cancel_it(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    to_summary(talk)
    talk.press("제출")
    talk.say("/reissue")
    assert "reissue:status:submitted" in tags(talk) and "R-2026-000001" in talk.text()
    talk.press("신청서 다시 받기")
    assert [r.document.filename for r in talk.last if r.document] == ["reissue-form-R-2026-000001.html"]
    talk.say("/reissue")
    talk.press("신청 취소하기")
    talk.press("아니요, 그대로 둘게요")
    assert Reissue(seeded).request("R-2026-000001").status == "submitted"
    talk.press("신청 취소하기")
    talk.press("네, 신청을 취소할게요")
    assert "reissue:request_cancelled" in tags(talk)
    assert Reissue(seeded).request("R-2026-000001").status == "cancelled"
    talk.say("/reissue")  # nothing open: a new flow
    assert step(talk) == "reason"


def test_someone_elses_request_buttons_are_refused(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    to_summary(talk)
    talk.press("제출")
    stranger = Talk(seeded, chat_id="console:stranger")
    for data in ("rf:q:doc:R-2026-000001", "rf:q:pdf:R-2026-000001", "rf:q:xy:R-2026-000001"):
        stranger.press_data(data)
        assert "reissue:none" in stranger.tags() and not any(r.document for r in stranger.last)
    assert Reissue(seeded).request("R-2026-000001").status == "submitted"


# -- idle flows: one reminder after 24 h, gone after 7 days -------------------------------------------------

def test_reminder_once_after_a_day_and_expiry_after_a_week(seeded: Helpdesk, clock) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "password"))
    engine = Reissue(seeded)
    clock.advance(hours=23, minutes=59)
    assert engine.due_flow_reminders(seeded.now()) == []
    clock.advance(minutes=1)
    [due] = engine.due_flow_reminders(seeded.now())
    assert (due.chat_id, due.kind, due.step) == (talk.chat_id, "remind", "certificate")
    assert engine.sweep() == {"reminded": 1, "expired": 0, "issued": 0}
    [reminder] = seeded.pending_for(talk.chat_id)
    assert "인증서 선택" in to_plain(reminder.text) and "이어서 하기" in [b.label for b in reminder.all_buttons()]
    clock.advance(hours=5)
    assert engine.sweep()["reminded"] == 0  # once only
    talk.last = [reminder]
    talk.press("이어서 하기")  # the user comes back: the idle clock restarts
    assert step(talk) == "certificate"
    clock.advance(days=6, hours=23)
    assert [d.kind for d in engine.due_flow_reminders(seeded.now())] == ["remind"]
    engine.sweep()
    clock.advance(hours=1, minutes=1)
    assert [d.kind for d in engine.due_flow_reminders(seeded.now())] == ["expire"]
    assert engine.sweep()["expired"] == 1
    assert draft_row(seeded, talk.chat_id) is None and seeded.flows.get(talk.chat_id) is None
    texts = [to_plain(r.text) for r in seeded.pending_for(talk.chat_id)]
    assert any("7일" in t and "지웠어요" in t for t in texts)


# -- staff ------------------------------------------------------------------------------------------------

@pytest.fixture
def staffed(db_path, clock) -> Helpdesk:
    config = load_config(environ={"HELPDESK_DB": str(db_path), "HELPDESK_PII_KEY": "test-pii-key",
                                  "HELPDESK_STAFF_CHAT_ID": STAFF_CHAT})
    hd = Helpdesk(config, clock=clock)
    seed(hd)
    yield hd
    hd.close()


def telegram_inbound(chat_id: str, action: str, user: str = "42", name: str = "박상담") -> Inbound:
    return Inbound(chat_id=chat_id, user_id=user, user_name=name, action=action, channel="telegram",
                   chat_type="supergroup" if chat_id.startswith("-") else "private")


def submit_from_telegram(hd: Helpdesk, chat_id: str = "5551") -> list[Reply]:
    Registry(hd).link_chat(HOLDER, chat_id)
    hd.handle(Inbound(chat_id=chat_id, user_id=chat_id, text="/reissue", channel="telegram"))
    token = hd.flows.get(chat_id).data["token"]
    hd.handle(telegram_inbound(chat_id, f"rf:{token}:r:password", chat_id))
    cert = Reissue(hd).choices(Registry(hd).holder(HOLDER))[0].id
    hd.handle(telegram_inbound(chat_id, f"rf:{token}:c:{cert}", chat_id))
    hd.handle(Inbound(chat_id=chat_id, user_id=chat_id, text=PHONE, channel="telegram"))
    return hd.handle(telegram_inbound(chat_id, f"rf:{token}:s:submit", chat_id))


def test_staff_chat_sees_the_new_request_with_buttons(staffed: Helpdesk) -> None:
    replies = submit_from_telegram(staffed)
    [staff] = [r for r in replies if r.chat_id == STAFF_CHAT]
    assert "R-2026-000001" in staff.text and "김하늘" in staff.text and "010-****-**01" in staff.text
    assert [b.action for b in staff.all_buttons()] == ["rs:a:R-2026-000001", "rs:r:R-2026-000001"]


def test_a_console_request_reaches_the_staff_chat_through_the_outbox(staffed: Helpdesk) -> None:
    talk = linked(staffed)
    to_summary(talk)
    talk.press("제출")
    assert not [r for r in talk.last if r.chat_id == STAFF_CHAT]
    row = staffed.store.db.execute("SELECT text, buttons FROM outbox WHERE chat_id = ?", [STAFF_CHAT]).fetchone()
    assert "R-2026-000001" in row[0] and "rs:a:R-2026-000001" in row[1]


@pytest.mark.parametrize("chat_id", ["5551", "-100999", "console:someone"])
def test_staff_buttons_are_refused_outside_the_staff_chat(staffed: Helpdesk, chat_id: str) -> None:
    submit_from_telegram(staffed)
    for data in ("rs:a:R-2026-000001", "rs:rr:R-2026-000001:mismatch"):
        replies = staffed.handle(telegram_inbound(chat_id, data))
        assert [t for r in replies for t in r.tags] == ["reissue:staff_only"]
    assert Reissue(staffed).request("R-2026-000001").status == "submitted"


def test_staff_approve_tells_the_user_at_once(staffed: Helpdesk) -> None:
    submit_from_telegram(staffed)
    replies = staffed.handle(telegram_inbound(STAFF_CHAT, "rs:a:R-2026-000001"))
    assert "reissue:staff_approved" in replies[0].tags and "박상담" in replies[0].text
    [to_user] = [r for r in replies if r.chat_id == "5551"]
    assert "승인됨" in to_plain(to_user.text) and "www.gpki.go.kr" in to_user.text
    request = Reissue(staffed).request("R-2026-000001")
    assert request.status == "approved" and request.decided_by == "staff:42"
    again = staffed.handle(telegram_inbound(STAFF_CHAT, "rs:a:R-2026-000001"))
    assert "reissue:closed" in again[0].tags  # a double tap changes nothing


def test_staff_reject_with_a_reason(staffed: Helpdesk) -> None:
    submit_from_telegram(staffed)
    pick = staffed.handle(telegram_inbound(STAFF_CHAT, "rs:r:R-2026-000001"))
    assert [b.action for b in pick[0].all_buttons()][0] == "rs:rr:R-2026-000001:mismatch"
    replies = staffed.handle(telegram_inbound(STAFF_CHAT, "rs:rr:R-2026-000001:mismatch"))
    [to_user] = [r for r in replies if r.chat_id == "5551"]
    assert "반려" in to_user.text and "등록된 정보와 달라요" in to_user.text
    request = Reissue(staffed).request("R-2026-000001")
    assert request.status == "rejected" and request.status_note == "신청 정보가 등록된 정보와 달라요."


def test_staff_commands_in_the_staff_chat(staffed: Helpdesk) -> None:
    submit_from_telegram(staffed)
    listing = staffed.handle(Inbound(chat_id=STAFF_CHAT, user_id="42", text="/reissue", channel="telegram"))
    assert "R-2026-000001" in listing[0].text and "reissue:staff_list" in listing[0].tags
    replies = staffed.handle(Inbound(chat_id=STAFF_CHAT, user_id="42", user_name="박상담", channel="telegram",
                                     text="/reissue reject r-2026-000001 서명 누락으로 다시 보내 주세요"))
    assert Reissue(staffed).request("R-2026-000001").status_note == "서명 누락으로 다시 보내 주세요"
    assert any(r.chat_id == "5551" for r in replies)


# -- issued -------------------------------------------------------------------------------------------------

def test_an_approved_request_closes_when_the_new_certificate_appears(staffed: Helpdesk, clock) -> None:
    submit_from_telegram(staffed)
    engine = Reissue(staffed)
    assert engine.reconcile_issued() == []  # submitted, not approved: not closed
    engine.decide("R-2026-000001", "approved", "cli")
    assert engine.reconcile_issued() == []  # nothing new in the registry yet
    clock.advance(days=2)
    old = Registry(staffed).certificates(HOLDER)[0]
    Registry(staffed).upsert_certificate(CertificateRecord(
        issuer=old.issuer, serial="7A0001", employee_id=HOLDER, kind="sig", usage="personal-admin",
        policy_oid=old.policy_oid, not_before=staffed.now() - timedelta(hours=1),
        not_after=staffed.now() + timedelta(days=700)))
    assert engine.sweep()["issued"] == 1
    request = engine.request("R-2026-000001")
    assert request.status == "issued" and request.new_certificate_id is not None
    told = staffed.store.db.execute("SELECT text FROM outbox WHERE chat_id = '5551' ORDER BY id DESC").fetchone()
    assert "발급 완료" in told[0]
    assert [h["to"] for h in engine.history(request)] == ["submitted", "approved", "issued"]


def test_set_status_refuses_a_stale_transition(staffed: Helpdesk) -> None:
    submit_from_telegram(staffed)
    engine = Reissue(staffed)
    stale = engine.request("R-2026-000001")
    engine.set_status(stale, "rejected", "cli", "중복")
    with pytest.raises(TransitionError):
        engine.set_status(stale, "approved", "cli")  # the copy still says submitted; the database does not
    assert engine.request("R-2026-000001").status == "rejected"
    assert to_iso(staffed.now()) == engine.request("R-2026-000001").updated_at


def test_without_the_pdf_libraries_the_html_form_is_offered(seeded: Helpdesk, monkeypatch) -> None:
    import bot.reissue

    talk = linked(seeded)
    to_summary(talk)
    talk.press("제출")
    monkeypatch.setattr(bot.reissue, "form_pdf", lambda hd, view: None)  # as when fpdf2 is not installed
    talk.press("PDF로 받기")
    assert "reissue:form_no_pdf" in tags(talk) and "HTML" in talk.text()


def test_terminal_staff_decide_with_buttons_when_there_is_no_staff_group(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    to_summary(talk)
    talk.press("제출")
    staff = Talk(seeded, chat_id="console:staff", user_name="박상담")  # `helpdesk chat --staff`
    [note] = [r for r in seeded.pending_for("console:staff") if "reissue:staff_new" in r.tags]
    staff.last = [note]
    staff.press("✅ 승인")
    assert "reissue:staff_approved" in staff.tags()
    assert not [r for r in staff.last if r.chat_id == talk.chat_id]  # another terminal: through the outbox
    assert any("승인됨" in to_plain(r.text) for r in seeded.pending_for(talk.chat_id))


def test_phone_mismatch_offers_the_data_check_and_the_flow_resumes_after_it(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    talk.say("/reissue")
    talk.press_data(flow_button(talk, "r", "password"))
    talk.press_data(flow_button(talk, "c"))
    talk.say("010-9999-8888")
    talk.press("act:datacheck")  # the mismatched-data check takes the chat for a while
    assert seeded.flows.get(talk.chat_id).flow == "datacheck"
    assert draft_row(seeded, talk.chat_id)[0] == "phone"  # the reissue answers wait
    talk.say("/cancel")
    talk.say("/reissue")
    assert step(talk) == "phone" and "이어서" in talk.text()
    talk.say(PHONE)
    assert step(talk) == "summary"


def test_edit_certificate_then_straight_back_to_the_summary(seeded: Helpdesk) -> None:
    talk = linked(seeded)
    to_summary(talk)
    talk.press("수정")
    talk.press_data(flow_button(talk, "e", "certificate"))
    assert step(talk) == "certificate"
    talk.press_data(flow_button(talk, "c", "none"))
    assert step(talk) == "summary" and "목록에 없음" in talk.text()  # the phone was kept


def walk_to(seeded: Helpdesk, at: str) -> Talk:
    """A chat whose reissue flow stands at step `at`."""
    if at == "identity":
        talk = Talk(seeded, chat_id="console:unlinked")
        talk.say("/reissue")
        talk.press_data(flow_button(talk, "r", "password"))
        return talk
    talk = linked(seeded)
    talk.say("/reissue")
    if at == "reason":
        return talk
    talk.press_data(flow_button(talk, "r", "media" if at == "revoke" else "password"))
    if at in ("certificate", "revoke"):
        if at == "revoke":
            talk.press_data(flow_button(talk, "c"))
        return talk
    talk.press_data(flow_button(talk, "c"))
    if at == "phone":
        return talk
    talk.say(PHONE)
    if at == "edit":
        talk.press("수정")
    return talk


@pytest.mark.parametrize("at", ["reason", "identity", "certificate", "revoke", "phone", "summary", "edit"])
@pytest.mark.parametrize("how", ["/cancel", "button", "home"])
def test_cancel_at_every_step(seeded: Helpdesk, at: str, how: str) -> None:
    talk = walk_to(seeded, at)
    assert step(talk) == at and draft_row(seeded, talk.chat_id)[0] == at
    if how == "/cancel":
        talk.say("/cancel")
        assert "reissue:cancelled" in tags(talk)
    elif how == "button":
        talk.press("신청 그만두기")
        assert "reissue:cancelled" in tags(talk)
    else:
        talk.press_data("home")  # 처음으로 elsewhere in the chat: the core cancels the flow quietly
        assert "welcome" in tags(talk)
    assert draft_row(seeded, talk.chat_id) is None and seeded.flows.get(talk.chat_id) is None
    assert requests(seeded) == []


def test_unlinked_at_the_phone_step_goes_back_to_identity(seeded: Helpdesk) -> None:
    talk = walk_to(seeded, "phone")
    Registry(seeded).unlink(talk.chat_id)
    talk.say(PHONE)
    assert step(talk) == "identity"
    assert json.loads(draft_row(seeded, talk.chat_id)[1])["reason"] == "password"


def test_not_in_a_group_chat(seeded: Helpdesk) -> None:
    replies = seeded.handle(Inbound(chat_id="-100555", user_id="9", text="/reissue", channel="telegram",
                                    chat_type="supergroup"))
    assert [t for r in replies for t in r.tags] == ["reissue:private_only"]
    assert draft_row(seeded, "-100555") is None
