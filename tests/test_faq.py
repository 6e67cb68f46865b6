"""Talking to the core as text: answers, clarification, fallback, feedback, loops, restarts."""
from __future__ import annotations

import pytest

from bot.helpdesk import Helpdesk
from bot.matcher import Decision
from tests.conftest import Talk


@pytest.mark.parametrize(
    "question, entry_id, expect_in_text",
    [
        ("인증서 비밀번호를 잊어버렸어요", "password.forgotten", "재발급"),
        ("행정전자서명 인증서 유효기간이 1년 맞죠?", "validity.period", "만료"),
        ("로그인하는데 1238 오류가 나요", "login.policy-not-allowed", "1238"),
        ("인증서 파일이 PC 어디에 저장돼 있어요?", "storage.location", "class2"),
        ("인증서 폐지 방법 알려주세요", "revoke.how", "gpki.go.kr"),
    ],
)
def test_clear_questions_get_their_answer(talk: Talk, question: str, entry_id: str, expect_in_text: str) -> None:
    talk.say(question)
    assert f"answer:{entry_id}" in talk.tags()
    assert expect_in_text in talk.text()
    labels = [b.label for b in talk.buttons()]
    assert "👍" in labels and "👎" in labels and "처음으로" in labels


def test_every_answer_offers_related_topics(hd: Helpdesk, talk: Talk) -> None:
    entry = hd.kb.entries["password.forgotten"]
    talk.press_data("kb:password.forgotten")
    related_titles = {hd.kb.entries[r].title for r in entry.related if r in hd.kb.entries}
    assert related_titles & {b.label for b in talk.buttons()}


def test_out_of_scope_question_falls_back_and_is_logged(hd: Helpdesk, talk: Talk) -> None:
    talk.say("오늘 점심 메뉴 추천해 줘")
    assert talk.tags() == ["fallback"]
    assert "상담원" in talk.text()
    assert "상담원 연결" in [b.label for b in talk.buttons()]
    row = hd.store.db.execute("SELECT question, action FROM questions").fetchone()
    assert row == ("오늘 점심 메뉴 추천해 줘", "fallback")


def test_bank_certificate_question_is_redirected_not_answered(hd: Helpdesk, talk: Talk) -> None:
    decision = hd.decide("은행 공동인증서 비밀번호를 잊어버렸어요")
    assert decision.action == "fallback" and decision.id == "redirect.npki-bank"
    talk.say("은행 공동인증서 비밀번호를 잊어버렸어요")
    assert talk.tags() == ["redirect:redirect.npki-bank"]


def _clarifying_question(hd: Helpdesk) -> str:
    for question in ("인증서", "인증서 문제", "인증서가 이상해요", "발급 관련", "인증서 관련 문의"):
        if hd.decide(question).action == "clarify":
            return question
    pytest.fail("none of the vague questions led to a clarification; thresholds changed?")


def test_clarification_buttons_lead_to_the_chosen_answer(hd: Helpdesk, talk: Talk) -> None:
    question = _clarifying_question(hd)
    talk.say(question)
    assert talk.tags() == ["clarify"]
    assert "혹시 이 내용인가요" in talk.text()
    choice = next(b for b in talk.buttons() if b.action.startswith("kb:"))
    talk.press(choice.action)
    assert talk.tags() == [f"answer:{choice.action[3:]}"]
    assert hd.flows.get(talk.chat_id) is None


def test_clarification_survives_a_restart(config, clock, db_path) -> None:
    first = Helpdesk(config, clock=clock)
    question = _clarifying_question(first)
    talk = Talk(first)
    talk.say(question)
    offered = [b.action for b in talk.buttons() if b.action.startswith("kb:")]
    first.close()
    second = Helpdesk(config, clock=clock)
    state = second.flows.get(talk.chat_id)
    assert state is not None and state.flow == "clarify"
    assert ["kb:" + c for c in state.data["candidates"]] == offered
    talk2 = Talk(second, chat_id=talk.chat_id)
    talk2.press_data(offered[0])
    assert talk2.tags() == [f"answer:{offered[0][3:]}"]
    second.close()


def test_second_miss_in_a_row_offers_a_person_first(talk: Talk) -> None:
    talk.say("주식 시장 전망 알려줘")
    assert talk.buttons()[0].label == "상담원 연결"
    talk.say("축구 경기 결과 궁금해")
    assert "상담원 연결을 권해" in talk.text()
    talk.say("인증서 비밀번호를 잊어버렸어요")
    assert "answer:password.forgotten" in talk.tags()
    talk.say("주식 시장 전망 알려줘")
    assert "상담원 연결을 권해" not in talk.text()


@pytest.mark.parametrize("vote, value", [("👍", 1), ("👎", -1)])
def test_feedback_is_stored(hd: Helpdesk, talk: Talk, vote: str, value: int) -> None:
    talk.say("인증서 비밀번호를 잊어버렸어요")
    talk.press(vote)
    assert "감사" in talk.text() or "죄송" in talk.text()
    rows = hd.store.db.execute("SELECT entry_id, value FROM feedback").fetchall()
    assert rows == [("password.forgotten", value)]


def test_home_button_always_returns_to_start(talk: Talk) -> None:
    talk.say(_clarifying_question(talk.hd))
    talk.press("처음으로")
    assert talk.tags() == ["welcome"]
    assert talk.hd.flows.get(talk.chat_id) is None


@pytest.mark.parametrize(
    "text",
    ["", "   ", "🙂🙂🙂", "\x00\x01\x02", "<b>hi</b> & <script>alert(1)</script>",
     "'; DROP TABLE questions; --", "가" * 20000, "인증서 비번 забыл 密码 password?"],
)
def test_bad_input_gets_a_polite_reply(hd: Helpdesk, talk: Talk, text: str) -> None:
    replies = talk.say(text)
    assert replies and all(r.text for r in replies)
    assert "<script>" not in "".join(r.text for r in replies)
    assert hd.store.db.execute("SELECT COUNT(*) FROM questions").fetchone()[0] <= 1
    talk.say("인증서 비밀번호를 잊어버렸어요")
    assert "answer:password.forgotten" in talk.tags()


def test_stale_or_unknown_button_is_explained(talk: Talk) -> None:
    talk.press_data("kb:no.such-entry")
    assert "더 이상 쓸 수 없어요" in talk.text()
    talk.press_data("zz:whatever")
    assert "더 이상 쓸 수 없어요" in talk.text()


def test_commands(talk: Talk) -> None:
    talk.say("/start")
    assert talk.tags() == ["welcome"]
    talk.say("/help")
    assert "/cancel" in talk.text() and "/start" in talk.text()
    talk.say("/cancel")
    assert "취소할" in talk.text()
    talk.say("/nosuchcommand")
    assert "/help" in talk.text()


def test_personal_data_is_masked_in_the_turn_log(hd: Helpdesk, talk: Talk) -> None:
    talk.say("제 주민번호는 900101-1234567 이고 폰은 010-1234-5678 이에요")
    logged = " ".join(r[0] for r in hd.store.db.execute("SELECT text FROM turns").fetchall())
    logged += " ".join(r[0] for r in hd.store.db.execute("SELECT question FROM questions").fetchall())
    assert "1234567" not in logged and "1234-5678" not in logged
    assert "900101-1******" in logged


def test_decision_json_shape(hd: Helpdesk) -> None:
    result = hd.decide("인증서 비밀번호를 잊어버렸어요").as_json()
    assert set(result) == {"question", "action", "id", "score", "candidates"}
    assert result["action"] in ("answer", "clarify", "fallback")
    assert 0 <= result["score"] <= 100
    assert len(result["candidates"]) in (1, 2, 3)
    scores = [c["score"] for c in result["candidates"]]
    assert scores == sorted(scores, reverse=True)
    assert isinstance(hd.decide("1238"), Decision)


def test_error_report_during_a_clarification_gets_its_diagnosis(hd: Helpdesk, talk: Talk) -> None:
    talk.say(_clarifying_question(hd))
    talk.say("[1238] 인증서 정책 검증 실패")
    assert "login.policy-not-allowed" in " ".join(talk.tags()) or "kb:login.policy-not-allowed" in [
        b.action for b in talk.buttons()]
    assert "1238" in talk.text()
    assert hd.flows.get(talk.chat_id) is None
