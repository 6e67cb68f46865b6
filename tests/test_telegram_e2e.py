"""End to end: `helpdesk run` as a subprocess against the fake Bot API over real HTTP, played by users.

One bot process serves the tests of normal use (each test in its own chats); restarts, kill -9, faults,
tokens and the webhook each start their own.
"""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from bot.certgen import issue, make_authority, to_der
from bot.types import Document, Inbound
from tests.conftest import NOW
from tests.fake_telegram import FakeTelegram
from tests.telegram_support import BotProcess, bot_env, helpdesk, wait_for

QUESTION = "인증서 비밀번호를 잊어버렸어요"
VAGUE_QUESTIONS = ["비밀번호", "인증서 문제", "오류가 나요", "지피키 env는 뭐에 쓰는거임", "인증서가 이상해요"]


def inbound(chat_id: int, **kwargs) -> Inbound:
    return Inbound(chat_id=str(chat_id), user_id=str(chat_id), user_name="테스터", channel="telegram", **kwargs)


def expected(hd, chat_id: int, **kwargs):
    """What the core says to this in-process (same knowledge, same fixed clock): the bot must send the same."""
    return hd.handle(inbound(chat_id, **kwargs))


def vague_question(hd) -> str:
    """A question the core answers with "did you mean" choices (the matcher is tuned elsewhere: ask it)."""
    for question in VAGUE_QUESTIONS:
        if "clarify" in expected(hd, 9, text=question)[0].tags:
            return question
    raise AssertionError(f"none of {VAGUE_QUESTIONS} gets a clarification any more: update the list")


@pytest.fixture(scope="module")
def fake() -> FakeTelegram:
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live(fake, tmp_path_factory) -> BotProcess:
    """One running bot on a database with the demo registry."""
    tmp = tmp_path_factory.mktemp("live")
    bot = BotProcess(fake, tmp)
    seeded = helpdesk(bot.env, "demo", "seed")
    assert seeded.returncode == 0, seeded.stderr
    bot.start()
    yield bot
    assert bot.stop() == 0, bot.log()


# -- normal use (one process) ------------------------------------------------------------------------------
def test_a_question_gets_the_right_answer(live, fake, hd):
    fake.send_text(1101, QUESTION)
    [message] = fake.wait_messages(1101, 1)
    [reply] = expected(hd, 1101, text=QUESTION)
    assert any(tag.startswith("answer:") for tag in reply.tags)
    assert message.params["text"] == reply.text and message.params["parse_mode"] == "HTML"
    assert message.buttons == [(b.label, b.action) for b in reply.all_buttons()]


def test_the_command_menu_is_set_with_korean_descriptions(live, fake, hd):
    menu = {c["command"]: c["description"] for c in fake.commands['{"type": "default"}']}
    assert {"start", "help", "status", "link", "unlink", "cancel"} <= set(menu)
    assert menu == {c.name: c.description for c in hd.command_list()}
    assert all(re.search("[가-힣]", d) for d in menu.values())


def test_a_clarification_button_press_gets_the_chosen_answer(live, fake, hd):
    question = vague_question(hd)
    fake.send_text(1201, question)
    [choices] = fake.wait_messages(1201, 1)
    assert choices.params["text"] == expected(hd, 1201, text=question)[0].text
    picks = [data for _, data in choices.buttons if data.startswith("kb:")]
    assert len(picks) >= 2
    assert live.query("SELECT flow FROM conversations WHERE chat_id = '1201'") == [("clarify",)]
    fake.press(1201, picks[1], message_id=choices.message_id)
    answer = fake.wait_messages(1201, 2)[1]
    [reply] = expected(hd, 1201, action=picks[1])
    assert answer.params["text"] == reply.text
    assert wait_for(lambda: live.query("SELECT flow FROM conversations WHERE chat_id = '1201'") == [], 5,
                    "the clarification to end")


def test_a_feedback_press_is_stored(live, fake):
    fake.send_text(1301, QUESTION)
    [answer] = fake.wait_messages(1301, 1)
    thumbs_down = next(data for label, data in answer.buttons if data.startswith("fb:") and data.endswith(":d"))
    fake.press(1301, thumbs_down, message_id=answer.message_id)
    thanks = fake.wait_messages(1301, 2)[1]
    assert "죄송해요" in thanks.text
    assert live.query("SELECT entry_id, value FROM feedback") == [(thumbs_down.split(":")[1], -1)]


def test_a_certificate_upload_gets_its_inspection(live, fake, hd):
    authority = make_authority()
    cert, _ = issue(authority, cn="001홍길동001", not_before=NOW - timedelta(days=300),
                    not_after=NOW + timedelta(days=20))
    content = to_der(cert)
    downloads_before = len(fake.calls_of("download"))
    fake.send_document(1401, "001홍길동001_sig.cer", content)
    [message] = fake.wait_messages(1401, 1)
    [reply] = expected(hd, 1401, document=Document("001홍길동001_sig.cer", content, "application/pkix-cert"))
    assert any(tag.startswith("certs:summary") for tag in reply.tags)
    assert message.params["text"] == reply.text
    assert len(fake.calls_of("download")) == downloads_before + 1


def test_a_file_over_1_mb_is_refused_before_download(live, fake):
    get_files_before = len(fake.calls_of("getFile"))
    fake.send_document(1402, "huge.cer", b"0" * 100, file_size=5_000_000)
    [message] = fake.wait_messages(1402, 1)
    assert "1MB" in message.text
    assert len(fake.calls_of("getFile")) == get_files_before


def test_status_for_a_linked_holder(live, fake):
    linked = helpdesk(live.env, "registry", "link-code", "S0001", "--json")
    assert linked.returncode == 0, linked.stderr
    code = json.loads(linked.stdout)["code"]
    fake.send_text(1501, f"/link {code}")
    fake.wait_messages(1501, 1)
    fake.send_text(1501, "/status")
    status = fake.wait_messages(1501, 2)[1]
    assert "김하늘" in status.text and "5EED0010" in status.text
    # The same command in a group never shows a holder's data there.
    fake.group_text(-1502, "/status", user_id=1501)
    [in_group] = fake.wait_messages(-1502, 1)
    assert "김하늘" not in in_group.text and "5EED0010" not in in_group.text


@pytest.mark.parametrize("chat_id, send, expected_words", [
    (1601, lambda f, c: f.send_photo(c), "사진"),
    (1602, lambda f, c: f.send_sticker(c), "스티커"),
    (1603, lambda f, c: f.send_voice(c), "음성"),
    (1604, lambda f, c: f.send_location(c), "위치"),
    (1605, lambda f, c: f.edit_text(c, 1, "수정한 질문"), "고친 메시지"),
])
def test_photos_stickers_voice_locations_and_edits_get_a_short_hint(live, fake, chat_id, send, expected_words):
    send(fake, chat_id)
    [message] = fake.wait_messages(chat_id, 1)
    assert expected_words in message.text


def test_in_a_group_the_bot_answers_only_when_addressed(live, fake, hd):
    group = -1701
    fake.group_text(group, QUESTION)  # not addressed: ignored
    fake.group_text(group, "/help@other_helper_bot")  # another bot's command: ignored
    fake.group_text(group, QUESTION, mention=True)
    [first] = fake.wait_messages(group, 1)
    fake.group_text(group, "그럼 재발급은요?", reply_to=first.message_id)
    fake.group_text(group, "/help")
    messages = fake.wait_messages(group, 3)
    [answer] = expected(hd, 1701, text=QUESTION)
    assert messages[0].params["text"] == answer.text
    assert "쓸 수 있는 명령" in messages[2].text
    fake.send_text(1702, "/start")  # a later private message is answered after all of the group's
    fake.wait_messages(1702, 1)
    assert len(fake.messages(group)) == 3


def test_a_user_who_blocks_the_bot_is_recorded(live, fake):
    fake.block_bot(1801)
    assert wait_for(lambda: live.query("SELECT chat_id FROM tg_blocked WHERE chat_id = '1801'"), 10,
                    "the block to be recorded")


# -- restarts and crashes ---------------------------------------------------------------------------------
def test_a_restart_in_the_middle_of_a_clarification_keeps_the_state(tmp_path, hd):
    with FakeTelegram() as fake:
        bot = BotProcess(fake, tmp_path).start()
        try:
            question = vague_question(hd)
            fake.send_text(2001, question)
            [choices] = fake.wait_messages(2001, 1)
            assert bot.stop() == 0  # SIGTERM: a clean stop
            assert "stopped" in bot.log() and "Traceback" not in bot.log()
            assert bot.query("SELECT flow FROM conversations WHERE chat_id = '2001'") == [("clarify",)]
            bot.start()
            pick = next(data for _, data in choices.buttons if data.startswith("kb:"))
            fake.press(2001, pick, message_id=choices.message_id)  # on the message from before the restart
            answer = fake.wait_messages(2001, 2)[1]
            assert answer.params["text"] == expected(hd, 2001, action=pick)[0].text
            fake.press(2001, "xx:gone", message_id=choices.message_id)  # a button no feature knows any more
            assert "더 이상 쓸 수 없어요" in fake.wait_messages(2001, 3)[2].text
            assert bot.stop() == 0
        finally:
            bot.close()


def test_kill_9_while_updates_are_queued_loses_none(tmp_path):
    chats, per_chat = range(2101, 2109), 4
    with FakeTelegram() as fake:
        for round_ in range(per_chat):
            for chat in chats:
                fake.send_text(chat, f"/help" if round_ % 2 else QUESTION)
        bot = BotProcess(fake, tmp_path).start()
        try:
            fake.wait_until(lambda: len(fake.messages()) >= 6, 20, "the first replies")
            bot.kill()
            sent_before_restart = len(fake.messages())
            assert sent_before_restart < len(chats) * per_chat  # the kill really interrupted the work
            bot.start()
            for chat in chats:
                fake.wait_messages(chat, per_chat, timeout=30)
            assert bot.stop() == 0
        finally:
            bot.close()
        repeats = []
        for chat in chats:
            kinds = ["help" if "쓸 수 있는 명령" in m.text else "answer" for m in fake.messages(chat)]
            # Every question answered, in order; a reply may repeat only where the process died mid-send.
            distinct = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
            assert distinct == ["answer", "help"] * 2, kinds
            repeats.append(len(kinds) - len(distinct))
        # Chats are served side by side, so each may have had one message on the wire at the kill.
        assert max(repeats) <= 1, repeats
        assert bot.query("SELECT COUNT(*) FROM tg_inbox WHERE state != 'done'") == [(0,)]


def test_429_5xx_and_slow_answers_delay_but_lose_nothing(tmp_path):
    with FakeTelegram() as fake:
        bot = BotProcess(fake, tmp_path, HELPDESK_TELEGRAM_TIMEOUT_SECONDS="1").start()
        try:
            fake.fail("sendMessage", 429, times=2, retry_after=1)
            fake.fail("getUpdates", 500, times=1)
            fake.fail("getUpdates", 502, times=1)
            fake.slow("getUpdates", 3.0, times=1)  # past the client's 1 s + 1 s long poll
            fake.slow("sendMessage", 1.5, times=1)  # past the client's 1 s timeout: never carried out
            fake.fail("sendMessage", 500, times=1)
            for chat in range(2201, 2206):
                fake.send_text(chat, QUESTION)
                fake.send_text(chat, "/help")
            for chat in range(2201, 2206):
                first, second = fake.wait_messages(chat, 2, timeout=30)
                assert "비밀번호" in first.text and "쓸 수 있는 명령" in second.text
            statuses = {c.status for c in fake.calls_of()}
            assert {429, 500, 502, 499} <= statuses  # every fault really happened
            assert len(fake.messages()) == 10  # and nothing was sent twice
            assert fake.flood_429s == 0
            assert bot.stop() == 0
        finally:
            bot.close()


# -- start-up -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("token, words, code", [
    ("", "HELPDESK_TELEGRAM_TOKEN is not set", 2),
    ("not-a-token", "HELPDESK_TELEGRAM_TOKEN is malformed", 2),
    ("999999:AAWrongTokenThatTelegramDoesNotKnow_xyz12", "Telegram rejected HELPDESK_TELEGRAM_TOKEN", 1),
])
def test_a_missing_malformed_or_rejected_token_is_one_line(tmp_path, token, words, code):
    with FakeTelegram() as fake:
        env = bot_env(fake, tmp_path / "helpdesk.db", HELPDESK_TELEGRAM_TOKEN=token)
        result = helpdesk(env, "run", timeout=60)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr
    assert "AAWrongToken" not in result.stderr  # the token itself is never echoed


def test_a_webhook_with_a_secret_token(tmp_path, unused_port):
    with FakeTelegram() as fake:
        url = f"http://127.0.0.1:{unused_port}/telegram/hook"
        bot = BotProcess(fake, tmp_path, HELPDESK_WEBHOOK_URL=url, HELPDESK_WEBHOOK_PORT=str(unused_port),
                         HELPDESK_WEBHOOK_SECRET="s3cret-Token_1")
        try:
            bot.start(ready="setWebhook")
            [hook] = fake.calls_of("setWebhook")
            assert (hook.params["url"], hook.params["secret_token"]) == (url, "s3cret-Token_1")
            fake.send_text(2301, QUESTION)
            [answer] = fake.wait_messages(2301, 1, timeout=15)
            assert "비밀번호" in answer.text
            assert fake.calls_of("getUpdates") == []
            assert wait_for(lambda: bot.query("SELECT state FROM tg_inbox") == [("done",)], 5, "the update to be done")
            assert bot.stop() == 0
        finally:
            bot.close()


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
