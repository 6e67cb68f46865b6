"""Staff hand-off in the core: tickets opened, relayed both ways, claimed, re-notified, closed and rated."""
from __future__ import annotations

from datetime import datetime

import pytest

from bot.clock import SEOUL, FixedClock
from bot.config import load_config
from bot.handoff import OfficeHours, mask_name, parse_ref, ticket_stats
from bot.helpdesk import Helpdesk
from bot.render import to_plain
from bot.types import Document, Inbound, Reply
from tests.conftest import Talk

USER = "console:user"
STAFF = "console:staff"
TG_STAFF = "-1001234"
TG_USER = "5551"


@pytest.fixture
def user(hd: Helpdesk) -> Talk:
    return Talk(hd, chat_id=USER, user_name="홍길동")


@pytest.fixture
def staff(hd: Helpdesk) -> Talk:
    return Talk(hd, chat_id=STAFF, user_name="김철수")


def pending(hd: Helpdesk, chat_id: str) -> list[Reply]:
    return hd.pending_for(chat_id)


def plain(replies: list[Reply]) -> str:
    return "\n".join(to_plain(r.text) for r in replies)


def ticket_row(hd: Helpdesk, ticket_id: int = 1) -> dict:
    rows = list(hd.store.db.query("SELECT * FROM tickets WHERE id = ?", [ticket_id]))
    return rows[0] if rows else {}


def open_ticket(user: Talk, question: str = "우리 기관 보안 프로그램이 이상해요 뭐가 문제일까요") -> None:
    user.say(question)
    if "act:staff" not in [b.action for b in user.buttons()]:
        user.press_data("act:staff")
    else:
        user.press("act:staff")


# -- opening --------------------------------------------------------------------------------------

def test_a_fallback_opens_a_ticket_with_its_number_and_staff_see_the_conversation(hd, user):
    user.say("고양이 사료 추천해 주세요")
    assert "fallback" in user.tags()
    user.press("act:staff")
    assert "T-2026-000001" in user.text()
    assert [b.action for b in user.buttons()] == ["tk:k:1", "tk:q:1"]
    staff_view = pending(hd, STAFF)
    assert len(staff_view) == 1
    context = to_plain(staff_view[0].text)
    assert "T-2026-000001 · 답변 못 한 질문" in context
    assert "고양이 사료 추천해 주세요" in context  # the user does not repeat anything
    assert [b.action for b in staff_view[0].all_buttons()] == ["tk:c:1", "tk:r:1", "tk:x:1"]
    row = ticket_row(hd)
    assert (row["status"], row["category"], row["chat_id"], row["ref"]) == ("open", "faq", USER, "T-2026-000001")


@pytest.mark.parametrize("how, category", [
    (lambda t: (t.say("인증서 비밀번호를 잊어버렸어요"), t.press_data("kb:password.forgotten"),
                t.press("act:staff")), "password"),
    (lambda t: t.say("/staff"), "other"),
    (lambda t: (t.say("다람쥐가 전선을 갉아먹어요"), t.press_data("act:staff")), "faq"),
])
def test_the_ticket_category_comes_from_what_the_user_was_doing(hd, user, how, category):
    how(user)
    assert "T-2026-000001" in user.text()
    assert ticket_row(hd)["category"] == category


def test_the_one_line_description_is_optional(hd, user, staff):
    user.say("/staff")
    user.press("tk:k:1")
    assert "상담원이 곧 답해 드릴게요" in user.text()
    pending(hd, STAFF)
    user.say("인증서가 안 보여요")  # after skipping, the text is a message to staff, not a summary
    assert ticket_row(hd)["summary"] == ""
    assert "인증서가 안 보여요" in plain(pending(hd, STAFF))


def test_the_linked_holders_summary_reaches_staff_with_masked_identifiers(hd, user):
    now = "2026-01-01T00:00:00+09:00"
    hd.store.db.execute(
        "INSERT INTO holders (employee_id, name, agency, department, chat_id, created_at, updated_at) "
        "VALUES ('S0012345', '홍길동', '행정안전부', '디지털정부국', ?, ?, ?)", [USER, now, now])
    hd.store.db.execute(
        "INSERT INTO certificates (employee_id, issuer, serial, kind, usage, not_before, not_after, status, "
        "created_at, updated_at) VALUES ('S0012345', 'CN=CA134100031', '1A2B3C4D5E6F', 'sig', 'personal-admin', "
        "'2024-12-01T00:00:00+09:00', '2026-12-01T23:59:59+09:00', 'valid', ?, ?)", [now, now])
    user.say("/staff")
    context = plain(pending(hd, STAFF))
    assert "홍길동 · 행정안전부 디지털정부국" in context
    assert "…5E6F: valid" in context and "1A2B3C4D5E6F" not in context
    assert "S0012345" not in context and "S0*****5" in context


def test_a_second_request_shows_the_open_ticket_instead_of_a_new_one(hd, user):
    user.say("/staff")
    user.say("/staff")
    assert "이미 접수된 상담 요청이 있어요" in user.text() and "T-2026-000001" in user.text()
    assert hd.store.db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 1


# -- relaying -------------------------------------------------------------------------------------

def test_relay_both_ways_with_a_named_claimer_and_the_transcript_kept(hd, user, staff):
    user.say("/staff")
    user.say("인증서 로그인이 안 돼요 010-1234-5678")  # the one line
    pending(hd, STAFF)
    staff.say("/claim T-2026-000001")
    assert "김철수 님이 담당해요" in staff.text()
    assert "담당자 김○○" in plain(pending(hd, USER))
    staff.say("/reply 1 어떤 오류 메시지가 보이나요?")
    assert plain(pending(hd, USER)) == "담당자 김○○\n어떤 오류 메시지가 보이나요?"
    user.say("1238 오류라고 나와요")
    assert "(상담원에게 전달했어요)" in user.text()
    assert "1238 오류라고 나와요" in plain(pending(hd, STAFF))
    staff.say("/open 1")
    staff.say("인증서를 다시 가져오기 해 보세요.")
    assert "인증서를 다시 가져오기 해 보세요." in plain(pending(hd, USER))
    transcript = [(m["direction"], m["text"]) for m in hd.store.db.query(
        "SELECT direction, text FROM ticket_messages WHERE ticket_id = 1 AND kind = 'text' ORDER BY id")]
    assert transcript == [
        ("user", "인증서 로그인이 안 돼요 010-****-**78"),
        ("staff", "어떤 오류 메시지가 보이나요?"),
        ("user", "1238 오류라고 나와요"),
        ("staff", "인증서를 다시 가져오기 해 보세요."),
    ]
    staff.say("/transcript 1")
    assert "010-1234-5678" not in staff.text() and "1238 오류라고 나와요" in staff.text()


def test_files_are_relayed_both_ways_but_a_private_key_never(hd, user, staff):
    user.say("/staff")
    user.press("tk:k:1")
    user.send("오류화면.png", b"\x89PNG fake image")
    to_staff = pending(hd, STAFF)
    assert [r.document.filename for r in to_staff if r.document] == ["오류화면.png"]
    user.send("signPri.key", b"0\x82\x01\x00 not really a key")
    assert "개인키" in user.text()
    assert not [r for r in pending(hd, STAFF) if r.document]
    staff.say("/open 1")
    staff.hd.handle(Inbound(chat_id=STAFF, user_id=STAFF, user_name="김철수",
                            document=Document("설치안내.pdf", b"%PDF-1.4 guide")))
    to_user = pending(hd, USER)
    assert [r.document.filename for r in to_user if r.document] == ["설치안내.pdf"]
    kinds = [r["kind"] for r in hd.store.db.query("SELECT kind FROM ticket_messages WHERE ticket_id = 1 ORDER BY id")]
    assert "photo" in kinds and "document" in kinds


def test_while_a_ticket_is_open_the_bot_does_not_answer_over_staff(hd, user):
    user.say("/staff")
    user.press("tk:k:1")
    user.say("인증서 비밀번호를 잊어버렸어요")
    assert not [t for t in user.tags() if t.startswith(("answer:", "clarify", "fallback"))]
    user.press_data("home")  # 처음으로 is not a goodbye
    user.say("인증서 비밀번호를 잊어버렸어요")
    assert not [t for t in user.tags() if t.startswith(("answer:", "clarify"))]
    assert ticket_row(hd)["status"] == "open"
    user.say("/cancel")
    assert "상담을 끝냈어요" in user.text()
    assert ticket_row(hd)["closed_by"] == "user"
    assert "사용자가 상담을 끝냈어요" in plain(pending(hd, STAFF))
    user.say("인증서 비밀번호를 잊어버렸어요")
    assert [t for t in user.tags() if t.startswith(("answer:", "clarify"))]


# -- who may do what ------------------------------------------------------------------------------

@pytest.mark.parametrize("action", [
    lambda t: t.press_data("tk:c:1"),
    lambda t: t.press_data("tk:x:1"),
    lambda t: t.say("/close T-2026-000001"),
    lambda t: t.say("/claim 1"),
    lambda t: t.say("/reply 1 안녕"),
])
def test_only_staff_act_on_tickets(hd, user, action):
    user.say("/staff")
    intruder = Talk(hd, chat_id="console:intruder", user_name="이몽룡")
    action(intruder)
    assert "상담 직원만" in intruder.text()
    row = ticket_row(hd)
    assert (row["status"], row["claimed_by"]) == ("open", None)
    assert pending(hd, USER) == []


def test_a_user_never_sees_another_users_ticket(hd, user):
    user.say("/staff")
    other = Talk(hd, chat_id="console:other", user_name="성춘향")
    for data in ("tk:q:1", "tk:s:1:5", "tk:k:1"):
        other.press_data(data)
        assert "T-2026-000001" not in other.text()
        assert "더 이상 쓸 수 없어요" in other.text()
    other.say("/staff")
    assert "T-2026-000002" in other.text()
    other.say("제 문제는 다른 거예요")
    staff_view = plain(pending(hd, STAFF))
    assert "T-2026-000002" in staff_view and "T-2026-000001 👤" not in staff_view
    assert ticket_row(hd)["status"] == "open"


# -- closing, satisfaction, statistics --------------------------------------------------------------

def test_close_asks_for_satisfaction_and_the_bot_resumes(hd, clock, user, staff):
    user.say("/staff")
    user.press("tk:k:1")
    clock.advance(minutes=4)
    staff.say("/reply 1 확인했어요. 재발급이 필요해요.")
    staff.say("/close 1")
    closing = pending(hd, USER)[-1]
    assert "상담원이 상담을 마쳤어요" in to_plain(closing.text)
    user.last = [closing]
    user.press("4점")
    assert "평가해 주셔서 감사해요" in user.text()
    row = ticket_row(hd)
    assert (row["status"], row["closed_by"], row["satisfaction"]) == ("closed", "staff", 4)
    user.say("인증서 비밀번호를 잊어버렸어요")
    assert [t for t in user.tags() if t.startswith(("answer:", "clarify"))]
    staff.say("/reply 1 추가 안내")
    assert "이미 종료된 티켓" in staff.text()
    stats = ticket_stats(hd.store, "2026-11-01")
    assert stats["opened"] == 1 and stats["closed"] == 1 and stats["open_now"] == 0
    assert stats["median_first_reply_minutes"] == 4.0
    assert (stats["satisfaction_count"], stats["satisfaction_avg"]) == (1, 4.0)


# -- re-notify, office hours --------------------------------------------------------------------------

def test_an_unclaimed_ticket_is_announced_again_after_the_configured_minutes(hd, clock, user, staff):
    feature = hd.feature("handoff")
    user.say("/staff")
    pending(hd, STAFF)
    clock.advance(minutes=14)
    assert feature.due_notifications() == []
    clock.advance(minutes=2)
    again = feature.due_notifications()
    assert len(again) == 1 and "담당자가 아직 없어요" in again[0].text and "16분" in again[0].text
    assert [b.action for b in again[0].all_buttons()] == ["tk:c:1"]
    assert feature.due_notifications() == []
    clock.advance(minutes=15)
    assert len(pending(hd, STAFF)) == 1  # the staff terminal sees it on its next prompt
    staff.say("/claim 1")
    clock.advance(minutes=60)
    assert feature.due_notifications() == []


@pytest.mark.parametrize("moment, is_open, next_open", [
    ("2026-11-25T10:00", True, "2026-11-25T10:00"),
    ("2026-11-25T08:30", False, "2026-11-25T09:00"),
    ("2026-11-25T18:00", False, "2026-11-26T09:00"),
    ("2026-11-27T19:00", False, "2026-11-30T09:00"),  # Friday evening -> Monday
    ("2026-12-24T20:00", False, "2026-12-28T09:00"),  # 25th is a holiday, then the weekend
])
def test_office_hours(moment, is_open, next_open):
    config = load_config(environ={"HELPDESK_HOLIDAYS": "2026-12-25, 2027-01-01"})
    office = OfficeHours.from_config(config)
    at = datetime.fromisoformat(moment).replace(tzinfo=SEOUL)
    assert office.is_open(at) is is_open
    assert office.next_open(at) == datetime.fromisoformat(next_open).replace(tzinfo=SEOUL)


def test_outside_office_hours_the_user_is_told_when_to_expect_an_answer(config, tmp_path):
    saturday = FixedClock(datetime(2026, 11, 28, 14, 0, tzinfo=SEOUL))
    hd = Helpdesk(config, clock=saturday)
    try:
        user = Talk(hd, chat_id=USER)
        user.say("/staff")
        assert "11월 30일(월) 09:00" in user.text()
        assert "상담 시간 외" in plain(pending(hd, STAFF))
        saturday.advance(hours=3)
        assert hd.feature("handoff").due_notifications() == []  # nobody to notify at the weekend
    finally:
        hd.close()


@pytest.mark.parametrize("name, shown", [("김철수", "김○○"), ("남궁민수", "남○○○"), ("Minji Kim", "M○○"), ("", "")])
def test_staff_names_are_masked_for_users(name, shown):
    assert mask_name(name) == shown


@pytest.mark.parametrize("text, ticket_id", [("T-2026-000012", 12), ("t-12", 12), ("000012", 12), ("12", 12),
                                             ("T-2026-", None), ("abc", None)])
def test_ticket_references(text, ticket_id):
    assert parse_ref(text) == ticket_id


@pytest.mark.parametrize("env, problem", [
    ({"HELPDESK_OFFICE_HOURS": "9-18"}, "office_hours"),
    ({"HELPDESK_OFFICE_DAYS": "mon,funday"}, "funday"),
    ({"HELPDESK_HOLIDAYS": "2026-13-01"}, "2026-13-01"),
    ({"HELPDESK_TICKET_RENOTIFY_MINUTES": "0"}, "ticket_renotify_minutes"),
])
def test_bad_office_settings_are_named(env, problem):
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match=problem):
        load_config(environ=env)


# -- the Telegram-shaped staff chat (thread and reply mapping) -----------------------------------------

@pytest.fixture
def tg(db_path, clock):
    config = load_config(environ={"HELPDESK_DB": str(db_path), "HELPDESK_PII_KEY": "k",
                                  "HELPDESK_STAFF_CHAT_ID": TG_STAFF})
    helpdesk = Helpdesk(config, clock=clock)
    yield helpdesk
    helpdesk.close()


def tg_in(chat_id: str, **kw) -> Inbound:
    chat_type = "supergroup" if chat_id == TG_STAFF else "private"
    user_id = kw.pop("user_id", chat_id if chat_type == "private" else "900")
    return Inbound(chat_id=chat_id, user_id=user_id, channel="telegram", chat_type=chat_type,
                   user_name=kw.pop("user_name", "길동" if chat_type == "private" else "김철수"), **kw)


def staff_queue(tg: Helpdesk) -> list[Reply]:
    """What waits for the Telegram side to post in the staff chat (taken, as handlers/staff.py does)."""
    desk = tg.feature("handoff")
    rows = desk.tickets.staff_pending()
    for row_id, _, _ in rows:
        desk.tickets.staff_sent(row_id)
    return [reply for _, _, reply in rows]


def test_staff_in_the_tickets_topic_or_replying_to_its_message_reach_the_user(tg):
    desk = tg.feature("handoff")
    opened = tg.handle(tg_in(TG_USER, text="/staff"))
    assert [r.chat_id for r in opened] == [None]  # the user's answer; the staff chat's message waits in the outbox
    to_staff = staff_queue(tg)
    assert len(to_staff) == 1 and {"ticket:T-2026-000001", "ticket:context"} <= set(to_staff[0].tags)
    assert desk.topic_name(desk.tickets.get(1)) == "T-2026-000001 · 기타 문의"
    desk.record_staff_message("T-2026-000001", TG_STAFF, 77, 1001)
    summary = tg.handle(tg_in(TG_USER, text="토큰이 인식이 안 돼요"))
    assert [r.chat_id for r in summary] == [None]
    tg.handle(tg_in(TG_USER, text="USB를 바꿔 꽂아도 그래요"))
    queued = staff_queue(tg)
    assert [(r.chat_id, to_plain(r.text)) for r in queued] == [
        (TG_STAFF, "T-2026-000001 📝 요청 내용: 토큰이 인식이 안 돼요"),
        (TG_STAFF, "T-2026-000001 👤 길동: USB를 바꿔 꽂아도 그래요")]
    answer = tg.handle(tg_in(TG_STAFF, text="드라이버를 다시 설치해 보세요", thread_id=77, message_id=1010))
    assert [(r.chat_id, to_plain(r.text)) for r in answer] == [(TG_USER, "담당자 김○○\n드라이버를 다시 설치해 보세요")]
    assert [to_plain(r.text) for r in staff_queue(tg)] == ["T-2026-000001 ✅ 김철수 님이 담당해요."]
    assert tg.handle(tg_in(TG_STAFF, text="(직원끼리 잡담)")) == []  # the General topic is not a ticket
    # a group without topics: replying to the ticket's message maps to the ticket
    desk.topic_lost("T-2026-000001")
    desk.record_staff_message("T-2026-000001", TG_STAFF, None, 2002, mode="plain")
    tg.handle(tg_in(TG_USER, text="다시 해 볼게요"))
    assert ["ticket:T-2026-000001" in r.tags for r in staff_queue(tg)] == [True]
    row = ticket_row(tg)
    assert (row["topic_mode"], row["thread_id"], row["staff_message_id"]) == ("plain", None, 2002)
    answer = tg.handle(tg_in(TG_STAFF, text="네", reply_to_message_id=2002))
    assert [r.chat_id for r in answer] == [TG_USER]
    closing = tg.handle(tg_in(TG_STAFF, text="/close", reply_to_message_id=2002))
    assert [r.chat_id for r in closing] == [TG_USER]
    assert any("ticket:closed" in r.tags for r in staff_queue(tg))


def test_an_unreachable_user_is_shown_to_staff_once(tg):
    desk = tg.feature("handoff")
    tg.handle(tg_in(TG_USER, text="/staff"))
    desk.record_staff_message("T-2026-000001", TG_STAFF, 77, 1001)
    warned = desk.user_unreachable(TG_USER)
    assert len(warned) == 1 and "전달할 수 없어요" in warned[0].text and warned[0].thread_id == 77
    assert desk.user_unreachable(TG_USER) == []
    listing = tg.handle(tg_in(TG_STAFF, text="/tickets"))
    assert "연락 불가" in plain(listing)


def test_without_a_staff_chat_a_telegram_user_gets_the_contact_details(hd):
    replies = hd.handle(Inbound(chat_id="42", user_id="42", action="act:staff", channel="telegram"))
    assert "문의처 안내" in plain(replies)
    assert hd.store.db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 0
