"""Error reports in the chat (diagnosis, buttons, wrong kind for a linked holder) and the /diagnose tree:
every leaf, back, /cancel, free text, and a restart that resumes where the user was."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.helpdesk import Helpdesk
from bot.registry import CertificateRecord, Registry
from tests.conftest import NOW, Talk

ISSUER = "CN=CA131100001,OU=GPKI,O=Government of Korea,C=KR"
SUBJECT = "CN=001홍길동001,OU=people,OU=행정안전부,O=Government of Korea,C=KR"
OIDS = {"personal-admin": "1.2.410.100001.2.2.1", "personal-public": "1.2.410.100001.2.2.2",
        "epki-personal": "1.2.410.100001.5.3.1.3", "org": "1.2.410.100001.2.1.1"}


def link_holder(hd: Helpdesk, chat_id: str, usage: str | None = "personal-public") -> None:
    """A holder linked to `chat_id` with a sig+env pair of `usage` (None: no certificates)."""
    registry = Registry(hd)
    registry.upsert_holder("S0100", "홍길동", agency="행정안전부", agency_code="1311000", email="hong@korea.kr",
                           phone="010-2345-6789", rrn="900101-1234567")
    if usage is not None:
        scheme = "EPKI" if usage.startswith("epki") else "GPKI"
        for kind, serial in (("sig", "0A01"), ("env", "0A02")):
            registry.upsert_certificate(CertificateRecord(
                issuer=ISSUER, serial=serial, subject=SUBJECT, not_before=NOW - timedelta(days=30),
                not_after=NOW + timedelta(days=300), employee_id="S0100", scheme=scheme, kind=kind, usage=usage,
                policy_oid=OIDS[usage]))
    registry.link_chat("S0100", chat_id)


def labels(talk: Talk) -> list[str]:
    return [b.label for b in talk.buttons()]


# -- error reports ----------------------------------------------------------------------------------
def test_a_pasted_1238_tells_a_linked_holder_what_they_hold_and_what_to_apply_for(hd: Helpdesk, talk: Talk) -> None:
    link_holder(hd, talk.chat_id, "personal-public")
    talk.say("[1238] 인증서 정책 검증 실패")
    text = talk.text()
    assert "오류 1238 ERR_PATH_VALIDATION_CERT_POLICIES" in text
    assert "원인" in text and "1. " in text and "2. " in text
    assert "공공/민간 개인용 인증서를 발급받으셨는데 이 시스템(업무시스템 로그인)은 행정기관 개인용 인증서가 필요해요" in text
    assert "무엇을 신청할까요?" in text and "행정기관 개인용(1.2.410.100001.2.2.1) 인증서를 신청하세요" in text
    assert {"diagnosis:1238", "answer:login.policy-not-allowed"} <= set(talk.tags())
    assert "'허용되지 않는 정책의 인증서'(1238)" in labels(talk)  # the KB entry
    assert {"상담원 연결", "내 인증서 상태 확인", "전자결재", "보안메일", "처음으로"} <= set(labels(talk))
    talk.press("보안메일")
    assert "이 시스템(보안메일)은 행정기관 개인용 인증서가 필요해요" in talk.text()


@pytest.mark.parametrize(
    "usage, expected",
    [
        ("personal-admin", "등록된 인증서 중 업무시스템 로그인에 맞는 행정기관 개인용 인증서(일련번호 0A01)가 있어요"),
        ("epki-personal", "교육기관(EPKI) 개인용 인증서를 가지고 계신데 이 시스템(업무시스템 로그인)은 행정기관 개인용"),
        ("org", "기관용(전자관인) 인증서를 발급받으셨는데"),
        (None, "연결된 계정에 등록된 인증서가 없어요"),
    ],
)
def test_wrong_kind_check_by_what_the_holder_holds(hd: Helpdesk, talk: Talk, usage, expected: str) -> None:
    link_holder(hd, talk.chat_id, usage)
    talk.say("로그인 누르니까 허용되지 않는 정책의 인증서 입니다 라고 나와요")
    assert expected in talk.text()


def test_without_a_linked_holder_the_1238_diagnosis_offers_linking(hd: Helpdesk, talk: Talk) -> None:
    talk.say("1238 ERR_PATH_VALIDATION_CERT_POLICIES")
    text = talk.text()
    assert "이 시스템(업무시스템 로그인)에는 행정기관 개인용 서명용(_sig) 인증서가 필요해요" in text
    assert "무엇을 신청할까요?" in text
    assert "계정을 연결하시면 가지고 계신 인증서와 이 시스템에 필요한 인증서를 비교해 드릴게요" in text
    talk.press("NEIS·K-에듀파인")
    assert "이 시스템(NEIS·K-에듀파인)에는 교육기관(EPKI) 개인용 서명용(_sig) 인증서가 필요해요" in talk.text()


def test_an_error_report_is_answered_with_steps_buttons_and_logged(hd: Helpdesk, talk: Talk) -> None:
    talk.say("[ERROR] ReadPriKey failed nRet=1303 ERR_NOT_MATCHED_KEY_PAIR")
    text = talk.text()
    assert "오류 1303 ERR_NOT_MATCHED_KEY_PAIR" in text and "1. " in text and "개인키" in text
    assert "상담원 연결" in labels(talk)
    assert ("재발급 신청 시작" in labels(talk)) == hd.has_action("reissue")  # only buttons some feature answers
    assert "1303 키 쌍 불일치 오류" in labels(talk) and "👍" in labels(talk)
    row = hd.store.db.execute("SELECT action, entry_id, score FROM questions").fetchone()
    assert row[0] == "answer" and row[1] == "login.key-pair-mismatch" and row[2] >= 95


def test_a_report_that_needs_staff_says_so_and_offers_staff_first(talk: Talk) -> None:
    talk.say("[FATAL] GPKI_API_Init failed: 1103 (license expired) at gpkiapi.dll")
    assert "담당자의 확인이 필요해요" in talk.text()
    assert labels(talk)[0] == "상담원 연결"
    assert "answer:contact.who" in talk.tags()


def test_an_unknown_code_is_said_unknown_and_offers_a_person(hd: Helpdesk, talk: Talk) -> None:
    talk.say("오류코드 1299 가 떠요")
    assert "1299" in talk.text() and "아는 코드가 아니에요" in talk.text()
    assert labels(talk)[0] == "상담원 연결" and "오류 진단하기" in labels(talk)
    assert "diagnosis:unknown-code" in talk.tags()
    assert hd.store.db.execute("SELECT action, entry_id FROM questions").fetchone() == ("fallback", None)


def test_staff_button_on_a_diagnosis_works(hd: Helpdesk, talk: Talk) -> None:
    talk.say("2100 ERR_CONNECT_IVS")
    talk.press("상담원 연결")
    assert talk.text()  # the hand-off (or the contact card) answers; never "button expired"
    assert hd.msg("button.expired") not in talk.text()


def test_diagnose_command_with_text_diagnoses_it(talk: Talk) -> None:
    talk.say("/diagnose 비밀번호가 올바르지 않습니다")
    assert "오류 1301 ERR_WRONG_PASSWORD" in talk.text()
    assert "Caps Lock" in talk.text()


def test_ordinary_questions_with_numbers_reach_the_faq(talk: Talk) -> None:
    talk.say("2026년 12월에 만료되는데 갱신은 언제 하나요?")
    assert not any(t.startswith("diagnosis:") for t in talk.tags())


# -- the guided tree --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, expect_text, expect_button, tag",
    [
        (["신청 단계 (신청서·공문)", "신청이 반려됐어요"], "신청이 <b>반려</b>", "신청 정보 대조하기",
         "diagnosis:kb:mismatch.personal-data"),
        (["인증번호·문자(SMS)", "문자(인증번호)가 안 와요"], "발급진행상황조회", "상담원 연결", "answer:issue.sms-not-received"),
        (["업무시스템 로그인", "허용되지 않는 정책의 인증서 (1238)"], "오류 1238", "상담원 연결", "diagnosis:1238"),
        (["업무시스템 로그인", "인증서 경로 오류"], "인증서 경로 오류", "내 인증서 상태 확인", "diagnosis:path-error"),
        (["전자서명·결재·보안메일", "서명용 인증서가 아닙니다"], "오류 1510", "상담원 연결", "diagnosis:1510"),
    ],
)
def test_the_tree_leads_to_each_kind_of_leaf(hd: Helpdesk, talk: Talk, path, expect_text, expect_button, tag) -> None:
    talk.press_data("act:diagnose")
    assert "어디에서 문제가 생겼나요?" in talk.text()
    assert hd.flows.get(talk.chat_id).flow == "diagnose"
    for label in path:
        talk.press(label)
    plain = " ".join(r.text for r in talk.last)
    assert expect_text in plain
    assert expect_button in labels(talk) and "처음부터 다시 진단" in labels(talk)
    assert tag in talk.tags()
    assert hd.flows.get(talk.chat_id) is None  # the walk ended at its diagnosis


def test_every_leaf_of_the_shipped_tree_renders(hd: Helpdesk, talk: Talk) -> None:
    tree = hd.feature("diagnosis").tree
    for node in tree.nodes.values():
        for index, option in enumerate(node.options):
            talk.press_data(f"dg:o:{node.id}:{index}")
            assert talk.text().strip(), (node.id, option.label)
            assert hd.msg("button.expired") not in talk.text() and talk.tags(), (node.id, option.label)


def test_the_sign_leaf_compares_with_e_approval(hd: Helpdesk, talk: Talk) -> None:
    link_holder(hd, talk.chat_id, "personal-public")
    talk.say("/diagnose")
    talk.press("전자서명·결재·보안메일")
    talk.press("허용되지 않는 인증서라고 나와요")
    assert "이 시스템(전자결재)은 행정기관 개인용 인증서가 필요해요" in talk.text()


def test_back_returns_to_the_previous_question(talk: Talk) -> None:
    talk.say("/diagnose")
    talk.press("업무시스템 로그인")
    assert "로그인할 때 어떤 메시지가 나오나요?" in talk.text()
    talk.press("◀ 이전")
    assert "어디에서 문제가 생겼나요?" in talk.text()


def test_cancel_leaves_the_tree_at_any_step(hd: Helpdesk, talk: Talk) -> None:
    talk.say("/diagnose")
    talk.press("발급 사이트에서 발급")
    talk.say("/cancel")
    assert "오류 진단을 그만뒀어요" in talk.text()
    assert hd.flows.get(talk.chat_id) is None
    talk.say("인증서 비밀번호를 잊어버렸어요")
    assert "지금은 오류 진단 중" not in talk.text()


def test_free_text_in_the_tree_explains_and_shows_the_step_again(talk: Talk) -> None:
    talk.say("/diagnose")
    talk.press("업무시스템 로그인")
    talk.say("잘 모르겠어요")
    assert "지금은 오류 진단 중이에요" in talk.text()
    assert "로그인할 때 어떤 메시지가 나오나요?" in talk.text()
    assert "폐지된 인증서" in labels(talk)


def test_an_error_pasted_in_the_tree_is_diagnosed_and_ends_the_walk(hd: Helpdesk, talk: Talk) -> None:
    talk.say("/diagnose")
    talk.say("1215 ERR_REVOKED_CERT")
    assert "오류 1215 ERR_REVOKED_CERT" in talk.text()
    assert hd.flows.get(talk.chat_id) is None


def test_a_restart_resumes_the_tree_where_the_user_was(config, clock, talk: Talk) -> None:
    talk.say("/diagnose")
    talk.press("업무시스템 로그인")
    talk.hd.close()
    reopened = Helpdesk(config, clock=clock)  # the same SQLite file, a new process' worth of objects
    try:
        again = Talk(reopened, chat_id=talk.chat_id)
        again.say("어디까지 했죠?")
        assert "로그인할 때 어떤 메시지가 나오나요?" in again.text()
        again.press("폐지된 인증서")
        assert "오류 1215 ERR_REVOKED_CERT" in again.text()
    finally:
        reopened.close()


def test_answers_about_failures_offer_the_guided_diagnosis(talk: Talk) -> None:
    talk.press_data("kb:login.cert-not-listed")
    talk.press("오류 진단하기")
    assert "어디에서 문제가 생겼나요?" in talk.text()
