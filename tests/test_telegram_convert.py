"""handlers/convert.py: Update -> Inbound, and Reply -> the calls that send it (no network)."""
from __future__ import annotations

import pytest
from telegram import Update

from bot.types import Button, Document, Reply
from handlers import convert
from tests.fake_telegram import FakeTelegram, parse_html

BOT_ID = 123456789
USERNAME = "gpki_helpdesk_bot"


def update_from(fake: FakeTelegram, send) -> Update:
    """Build an update with the fake's user-side helpers (no server needed) and parse it as PTB does."""
    send(fake)
    raw = fake._updates[-1]
    return Update.de_json(raw, None)


@pytest.fixture
def fake() -> FakeTelegram:
    return FakeTelegram(username=USERNAME)  # not started: only its update builders are used


# -- Update -> Inbound ---------------------------------------------------------------------------------
@pytest.mark.parametrize("send, addressed", [
    (lambda f: f.send_text(1001, "비밀번호를 잊었어요"), True),
    (lambda f: f.group_text(-2002, "비밀번호를 잊었어요"), False),
    (lambda f: f.group_text(-2002, "비밀번호를 잊었어요", mention=True), True),
    (lambda f: f.group_text(-2002, f"혹시 @{USERNAME} 비밀번호 잊으면요?"), True),
    (lambda f: f.group_text(-2002, "@other_helper_bot 비밀번호"), False),
    (lambda f: f.group_text(-2002, "/status"), True),
    (lambda f: f.group_text(-2002, f"/status@{USERNAME}"), True),
    (lambda f: f.group_text(-2002, "/status@other_helper_bot"), False),
    (lambda f: f.group_text(-2002, "그럼 재발급해야 하나요?", reply_to=7), True),
    (lambda f: f.group_text(-2002, "토픽 안의 질문", thread_id=42, forum=True), False),
])
def test_in_a_group_only_commands_mentions_and_replies_are_addressed(fake, send, addressed):
    update = update_from(fake, send)
    assert convert.is_addressed(update.effective_message, USERNAME, BOT_ID) is addressed


@pytest.mark.parametrize("send, fields", [
    (lambda f: f.send_text(1001, "비밀번호를 잊었어요", first_name="김하늘"),
     {"chat_id": "1001", "user_id": "1001", "text": "비밀번호를 잊었어요", "user_name": "김하늘",
      "chat_type": "private", "channel": "telegram", "thread_id": None}),
    (lambda f: f.group_text(-2002, "비밀번호를 잊었어요", mention=True, user_id=5001),
     {"chat_id": "-2002", "user_id": "5001", "text": "비밀번호를 잊었어요", "chat_type": "supergroup"}),
    (lambda f: f.group_text(-1003, "답변드립니다", thread_id=42, forum=True),
     {"chat_id": "-1003", "thread_id": 42, "chat_type": "supergroup"}),
    (lambda f: f.group_text(-2002, "이건요?", reply_to=7),
     {"reply_to_message_id": 7, "text": "이건요?"}),
])
def test_text_inbound(fake, send, fields):
    inbound = convert.text_inbound(update_from(fake, send), USERNAME)
    assert {k: getattr(inbound, k) for k in fields} == fields


def test_button_and_document_inbound(fake):
    press = update_from(fake, lambda f: f.press(1001, "kb:password.forgotten", message_id=3))
    inbound = convert.button_inbound(press)
    assert (inbound.action, inbound.chat_id, inbound.message_id) == ("kb:password.forgotten", "1001", 3)
    upload = update_from(fake, lambda f: f.send_document(1001, "홍길동_sig.cer", b"DER", caption="확인해 주세요"))
    inbound = convert.document_inbound(upload, b"DER")
    assert inbound.document == Document("홍길동_sig.cer", b"DER", "application/pkix-cert")
    assert inbound.text == "확인해 주세요"


@pytest.mark.parametrize("send, key", [
    (lambda f: f.send_photo(1001), "telegram.photo"),
    (lambda f: f.send_sticker(1001), "telegram.sticker"),
    (lambda f: f.send_voice(1001), "telegram.voice"),
    (lambda f: f.send_location(1001), "telegram.location"),
])
def test_media_get_their_own_hint(fake, send, key):
    assert convert.media_message_key(update_from(fake, send).effective_message) == key


# -- Reply -> calls ------------------------------------------------------------------------------------
LONG_LINE = "인증서 " * 1500  # 6,000 characters on one line, no line break to cut at


@pytest.mark.parametrize("text, expected_parts", [
    ("짧은 답", 1),
    ("\n".join(f"{i}. <b>단계</b> 설명 &amp; 주의" for i in range(400)), 3),
    ("<b>" + "\n".join("굵은 줄" * 40 for _ in range(60)) + "</b>", 3),
    ("<i>" + LONG_LINE + "</i>", 2),
    ("x" * 9000, 3),
    ("😀" * 3000, 2),  # emoji count twice in UTF-16, as Telegram counts entity offsets
])
def test_long_text_is_split_into_parts_that_each_parse(text, expected_parts):
    parts = convert.split_html(text)
    assert len(parts) == expected_parts
    for part in parts:
        assert convert.utf16_len(part) <= convert.MAX_TEXT
        parse_html(part)  # raises where Telegram would refuse it
    joined = "".join(parse_html(p) for p in parts)
    assert joined.replace("\n", "").replace(" ", "") == parse_html(text).replace("\n", "").replace(" ", "")


def test_split_prefers_line_breaks():
    lines = [f"{i:03d} " + "가" * 95 for i in range(100)]  # 100 lines of 99 characters
    parts = convert.split_html("\n".join(lines))
    assert [p.splitlines()[0][:3] for p in parts] == ["000", "040", "080"]
    assert all(line in lines for part in parts for line in part.splitlines())


def test_reply_becomes_parts_with_buttons_on_the_last():
    buttons = ((Button("👍", "fb:password.forgotten:u"), Button("처음으로", "home")),)
    reply = Reply("\n".join("줄" * 100 for _ in range(60)), buttons, document=Document("a.pdf", b"%PDF"),
                  reply_to_message_id=9)
    calls = convert.parts(reply)
    assert [bool(c.document) for c in calls] == [False, False, True]
    assert [c.markup is not None for c in calls] == [False, False, True]
    assert [c.reply_to_message_id for c in calls] == [9, None, None]
    assert [[b.callback_data for b in row] for row in calls[-1].markup.inline_keyboard] == [
        ["fb:password.forgotten:u", "home"]]
    assert convert.parts(Reply("")) == []


def test_reply_json_round_trip():
    reply = Reply("<b>안녕</b>", ((Button("처음으로", "home"),),), Document("f.pdf", b"\x00\x01", "application/pdf"),
                  chat_id="-100", thread_id=5, reply_to_message_id=3, tags=("answer:x",))
    assert convert.reply_from_json(convert.reply_to_json(reply)) == reply
