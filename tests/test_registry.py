"""The registry: CSV import (good rows, bad rows by line, idempotent upserts, hashed identifiers), certificate
files and CRLs, derived status, and one-time link codes. Real SQLite files, certificates made with certgen."""
from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from bot import certgen
from bot.clock import SEOUL, FixedClock
from bot.config import Config
from bot.helpdesk import Helpdesk
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.privacy import hmac_id
from bot.registry import (CertificateRecord, Registry, RegistryError, canonical_dn, csv_text, normalize_serial)
from tests.conftest import NOW, ROOT

ISSUER = "CN=CA131100001,OU=GPKI,O=Government of Korea,C=KR"
SUBJECT = "CN=001홍길동001,OU=people,OU=행정안전부,O=Government of Korea,C=KR"
RRN = "900101-1234567"
PHONE = "010-2345-6789"


def row(**changes) -> dict:
    base = {
        "employee_id": "S0001", "name": "홍길동", "agency": "행정안전부", "agency_code": "1311000",
        "department": "정보화담당관", "phone": PHONE, "email": "hong@example.kr", "serial": "1A2B",
        "issuer": ISSUER, "subject": SUBJECT, "not_before": "2025-01-01", "not_after": "2027-01-01",
        "rrn": RRN, "kind": "sig", "policy_oid": "1.2.410.100001.2.2.1",
    }
    base.update(changes)
    return base


def write_csv(tmp_path: Path, rows: list[dict], name: str = "holders.csv") -> Path:
    path = tmp_path / name
    path.write_text(csv_text(rows), encoding="utf-8")
    return path


def table(hd: Helpdesk, name: str, order: str) -> list[tuple]:
    return [tuple(r) for r in hd.store.db.execute(f"SELECT * FROM {name} ORDER BY {order}").fetchall()]


@pytest.fixture(scope="session")
def shared_kb() -> KnowledgeBase:
    """The shipped knowledge base, loaded once: these tests are about the registry, not the KB."""
    return load_knowledge(str(ROOT / "knowledge"))


@pytest.fixture
def hd(config: Config, clock: FixedClock, shared_kb: KnowledgeBase) -> Helpdesk:
    helpdesk = Helpdesk(config, clock=clock, kb=shared_kb)
    yield helpdesk
    helpdesk.close()


@pytest.fixture
def reg(hd: Helpdesk) -> Registry:
    return Registry(hd)


# -- CSV import --------------------------------------------------------------------------------------

BAD_ROWS = [
    ({"employee_id": ""}, "employee_id is empty"),
    ({"name": " "}, "name is empty"),
    ({"serial": "XYZ"}, "serial must be hexadecimal"),
    ({"serial": ""}, "serial is empty"),
    ({"issuer": ""}, "issuer is empty"),
    ({"not_after": "2027-13-01"}, "not_after is not an ISO-8601 date"),
    ({"not_before": ""}, "not_before is empty"),
    ({"not_after": "2024-01-01"}, "not_after must be later than not_before"),
    ({"rrn": "12345"}, "rrn must have 13 digits"),
    ({"phone": "12-34"}, "phone must be a Korean phone number"),
    ({"email": "not-an-address"}, "email is not an e-mail address"),
    ({"status": "lost"}, "status must be valid, revoked, suspended or expired"),
    ({"status": "expired"}, "status is expired but not_after is in the future"),
    ({"revocation_reason": "bored"}, "revocation_reason is not a known reason"),
    ({"kind": "both"}, "kind must be sig or env"),
    ({"policy_oid": "gpki"}, "policy_oid is not an OID"),
]


def test_bad_rows_are_reported_by_line_and_good_rows_kept(reg: Registry, tmp_path: Path) -> None:
    rows = [row(employee_id="S0100", serial="01")]
    for i, (changes, _) in enumerate(BAD_ROWS):
        rows.append(row(**{"employee_id": f"B{i:03d}", "serial": f"{0x100 + i:X}", **changes}))
    rows.append(row(employee_id="S0101", serial="02"))
    report = reg.import_csv(write_csv(tmp_path, rows))
    assert report.fatal is None
    assert report.rows == 2 and report.certificates_new == 2
    assert [e.line for e in report.errors] == list(range(3, 3 + len(BAD_ROWS)))  # header is line 1
    for error, (_, expected) in zip(report.errors, BAD_ROWS):
        assert expected in error.message, (error, expected)
    held = [r[0] for r in reg.db.execute("SELECT employee_id FROM holders ORDER BY 1").fetchall()]
    assert held == ["S0100", "S0101"]
    # The messages never repeat a 주민등록번호 or a phone number.
    assert all("12345" not in e.message and "12-34" not in e.message for e in report.errors)


def test_row_with_wrong_number_of_fields_and_blank_lines(reg: Registry) -> None:
    text = csv_text([row()]) + "\n" + "S0002,too,few\n" + csv_text([row(employee_id="S0003", serial="0C")]).split("\n", 1)[1]
    report = reg.import_csv(io.StringIO(text))
    assert [(e.line, e.message) for e in report.errors] == [(4, "expected 18 fields, found 3")]
    assert report.rows == 2


@pytest.mark.parametrize("content, fatal", [
    (b"", "the file is empty"),
    (b"employee_id,name,serial\nS1,a,01\n", "header row lacks column(s) agency, agency_code"),
    ("employee_id,name,agency,agency_code,department,phone,email,serial,issuer,subject,not_before,not_after\n"
     "S1,홍길동,a,b,c,,,01,x,y,2025-01-01,2026-01-01\n".encode("cp949"), "not UTF-8"),
])
def test_unreadable_files_are_refused_whole(reg: Registry, tmp_path: Path, content: bytes, fatal: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    report = reg.import_csv(path)
    assert report.fatal is not None and fatal in report.fatal
    assert reg.db.execute("SELECT COUNT(*) FROM certificates").fetchone()[0] == 0


def test_reimport_is_idempotent(hd: Helpdesk, reg: Registry, tmp_path: Path) -> None:
    path = write_csv(tmp_path, [row(), row(serial="1A2C", kind="env"), row(employee_id="S0002", serial="33")])
    first = reg.import_csv(path)
    before = table(hd, "holders", "employee_id"), table(hd, "certificates", "id")
    second = reg.import_csv(path)
    assert (first.certificates_new, first.certificates_updated) == (3, 0)
    assert (second.certificates_new, second.certificates_updated) == (0, 3)
    assert (table(hd, "holders", "employee_id"), table(hd, "certificates", "id")) == before


def test_upsert_by_issuer_and_serial_whatever_the_spelling(hd: Helpdesk, reg: Registry, tmp_path: Path) -> None:
    reg.import_csv(write_csv(tmp_path, [row(serial="0A1B")]))
    respelled = row(serial="0a:1b", issuer="c=KR, o=Government of Korea, ou=GPKI, cn=CA131100001",
                    not_after="2028-02-02", department="새 부서")
    report = reg.import_csv(write_csv(tmp_path, [respelled], "again.csv"))
    assert (report.certificates_new, report.certificates_updated) == (0, 1)
    rows = hd.store.db.execute("SELECT issuer, serial, not_after FROM certificates").fetchall()
    assert rows == [(ISSUER, "0A1B", "2028-02-02T23:59:59+09:00")]
    assert reg.holder("S0001").department == "새 부서"


def test_rrn_and_phone_are_never_stored_in_clear(hd: Helpdesk, reg: Registry, tmp_path: Path, db_path: Path) -> None:
    reg.import_csv(write_csv(tmp_path, [row(), row(serial="1A2C", rrn="", phone="")]))
    holder = reg.holder("S0001")
    assert holder.rrn_hmac == hmac_id("test-pii-key", "rrn:9001011234567")
    assert holder.phone_hmac == hmac_id("test-pii-key", "phone:01023456789")
    assert holder.phone_last4 == "6789"
    hd.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    for secret in ("9001011234567", "900101-1234567", "01023456789", "010-2345-6789", "2345-6789"):
        assert secret.encode() not in stored, secret


def test_dates_serials_and_names_are_normalised(reg: Registry, tmp_path: Path) -> None:
    reg.import_csv(write_csv(tmp_path, [row(serial="0x00F", not_before="2025-01-01", not_after="2026-12-26",
                                            issuer="/C=KR/O=Government of Korea/OU=GPKI/CN=CA131100001")]))
    cert = reg.certificates("S0001")[0]
    assert cert.serial == "0F" and cert.issuer == ISSUER
    assert cert.not_before == datetime(2025, 1, 1, 0, 0, 0, tzinfo=SEOUL)
    assert cert.not_after == datetime(2026, 12, 26, 23, 59, 59, tzinfo=SEOUL)
    assert (cert.usage, cert.scheme, cert.kind) == ("personal-admin", "GPKI", "sig")


@pytest.mark.parametrize("value, expected", [
    ("1a2b", "1A2B"), ("01:a2:b3", "01A2B3"), ("ABC", "0ABC"), (255, "FF"), ("0x0", "00"), ("00 FF", "FF"),
])
def test_normalize_serial(value, expected) -> None:
    assert normalize_serial(value) == expected


@pytest.mark.parametrize("value", ["", "xyz", "12G4"])
def test_normalize_serial_refuses(value) -> None:
    with pytest.raises(RegistryError):
        normalize_serial(value)


@pytest.mark.parametrize("value, expected", [
    ("CN=a,O=b,C=KR", "CN=a,O=b,C=KR"), ("C=KR, O=b, CN=a", "CN=a,O=b,C=KR"), ("/C=KR/O=b/CN=a", "CN=a,O=b,C=KR"),
    ("cn=a, ou=x\\,y, c=KR", "CN=a,OU=x\\,y,C=KR"), ("not a dn", "not a dn"),
])
def test_canonical_dn(value, expected) -> None:
    assert canonical_dn(value) == expected


@pytest.mark.parametrize("status, reason, revoked_at, stored", [
    ("revoked", "keyCompromise", "2026-11-01", ("revoked", "keyCompromise")),
    ("", "key_compromise", "2026-11-01", ("revoked", "keyCompromise")),
    ("suspended", "", "", ("suspended", "certificateHold")),
    ("revoked", "certificateHold", "", ("suspended", "certificateHold")),
    ("valid", "", "", ("valid", None)),
])
def test_status_columns(reg: Registry, tmp_path: Path, status, reason, revoked_at, stored) -> None:
    reg.import_csv(write_csv(tmp_path, [row(status=status, revocation_reason=reason, revoked_at=revoked_at)]))
    cert = reg.certificates("S0001")[0]
    assert (cert.status, cert.revocation_reason) == stored
    assert cert.status_source == "csv" and cert.status_checked_at == NOW


# -- derived status ----------------------------------------------------------------------------------

def _record(status="valid", start=-100, end=100) -> CertificateRecord:
    return CertificateRecord(issuer=ISSUER, serial="01", not_before=NOW + timedelta(days=start),
                             not_after=NOW + timedelta(days=end), status=status)


@pytest.mark.parametrize("record, state, days", [
    (_record(), "valid", 100),
    (_record(end=-1), "expired", -1),
    (_record(status="revoked", end=-5), "revoked", -5),
    (_record(status="suspended"), "suspended", 100),
    (_record(status="suspended", end=-2), "expired", -2),
    (_record(start=3, end=300), "not_yet_valid", 300),
])
def test_effective_status_and_days_left(record: CertificateRecord, state: str, days: int) -> None:
    assert record.effective_status(NOW) == state
    assert record.days_left(NOW) == days


def test_certificates_come_most_urgent_first(reg: Registry, tmp_path: Path) -> None:
    day = lambda n: (NOW + timedelta(days=n)).date().isoformat()  # noqa: E731
    reg.import_csv(write_csv(tmp_path, [
        row(serial="01", not_after=day(400)), row(serial="02", not_after=day(3)), row(serial="03", not_after=day(-2)),
        row(serial="04", status="revoked", not_after=day(100)), row(serial="05", status="suspended", not_after=day(90)),
        row(serial="06", not_before=day(5), not_after=day(500)), row(serial="07", not_after=day(20)),
    ]))
    assert [c.serial for c in reg.certificates("S0001")] == ["04", "05", "03", "02", "07", "01", "06"]


# -- certificate files and CRLs -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca() -> certgen.Authority:
    return certgen.make_authority()


def _issue(ca, serial: int, kind="sig", days=300):
    cert, _ = certgen.issue(ca, cn="001홍길동001", kind=kind, serial=serial, not_before=NOW - timedelta(days=30),
                            not_after=NOW + timedelta(days=days), crl_url="http://127.0.0.1:9/ca.crl")
    return cert


def _crl(ca, entries, number=1):
    return certgen.make_crl(ca, entries, this_update=NOW - timedelta(hours=1), next_update=NOW + timedelta(days=1),
                            number=number)


CRL_CASES = [
    # (CRL entries as (serial, reason), expected status of serials 0x11, 0x12, 0x13)
    ([], ("valid", "valid", "valid")),
    ([(0x11, x509.ReasonFlags.key_compromise)], ("revoked", "valid", "valid")),
    ([(0x12, x509.ReasonFlags.certificate_hold)], ("valid", "suspended", "valid")),
    ([(0x11, None), (0x13, x509.ReasonFlags.affiliation_changed)], ("revoked", "valid", "revoked")),
]


@pytest.mark.parametrize("entries, expected", CRL_CASES)
@pytest.mark.parametrize("encoding", ["der", "pem"])
def test_crl_file_updates_status(hd: Helpdesk, reg: Registry, tmp_path: Path, ca, entries, expected,
                                 encoding) -> None:
    reg.import_csv(write_csv(tmp_path, [row(serial=s, issuer=ISSUER) for s in ("11", "12", "13")]))
    crl = _crl(ca, [(serial, NOW - timedelta(days=2), reason) for serial, reason in entries])
    path = tmp_path / f"ca.{'crl' if encoding == 'der' else 'pem'}"
    path.write_bytes(certgen.to_der(crl) if encoding == "der" else certgen.to_pem(crl))
    [report] = reg.import_path(path)
    assert report.kind == "crl" and report.ok, report.message
    got = {c.serial: c for c in reg.certificates("S0001")}
    assert tuple(got[s].status for s in ("11", "12", "13")) == expected
    assert all(c.status_source == f"crl:file:{path.name}" and c.status_checked_at == NOW for c in got.values())
    assert table(hd, "crls", "id")[0][1:6] == (ISSUER, "1", (NOW - timedelta(hours=1)).isoformat(),
                                               (NOW + timedelta(days=1)).isoformat(), len(entries))


def test_holds_are_lifted_and_old_or_forged_crls_refused(hd: Helpdesk, reg: Registry, tmp_path: Path, ca) -> None:
    reg.import_csv(write_csv(tmp_path, [row(serial="11"), row(serial="12")]))
    hold = x509.ReasonFlags.certificate_hold
    assert reg.apply_crl(_crl(ca, [(0x11, NOW, hold), (0x12, NOW, hold)], number=5), source="t").revoked == 2
    # removeFromCRL lifts one hold (a delta-style entry); a later full CRL without the other lifts it too.
    report = reg.apply_crl(_crl(ca, [(0x11, NOW, x509.ReasonFlags.remove_from_crl), (0x12, NOW, hold)], number=6),
                           source="t")
    assert report.restored == 1 and [c.status for c in reg.certificates("S0001")] == ["suspended", "valid"]
    assert reg.apply_crl(_crl(ca, [], number=7), source="t").restored == 1
    assert {c.status for c in reg.certificates("S0001")} == {"valid"}
    older = reg.apply_crl(_crl(ca, [(0x11, NOW, None)], number=3), source="t")
    assert not older.ok and "older" in older.error
    # Once the CA is known, a CRL signed by another key with the same name is refused.
    reg.add_ca_certificate(ca.cert, source="test")
    impostor = certgen.make_authority()
    forged = reg.apply_crl(_crl(impostor, [(0x11, NOW, None)], number=9), source="t")
    assert not forged.ok and "signature" in forged.error
    genuine = reg.apply_crl(_crl(ca, [(0x11, NOW, None)], number=9), source="t")
    assert genuine.ok and genuine.verified is True
    assert reg.certificates("S0001")[0].status == "revoked"


def test_a_later_csv_never_undoes_a_crl_revocation(reg: Registry, tmp_path: Path, ca) -> None:
    path = write_csv(tmp_path, [row(serial="11", status="valid")])
    reg.import_csv(path)
    reg.apply_crl(_crl(ca, [(0x11, NOW - timedelta(days=1), x509.ReasonFlags.key_compromise)]), source="t")
    reg.import_csv(path)
    cert = reg.certificates("S0001")[0]
    assert (cert.status, cert.revocation_reason) == ("revoked", "keyCompromise")
    assert reg.revocation_lookup(ISSUER.lower(), "11") == ("revoked", NOW - timedelta(days=1), "keyCompromise")
    assert reg.revocation_lookup(ISSUER, "99") is None


def test_certificate_files_and_folders(hd: Helpdesk, reg: Registry, tmp_path: Path, ca) -> None:
    reg.import_csv(write_csv(tmp_path, [row(serial="21", subject="cn=001홍길동001, ou=people, ou=행정안전부, "
                                                                   "o=Government of Korea, c=KR")]))
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "001홍길동001_sig.cer").write_bytes(certgen.to_der(_issue(ca, 0x21)))
    (folder / "001홍길동001_env.cer").write_bytes(certgen.to_pem(_issue(ca, 0x22, kind="env")))
    (folder / "GPKIRootCA.cer").write_bytes(certgen.to_der(ca.cert))
    (folder / "001홍길동001_sig.key").write_bytes(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n")
    (folder / "notes.txt").write_text("not a certificate")
    reports = {Path(r.path).name: r for r in reg.import_path(folder)}
    assert set(reports) == {"001홍길동001_sig.cer", "001홍길동001_env.cer", "GPKIRootCA.cer", "001홍길동001_sig.key"}
    assert reports["GPKIRootCA.cer"].kind == "ca-certificate"
    assert not reports["001홍길동001_sig.key"].ok and "private key" in reports["001홍길동001_sig.key"].message
    certs = {c.serial: c for c in reg.certificates("S0001")}
    assert set(certs) == {"21", "22"}  # the env half found its holder through the shared subject
    assert (certs["22"].kind, certs["22"].usage, certs["22"].source) == ("env", "personal-admin", "file")
    assert certs["21"].crl_url == "http://127.0.0.1:9/ca.crl"
    assert len(reg.ca_certificates(ISSUER)) == 1


def test_a_folder_applies_its_crl_after_its_ca_certificate(reg: Registry, tmp_path: Path, ca) -> None:
    reg.import_csv(write_csv(tmp_path, [row(serial="31")]))
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a-latest.crl").write_bytes(certgen.to_der(_crl(ca, [(0x31, NOW, None)])))
    (folder / "z-ca.cer").write_bytes(certgen.to_der(ca.cert))
    reports = reg.import_path(folder)
    assert [r.kind for r in reports] == ["ca-certificate", "crl"]
    assert reports[1].detail.verified is True and "signature verified" in reports[1].message
    assert reg.certificates("S0001")[0].status == "revoked"


# -- link codes ------------------------------------------------------------------------------------------

@pytest.fixture
def holder(reg: Registry) -> str:
    reg.upsert_holder("S0001", "홍길동", phone=PHONE)
    reg.upsert_holder("S0002", "김철수")
    return "S0001"


def test_link_code_is_single_use_and_stored_hashed(hd: Helpdesk, reg: Registry, holder: str, db_path: Path) -> None:
    code = reg.create_link_code(holder)
    assert len(code.code) == 8 and code.expires_at == NOW + timedelta(hours=72)
    hd.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert code.code.encode() not in b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    assert reg.redeem_link_code("chat-1", code.code.lower()).outcome == "linked"
    assert reg.holder_by_chat("chat-1").employee_id == holder
    assert reg.redeem_link_code("chat-2", code.code).outcome == "used"
    assert reg.holder_by_chat("chat-2") is None


def test_link_code_expires(reg: Registry, clock: FixedClock, holder: str) -> None:
    code = reg.create_link_code(holder)
    clock.advance(hours=72)
    result = reg.redeem_link_code("chat-1", code.code)
    assert result.outcome == "expired" and result.attempts_left == 4


def test_a_new_code_replaces_the_unused_one(reg: Registry, holder: str) -> None:
    old, new = reg.create_link_code(holder), reg.create_link_code(holder)
    assert reg.redeem_link_code("chat-1", old.code).outcome == "invalid"
    assert reg.redeem_link_code("chat-1", new.code).outcome == "linked"


def test_five_wrong_codes_lock_linking_for_an_hour(reg: Registry, clock: FixedClock, holder: str) -> None:
    code = reg.create_link_code(holder)
    outcomes = []
    for _ in range(5):
        outcomes.append(reg.redeem_link_code("chat-1", "WRONG234").outcome)
        clock.advance(minutes=5)
    assert outcomes == ["invalid"] * 4 + ["locked"]
    locked = reg.redeem_link_code("chat-1", code.code)  # even the right code waits
    assert locked.outcome == "locked" and locked.locked_until == NOW + timedelta(minutes=20, hours=1)
    assert reg.redeem_link_code("chat-other", code.code).outcome == "linked"  # the lock is per chat
    clock.advance(minutes=56)  # the lock ends an hour after the fifth wrong code
    after = reg.redeem_link_code("chat-1", "WRONG234")
    assert after.outcome == "invalid" and after.attempts_left == 4


def test_wrong_codes_spread_over_more_than_an_hour_do_not_lock(reg: Registry, clock: FixedClock, holder: str) -> None:
    for _ in range(8):
        assert reg.redeem_link_code("chat-1", "WRONG234").outcome == "invalid"
        clock.advance(minutes=16)


def test_one_chat_one_holder_and_unlink(reg: Registry, holder: str) -> None:
    reg.redeem_link_code("chat-1", reg.create_link_code("S0001").code)
    reg.redeem_link_code("chat-1", reg.create_link_code("S0002").code)
    assert reg.holder_by_chat("chat-1").employee_id == "S0002"
    assert reg.holder("S0001").chat_id is None
    assert reg.unlink("chat-1").employee_id == "S0002"
    assert reg.holder_by_chat("chat-1") is None and reg.unlink("chat-1") is None
    assert reg.link_console("S0001") == "console:S0001" and reg.link_console("NOPE") is None
    assert reg.link_console("S0001") == "console:S0001"  # again: still the console's
    reg.link_chat("S0002", "12345")  # a Telegram user's chat is never taken over by `chat --as`
    with pytest.raises(RegistryError, match="linked to a user's chat"):
        reg.link_console("S0002")
    assert reg.holder("S0002").chat_id == "12345"
    with pytest.raises(RegistryError):
        reg.create_link_code("NOPE")


def test_excel_csv_with_bom_and_crlf(reg: Registry, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text([row(), row(serial="1A2C", kind="env")]).replace("\n", "\r\n").encode())
    report = reg.import_csv(path)
    assert report.ok and report.rows == 2 and not report.warnings
