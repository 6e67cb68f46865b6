"""The whole hand-off between two terminals on one database: a user chat and `helpdesk chat --staff`."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

from bot.clock import FixedClock
from bot.console import ConsoleChat
from bot.helpdesk import Helpdesk
from tests.conftest import NOW


def terminal(config, chat_id: str, name: str = "") -> tuple[ConsoleChat, io.StringIO]:
    """A terminal of its own: its own Helpdesk (as another process would have) on the shared database file."""
    out = io.StringIO()
    return ConsoleChat(Helpdesk(config, clock=FixedClock(NOW)), chat_id=chat_id, user_name=name, out=out), out


def turn(chat: ConsoleChat, out: io.StringIO, line: str | None = None) -> str:
    """What the terminal prints for one prompt: queued messages first (poll), then the answer to `line`."""
    out.seek(0)
    out.truncate()
    chat.poll()
    if line is not None:
        chat.step(line)
    return out.getvalue()


def test_two_terminals_open_relay_claim_close_and_rate(config):
    user, user_out = terminal(config, "console:user", "홍길동")
    staff, staff_out = terminal(config, "console:staff", "김철수")
    try:
        turn(user, user_out, "/start")
        assert "상담원 연결" in turn(user, user_out, "다람쥐가 전선을 갉아먹어요")
        pick = [b.label for b in user.choices].index("상담원 연결") + 1
        assert "T-2026-000001" in turn(user, user_out, str(pick))
        turn(user, user_out, "공문 번호를 모르겠어요")

        shown = turn(staff, staff_out, "/tickets")
        assert "T-2026-000001 · 답변 못 한 질문" in shown and "다람쥐가 전선을 갉아먹어요" in shown
        assert "공문 번호를 모르겠어요" in shown and "담당자 없음" in shown
        opened = [b.label for b in staff.choices].index("T-2026-000001 열기") + 1
        assert "이제 적는 내용은 T-2026-000001 사용자에게 전달돼요" in turn(staff, staff_out, str(opened))
        claim = [b.label for b in staff.choices].index("담당하기") + 1  # the buttons of the ticket's message
        assert "김철수 님이 담당해요" in turn(staff, staff_out, str(claim))
        assert "사용자에게 전달했어요" in turn(staff, staff_out, "기관 서무 담당자에게 문의해 보세요.")

        shown = turn(user, user_out)
        assert "담당자 김○○" in shown and "기관 서무 담당자에게 문의해 보세요." in shown
        turn(user, user_out, "알겠습니다, 감사합니다")
        assert "알겠습니다, 감사합니다" in turn(staff, staff_out, "/close")

        shown = turn(user, user_out)
        assert "상담원이 상담을 마쳤어요" in shown and "[5] 5점" in shown
        assert "평가해 주셔서 감사해요" in turn(user, user_out, "5")
        assert "인증서 비밀번호" in turn(user, user_out, "인증서 비밀번호를 잊어버렸어요")  # the bot is back
        assert "열린 티켓이 없어요" in turn(staff, staff_out, "/tickets")
    finally:
        user.hd.close()
        staff.hd.close()


def test_helpdesk_chat_staff_command(config, db_path, tmp_path):
    user, user_out = terminal(config, "console:user", "홍길동")
    try:
        turn(user, user_out, "/staff")
        turn(user, user_out, "인증서가 목록에 안 보여요")
    finally:
        user.hd.close()
    env = {**os.environ, "HELPDESK_DB": str(db_path), "HELPDESK_PII_KEY": "test-pii-key",
           "HELPDESK_NOW": NOW.isoformat()}
    script = "/claim 1\n/reply 1 인증서 저장 위치를 알려 주세요.\n/close 1\n/quit\n"
    done = subprocess.run([sys.executable, "-m", "bot", "chat", "--staff", "--name", "박영희"], input=script,
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "T-2026-000001" in done.stdout and "인증서가 목록에 안 보여요" in done.stdout
    assert "박영희 님이 담당해요" in done.stdout and "티켓을 종료했어요" in done.stdout
    user, user_out = terminal(config, "console:user", "홍길동")
    try:
        shown = turn(user, user_out)
        assert "담당자 박○○" in shown and "인증서 저장 위치를 알려 주세요." in shown
        assert "상담원이 상담을 마쳤어요" in shown
        user.step("3")  # 3점
    finally:
        user.hd.close()
    stats = subprocess.run([sys.executable, "-m", "bot", "stats", "--json"], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=60)
    tickets = json.loads(stats.stdout)["tickets"]
    assert (tickets["opened"], tickets["closed"], tickets["open_now"]) == (1, 1, 0)
    assert (tickets["median_first_reply_minutes"], tickets["satisfaction_avg"]) == (0.0, 3.0)
    text = subprocess.run([sys.executable, "-m", "bot", "stats"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60).stdout
    assert "tickets: 1 opened, 1 closed, 0 open now; median first staff reply 0.0 min; satisfaction 3.0 / 5" in text
