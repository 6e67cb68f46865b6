"""`helpdesk ask`, `--json`, `--jsonl`, `kb unanswered` and `stats`, run as a user would run them."""
from __future__ import annotations

import json
from pathlib import Path

from tests.test_kb import run_cli


def test_ask_prints_the_answer(tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "a.db"), "ask", "로그인하면 1238 에러가 나요")
    assert result.returncode == 0
    assert "1238" in result.stdout.decode() and "<b>" not in result.stdout.decode()


def test_ask_json_object(tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "a.db"), "ask", "--json", "[1238] 인증서 정책 검증 실패")
    obj = json.loads(result.stdout)
    assert obj["question"] == "[1238] 인증서 정책 검증 실패"
    assert obj["action"] == "answer" and obj["id"] == "login.policy-not-allowed"
    assert obj["candidates"][0]["id"] == "login.policy-not-allowed"


def test_ask_jsonl_streams_and_survives_bad_lines(tmp_path: Path) -> None:
    lines = "인증서 비밀번호를 잊어버렸어요\n".encode() + b"\xff\xfe bad line\n" + b"\n" + "오늘 날씨 어때\n".encode()
    result = run_cli("--db", str(tmp_path / "a.db"), "ask", "--jsonl", stdin=lines)
    objects = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(objects) == 4
    assert objects[0]["question"] == "인증서 비밀번호를 잊어버렸어요"
    assert objects[1]["action"] == "error" and "UTF-8" in objects[1]["message"]
    assert objects[2]["action"] == "error"
    assert objects[3]["action"] == "fallback"
    assert result.returncode == 0


def test_unanswered_and_stats_report_what_users_asked(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    for question in ("점심 뭐 먹지", "점심 뭐 먹지", "인증서 비밀번호를 잊어버렸어요"):
        run_cli("--db", db, "ask", question)
    unanswered = json.loads(run_cli("--db", db, "kb", "unanswered", "--json").stdout)
    assert unanswered[0]["question"] == "점심 뭐 먹지" and unanswered[0]["count"] == 2
    stats = json.loads(run_cli("--db", db, "stats", "--json").stdout)
    day = stats["days"][-1]
    assert day["asked"] == 3 and day["fallback"] == 2


def test_bad_config_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "a.db"), "ask", "x", env_extra={"HELPDESK_NOW": "not-a-date"})
    assert result.returncode == 2
    assert "HELPDESK_NOW" in result.stderr.decode() and "Traceback" not in result.stderr.decode()
