"""The hand-off end to end: `helpdesk run` against the fake Bot API, a user chat and a staff supergroup."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_telegram import ApiError, FakeTelegram
from tests.telegram_support import BotProcess, wait_for

USER = 1001
STRANGER = 1002
STAFF_CHAT = -100777
STAFF = 5001  # a staff member in the group ("테스터" in the fake)


class ForumFake(FakeTelegram):
    """The fake Bot API with forum topics as Telegram keeps them: only forum supergroups have them, and a
    deleted topic refuses messages ("message thread not found")."""

    def __init__(self, forums: set[int]) -> None:
        super().__init__()
        self.forums = set(forums)
        self.topics: dict[int, set[int]] = {}

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """Staff delete a topic (with its messages)."""
        with self._lock:
            self.topics.get(chat_id, set()).discard(thread_id)

    def _check_thread(self, params: dict) -> None:
        chat_id, thread = params.get("chat_id"), params.get("message_thread_id")
        if thread and chat_id in self.forums and thread not in self.topics.get(chat_id, set()):
            raise ApiError(400, "Bad Request: message thread not found")

    async def _m_createforumtopic(self, params: dict, call) -> dict:
        if params.get("chat_id") not in self.forums:
            raise ApiError(400, "Bad Request: the chat is not a forum")
        topic = await super()._m_createforumtopic(params, call)
        with self._lock:
            self.topics.setdefault(params["chat_id"], set()).add(topic["message_thread_id"])
        return topic

    async def _m_sendmessage(self, params: dict, call) -> dict:
        self._check_thread(params)
        return await super()._m_sendmessage(params, call)

    async def _m_senddocument(self, params: dict, call) -> dict:
        self._check_thread(params)
        return await super()._m_senddocument(params, call)

    async def _m_sendphoto(self, params: dict, call) -> dict:
        self._check_thread(params)
        return await super()._m_sendphoto(params, call)


@pytest.fixture
def forum():
    fake = ForumFake({STAFF_CHAT}).start()
    yield fake
    fake.stop()


def texts(fake: FakeTelegram, chat_id: int, thread: int | None = None) -> list[str]:
    return [m.text for m in fake.messages(chat_id)
            if thread is None or m.params.get("message_thread_id") == thread]


def wait_text(fake: FakeTelegram, chat_id: int, needle: str, timeout: float = 15.0):
    """The first message to `chat_id` containing `needle` (waits for it)."""
    return fake.wait_until(lambda: next((m for m in fake.messages(chat_id) if needle in m.text), None), timeout,
                           f"a message to {chat_id} with {needle!r}; got {texts(fake, chat_id)[-4:]}")


def test_a_ticket_in_a_forum_topic_survives_a_crash_and_a_deleted_topic(forum: ForumFake, tmp_path: Path):
    bot = BotProcess(forum, tmp_path, HELPDESK_STAFF_CHAT_ID=str(STAFF_CHAT)).start()
    try:
        # The user: a question the bot cannot answer, then "상담원 연결" on the fallback.
        forum.send_text(USER, "고양이 사료 추천해 주세요")
        fallback = wait_text(forum, USER, "죄송해요")
        assert ("상담원 연결", "act:staff") in fallback.buttons
        forum.press(USER, "act:staff", message_id=fallback.message_id)
        assert wait_text(forum, USER, "T-2026-000001")

        # Staff: a topic named by the ticket, the context as its first message, with claim / release / close.
        [topic] = forum.wait_calls("createForumTopic")
        assert topic.params["name"] == "T-2026-000001 · 답변 못 한 질문"
        thread = topic.result["message_thread_id"]
        context = wait_text(forum, STAFF_CHAT, "최근 대화")
        assert context.params["message_thread_id"] == thread
        assert "고양이 사료 추천해 주세요" in context.text
        assert [data for _, data in context.buttons] == ["tk:c:1", "tk:r:1", "tk:x:1"]

        # Relay user -> staff: the one line, then a document, both in the topic.
        forum.send_text(USER, "공문 번호를 어디서 보나요")
        assert wait_text(forum, STAFF_CHAT, "요청 내용: 공문 번호를 어디서 보나요").params["message_thread_id"] == thread
        forum.send_document(USER, "오류로그.txt", "오류 1238 발생".encode(), mime_type="text/plain")
        sent = forum.wait_until(lambda: forum.calls_of("sendDocument"), 15, "the user's document in the topic")
        assert sent[0].chat_id == STAFF_CHAT and sent[0].params["message_thread_id"] == thread

        forum.send_photo(USER, caption="오류 화면이에요")
        photo = forum.wait_until(lambda: forum.calls_of("sendPhoto"), 15, "the user's photo in the topic")
        assert photo[0].params["message_thread_id"] == thread and "오류 화면이에요" in photo[0].text

        # kill -9 with the ticket open and unclaimed; back twenty minutes later: nothing lost, re-notified.
        bot.kill()
        bot.env["HELPDESK_NOW"] = "2026-11-25T10:20:00+09:00"
        bot.start()
        renotify = wait_text(forum, STAFF_CHAT, "담당자가 아직 없어요")
        assert renotify.params["message_thread_id"] == thread and renotify.buttons == [("담당하기", "tk:c:1")]

        # Someone outside the staff chat cannot claim.
        forum.send_text(STRANGER, "안녕하세요")
        wait_text(forum, STRANGER, "")
        forum.press(STRANGER, "tk:c:1")
        assert wait_text(forum, STRANGER, "상담 직원만")
        assert bot.query("SELECT claimed_by FROM tickets WHERE id = 1") == [(None,)]

        # Staff claim in the topic: the user learns the (masked) name.
        forum.press(STAFF_CHAT, "tk:c:1", message_id=context.message_id, user_id=STAFF)
        assert wait_text(forum, STAFF_CHAT, "님이 담당해요").params["message_thread_id"] == thread
        assert wait_text(forum, USER, "담당자 테○○")

        # Relay staff -> user: text and a document written in the topic.
        forum.group_text(STAFF_CHAT, "공문 번호는 문서 상단에 있어요.", user_id=STAFF, thread_id=thread, forum=True)
        assert wait_text(forum, USER, "공문 번호는 문서 상단에 있어요.").text.startswith("담당자 테○○")
        forum.send_document(STAFF_CHAT, "신청서양식.pdf", b"%PDF-1.4 form", mime_type="application/pdf",
                            user_id=STAFF, thread_id=thread, forum=True)
        forum.send_photo(STAFF_CHAT, user_id=STAFF, thread_id=thread, forum=True)
        forum.wait_until(lambda: len([c for c in forum.calls_of("sendDocument") if c.chat_id == USER]) == 2, 15,
                         "the staff document and photo at the user")

        # Staff delete the topic; the user's next message recreates it, context first: never a dead end.
        forum.delete_topic(STAFF_CHAT, thread)
        forum.send_text(USER, "양식 잘 받았어요")
        forum.wait_calls("createForumTopic", 2, timeout=15)
        new_thread = forum.calls_of("createForumTopic")[-1].result["message_thread_id"]
        relayed = wait_text(forum, STAFF_CHAT, "양식 잘 받았어요")
        assert relayed.params["message_thread_id"] == new_thread
        in_new = texts(forum, STAFF_CHAT, new_thread)
        assert "최근 대화" in in_new[0] and "양식 잘 받았어요" in in_new[-1]
        assert bot.query("SELECT thread_id FROM tickets WHERE id = 1") == [(new_thread,)]

        # /close in the topic: the topic closes, the user rates, the bot is back.
        forum.group_text(STAFF_CHAT, "/close", user_id=STAFF, thread_id=new_thread, forum=True)
        closing = wait_text(forum, USER, "상담원이 상담을 마쳤어요")
        assert [data for _, data in closing.buttons][:5] == [f"tk:s:1:{n}" for n in range(1, 6)]
        forum.wait_calls("closeForumTopic", timeout=15)
        forum.press(USER, "tk:s:1:5", message_id=closing.message_id)
        assert wait_text(forum, USER, "평가해 주셔서 감사해요")
        forum.send_text(USER, "인증서 비밀번호를 잊어버렸어요")
        wait_for(lambda: len([t for t in texts(forum, USER) if "비밀번호" in t]) >= 1, 15, "the bot answering")
        assert bot.query("SELECT status, satisfaction, closed_by FROM tickets") == [("closed", 5, "staff")]
        assert bot.stop() == 0
    finally:
        bot.close()
    assert "Traceback" not in bot.log()


def test_a_group_without_topics_and_a_user_who_blocked_the_bot(tmp_path: Path):
    fake = ForumFake(set()).start()  # the staff group is a plain supergroup
    bot = BotProcess(fake, tmp_path, HELPDESK_STAFF_CHAT_ID=str(STAFF_CHAT)).start()
    try:
        fake.send_text(USER, "/staff")
        assert wait_text(fake, USER, "T-2026-000001")
        context = wait_text(fake, STAFF_CHAT, "최근 대화")
        assert "message_thread_id" not in context.params
        fake.send_text(USER, "로그인이 안 돼요")
        relayed = wait_text(fake, STAFF_CHAT, "로그인이 안 돼요")
        assert relayed.params["reply_parameters"]["message_id"] == context.message_id
        # Staff answer by replying to the ticket's message; the user has blocked the bot meanwhile.
        fake.block(USER)
        fake.group_text(STAFF_CHAT, "어떤 화면인가요?", reply_to=context.message_id)
        warning = wait_text(fake, STAFF_CHAT, "전달할 수 없어요")
        assert warning.params["reply_parameters"]["message_id"] == context.message_id
        fake.group_text(STAFF_CHAT, "/tickets")
        assert "연락 불가" in wait_text(fake, STAFF_CHAT, "열린 티켓").text
        assert bot.stop() == 0
    finally:
        bot.close()
        fake.stop()
