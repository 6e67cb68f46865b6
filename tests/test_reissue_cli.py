"""Reissue at the terminal: `helpdesk chat --as` from a forgotten password to a filled form, and staff
deciding with `helpdesk reissue ...` in another process while the user's terminal is told."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.clock import FixedClock
from bot.console import ConsoleChat
from bot.demo import seed
from bot.helpdesk import Helpdesk
from bot.registry import Registry
from tests.conftest import NOW, ROOT

ENV = {"HELPDESK_PII_KEY": "test-pii-key"}


def helpdesk(db: Path, *args: str, now: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV, "HELPDESK_NOW": now or NOW.isoformat()}
    return subprocess.run([sys.executable, "-m", "bot", "--db", str(db), *args], capture_output=True, cwd=cwd,
                          env=env, timeout=60)


def test_make_chat_as_a_demo_holder_to_a_submitted_request(tmp_path: Path, db_path: Path) -> None:
    assert helpdesk(db_path, "demo", "seed").returncode == 0
    # A person at the terminal: the answer's 재발급 button, then one tap or line per step.
    script = "\n".join(["인증서 비밀번호를 잊어버렸어요", "1", "1", "1", "010-0000-1001", "2", "/quit"]) + "\n"
    done = subprocess.run([sys.executable, "-m", "bot", "--db", str(db_path), "chat", "--as", "S0001"],
                          input=script.encode(), capture_output=True, cwd=tmp_path, timeout=60,
                          env={**os.environ, **ENV, "HELPDESK_NOW": NOW.isoformat()})
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "[1] 재발급 신청 시작" in out and "재발급 사유" in out and "인증서 선택" in out and "010-****-**01" in out
    assert "접수번호 R-2026-000001" in out and "0000-1001" not in out
    form = tmp_path / "reissue-form-R-2026-000001.html"
    assert form.is_file() and "재발급" in form.read_text(encoding="utf-8")


@pytest.fixture
def submitted(config, tmp_path, monkeypatch) -> tuple[ConsoleChat, io.StringIO]:
    """A user terminal (its own Helpdesk, as its own process would have) that submitted R-2026-000001."""
    monkeypatch.chdir(tmp_path)  # the terminal saves the form where it runs
    hd = Helpdesk(config, clock=FixedClock(NOW))
    seed(hd)
    chat_id = Registry(hd).link_console("S0001")
    out = io.StringIO()
    chat = ConsoleChat(hd, chat_id=chat_id, out=out)
    for line in ("/reissue", "1", "1", "010-0000-1001"):
        chat.step(line)
    chat.choices = [b for b in chat.choices if b.action.endswith(":s:submit")]  # 제출
    chat.step("1")
    assert "R-2026-000001" in out.getvalue()
    yield chat, out
    hd.close()


def told(chat: ConsoleChat, out: io.StringIO) -> str:
    """What the user's terminal prints before its next prompt."""
    out.seek(0)
    out.truncate()
    chat.poll()
    return out.getvalue()


def test_cli_list_show_approve_and_the_user_is_told(submitted, db_path: Path) -> None:
    chat, out = submitted
    listed = json.loads(helpdesk(db_path, "reissue", "list", "--json").stdout)
    assert [(r["ref"], r["status"], r["holder_name"]) for r in listed] == [("R-2026-000001", "submitted", "김하늘")]
    assert json.loads(helpdesk(db_path, "reissue", "list", "--status", "approved", "--json").stdout) == []
    result = helpdesk(db_path, "reissue", "approve", "R-2026-000001")
    assert result.returncode == 0 and result.stdout.decode().startswith("R-2026-000001 is now approved")
    text = told(chat, out)
    assert "승인됨" in text and "www.gpki.go.kr" in text
    shown = json.loads(helpdesk(db_path, "reissue", "show", "R-2026-000001", "--json").stdout)
    assert [(h["from"], h["to"], h["actor"]) for h in shown["history"]] == [
        (None, "submitted", "user"), ("submitted", "approved", "cli")]
    plain = helpdesk(db_path, "reissue", "show", "R-2026-000001").stdout.decode()
    assert "submitted -> approved by cli" in plain


def test_cli_reject_with_a_reason_and_refusals(submitted, db_path: Path) -> None:
    chat, out = submitted
    result = helpdesk(db_path, "reissue", "reject", "R-2026-000001", "--reason", "휴대폰 번호를 확인해 주세요")
    assert result.returncode == 0
    text = told(chat, out)
    assert "반려됨" in text and "휴대폰 번호를 확인해 주세요" in text
    for args, message in [
        (("approve", "R-2026-000001"), "request is rejected; it cannot become approved"),
        (("show", "R-2026-999999"), "no reissue request R-2026-999999"),
        (("reject", "R-2026-000001", "--reason", " "), "--reason must not be empty"),
    ]:
        refused = helpdesk(db_path, "reissue", *args)
        err = refused.stderr.decode()
        assert refused.returncode == 1 and message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_cli_sweep_reminds_an_idle_flow_once(config, db_path: Path) -> None:
    hd = Helpdesk(config, clock=FixedClock(NOW))
    seed(hd)
    chat = ConsoleChat(hd, chat_id=Registry(hd).link_console("S0001"), out=io.StringIO())
    chat.step("/reissue")
    chat.step("1")
    day_later = "2026-11-26T10:00:00+09:00"
    assert json.loads(helpdesk(db_path, "reissue", "sweep", "--json", now=day_later).stdout) == {
        "reminded": 1, "expired": 0, "issued": 0}
    assert helpdesk(db_path, "reissue", "sweep", now=day_later).stdout.decode().startswith("0 reminded")
    out = io.StringIO()
    chat.out = out
    text = told(chat, out)
    assert "'인증서 선택' 단계에서 멈춰 있어요" in text and "이어서 하기" in text
    hd.close()
