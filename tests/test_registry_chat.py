"""The registry in the conversation: /status for each state, linking (/link, /start CODE), /unlink, group chats,
the act:status button, the demo seed and `chat --as`, and the registry commands run as an operator would."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import to_iso
from bot.demo import seed
from bot.helpdesk import Helpdesk
from bot.registry import Registry, csv_text
from bot.types import Inbound
from tests.conftest import NOW, Talk
from tests.test_kb import run_cli
from tests.test_registry import hd, row, shared_kb  # noqa: F401  (fixtures: one KB for the module)


def day(n: int) -> str:
    return (NOW + timedelta(days=n)).date().isoformat()


# employee id -> (CSV rows, texts /status shows, button data among its buttons)
STATES = {
    "V": ([dict(serial="01", not_after=day(400)), dict(serial="02", kind="env", not_after=day(400))],
          ["행정기관 개인용 서명용·암호화용 · 정상", "D-400"], []),
    "E20": ([dict(serial="03", not_after=day(20))], ["정상", "D-20", "만료가 20일 남았어요"], ["kb:validity.renewal"]),
    "E3": ([dict(serial="04", not_after=day(3))], ["D-3", "만료가 3일 남았어요"], ["kb:validity.renewal"]),
    "X": ([dict(serial="05", not_before=day(-700), not_after=day(-4))], ["· 만료", "4일 지남", "재발급"],
          ["kb:validity.expired"]),
    "R": ([dict(serial="06", status="revoked", revocation_reason="keyCompromise", revoked_at=day(-2))],
          ["· 폐지", "사유: 키 유출"], ["kb:login.revoked-message"]),
    "H": ([dict(serial="07", status="suspended")], ["· 효력정지", "효력회복"], ["kb:suspend.restore"]),
    "P": ([dict(serial="08", policy_oid="1.2.410.100001.2.2.2")], ["공공/민간 개인용", "행정기관 개인용이 필요할 수"],
          ["kb:mismatch.wrong-kind-applied"]),
    "N": ([dict(serial="09", not_before=day(2), not_after=day(700))], ["유효기간 시작 전", "부터 쓸 수 있어요"], []),
    "EP": ([dict(serial="0A", policy_oid="1.2.410.100001.5.3.1.3", kind="env")], ["EPKI 개인용 암호화용 · 정상"], []),
}


@pytest.fixture
def registry(hd: Helpdesk, tmp_path: Path) -> Registry:
    rows = [row(employee_id=eid, name=f"사용자{eid}", **cert) for eid, (certs, _, _) in STATES.items() for cert in certs]
    path = tmp_path / "states.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    registry = Registry(hd)
    report = registry.import_csv(path)
    assert report.ok, report.errors
    return registry


@pytest.mark.parametrize("employee_id", list(STATES))
def test_status_shows_each_state_with_next_steps(talk: Talk, registry: Registry, employee_id: str) -> None:
    registry.link_chat(employee_id, talk.chat_id)
    talk.say("/status")
    _, texts, steps = STATES[employee_id]
    assert f"사용자{employee_id}님의 인증서" in talk.text()
    for text in texts:
        assert text in talk.text(), (text, talk.text())
    data = [b.action for b in talk.buttons()]
    for step in steps:
        assert step in data
    assert "act:staff" in data and data[-1] == "home"
    if employee_id == "X" and talk.hd.has_action("reissue"):
        assert data[0] == "act:reissue"


def test_most_urgent_first_and_pairs_on_one_line(talk: Talk, registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "more.csv"
    path.write_text(csv_text([row(employee_id="V", serial="0B", not_after=day(3), kind="sig"),
                              row(employee_id="V", serial="0C", status="revoked", kind="env")]), encoding="utf-8")
    registry.import_csv(path)
    registry.link_chat("V", talk.chat_id)
    text = talk.say("/status") and talk.text()
    assert text.index("· 폐지") < text.index("D-3") < text.index("D-400")
    assert "01, 02" in text  # the sig/env pair with the same expiry is one entry


def test_unlinked_chat_is_told_how_to_link_and_sees_nothing(talk: Talk, registry: Registry) -> None:
    for ask in (lambda: talk.say("/status"), lambda: talk.press_data("act:status")):
        ask()
        assert "/link" in talk.text() and "연결 코드" in talk.text()
        assert "사용자" not in talk.text() and "정상" not in talk.text()
        assert talk.tags() == ["registry:how-to-link"]


def test_group_chats_never_see_holder_data(hd: Helpdesk, registry: Registry) -> None:
    registry.link_chat("V", "group-1")
    for text in ("/status", "/link ABCD2345", "/unlink"):
        [reply] = hd.handle(Inbound(chat_id="group-1", user_id="u1", text=text, chat_type="group"))
        assert "1:1" in reply.text and "사용자V" not in reply.text and reply.tags == ("registry:group",)
    assert registry.holder("V").chat_id == "group-1"  # /unlink in the group did nothing either


def test_link_with_a_code_then_status_then_unlink(talk: Talk, registry: Registry) -> None:
    code = registry.create_link_code("E3").code
    talk.say(f"/link {code[:4]}-{code[4:].lower()}")  # typed with a hyphen and in lower case
    assert "사용자E3님 계정과 연결됐어요" in talk.text() and talk.tags() == ["registry:linked"]
    talk.press("act:status")
    assert "D-3" in talk.text()
    talk.say(f"/link {code}")
    assert "이미 사용된 연결 코드" in talk.text()
    talk.say("/unlink")
    assert "연결을 해제했어요" in talk.text()
    talk.say("/status")
    assert talk.tags() == ["registry:how-to-link"]
    talk.say("/unlink")
    assert "연결된 계정이 없어요" in talk.text()
    # The turn log keeps only the start of the code.
    logged = [r[0] for r in talk.hd.store.db.execute("SELECT text FROM turns WHERE direction = 'in'").fetchall()]
    assert all(code not in t and code[4:].lower() not in t for t in logged)


def test_deep_link_start_payload_links(talk: Talk, registry: Registry) -> None:
    code = registry.create_link_code("H").code
    talk.say(f"/start {code}")
    assert "사용자H님 계정과 연결됐어요" in talk.text()
    talk.say("/start something-else")  # not a link code: the usual welcome
    assert "welcome" in talk.tags()


def test_wrong_codes_count_down_then_lock(talk: Talk, registry: Registry) -> None:
    code = registry.create_link_code("V").code
    for left in (4, 3, 2, 1):
        talk.say("/link WRONG234")
        assert f"남은 시도 {left}번" in talk.text()
    talk.say("/link WRONG234")
    until = (NOW + timedelta(hours=1)).strftime("%H:%M")
    assert f"{until}까지 연결할 수 없어요" in talk.text()
    talk.say(f"/link {code}")
    assert talk.tags() == ["registry:locked"]
    assert registry.holder("V").chat_id is None


def test_link_without_a_code_and_the_link_button(talk: Talk) -> None:
    for ask in (lambda: talk.say("/link"), lambda: talk.press_data("act:link")):
        ask()
        assert "/link 코드" in talk.text()


def test_status_button_on_the_expiry_answer(talk: Talk, registry: Registry) -> None:
    registry.link_chat("E20", talk.chat_id)
    talk.press_data("kb:validity.check-expiry")
    talk.press("act:status")
    assert "D-20" in talk.text()


def test_help_lists_the_commands(talk: Talk) -> None:
    talk.say("/help")
    for command in ("/status", "/link", "/unlink"):
        assert command in talk.text()


# -- the demo --------------------------------------------------------------------------------------------

SNAPSHOT = {"holders": "employee_id", "certificates": "issuer, serial", "crls": "id", "ca_certs": "id"}


def snapshot(hd: Helpdesk) -> dict[str, list[tuple]]:
    return {t: [tuple(r) for r in hd.store.db.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall()]
            for t, o in SNAPSHOT.items()}


def test_demo_seed_twice_gives_the_same_rows(hd: Helpdesk) -> None:
    first = seed(hd)
    before = snapshot(hd)
    second = seed(hd)
    assert snapshot(hd) == before
    assert first.link_code.code != second.link_code.code
    assert hd.store.db.execute("SELECT COUNT(*) FROM link_codes WHERE used_at IS NULL").fetchone()[0] == 1
    assert len(before["holders"]) == 9 and len(before["certificates"]) == 20


DEMO = [
    ("S0001", ["김하늘", "서명용·암호화용 · 정상", "D-400"]),
    ("S0002", ["D-20"]),
    ("S0003", ["D-3"]),
    ("S0004", ["· 만료", "10일 지남"]),
    ("S0005", ["· 폐지", "키 유출"]),
    ("S0006", ["· 효력정지"]),
    ("S0007", ["공공/민간 개인용"]),
    ("S0008", ["EPKI 개인용"]),
    ("S0009", ["새 인증서로 바뀐 이전 인증서예요", "D-700"]),
]


def test_every_demo_holder_shows_what_it_demonstrates(hd: Helpdesk) -> None:
    seed(hd)
    registry = Registry(hd)
    for employee_id, texts in DEMO:
        talk = Talk(hd, chat_id=registry.link_console(employee_id))
        talk.say("/status")
        for text in texts:
            assert text in talk.text(), (employee_id, text, talk.text())


# -- the command line ------------------------------------------------------------------------------------

def test_cli_import_status_and_link_code(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    env = {"HELPDESK_PII_KEY": "k", "HELPDESK_NOW": to_iso(NOW), "HELPDESK_BOT_USERNAME": "@gpki_help_bot"}
    csv_path = tmp_path / "h.csv"
    csv_path.write_text(csv_text([row(serial="01"), row(serial="02", not_after="soon"), row(serial="03", kind="env")]),
                        encoding="utf-8")
    result = run_cli("--db", db, "registry", "import", str(csv_path), env_extra=env)
    out = result.stdout.decode()
    assert result.returncode == 1  # a bad row
    assert "2 rows imported (2 new" in out and "line 3: not_after is not an ISO-8601 date: 'soon'" in out
    result = run_cli("--db", db, "registry", "import", str(csv_path), "--json", env_extra=env)
    [report] = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert (report["certificates_new"], report["certificates_updated"]) == (0, 2)
    assert report["errors"] == [{"line": 3, "message": "not_after is not an ISO-8601 date: 'soon'"}]

    status = json.loads(run_cli("--db", db, "registry", "status", "S0001", "--json", env_extra=env).stdout)
    assert status["employee_id"] == "S0001" and status["phone_last4"] == "6789" and not status["linked"]
    assert [(c["serial"], c["kind"], c["status"], c["days_left"]) for c in status["certificates"]] == [
        ("01", "sig", "valid", 37), ("03", "env", "valid", 37)]
    assert "rrn" not in json.dumps(status)

    result = run_cli("--db", db, "registry", "link-code", "S0001", "--json", env_extra=env)
    code = json.loads(result.stdout)
    assert set(code) == {"code", "expires_at", "deep_link"}
    assert code["expires_at"] == to_iso(NOW + timedelta(hours=72))
    assert code["deep_link"] == f"https://t.me/gpki_help_bot?start={code['code']}"

    for args in (["registry", "status", "NOPE"], ["registry", "link-code", "NOPE"]):
        result = run_cli("--db", db, *args, env_extra=env)
        assert result.returncode == 1 and result.stderr.decode() == "helpdesk: no holder with id 'NOPE'\n"
    result = run_cli("--db", db, "registry", "import", str(tmp_path / "missing.csv"), env_extra=env)
    assert result.returncode == 1 and "no such file or folder" in result.stdout.decode()
    assert "Traceback" not in result.stderr.decode()


def test_cli_demo_seed_then_chat_as_a_holder(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    result = run_cli("--db", db, "demo", "seed", "--files", str(tmp_path / "files"))
    out = result.stdout.decode()
    assert result.returncode == 0 and "S0005" in out and "/link " in out
    assert (tmp_path / "files" / "demo-ca.crl").is_file()
    chat = run_cli("--db", db, "chat", "--as", "S0003", stdin="/status\n".encode())
    assert "박지민님의 인증서" in chat.stdout.decode() and "D-3" in chat.stdout.decode()
    missing = run_cli("--db", db, "chat", "--as", "S9999", stdin=b"")
    assert missing.returncode == 2 and "no holder with id 'S9999'" in missing.stdout.decode()
    # The demo files import back: certificates known already, the CRL applies again.
    result = run_cli("--db", db, "registry", "import", str(tmp_path / "files"))
    assert result.returncode == 0 and "CRL of CN=CA999000001" in result.stdout.decode()
