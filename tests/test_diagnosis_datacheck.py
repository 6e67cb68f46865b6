"""The application data check: which fields differ (never the stored values), normalisation, the hourly limit,
the audit table, and that 주민등록번호 and phone numbers never reach the database file in clear."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.datacheck import DIFFERS, NO_RECORD, SAME, InvalidInput, compare_field, compose_jamo, normalize_field
from bot.helpdesk import Helpdesk
from bot.registry import Registry
from tests.conftest import Talk

RRN = "900101-1234567"
PHONE = "010-2345-6789"


def link(hd: Helpdesk, chat_id: str, **changes) -> None:
    fields = dict(agency="행정안전부", agency_code="1311000", email="Hong@Korea.kr", phone=PHONE, rrn=RRN)
    fields.update(changes)
    registry = Registry(hd)
    registry.upsert_holder("S0200", changes.pop("name", "홍길동"), **{k: v for k, v in fields.items() if k != "name"})
    registry.link_chat("S0200", chat_id)


def run_check(talk: Talk, answers: list[str | None]) -> None:
    """Start the check and give each field in turn (None presses 건너뛰기)."""
    talk.say("/datacheck")
    for answer in answers:
        if answer is None:
            talk.press("건너뛰기")
        else:
            talk.say(answer)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ㅎㅗㅇㄱㅣㄹㄷㅗㅇ", "홍길동"),
        ("ㄱㅣㅁㅎㅏ늘", "김하늘"),
        ("ㄱㅘㅇㅎㅜㅣ", "광휘"),  # vowel pairs typed separately
        ("ㄷㅏㄹㄱ", "닭"),  # a double final consonant
        ("홍 길-동", "홍길동"),
        ("０１０－２３４５－６７８９", "01023456789"),
        ("Ｈｏｎｇ＠ｋｏｒｅａ．ｋｒ", "Hong@korea.kr"),
    ],
)
def test_normalisation(text: str, expected: str) -> None:
    assert normalize_field(text) == expected


def test_compose_leaves_other_text_alone() -> None:
    assert compose_jamo("ㅋㅋ 홍길동 ABC") == "ㅋㅋ 홍길동 ABC"


@pytest.fixture(scope="module")
def holder_hd(tmp_path_factory):
    """One helpdesk with the holder, shared by the table-driven comparisons (they only read)."""
    from bot.config import load_config

    path = tmp_path_factory.mktemp("dc") / "helpdesk.db"
    helpdesk = Helpdesk(load_config(environ={"HELPDESK_DB": str(path), "HELPDESK_PII_KEY": "k"}))
    link(helpdesk, "console:x")
    yield helpdesk
    helpdesk.close()


@pytest.mark.parametrize(
    "field, typed, result",
    [
        ("name", "홍길동", SAME), ("name", "ㅎㅗㅇㄱㅣㄹㄷㅗㅇ", SAME), ("name", " 홍 길동 ", SAME), ("name", "홍길돔", DIFFERS),
        ("rrn", RRN, SAME), ("rrn", "9001011234567", SAME), ("rrn", "９００１０１－１２３４５６７", SAME),
        ("rrn", "900101 - 1234568", DIFFERS),
        ("agency_code", "131 1000", SAME), ("agency_code", "１３１１０００", SAME), ("agency_code", "1311001", DIFFERS),
        ("phone", "01023456789", SAME), ("phone", "０１０ ２３４５ ６７８９", SAME), ("phone", "+82 10-2345-6789", SAME),
        ("phone", "010-2345-6788", DIFFERS),
        ("email", "hong@korea.kr", SAME), ("email", " HONG@KOREA.KR ", SAME), ("email", "hong@korea.com", DIFFERS),
    ],
)
def test_compare_field(holder_hd: Helpdesk, field: str, typed: str, result: str) -> None:
    holder = Registry(holder_hd).holder("S0200")
    assert compare_field(field, typed, holder, holder_hd.pii_key) == result


@pytest.mark.parametrize("field, typed", [("rrn", "12345"), ("rrn", "900101-12345ab"), ("phone", "12"),
                                          ("email", "not-an-email"), ("name", "   ")])
def test_invalid_input_is_refused(holder_hd: Helpdesk, field: str, typed: str) -> None:
    with pytest.raises(InvalidInput):
        compare_field(field, typed, Registry(holder_hd).holder("S0200"), holder_hd.pii_key)


def test_a_field_missing_from_the_record_cannot_be_compared(hd: Helpdesk) -> None:
    registry = Registry(hd)
    registry.upsert_holder("S0300", "김철수")
    holder = registry.holder("S0300")
    assert compare_field("rrn", RRN, holder, hd.pii_key) == NO_RECORD
    assert compare_field("email", "a@b.kr", holder, hd.pii_key) == NO_RECORD


def test_the_reply_names_the_differing_fields_without_stored_values(hd: Helpdesk, talk: Talk) -> None:
    link(hd, talk.chat_id)
    run_check(talk, ["홍길돔", "９００１０１－１２３４５６７", "131 1000", "010-9999-0000", None])
    text = talk.text()
    assert "기록과 다른 항목: 이름, 휴대폰 번호" in text
    assert "기록과 같은 항목: 주민등록번호, 기관코드" in text and "건너뛴 항목: 이메일" in text
    assert "끝자리가 **89" in text  # at most the last two digits of the stored phone
    for stored in ("홍길동", "2345", "6789", "1311000", "korea.kr", "1234567"):
        assert stored not in text
    assert "공문" in text and "1. " in text
    assert "datacheck:differs:name,phone" in talk.tags()
    assert {"신청서 이름이 인사정보와 달라요", "상담원 연결"} <= {b.label for b in talk.buttons()}
    audit = hd.store.db.execute(
        "SELECT chat_key, employee_id, fields_compared, fields_differing, at FROM datacheck_audit").fetchall()
    assert len(audit) == 1
    assert audit[0][:4] == (hd.chat_key(talk.chat_id), "S0200", "name,rrn,agency_code,phone", "name,phone")


def test_all_fields_matching_says_so_and_points_to_the_ra(hd: Helpdesk, talk: Talk) -> None:
    link(hd, talk.chat_id)
    run_check(talk, ["ㅎㅗㅇㄱㅣㄹㄷㅗㅇ", RRN, "1311000", "01023456789", "hong@korea.kr"])
    assert "입력하신 항목은 모두 기록과 같아요" in talk.text()
    assert "반려 사유" in talk.text() and "datacheck:all-same" in talk.tags()


def test_a_malformed_value_is_asked_again(hd: Helpdesk, talk: Talk) -> None:
    link(hd, talk.chat_id)
    run_check(talk, [None, "12345"])
    assert "숫자 13자리" in talk.text()
    assert hd.flows.get(talk.chat_id).step == "rrn"


def test_skipping_everything_compares_nothing_and_is_not_counted(hd: Helpdesk, talk: Talk) -> None:
    link(hd, talk.chat_id)
    run_check(talk, [None] * 5)
    assert "대조한 항목이 없어요" in talk.text()
    assert hd.store.db.execute("SELECT COUNT(*) FROM datacheck_audit").fetchone()[0] == 0


def test_not_linked_and_group_chats_are_refused(hd: Helpdesk, talk: Talk) -> None:
    talk.say("/datacheck")
    assert "계정을 연결한 뒤에" in talk.text()
    assert hd.flows.get(talk.chat_id) is None
    link(hd, "group:1")
    from bot.types import Inbound

    replies = hd.handle(Inbound(chat_id="group:1", user_id="u1", text="/datacheck", chat_type="group"))
    assert "1:1 대화에서만" in replies[0].text


def test_five_checks_an_hour_per_chat(hd: Helpdesk, talk: Talk, clock) -> None:
    link(hd, talk.chat_id)
    for _ in range(5):
        run_check(talk, ["홍길동", None, None, None, None])
        assert "기록과 같아요" in talk.text()
        clock.advance(minutes=1)
    talk.say("/datacheck")
    assert "한 시간에 5번까지" in talk.text() and "55분 뒤" in talk.text()
    assert hd.flows.get(talk.chat_id) is None
    clock.advance(minutes=56)
    talk.say("/datacheck")
    assert "(1/5)" in talk.text()
    assert hd.store.db.execute("SELECT COUNT(*) FROM datacheck_audit").fetchone()[0] == 5


def test_a_skip_button_of_an_older_message_does_not_skip_the_current_field(hd: Helpdesk, talk: Talk) -> None:
    link(hd, talk.chat_id)
    run_check(talk, ["홍길동"])
    talk.press_data("dc:skip:name")
    assert hd.flows.get(talk.chat_id).step == "rrn"
    assert "주민등록번호" in talk.text()


def test_cancel_leaves_the_check(hd: Helpdesk, talk: Talk) -> None:
    link(hd, talk.chat_id)
    run_check(talk, ["홍길동"])
    talk.say("/cancel")
    assert "신청 정보 대조를 그만뒀어요" in talk.text()
    assert hd.flows.get(talk.chat_id) is None


def test_the_button_on_the_personal_data_answer_starts_the_check(hd: Helpdesk, talk: Talk) -> None:
    link(hd, talk.chat_id)
    talk.press_data("kb:mismatch.personal-data")
    talk.press("신청 정보 대조하기")
    assert "(1/5)" in talk.text() and "이름" in talk.text()


def test_a_returned_application_finds_the_field_through_the_tree(hd: Helpdesk, talk: Talk) -> None:
    link(hd, talk.chat_id)
    talk.say("/diagnose")
    talk.press("신청 단계 (신청서·공문)")
    talk.press("신청이 반려됐어요")
    talk.press("신청 정보 대조하기")
    run_answers = ["홍길동", RRN, "1311000", "010-2345-6789", "hong@korea.com"]
    for answer in run_answers:
        talk.say(answer)
    assert "기록과 다른 항목: 이메일" in talk.text()


def test_rrn_and_phone_never_reach_the_database_file_in_clear(hd: Helpdesk, talk: Talk, db_path: Path) -> None:
    link(hd, talk.chat_id)
    typed = ["홍길동", "900101-1234567", "1311000", "010-9999-0000", None]
    run_check(talk, ["홍길동", "９００１０１－１２３４５６７"])
    data = hd.store.db.execute("SELECT data FROM conversations WHERE chat_id = ?", [talk.chat_id]).fetchone()[0]
    assert "1234567" not in data and "900101" not in data
    talk.say("/cancel")
    run_check(talk, typed)
    turns = " ".join(r[0] for r in hd.store.db.execute("SELECT text FROM turns").fetchall())
    assert "900101-1******" in turns  # the core's turn log keeps only the masked form
    hd.close()
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    for secret in ("900101-1234567", "9001011234567", "９００１０１－１２３４５６７", "1234567",
                   "010-9999-0000", "01099990000", "9999-0000", "010-2345-6789", "01023456789"):
        assert secret.encode("utf-8") not in raw, secret
