"""Reissue over Telegram, end to end: `helpdesk run` against the fake Bot API, a kill -9 in the middle of
the flow, staff approving in the staff chat, and a CLI decision reaching the user through the outbox."""
from __future__ import annotations

import json

import pytest

from tests.fake_telegram import FakeTelegram
from tests.telegram_support import BotProcess, helpdesk, wait_for

USER = 7001
STAFF = -100777
STAFF_MEMBER = 5001


def last_buttons(fake: FakeTelegram, chat_id: int) -> list[tuple[str, str]]:
    return [b for m in fake.messages(chat_id) for b in m.buttons]


def button(fake: FakeTelegram, chat_id: int, label_part: str) -> str:
    """The callback data of the newest button whose label contains `label_part`."""
    for label, data in reversed(last_buttons(fake, chat_id)):
        if label_part in label:
            return data
    raise AssertionError(f"no button with {label_part!r} among {last_buttons(fake, chat_id)}")


def after(fake: FakeTelegram, chat_id: int, count: int, timeout: float = 20.0) -> list:
    """Wait for `count` more messages in the chat than now; returns the new ones."""
    before = len(fake.messages(chat_id))
    return fake.wait_messages(chat_id, before + count, timeout)[before:]


def message_with(fake: FakeTelegram, chat_id: int, needle: str, timeout: float = 20.0, since: int = 0):
    """The first message in the chat (from the `since`-th on) containing `needle` (the staff chat also gets
    other features' notes)."""
    return fake.wait_until(lambda: next((m for m in fake.messages(chat_id)[since:] if needle in m.text), None),
                           timeout, f"a message with {needle!r} in chat {chat_id}")


@pytest.fixture
def fake() -> FakeTelegram:
    server = FakeTelegram().start()
    yield server
    server.stop()


def test_reissue_over_telegram_with_a_restart_and_staff_approval(fake, tmp_path) -> None:
    bot = BotProcess(fake, tmp_path, HELPDESK_STAFF_CHAT_ID=str(STAFF))
    try:
        assert helpdesk(bot.env, "demo", "seed").returncode == 0
        code = json.loads(helpdesk(bot.env, "registry", "link-code", "S0001", "--json").stdout)["code"]
        bot.start()
        fake.send_text(USER, f"/link {code}")
        after(fake, USER, 1)

        # The answer's 재발급 button starts the flow.
        fake.send_text(USER, "인증서 비밀번호를 잊어버렸어요")
        after(fake, USER, 1)
        fake.press(USER, button(fake, USER, "재발급 신청 시작"))
        [reason] = after(fake, USER, 1)
        assert "재발급 사유" in reason.text
        fake.press(USER, button(fake, USER, "비밀번호를 잊어버렸어요"))
        [certificate] = after(fake, USER, 1)
        assert "인증서 선택" in certificate.text and "김하늘님" in certificate.text
        fake.press(USER, button(fake, USER, "행정기관 개인용"))
        [phone] = after(fake, USER, 1)
        assert "휴대폰 번호 확인" in phone.text

        # kill -9 at the phone step; the user answers while the bot is down; it resumes on restart.
        bot.kill()
        mark = len(fake.messages(USER))
        fake.send_text(USER, "010-0000-1001")
        bot.start()
        # (A message the killed process sent but had not yet recorded as sent may come once more.)
        message_with(fake, USER, "확인·제출", since=mark)
        assert message_with(fake, USER, "010-****-**01", since=mark)

        # A staff button pressed in the user's own chat does nothing.
        fake.press(USER, "rs:a:R-2026-000001")
        [refused] = after(fake, USER, 1)
        assert "상담원 채팅방에서만" in refused.text

        fake.press(USER, button(fake, USER, "제출"))
        submitted = after(fake, USER, 3)  # the next steps, the form's caption, the form
        assert "접수번호 R-2026-000001" in submitted[0].text
        [document] = [m for m in submitted if m.method.lower() == "senddocument"]
        assert document.params["document_filename"] == "reissue-form-R-2026-000001.html"
        html = document.params["document"].decode()
        assert "재발급" in html and "김하늘" in html and "900101" not in html
        staff_note = message_with(fake, STAFF, "🆕 재발급 신청 R-2026-000001")
        assert "R-2026-000001" in staff_note.text and ("✅ 승인", "rs:a:R-2026-000001") in staff_note.buttons

        fake.press(USER, button(fake, USER, "PDF로 받기"))
        [pdf] = after(fake, USER, 1)
        assert pdf.params["document_filename"].endswith(".pdf") and pdf.params["document"].startswith(b"%PDF")

        # Staff approve in the staff chat: the user is told at once.
        fake.press(STAFF, "rs:a:R-2026-000001", user_id=STAFF_MEMBER)
        message_with(fake, STAFF, "R-2026-000001: 승인됨 처리했어요")
        [told] = after(fake, USER, 1)
        assert "승인됨" in told.text and "www.gpki.go.kr" in told.text
        assert bot.query("SELECT status, decided_by FROM reissue_requests") == [("approved", f"staff:{STAFF_MEMBER}")]

        # A decision made at a terminal reaches the Telegram user through the outbox.
        cancelled = helpdesk(bot.env, "reissue", "cancel", "R-2026-000001", "--reason", "중복 신청이에요")
        assert cancelled.returncode == 0, cancelled.stderr
        [notice] = after(fake, USER, 1)
        assert "취소됨" in notice.text and "중복 신청이에요" in notice.text
        wait_for(lambda: bot.query("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL") == [(0,)],
                 what="the outbox to be settled")
        assert bot.stop() == 0, bot.log()
    finally:
        bot.close()
