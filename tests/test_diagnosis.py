"""Reading error reports: every code of the facts, ERR_ names, codeless client messages, log noise, OCR slips,
unknown codes, numbers that are not codes; the decision `ask --json` gives; `helpdesk diagnose`; the eval."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import DEFAULT_KNOWLEDGE_DIR, load_config
from bot.diagnosis import compare_with_system, load_systems, load_table
from bot.eval_errors import evaluate_errors
from bot.helpdesk import Helpdesk
from bot.knowledge import KnowledgeError

ROOT = Path(__file__).resolve().parent.parent
TABLE, PROBLEMS = load_table(DEFAULT_KNOWLEDGE_DIR)

# Every 표준API / client code gpki-facts.md section 5 lists, and the entry its report leads to.
FACT_CODES: dict[int, str] = {
    1103: "contact.who", 1111: "contact.who", 2100: "contact.who", 2109: "contact.who",
    1203: "validity.expired", 1214: "suspend.restore", 1215: "login.revoked-message", 2106: "login.revoked-message",
    1212: "login.path-error", 1216: "login.path-error", 1222: "login.path-error", 1224: "login.path-error",
    1232: "login.path-error", 1233: "login.path-error", 1234: "login.path-error", 1235: "login.path-error",
    1245: "login.path-error", 2107: "login.path-error",
    1238: "login.policy-not-allowed",
    1300: "login.key-pair-mismatch", 1303: "login.key-pair-mismatch", 1304: "login.key-pair-mismatch",
    1305: "login.key-pair-mismatch", 1306: "login.key-pair-mismatch",
    1301: "password.rejected", 1415: "password.rejected", 8025: "password.rejected",
    1400: "login.cert-not-listed", 1401: "login.cert-not-listed", 1402: "login.cert-not-listed",
    1404: "login.cert-not-listed", 1405: "login.cert-not-listed",
    1507: "kind.sig-vs-env", 1508: "kind.sig-vs-env", 1510: "kind.sig-vs-env", 1511: "kind.sig-vs-env",
    32797: "login.security-module", 32803: "login.security-module",
    **{code: "storage.token" for code in range(8000, 8031) if code != 8025},
}

# Constant names the facts give, with their codes.
FACT_NAMES = {
    "ERR_EXPIRED_CERT": 1203, "ERR_HOLDED_CERT": 1214, "ERR_REVOKED_CERT": 1215, "ERR_UNKNOWN_CERT": 1222,
    "ERR_NOT_CERT": 1245, "ERR_FAIL_CONSTRUCT_PATH": 1224, "ERR_NOT_TRUST_ROOT_CERT": 1232,
    "ERR_PATH_VALIDATION": 1233, "ERR_PATH_VALIDATION_CERT_POLICIES": 1238, "ERR_EXPIRED_CRL": 1212,
    "ERR_CONNECT_OCSP": 1216, "ERR_WRONG_PASSWORD": 1301, "ERR_WRONG_PRIKEY": 1300, "ERR_NOT_MATCHED_KEY_PAIR": 1303,
    "ERR_WRONG_ENC_PRIKEY": 1304, "ERR_READ_CERT": 1400, "ERR_READ_PRIKEY": 1401, "ERR_READ_FILE": 1402,
    "ERR_EMPTY_FILE": 1404, "ERR_INVALID_STORAGE": 1405, "ERR_WRONG_PIN": 1415, "ERR_PIN_INCORRECT": 8025,
    "ERR_USER_NOT_LOGGED_IN": 8024, "ERR_NOT_SIGN_CERT": 1510, "ERR_NOT_KM_CERT": 1511,
    "ERR_WRONG_RECIPIENT_CERT": 1508, "ERR_CANNOT_DECRYPT_DATA": 1507, "ERR_CONNECT_IVS": 2100,
    "ERR_REQUESTER_CERT_REVOKED": 2106, "ERR_REQUESTER_CERT_INVALID": 2107, "ERR_LICENSE_EXPIRED": 1103,
    "ERR_NOT_LICENSED": 1111,
}


@pytest.fixture(scope="module")
def module_hd(tmp_path_factory) -> Helpdesk:
    path = tmp_path_factory.mktemp("dg") / "helpdesk.db"
    helpdesk = Helpdesk(load_config(environ={"HELPDESK_DB": str(path), "HELPDESK_PII_KEY": "k"}))
    yield helpdesk
    helpdesk.close()


def test_the_shipped_table_loads_without_problems(module_hd: Helpdesk) -> None:
    assert PROBLEMS == []
    feature = module_hd.feature("diagnosis")
    assert feature is not None and module_hd.has_action("diagnose") and module_hd.has_action("datacheck")


@pytest.mark.parametrize("code, entry_id", sorted(FACT_CODES.items()))
def test_every_code_in_the_facts_has_a_row_and_its_entry(code: int, entry_id: str) -> None:
    row = TABLE.row_for(code)
    assert row is not None, code
    assert row.kb_id == entry_id
    assert row.cause and row.steps
    for text in (f"오류 {code}", str(code), f"[{code}]"):
        d = TABLE.diagnose(text)
        assert (d.code, d.kb_id, d.matched) == (str(code), entry_id, "code"), text
        assert d.diagnosis.startswith(str(code))


@pytest.mark.parametrize("name, code", sorted(FACT_NAMES.items()))
def test_constant_names_alone_map_to_their_code(name: str, code: int) -> None:
    d = TABLE.diagnose(f"에러 떴어요 {name}")
    assert d.code == str(code) and d.diagnosis == f"{code} {name}"
    assert d.kb_id == FACT_CODES[code]


@pytest.mark.parametrize(
    "text, entry_id, diagnosis",
    [
        ("허용되지 않는 정책의 인증서 입니다", "login.policy-not-allowed", "1238 ERR_PATH_VALIDATION_CERT_POLICIES"),
        ("신원확인용 인증서가 아닙니다 [확인]", "login.policy-not-allowed", "1238 ERR_PATH_VALIDATION_CERT_POLICIES"),
        ("폐지된 인증서입니다. 로그인할 수 없습니다", "login.revoked-message", "1215 ERR_REVOKED_CERT"),
        ("로그인하면 폐지된 인증서라고 나와요", "login.revoked-message", "1215 ERR_REVOKED_CERT"),
        ("인증서 경로 오류입니다. 관리자에게 문의하세요", "login.path-error", "path-error"),
        ("비밀번호가 올바르지 않습니다. 다시 입력하세요", "password.rejected", "1301 ERR_WRONG_PASSWORD"),
        ("보안모듈이 설치되어 있지 않습니다", "login.security-module", "32803 인증서 보안모듈 미설치"),
        ("모듈 버전이 변경되었습니다 다시 설치하세요", "login.security-module", "32797 인증서 보안모듈 버전 변경"),
        ("인증서 세션이 만료되어 페이지를 새로고침합니다", "login.security-module", "session-expired"),
        ("서명용 인증서가 아닙니다", "kind.sig-vs-env", "1510 ERR_NOT_SIGN_CERT"),
        ("암호화용 인증서가 아닙니다", "kind.sig-vs-env", "1511 ERR_NOT_KM_CERT"),
        ("효력정지된 인증서입니다", "suspend.restore", "1214 ERR_HOLDED_CERT"),
        ("유효기간이 만료된 인증서입니다", "validity.expired", "1203 ERR_EXPIRED_CERT"),
        ("인증서가 폐지되었습니다", "login.revoked-message", "1215 ERR_REVOKED_CERT"),
        ("효력이 정지된 인증서입니다", "suspend.restore", "1214 ERR_HOLDED_CERT"),
        ("키 쌍이 맞지 않는다고 나와요", "login.key-pair-mismatch", "1303 ERR_NOT_MATCHED_KEY_PAIR"),
        ("신뢰할 수 없는 인증서입니다", "login.path-error", "path-error"),
    ],
)
def test_codeless_client_messages(text: str, entry_id: str, diagnosis: str) -> None:
    d = TABLE.diagnose(text)
    assert (d.kb_id, d.diagnosis) == (entry_id, diagnosis)
    assert d.confidence >= 0.6


@pytest.mark.parametrize(
    "text, code",
    [
        ("2025-06-01 10:00:00,123 ERROR [main] kr.go.gpki.GpkiApi - verify failed ret=1303", "1303"),
        ("GPKIException: code=1215 msg=ERR_REVOKED_CERT at line 88", "1215"),
        ("오류코드：１２３８", "1238"),  # full-width digits and colon, as some phones type them
        ("I238 에러가 떠요", "1238"),  # OCR: capital i for 1
        ("에러코드 12O3 만료", "1203"),  # OCR: letter O for 0
        ("ERR_PATH_VALIDATON_CERT_POLICIES", "1238"),  # a typo in the constant
        ("PKCS#11 C_Login failed: 8006 ERR_USER_LOGIN slot=0", "8006"),
        ("http://gva.gpki.go.kr:8080 응답 없음 (1216)", "1216"),  # the port is not a code
        ("2024/11/02 14:55:10 [WARN] code=1212 ldap://cen.dir.go.kr:389", "1212"),
        ("errCode=32797", "32797"),
        ("오류번호: 1238", "1238"),
        ("로그인 시 ERR-1238", "1238"),
        ("GPKI_ERROR_1238", "1238"),
        ("ERR PATH VALIDATION CERT POLICIES", "1238"),  # read off a screen, spaces for underscores
    ],
)
def test_codes_inside_log_noise(text: str, code: str) -> None:
    d = TABLE.diagnose(text)
    assert d.code == code and d.recognized, text


@pytest.mark.parametrize(
    "text, entry_id",
    [
        ("인 증 서  경 로  오 류", "login.path-error"),
        ("허용되지 않는 정책의 인즘서 입니다", "login.policy-not-allowed"),  # a misread character
        ("비밀번호가올바르지않습니다!!", "password.rejected"),
        ("「인증서 세션이 만료되어 페이지를 새로고침 합니다」", "login.security-module"),
    ],
)
def test_messages_with_spacing_and_ocr_noise(text: str, entry_id: str) -> None:
    d = TABLE.diagnose(text)
    assert d.kb_id == entry_id and d.recognized, (text, d)


@pytest.mark.parametrize(
    "text, shown",
    [
        ("오류코드 1299", "1299"),
        ("[ERROR] ret=1302 GPKI_STORAGE_ReadPriKey", "1302"),
        ("9999 에러가 나요", "9999"),
        ("로그인 누르니까 (4002) 오류", "4002"),
        ("errCode=12345", "12345"),
    ],
)
def test_unknown_codes_are_said_unknown_with_hand_off(text: str, shown: str) -> None:
    d = TABLE.diagnose(text)
    assert d.diagnosis == "unknown-code" and d.code == shown
    assert d.needs_staff is True and d.kb_id in ("contact.who", None)
    assert d.as_json()["diagnosis"] == "unknown-code"


def test_an_unknown_constant_name_is_unknown_too() -> None:
    d = TABLE.diagnose("ERR_LDAP_INIT")
    assert d.diagnosis == "unknown-code" and d.name == "ERR_LDAP_INIT" and d.needs_staff


NOT_REPORTS = [
    "2026년 12월에 만료되는데 갱신은 언제 하나요?",
    "제 번호 010-1234-5678로 문자가 안 와요",
    "제 번호 01012345678 인데요",
    "발급 비용 8000원 맞나요",
    "사번 1301인데 인증서 신청하려면요",
    "비밀번호 1234로 바꿨는데 괜찮나요",
    "2025년 1월부터 쓰고 있어요",
    "1203호 회의실에서 교육 있어요",
    "서버 주소 gva.gpki.go.kr:8000 이 맞나요",
    "인증서 경로가 어디예요?",
    "폐지된 인증서를 복구할 수 있나요?",
    "인증서 유효기간 만료되면 어떻게 하나요",
    "2025.03.14에 신청했는데 아직이에요",
    "공문 번호 2100 으로 보냈어요",
    "인증서 비밀번호를 잊어버렸어요",
    "비밀번호가 일치하지 않으면 어떻게 해요",
    "인증서가 안 보여요",
    "8000 원이에요 발급 비용이",
]


@pytest.mark.parametrize("text", NOT_REPORTS)
def test_numbers_and_questions_that_are_not_error_reports(module_hd: Helpdesk, text: str) -> None:
    d = TABLE.diagnose(text)
    assert d.diagnosis == "not-recognized", (text, d)
    decision = module_hd.decide(text)  # matched as a question: no number taken for a code
    assert decision.via_code is None and decision.question == text


@pytest.mark.parametrize("text", ["1203에 신청했는데 아직 문자가 안 와요", "신청서 1234 페이지 참고"])
def test_a_known_code_with_nothing_around_it_is_not_taken_for_a_report(module_hd: Helpdesk, text: str) -> None:
    assert TABLE.diagnose(text).confidence < 0.6
    decision = module_hd.decide(text)
    assert decision.via_code is None and decision.id not in ("validity.expired", "login.path-error")


@pytest.mark.parametrize(
    "text, entry_id",
    [
        ("[1238] 인증서 정책 검증 실패", "login.policy-not-allowed"),
        ("2025-01-02 08:59:01 cert check failed: 1203 - 만료된 인증서", "validity.expired"),
        ("보안토큰 8019 오류", "storage.token"),
        ("인증서 세션이 만료되어 페이지를 새로고침합니다", "login.security-module"),
        ("IVS 서버 연결 실패 2100", "contact.who"),
    ],
)
def test_decide_answers_an_error_report_with_its_entry(module_hd: Helpdesk, text: str, entry_id: str) -> None:
    decision = module_hd.decide(text)
    assert (decision.action, decision.id) == ("answer", entry_id)
    assert decision.candidates[0].id == entry_id and decision.score >= 60


def test_decide_falls_back_on_an_unknown_code(module_hd: Helpdesk) -> None:
    decision = module_hd.decide("오류코드 1299 떠요")
    assert decision.action == "fallback" and decision.id is None


def run_cli(*args: str, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_ask_json_gives_the_entry_of_error_reports(tmp_path: Path) -> None:
    db = str(tmp_path / "ask.db")
    single = run_cli("--db", db, "ask", "--json", "[1238] 인증서 정책 검증 실패")
    assert single.returncode == 0, single.stderr.decode()
    assert json.loads(single.stdout)["id"] == "login.policy-not-allowed"
    lines = ["1303 ERR_NOT_MATCHED_KEY_PAIR", "폐지된인증서입니다 확인", "8027 ERR_SLOT_NOT_LISTED",
             "오류코드 1299", "2026년에 만료돼요 갱신 어떻게 해요"]
    stream = run_cli("--db", db, "ask", "--jsonl", stdin="\n".join(lines).encode())
    results = [json.loads(line) for line in stream.stdout.decode().splitlines()]
    assert [(r["action"], r["id"]) for r in results[:4]] == [
        ("answer", "login.key-pair-mismatch"), ("answer", "login.revoked-message"), ("answer", "storage.token"),
        ("fallback", None),
    ]
    assert results[4]["id"] != "login.path-error"  # 2026 is a year, not a code


def test_helpdesk_diagnose_json_and_text(tmp_path: Path) -> None:
    db = str(tmp_path / "d.db")
    result = run_cli("--db", db, "diagnose", "[1238] 인증서 정책 검증 실패", "--json",
                     env={"HELPDESK_CONTACT": "정보화담당관실"})
    assert result.returncode == 0, result.stderr.decode()
    obj = json.loads(result.stdout)
    assert set(obj) == {"diagnosis", "cause", "steps", "kb_id", "needs_staff", "confidence"}
    assert obj["diagnosis"] == "1238 ERR_PATH_VALIDATION_CERT_POLICIES"
    assert obj["kb_id"] == "login.policy-not-allowed" and obj["needs_staff"] is False
    assert len(obj["steps"]) >= 2 and any("정보화담당관실" in s for s in obj["steps"])  # {{ contact }} filled in
    unknown = json.loads(run_cli("--db", db, "diagnose", "오류 1299", "--json").stdout)
    assert unknown["diagnosis"] == "unknown-code" and unknown["needs_staff"] is True
    text = run_cli("--db", db, "diagnose", "1301 ERR_WRONG_PASSWORD")
    assert text.returncode == 0 and "1. " in text.stdout.decode() and "password.rejected" in text.stdout.decode()
    assert run_cli("--db", db, "diagnose").returncode == 2


@pytest.mark.parametrize(
    "broken, message",
    [
        (("    kb_id: validity.expired\n", "    kb_id: validity.nope\n"), "kb_id 'validity.nope'"),
        (("    needs_staff: true\n    actions: [status, staff]\n", "    needs_staff: maybe\n    actions: [status, staff]\n"),
         "'needs_staff' must be true or false"),
        (("  - code: 1215\n", "  - code: 12x5\n"), "'code' must be a 4-5 digit number"),
        (("    cause: 고른 인증서의 유효기간이", "    cause: 고른 {{ oops }} 인증서의 유효기간이"), "only {{ contact }}"),
    ],
)
def test_a_broken_row_is_reported_with_the_file_and_row(tmp_path: Path, broken: tuple[str, str], message: str) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_KNOWLEDGE_DIR, knowledge)
    codes = knowledge / "diagnosis" / "codes.yaml"
    text = codes.read_text(encoding="utf-8")
    assert broken[0] in text
    codes.write_text(text.replace(broken[0], broken[1], 1), encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        Helpdesk(load_config(environ={"HELPDESK_DB": str(tmp_path / "x.db"), "HELPDESK_KNOWLEDGE_DIR": str(knowledge)}))
    assert "codes.yaml" in str(caught.value) and "row" in str(caught.value) and message in str(caught.value)
    if "kb_id" not in message:
        return
    result = run_cli("--db", str(tmp_path / "y.db"), "diagnose", "1238", env={"HELPDESK_KNOWLEDGE_DIR": str(knowledge)})
    assert result.returncode == 2 and "codes.yaml" in result.stderr.decode() and "Traceback" not in result.stderr.decode()


@pytest.mark.parametrize(
    "usage, kind, scheme, system, problem, held, needed",
    [
        ("personal-admin", "sig", "GPKI", "work-login", None, None, None),
        ("personal-public", "sig", "GPKI", "work-login", "usage", "공공/민간 개인용", "행정기관 개인용"),
        ("org", "sig", "GPKI", "work-login", "usage", "기관용(전자관인)", "행정기관 개인용"),
        ("epki-personal", "sig", "EPKI", "work-login", "scheme", "교육기관(EPKI) 개인용", "행정기관 개인용"),
        ("npki", "sig", "NPKI", None, "scheme", "은행용 공동인증서(NPKI)", "행정기관 개인용"),
        ("personal-admin", "env", "GPKI", "work-login", "kind", "암호화용(_env)", "서명용(_sig)"),
        ("personal-admin", "env", "GPKI", "secure-mail", None, None, None),
        ("epki-personal", "sig", "EPKI", "neis", None, None, None),
        ("personal-admin", "sig", "GPKI", "neis", "scheme", "행정기관 개인용", "교육기관(EPKI) 개인용"),
        ("unknown", "sig", None, "work-login", "unknown", None, "행정기관 개인용"),
    ],
)
def test_compare_with_system(usage, kind, scheme, system, problem, held, needed) -> None:
    wrong = compare_with_system(usage, kind, scheme, system)
    if problem is None:
        assert wrong is None
        return
    assert wrong is not None and wrong.problem == problem and wrong.needed == needed
    if held is not None:
        assert wrong.held == held
    if problem in ("usage", "scheme"):
        assert wrong.apply  # what to apply for


def test_compare_with_system_reads_the_policy_oid_when_usage_is_unknown() -> None:
    wrong = compare_with_system("unknown", "sig", None, "work-login", policy_oid="1.2.410.100001.2.2.2")
    assert wrong is not None and wrong.problem == "usage" and wrong.held == "공공/민간 개인용"
    assert compare_with_system(None, "sig", None, policy_oid="1.2.410.100001.2.2.1") is None


def test_check_diagnosis_is_clean_for_the_shipped_files(module_hd: Helpdesk) -> None:
    from bot.diagnosis_feature import check_diagnosis

    assert check_diagnosis(DEFAULT_KNOWLEDGE_DIR, module_hd.kb) == []


def test_systems_table_is_valid() -> None:
    systems = load_systems(DEFAULT_KNOWLEDGE_DIR)
    assert systems.problems == [] and systems.default == "work-login"
    rule = systems.systems["work-login"].accept[0]
    assert (rule.scheme, rule.usages, rule.kinds) == ("GPKI", ("personal-admin",), ("sig",))


def test_errors_dev_accuracy_is_at_least_95_percent(module_hd: Helpdesk) -> None:
    result = evaluate_errors(module_hd, ROOT / "tests" / "data" / "errors_dev.tsv")
    assert result["total"] >= 50
    assert result["accuracy"] >= 0.95, result["misses"]


def test_eval_errors_prints_from_the_command_line() -> None:
    result = subprocess.run([sys.executable, "-m", "bot.eval_errors"], capture_output=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert "error reports (errors_dev.tsv)" in result.stdout.decode()
