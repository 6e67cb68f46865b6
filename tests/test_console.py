"""The terminal chat: numbered buttons, commands, Korean input, and a scripted session through the CLI."""
from __future__ import annotations

import io
import os
import subprocess
import sys

from bot.console import ConsoleChat, display_width
from tests.conftest import ROOT


def test_buttons_are_numbered_and_picked_by_number(hd) -> None:
    out = io.StringIO()
    chat = ConsoleChat(hd, chat_id="console:t", out=out)
    chat.step("인증서 비밀번호를 잊어버렸어요")
    printed = out.getvalue()
    assert "[1]" in printed and "처음으로" in printed and "<b>" not in printed
    home = next(i for i, b in enumerate(chat.choices, start=1) if b.action == "home")
    chat.step(str(home))
    assert "상담 도우미" in out.getvalue().split(f"[{home}]")[-1]


def test_out_of_range_number_is_explained(hd) -> None:
    out = io.StringIO()
    chat = ConsoleChat(hd, chat_id="console:t", out=out)
    chat.step("/start")
    chat.step("99")
    assert "사이의 번호를 입력해 주세요" in out.getvalue()


def test_wide_characters_count_double() -> None:
    assert display_width("인증서") == 6 and display_width("abc") == 3


def test_scripted_session_through_the_command(tmp_path) -> None:
    script = "/help\n인증서 비밀번호를 잊어버렸어요\n1\n/quit\n".encode()
    env = {**os.environ, "HELPDESK_DB": str(tmp_path / "c.db")}
    result = subprocess.run([sys.executable, "-m", "bot", "chat"], input=script, capture_output=True, cwd=ROOT,
                            env=env, timeout=60)
    out = result.stdout.decode()
    assert result.returncode == 0
    assert "/cancel" in out and "재발급" in out and "좋은 하루" in out
    assert "Traceback" not in result.stderr.decode()
