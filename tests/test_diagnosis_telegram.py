"""Diagnosis over Telegram, end to end (`helpdesk run` against the fake Bot API): a pasted 1238 for a holder
with the wrong kind, the /diagnose tree surviving a kill -9, and a returned application's data check."""
from __future__ import annotations

import json

import pytest

from tests.fake_telegram import FakeTelegram
from tests.telegram_support import BotProcess, helpdesk

USER = 7101


@pytest.fixture
def fake() -> FakeTelegram:
    server = FakeTelegram().start()
    yield server
    server.stop()


def after(fake: FakeTelegram, count: int, timeout: float = 20.0) -> list:
    before = len(fake.messages(USER))
    return fake.wait_messages(USER, before + count, timeout)[before:]


def message_with(fake: FakeTelegram, needle: str, timeout: float = 20.0):
    """The newest message containing `needle` (a restart may deliver the last update again first)."""
    return fake.wait_until(lambda: next((m for m in reversed(fake.messages(USER)) if needle in m.text), None),
                           timeout, f"a message with {needle!r}")


def button(fake: FakeTelegram, label_part: str) -> str:
    for label, data in reversed([b for m in fake.messages(USER) for b in m.buttons]):
        if label_part in label:
            return data
    raise AssertionError(f"no button with {label_part!r}")


def test_diagnosis_tree_and_data_check_over_telegram(fake: FakeTelegram, tmp_path) -> None:
    bot = BotProcess(fake, tmp_path)
    try:
        assert helpdesk(bot.env, "demo", "seed").returncode == 0
        # S0007 holds a 공공/민간 개인용 (2.2.2) pair, issued by mistake.
        code = json.loads(helpdesk(bot.env, "registry", "link-code", "S0007", "--json").stdout)["code"]
        bot.start()
        fake.send_text(USER, f"/link {code}")
        after(fake, 1)

        fake.send_text(USER, "[1238] 인증서 정책 검증 실패")
        [diagnosis] = after(fake, 1)
        assert "오류 1238 ERR_PATH_VALIDATION_CERT_POLICIES" in diagnosis.text
        assert "공공/민간 개인용 인증서를 발급받으셨는데 이 시스템(업무시스템 로그인)은 행정기관 개인용 인증서가 필요해요" \
            in diagnosis.text
        assert diagnosis.params.get("parse_mode") == "HTML"

        # The tree: one step, a kill -9, the next step after the restart.
        fake.send_text(USER, "/diagnose")
        after(fake, 1)
        fake.press(USER, button(fake, "신청 단계"))
        [step] = after(fake, 1)
        assert "신청 단계에서 어떤 일이 있었나요?" in step.text
        bot.kill()
        bot.start()
        fake.press(USER, button(fake, "신청이 반려됐어요"))
        leaf = message_with(fake, "고친 신청서를 공문으로 다시")
        assert "처음부터 다시 진단" in [label for label, _ in leaf.buttons]

        # The returned application: the data check from the leaf's button.
        fake.press(USER, button(fake, "신청 정보 대조하기"))
        message_with(fake, "(1/5)")
        fake.send_text(USER, "윤도헌")
        for index in range(2, 6):
            message_with(fake, f"({index}/5)")
            fake.press(USER, button(fake, "건너뛰기"))
        result = message_with(fake, "신청 정보 대조 결과")
        assert "기록과 다른 항목: 이름" in result.text
        assert "윤도현" not in result.text
    finally:
        bot.close()
