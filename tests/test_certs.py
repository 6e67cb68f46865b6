"""Certificate inspection: states, findings, private-key refusals, bad input, the CLI and the chat.

Every certificate is made on the spot with bot.certgen; the clock stands at conftest's NOW.
"""
from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from bot import certgen
from bot.certgen import (EPKI_ORG, EPKI_PERSONAL, EPKI_SERVER, EPKI_SPECIAL, EPKI_SSL, NPKI_PERSONAL, ORG_ADMIN,
                         ORG_PUBLIC, PERSONAL_ADMIN, PERSONAL_PUBLIC, SERVER_ADMIN, SERVER_PUBLIC, SPECIAL_ADMIN,
                         SPECIAL_PUBLIC, issue, issue_pair, make_authority, make_crl, to_der, to_pem)
from bot.certs import (MAX_BYTES, CrlIndex, Inspection, Required, crl_info, inspect_bytes, inspect_many,
                       inspect_path, inspect_paths)
from tests.conftest import NOW, ROOT, Talk

GPKI = make_authority()
EPKI = make_authority(scheme="EPKI")
NPKI = make_authority(scheme="NPKI")
OTHER = make_authority(scheme="OTHER")
START = NOW - timedelta(days=365)
END = NOW + timedelta(days=400)

JSON_KEYS = {"file", "ok", "error", "scheme", "kind", "usage", "policy_oid", "subject", "issuer", "serial",
             "not_before", "not_after", "days_left", "status", "findings"}
KEY_ERROR_WORDS = ("개인키", "누구에게도 보내면 안 돼요")


def cert(ca=GPKI, *, cn="001홍길동001", kind="sig", policy=PERSONAL_ADMIN, start=START, end=END, **kw):
    return issue(ca, cn=cn, kind=kind, policy_oid=policy, not_before=start, not_after=end, **kw)[0]


def der(c) -> bytes:
    return to_der(c)


# -- states and findings ------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    make: Callable[[], tuple[str, bytes]]
    expect: dict[str, Any]
    codes: set[str] = field(default_factory=set)  # exactly these finding codes
    required: dict | None = None
    message_has: str = ""


CASES = [
    Case("valid personal-admin sig", lambda: ("001홍길동001_sig.cer", der(cert())),
         dict(ok=True, scheme="GPKI", kind="sig", usage="personal-admin", policy_oid=PERSONAL_ADMIN,
              status="valid", days_left=400)),
    Case("expiring in 20 days", lambda: ("a_sig.cer", der(cert(end=NOW + timedelta(days=20)))),
         dict(status="valid", days_left=20), {"cert.expiring"}, message_has="20일 뒤"),
    Case("expiring in 3 days", lambda: ("a_sig.cer", der(cert(end=NOW + timedelta(days=3)))),
         dict(status="valid", days_left=3), {"cert.expiring"}, message_has="서둘러"),
    Case("31 days is not expiring", lambda: ("a_sig.cer", der(cert(end=NOW + timedelta(days=31)))),
         dict(status="valid", days_left=31), set()),
    Case("expired", lambda: ("a_sig.cer", der(cert(end=NOW - timedelta(days=5)))),
         dict(status="expired", days_left=-5), {"cert.expired"}, message_has="만료된 인증서"),
    Case("expired an hour ago", lambda: ("a_sig.cer", der(cert(end=NOW - timedelta(hours=1)))),
         dict(status="expired", days_left=-1), {"cert.expired"}),
    Case("not yet valid", lambda: ("a_sig.cer", der(cert(start=NOW + timedelta(days=2)))),
         dict(status="not_yet_valid"), {"cert.not_yet_valid"}),
    Case("env where sig is needed", lambda: ("001홍길동001_env.cer", der(cert(kind="env"))),
         dict(kind="env", usage="personal-admin", status="valid"), {"cert.env_not_sig"}, message_has="서명용(_sig)"),
    Case("env where env is needed", lambda: ("a_env.cer", der(cert(kind="env"))),
         dict(kind="env"), set(), required={"kind": "env"}),
    Case("sig where env is needed", lambda: ("a_sig.cer", der(cert())),
         dict(kind="sig"), {"cert.sig_not_env"}, required={"kind": "env"}),
    Case("공공/민간 개인용 for a 행정기관 system", lambda: ("a_sig.cer", der(cert(policy=PERSONAL_PUBLIC))),
         dict(usage="personal-public", policy_oid=PERSONAL_PUBLIC), {"cert.public_not_admin"}, message_has="1238"),
    Case("공공/민간 개인용 where it is wanted", lambda: ("a_sig.cer", der(cert(policy=PERSONAL_PUBLIC))),
         dict(usage="personal-public"), set(), required={"usage": "personal-public"}),
    Case("행정기관 개인용 where 공공 is wanted", lambda: ("a_sig.cer", der(cert())),
         dict(usage="personal-admin"), {"cert.admin_not_public"}, required={"usage": "personal-public"}),
    Case("NPKI bank certificate", lambda: ("signCert.der", der(cert(NPKI, cn="홍길동()0011234", policy=NPKI_PERSONAL))),
         dict(scheme="NPKI", usage="npki", kind="sig"), {"cert.npki"}, message_has="공동인증서"),
    Case("NPKI by issuer only", lambda: ("signCert.der", der(cert(NPKI, cn="홍길동()001", policy=None))),
         dict(scheme="NPKI", usage="npki", policy_oid=None), {"cert.npki"}),
    Case("unknown issuer", lambda: ("x.cer", der(cert(OTHER, cn="bob", policy=None))),
         dict(scheme="other", usage="unknown"), {"cert.unknown_issuer"}, message_has="Example Test CA"),
    Case("EPKI personal, default (GPKI) system", lambda: ("e_sig.cer", der(cert(EPKI, policy=EPKI_PERSONAL, agency="교육부"))),
         dict(scheme="EPKI", usage="epki-personal"), {"cert.epki_not_gpki"}),
    Case("EPKI personal, EPKI system", lambda: ("e_sig.cer", der(cert(EPKI, policy=EPKI_PERSONAL, agency="교육부"))),
         dict(scheme="EPKI", usage="epki-personal"), set(), required={"scheme": "EPKI", "usage": "epki-personal"}),
    Case("EPKI org", lambda: ("e.cer", der(cert(EPKI, policy=EPKI_ORG))), dict(scheme="EPKI", usage="epki-org"),
         {"cert.org_not_personal"}, required={"scheme": "EPKI", "usage": "epki-personal"}),
    Case("EPKI special", lambda: ("e.cer", der(cert(EPKI, policy=EPKI_SPECIAL))),
         dict(scheme="EPKI", usage="epki-special"), set(), required={"scheme": "EPKI", "usage": None}),
    Case("EPKI server (5.3.1.7)", lambda: ("e.cer", der(cert(EPKI, cn="SVR1341000001", policy=EPKI_SERVER))),
         dict(scheme="EPKI", usage="epki-server"), {"cert.server_not_personal"},
         required={"scheme": "EPKI", "usage": "epki-personal"}),
    Case("EPKI SSL (5.3.1.9)", lambda: ("e.cer", der(cert(EPKI, cn="SVR1341000002", policy=EPKI_SSL))),
         dict(scheme="EPKI", usage="epki-server"), set(), required={"scheme": "EPKI", "usage": None}),
    Case("EPKI by issuer, no policy", lambda: ("e.cer", der(cert(EPKI, policy=None))),
         dict(scheme="EPKI", usage="unknown"), {"cert.unknown_policy"}, required={"scheme": "EPKI"}),
    Case("GPKI 기관용 2.1.1", lambda: ("o.cer", der(cert(policy=ORG_ADMIN))), dict(usage="org"),
         {"cert.org_not_personal"}, message_has="기관용"),
    Case("GPKI 공공 기관용 2.1.4", lambda: ("o.cer", der(cert(policy=ORG_PUBLIC))), dict(usage="org"), set(),
         required={"usage": "org"}),
    Case("GPKI server 2.1.2", lambda: ("SVR1311000001_sig.cer", der(cert(cn="SVR1311000001", policy=SERVER_ADMIN))),
         dict(usage="server"), {"cert.server_not_personal"}),
    Case("GPKI server 2.1.5", lambda: ("s.cer", der(cert(cn="SVR1311000002", policy=SERVER_PUBLIC))),
         dict(usage="server"), set(), required={"usage": "server"}),
    Case("GPKI special 2.1.3", lambda: ("s.cer", der(cert(policy=SPECIAL_ADMIN))), dict(usage="special"),
         {"cert.org_not_personal"}),
    Case("GPKI special 2.1.6", lambda: ("s.cer", der(cert(policy=SPECIAL_PUBLIC))), dict(usage="special"), set(),
         required={"usage": "special"}),
    Case("an OID no source lists", lambda: ("s.cer", der(cert(policy="1.2.410.100001.5.1.1.1"))),
         dict(scheme="GPKI", usage="unknown", policy_oid="1.2.410.100001.5.1.1.1"), {"cert.unknown_policy"}),
    Case("chain PEM, CA first", lambda: ("chain.pem", to_pem([GPKI.cert, cert()])),
         dict(kind="sig", usage="personal-admin", subject="CN=001홍길동001,OU=people,OU=행정안전부,O=Government of Korea,C=KR"),
         {"cert.chain"}, message_has="2개"),
    Case("chain PEM of three", lambda: _three_chain(),
         dict(kind="env", subject="CN=002김철수001,OU=people,OU=행정안전부,O=Government of Korea,C=KR"),
         {"cert.chain", "cert.env_not_sig"}, message_has="3개"),
    Case("PKCS#7 bundle", lambda: ("bundle.p7b", pkcs7.serialize_certificates([GPKI.cert, cert()], serialization.Encoding.DER)),
         dict(kind="sig", usage="personal-admin"), {"cert.chain"}),
    Case("a CA certificate alone", lambda: ("GPKIRootCA1.der", der(GPKI.cert)),
         dict(kind="unknown", usage="unknown", status="valid"), {"cert.ca"}),
    Case("no Key Usage, _env file name", lambda: ("003이영희001_env.cer", der(cert(key_usage=False))),
         dict(kind="env"), {"cert.kind_from_name", "cert.env_not_sig"}),
    Case("no Key Usage, no hint", lambda: ("cert.cer", der(cert(key_usage=False))), dict(kind="unknown"), set()),
    Case("_env file that is a sig certificate", lambda: ("a_env.cer", der(cert())),
         dict(kind="sig"), {"cert.name_kind_mismatch"}),
    Case("RSA key (as real GPKI)", lambda: ("r_sig.cer", der(cert(key=rsa.generate_private_key(65537, 2048)))),
         dict(ok=True, kind="sig", status="valid"), set()),
    Case("Ed25519 key", lambda: ("e_sig.cer", der(cert(key=ed25519.Ed25519PrivateKey.generate()))),
         dict(ok=True, kind="sig"), set()),
    Case("serial with a leading zero nibble", lambda: ("a.cer", der(cert(serial=0xABC))), dict(serial="0ABC"), set()),
    Case("serial 255", lambda: ("a.cer", der(cert(serial=255))), dict(serial="FF"), set()),
    Case("DER with zero padding after it", lambda: ("a_sig.cer", der(cert()) + b"\0" * 64), dict(ok=True, kind="sig")),
    Case("PEM with CRLF and text around", lambda: ("a.pem", b"Subject: x\r\n" + to_pem(cert()).replace(b"\n", b"\r\n")),
         dict(ok=True, kind="sig"), set()),
]


def _three_chain() -> tuple[str, bytes]:
    root = make_authority(cn="GPKIRootCA1")
    sub_key = ec.generate_private_key(ec.SECP256R1())
    sub_cert = (x509.CertificateBuilder().subject_name(certgen.authority_name("CA131100001"))
                .issuer_name(root.cert.subject).public_key(sub_key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(START).not_valid_after(END)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(root.key, hashes.SHA256()))
    sub = certgen.Authority(sub_cert, sub_key)
    leaf = cert(sub, cn="002김철수001", kind="env")
    return "chain3.pem", to_pem([root.cert, leaf, sub_cert])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_inspection_states_and_findings(case: Case) -> None:
    filename, data = case.make()
    result = inspect_bytes(filename, data, now=NOW, required=case.required)
    assert result.ok, result.error
    for key, value in case.expect.items():
        assert getattr(result, key) == value, (key, getattr(result, key))
    assert set(result.codes) == case.codes
    if case.message_has:
        assert any(case.message_has in f.message for f in result.findings), [f.message for f in result.findings]
    for finding in result.findings:
        assert finding.severity in ("info", "warning", "error")
        assert finding.message and finding.kb_id


def test_json_object_is_the_design_contract() -> None:
    result = inspect_bytes("001홍길동001_sig.cer", der(cert(serial=0x1A2B)), now=NOW)
    obj = json.loads(json.dumps(result.as_json(), ensure_ascii=False))
    assert set(obj) == JSON_KEYS
    assert obj["subject"] == "CN=001홍길동001,OU=people,OU=행정안전부,O=Government of Korea,C=KR"
    assert obj["issuer"] == "CN=CA131100001,OU=GPKI,O=Government of Korea,C=KR"
    assert obj["serial"] == "1A2B"
    assert obj["not_before"].endswith("+09:00") and obj["not_after"].endswith("+09:00")
    assert datetime.fromisoformat(obj["not_after"]) == END
    assert obj["error"] is None and obj["findings"] == []
    failure = inspect_bytes("x", b"", now=NOW).as_json()
    assert set(failure) == JSON_KEYS and failure["ok"] is False and failure["error"] == "빈 파일이에요."


@pytest.mark.parametrize("finding_code, kb_id", [
    ("cert.expired", "validity.expired"), ("cert.expiring", "validity.check-expiry"),
    ("cert.env_not_sig", "kind.sig-vs-env"), ("cert.public_not_admin", "kind.public-institution"),
    ("cert.npki", "scheme.gpki-vs-npki"), ("cert.revoked", "login.revoked-message"),
    ("cert.suspended", "suspend.restore"), ("cert.unknown_issuer", "login.path-error"),
])
def test_findings_point_to_existing_kb_entries(hd, finding_code: str, kb_id: str) -> None:
    from bot.certs import FINDINGS

    assert FINDINGS[finding_code][1] == kb_id
    assert all(kb in hd.kb.entries for _, kb in FINDINGS.values())


def test_pem_and_der_give_the_same_answer() -> None:
    c = cert(policy=PERSONAL_PUBLIC, kind="env")
    a = inspect_bytes("a.cer", to_der(c), now=NOW).as_json()
    b = inspect_bytes("a.cer", to_pem(c), now=NOW).as_json()
    assert a == b


# -- revocation: a CRL in the same call, and the registry's lookup -----------------------------------

def test_crl_in_the_same_call_revokes_and_suspends() -> None:
    revoked, held, fine = cert(), cert(kind="env"), cert()
    crl = make_crl(GPKI, [(revoked.serial_number, NOW - timedelta(days=2), x509.ReasonFlags.key_compromise),
                          (held.serial_number, NOW - timedelta(days=1), x509.ReasonFlags.certificate_hold),
                          (123456789, NOW - timedelta(days=9), None)],
                   this_update=NOW - timedelta(hours=1), next_update=NOW + timedelta(days=1), number=42)
    other_ca_cert = cert(EPKI, policy=EPKI_PERSONAL, serial=revoked.serial_number)  # same serial, other issuer
    results = inspect_many([("r_sig.cer", der(revoked)), ("h_env.cer", der(held)), ("ca.crl", to_der(crl)),
                            ("f_sig.cer", to_pem(fine)), ("e.cer", der(other_ca_cert))], now=NOW)
    by_file = {r.file: r for r in results}
    assert [r.file for r in results] == ["r_sig.cer", "h_env.cer", "ca.crl", "f_sig.cer", "e.cer"]
    assert by_file["r_sig.cer"].status == "revoked" and "cert.revoked" in by_file["r_sig.cer"].codes
    assert "키 유출" in by_file["r_sig.cer"].finding("cert.revoked").message
    assert by_file["h_env.cer"].status == "suspended" and "cert.suspended" in by_file["h_env.cer"].codes
    assert by_file["h_env.cer"].finding("cert.suspended").kb_id == "suspend.restore"
    assert by_file["f_sig.cer"].status == "valid" and by_file["f_sig.cer"].findings == []
    assert by_file["e.cer"].status == "valid"
    crl_obj = by_file["ca.crl"].as_json()
    assert crl_obj["ok"] is True and crl_obj["scheme"] == "other" and crl_obj["kind"] == "unknown"
    assert crl_obj["usage"] == "unknown" and crl_obj["subject"] == "" and crl_obj["serial"] == ""
    assert crl_obj["issuer"] == "CN=CA131100001,OU=GPKI,O=Government of Korea,C=KR"
    assert [f["code"] for f in crl_obj["findings"]] == ["crl.info"]
    message = crl_obj["findings"][0]["message"]
    assert "CN=CA131100001" in message and "항목 3개" in message and "효력정지 1개" in message and "42" in message


def test_crl_as_pem_and_crl_index_and_stale_crl() -> None:
    c = cert()
    crl = make_crl(GPKI, [(c.serial_number, NOW - timedelta(days=3), x509.ReasonFlags.superseded)],
                   this_update=NOW - timedelta(days=10), next_update=NOW - timedelta(days=3))
    crl_result = inspect_bytes("old.pem", to_pem(crl), now=NOW)
    assert crl_result.ok and crl_result.is_crl and crl_result.status == "expired"
    assert set(crl_result.codes) == {"crl.info", "crl.stale"}
    index = CrlIndex([crl_info(crl)])
    result = inspect_bytes("a_sig.cer", der(c), now=NOW, crl_index=index)
    assert result.status == "revoked" and result.revocation_reason == "superseded" and result.status_source == "crl"


@pytest.mark.parametrize("answer, status, code", [
    (("revoked", NOW - timedelta(days=1), "affiliationChanged"), "revoked", "cert.revoked"),
    (("suspended", "2026-11-20T09:00:00+09:00", None), "suspended", "cert.suspended"),
    (("valid", None, None), "valid", None),
    (None, "valid", None),
])
def test_revocation_lookup_supplies_known_statuses(answer, status: str, code: str | None) -> None:
    c = cert()
    asked = []

    def lookup(issuer: str, serial: str):
        asked.append((issuer, serial))
        return answer

    result = inspect_bytes("a_sig.cer", der(c), now=NOW, revocation_lookup=lookup)
    assert asked == [(GPKI.cert.subject.rfc4514_string(), result.serial)]
    assert result.status == status
    assert (code in result.codes) if code else not result.findings


def test_a_failing_lookup_does_not_stop_inspection() -> None:
    def lookup(issuer, serial):
        raise RuntimeError("database is locked")

    assert inspect_bytes("a_sig.cer", der(cert()), now=NOW, revocation_lookup=lookup).status == "valid"


def test_revoked_wins_over_expired_and_expired_over_suspended() -> None:
    old = cert(end=NOW - timedelta(days=1))
    for reason, status in ((x509.ReasonFlags.key_compromise, "revoked"), (x509.ReasonFlags.certificate_hold, "expired")):
        crl = make_crl(GPKI, [(old.serial_number, NOW - timedelta(days=30), reason)],
                       this_update=NOW, next_update=NOW + timedelta(days=1))
        results = inspect_many([("a.crl", to_der(crl)), ("a.cer", der(old))], now=NOW)
        assert results[1].status == status
        assert "cert.expired" in results[1].codes


# -- private keys: refused before anything parses them ----------------------------------------------

def _der_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return _der_tlv(0x06, body)


def gpki_seed_key() -> bytes:
    """The shape of a GPKI/NPKI `.key`: EncryptedPrivateKeyInfo with pbeWithSHA1AndSEED-CBC (KISA OID)."""
    params = _der_tlv(0x30, _der_tlv(0x04, os.urandom(8)) + _der_tlv(0x02, b"\x08\x00"))
    algorithm = _der_tlv(0x30, _oid("1.2.410.200004.1.15") + params)
    return _der_tlv(0x30, algorithm + _der_tlv(0x04, os.urandom(1200)))


def gpki_pbes2_seed_key() -> bytes:
    """EncryptedPrivateKeyInfo with PBES2 (PBKDF2 + SEED-CBC, 1.2.410.200004.1.4), as newer GPKI keys."""
    kdf = _der_tlv(0x30, _oid("1.2.840.113549.1.5.12") + _der_tlv(0x30, _der_tlv(0x04, os.urandom(8)) + _der_tlv(0x02, b"\x07\xd0")))
    enc = _der_tlv(0x30, _oid("1.2.410.200004.1.4") + _der_tlv(0x04, os.urandom(16)))
    algorithm = _der_tlv(0x30, _oid("1.2.840.113549.1.5.13") + _der_tlv(0x30, kdf + enc))
    return _der_tlv(0x30, algorithm + _der_tlv(0x04, os.urandom(1232)))


def _key_bytes(key, encoding, fmt, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(encoding, fmt, enc)


PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER
PKCS8, TRAD = serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL
RSA_KEY = rsa.generate_private_key(65537, 2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())

KEY_CASES = [
    ("PEM PKCS#8 (PRIVATE KEY)", "key.pem", lambda: _key_bytes(EC_KEY, PEM, PKCS8)),
    ("PEM RSA PRIVATE KEY", "rsa.pem", lambda: _key_bytes(RSA_KEY, PEM, TRAD)),
    ("PEM EC PRIVATE KEY", "ec.txt", lambda: _key_bytes(EC_KEY, PEM, TRAD)),
    ("PEM ENCRYPTED PRIVATE KEY", "enc.pem", lambda: _key_bytes(EC_KEY, PEM, PKCS8, b"pw")),
    ("PEM OPENSSH PRIVATE KEY", "id", lambda: _key_bytes(EC_KEY, PEM, serialization.PrivateFormat.OpenSSH)),
    ("DER PKCS#8", "key.der", lambda: _key_bytes(EC_KEY, DER, PKCS8)),
    ("DER PKCS#8 RSA", "rsa.cer", lambda: _key_bytes(RSA_KEY, DER, PKCS8)),
    ("DER encrypted PKCS#8", "k.bin", lambda: _key_bytes(RSA_KEY, DER, PKCS8, b"pw")),
    ("DER PKCS#1 RSA", "k.bin", lambda: _key_bytes(RSA_KEY, DER, TRAD)),
    ("DER SEC1 EC", "k.bin", lambda: _key_bytes(EC_KEY, DER, TRAD)),
    ("GPKI SEED-encrypted PKCS#8", "signPri.dat", gpki_seed_key),
    ("GPKI PBES2/SEED PKCS#8", "001홍길동001_sig.cer", gpki_pbes2_seed_key),
    ("PKCS#12 with a key", "cert.bin", lambda: pkcs12.serialize_key_and_certificates(
        b"me", EC_KEY, cert(key=EC_KEY), None, serialization.BestAvailableEncryption(b"pw"))),
    ("PKCS#12 unencrypted", "cert.cer", lambda: pkcs12.serialize_key_and_certificates(
        b"me", EC_KEY, cert(key=EC_KEY), None, serialization.NoEncryption())),
    (".key name, any content", "001홍길동001_sig.key", lambda: b"\x30\x82\x01\x00garbage"),
    (".pfx name", "me.pfx", lambda: b"whatever"),
    (".p12 name", "ME.P12", lambda: b""),
    ("certificate and key in one PEM", "both.pem", lambda: to_pem(cert()) + _key_bytes(EC_KEY, PEM, PKCS8)),
    ("key inside a CERTIFICATE label", "odd.pem", lambda: b"-----BEGIN CERTIFICATE-----\n"
     + __import__("base64").encodebytes(_key_bytes(EC_KEY, DER, PKCS8)) + b"-----END CERTIFICATE-----\n"),
    ("UTF-16 PEM key", "key.txt", lambda: _key_bytes(EC_KEY, PEM, PKCS8).decode().encode("utf-16")),
]


@pytest.mark.parametrize("filename, make", [(n, m) for _, n, m in KEY_CASES], ids=[c[0] for c in KEY_CASES])
def test_private_keys_are_refused(filename: str, make, monkeypatch) -> None:
    data = make()

    def parsing_forbidden(*args, **kwargs):
        raise AssertionError("a private key reached certificate parsing")

    for name in ("load_der_x509_certificate", "load_pem_x509_certificate", "load_der_x509_crl"):
        monkeypatch.setattr(x509, name, parsing_forbidden)
    monkeypatch.setattr(pkcs7, "load_der_pkcs7_certificates", parsing_forbidden)
    result = inspect_bytes(filename, data, now=NOW)
    assert result.ok is False and result.error_code == "private_key"
    assert all(word in result.error for word in KEY_ERROR_WORDS)
    obj = result.as_json()
    assert obj["subject"] == "" and obj["findings"] == [] and obj["status"] is None


def test_key_file_on_disk_is_never_opened(tmp_path: Path) -> None:
    path = tmp_path / "001홍길동001_sig.key"
    path.write_bytes(b"secret")
    path.chmod(0)  # unreadable: refusing it must not need to read it
    try:
        result = inspect_path(path, now=NOW)
    finally:
        path.chmod(0o600)
    assert result.error_code == "private_key"


# -- bad input ------------------------------------------------------------------------------------------

def _zip_with_cert() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a_sig.cer", der(cert()))
    return buffer.getvalue()


BAD_CASES = [
    ("empty", b"", "empty"),
    ("whitespace", b"  \r\n\t", "empty"),
    ("truncated DER", der(cert())[:120], "truncated"),
    ("truncated PEM", to_pem(cert())[:300], "truncated"),
    ("PEM with broken base64", b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "unreadable"),
    ("random bytes", random.Random(1).randbytes(5000), None),
    ("random bytes after 0x30", b"\x30" + random.Random(2).randbytes(3000), None),
    ("huge declared length", b"\x30\x84\xff\xff\xff\xff\x01\x02", "truncated"),
    ("deep indefinite nesting", b"\x30\x80" * 5000, None),
    ("a flood of BEGIN lines (no quadratic scan)", b"-----BEGIN CERTIFICATE-----\n" * 35000, "truncated"),
    ("over 1 MB", b"\x30" * (MAX_BYTES + 1), "too_large"),
    ("a certificate padded over 1 MB", der(cert()) + b"\0" * MAX_BYTES, "too_large"),
    ("UTF-16 text", "안녕하세요 인증서입니다".encode("utf-16"), "not_certificate"),
    ("UTF-16 PEM certificate", to_pem(cert()).decode().encode("utf-16-le"), "not_certificate"),
    ("plain text", "인증서가 안 돼요\n".encode(), "not_certificate"),
    ("text starting with 0", b"010-1234-5678 is my phone\n", "not_certificate"),
    ("PNG image", b"\x89PNG\r\n\x1a\n" + random.Random(3).randbytes(500), "not_certificate"),
    ("JPEG image", b"\xff\xd8\xff\xe0" + random.Random(4).randbytes(500), "not_certificate"),
    ("zip with a certificate inside", _zip_with_cert(), "not_certificate"),
    ("PDF", b"%PDF-1.7\n%...", "not_certificate"),
    ("CSR (PEM)", None, "csr"),
    ("CSR (DER)", None, "csr"),
    ("public key PEM", EC_KEY.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
     "public_key"),
]


def _csr(encoding) -> bytes:
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SVR1311000001")]))
               .sign(EC_KEY, hashes.SHA256()))
    return request.public_bytes(encoding)


@pytest.mark.parametrize("name, data, error_code", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_gives_a_clear_error(name: str, data: bytes | None, error_code: str | None) -> None:
    if data is None:
        data = _csr(PEM if "PEM" in name else DER)
    result = inspect_bytes("upload.bin", data, now=NOW)
    assert isinstance(result, Inspection) and result.ok is False
    assert result.error and "Traceback" not in result.error and len(result.error) < 80
    if error_code:
        assert result.error_code == error_code
    if name == "PNG image":
        assert "이미지" in result.error


def test_paths_directory_missing_and_together(tmp_path: Path) -> None:
    good = tmp_path / "a_sig.cer"
    good.write_bytes(der(cert()))
    results = inspect_paths([tmp_path, tmp_path / "nope.cer", good], now=NOW)
    assert [r.error_code for r in results] == ["directory", "missing", None]
    assert "폴더" in results[0].error and "찾을 수 없어요" in results[1].error
    assert results[2].ok and results[2].file == str(good)
    big = tmp_path / "big.cer"
    big.write_bytes(b"0" * (MAX_BYTES + 10))
    assert inspect_path(big, now=NOW).error_code == "too_large"


def test_every_cryptography_vector_gives_an_inspection() -> None:
    import cryptography_vectors

    root = Path(cryptography_vectors.__file__).parent / "x509"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) > 1000
    outcomes: dict[bool, int] = {True: 0, False: 0}
    for path in files:
        result = inspect_path(path, now=NOW)
        assert isinstance(result, Inspection) and isinstance(result.ok, bool)
        json.dumps(result.as_json(), ensure_ascii=False)
        assert result.ok or result.error
        outcomes[result.ok] += 1
    assert outcomes[True] > 500  # PKITS certificates and CRLs, the custom/ certificates...


# -- the command line, end to end -----------------------------------------------------------------------

def _run(args: list[str], tmp_path: Path, db: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HELPDESK_NOW": NOW.isoformat(), "HELPDESK_DB": str(db or tmp_path / "absent.db"),
           "HELPDESK_PII_KEY": "test-pii-key"}
    return subprocess.run([sys.executable, "-m", "bot", "inspect", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def cli_files(tmp_path: Path) -> dict[str, Path]:
    sig = cert(end=NOW + timedelta(days=20))
    held = cert(kind="env")
    crl = make_crl(GPKI, [(held.serial_number, NOW - timedelta(days=1), x509.ReasonFlags.certificate_hold)],
                   this_update=NOW - timedelta(hours=1), next_update=NOW + timedelta(days=7))
    files = {
        "sig": ("001홍길동001_sig.cer", der(sig)),
        "env": ("001홍길동001_env.pem", to_pem(held)),
        "crl": ("CA131100001.crl", to_der(crl)),
        "key": ("001홍길동001_sig.key", b"\x30\x82\x04\x00..."),
    }
    out = {}
    for name, (filename, data) in files.items():
        out[name] = tmp_path / filename
        out[name].write_bytes(data)
    return out


def test_cli_json_array_and_exit_codes(tmp_path: Path, cli_files: dict[str, Path]) -> None:
    done = _run([str(cli_files[k]) for k in ("sig", "env", "crl", "key")] + ["--json"], tmp_path)
    assert done.returncode == 1, done.stderr
    objects = json.loads(done.stdout)
    assert [Path(o["file"]).name for o in objects] == [cli_files[k].name for k in ("sig", "env", "crl", "key")]
    assert all(set(o) == JSON_KEYS for o in objects)
    sig, env, crl, key = objects
    assert (sig["ok"], sig["scheme"], sig["kind"], sig["usage"], sig["status"], sig["days_left"]) == (
        True, "GPKI", "sig", "personal-admin", "valid", 20)
    assert [f["code"] for f in sig["findings"]] == ["cert.expiring"]
    assert "홍길동" in sig["subject"]
    assert env["status"] == "suspended" and "cert.suspended" in [f["code"] for f in env["findings"]]
    assert crl["ok"] is True and crl["findings"][0]["code"] == "crl.info"
    assert key["ok"] is False and "개인키" in key["error"]
    assert not (tmp_path / "absent.db").exists()  # inspect never creates a database

    done = _run([str(cli_files["sig"]), "--json"], tmp_path)
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 1
    for bad_usage in ([], ["--nope", str(cli_files["sig"])]):
        done = _run(bad_usage, tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr


def test_cli_text_summary_and_help(tmp_path: Path, cli_files: dict[str, Path]) -> None:
    done = _run([str(cli_files["sig"]), str(tmp_path / "missing.cer")], tmp_path)
    assert done.returncode == 1
    assert "GPKI personal-admin sig, valid" in done.stdout and "(20 days left)" in done.stdout
    assert "[warning] cert.expiring" in done.stdout
    assert "missing.cer: NOT READ (missing)" in done.stdout
    done = _run(["--help"], tmp_path)
    assert done.returncode == 0 and "JSON array" in done.stdout and "exit status" in done.stdout


def test_cli_uses_the_registry_when_the_database_exists(tmp_path: Path, hd, cli_files: dict[str, Path]) -> None:
    from bot.registry import Registry

    registry = Registry(hd)
    registry.import_bytes(cli_files["sig"].name, cli_files["sig"].read_bytes(), source="test")
    sig_serial = inspect_path(cli_files["sig"], now=NOW).serial
    record = registry.certificate(GPKI.cert.subject.rfc4514_string(), sig_serial)
    registry.set_status(record.id, status="revoked", revoked_at=NOW - timedelta(days=1), reason="keyCompromise",
                        source="test")
    done = _run([str(cli_files["sig"]), "--json"], tmp_path, db=Path(hd.config.db_path))
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)[0]
    assert obj["status"] == "revoked" and "cert.revoked" in [f["code"] for f in obj["findings"]]

    # A CRL given to inspect is applied to the registry's certificates too (design.md).
    registry.import_bytes(cli_files["env"].name, cli_files["env"].read_bytes(), source="test")
    env_serial = inspect_path(cli_files["env"], now=NOW).serial
    assert registry.certificate(GPKI.cert.subject.rfc4514_string(), env_serial).status == "valid"
    done = _run([str(cli_files["crl"])], tmp_path, db=Path(hd.config.db_path))
    assert done.returncode == 0 and "CRL applied to the registry" in done.stderr
    assert registry.certificate(GPKI.cert.subject.rfc4514_string(), env_serial).status == "suspended"


# -- the chat ------------------------------------------------------------------------------------------

def test_chat_certificate_file_gets_the_summary(hd, talk: Talk) -> None:
    c = cert(kind="env", policy=PERSONAL_PUBLIC, end=NOW + timedelta(days=3))
    talk.send("001홍길동001_env.cer", der(c))
    text = talk.text()
    assert "인증서 확인 결과" in text
    assert "행정전자서명(GPKI) · 공공/민간 개인용 · 암호화용" in text
    assert "2026년 11월 28일" in text and "만료까지 3일" in text
    assert "1. " in text and "2. " in text and "3. " in text
    assert "저장하지 않고" in text
    actions = [b.action for b in talk.buttons()]
    assert {"kb:validity.check-expiry", "kb:kind.public-institution", "kb:kind.sig-vs-env"} <= set(actions)
    assert "certs:summary:valid" in talk.tags()
    assert ("act:status" in actions) == hd.has_action("status")
    talk.press("kb:kind.sig-vs-env")
    assert "answer:kind.sig-vs-env" in talk.tags()


def test_chat_private_key_gets_the_warning_and_is_not_kept(hd, talk: Talk) -> None:
    pem = _key_bytes(EC_KEY, PEM, PKCS8)
    talk.send("001홍길동001_sig.pem", pem)
    text = talk.text()
    assert "개인키" in text and "누구에게도 보내면 안 돼요" in text
    assert "BEGIN" not in text and "MII" not in text
    assert talk.tags() == ["certs:private_key"]
    assert "kb:revoke.lost-media" in [b.action for b in talk.buttons()]
    logged = " ".join(r[1] for r in hd.recent_turns(talk.chat_id, 20))
    assert "BEGIN" not in logged and "PRIVATE" not in logged


def test_chat_unreadable_file_says_why(talk: Talk) -> None:
    talk.send("screenshot.png", b"\x89PNG\r\n\x1a\n0000")
    assert "파일을 확인하지 못했어요" in talk.text() and "이미지 파일" in talk.text()
    assert "kb:storage.location" in [b.action for b in talk.buttons()]


def test_chat_crl_file_is_described(talk: Talk) -> None:
    crl = make_crl(GPKI, [], this_update=NOW - timedelta(hours=1), next_update=NOW + timedelta(days=1))
    talk.send("CA131100001.crl", to_der(crl))
    assert "폐지 목록" in talk.text() and "항목 0개" in talk.text()


def test_chat_uses_the_registry_status(hd, talk: Talk) -> None:
    from bot.registry import Registry

    c = cert()
    registry = Registry(hd)
    registry.import_bytes("a_sig.cer", der(c), source="test")
    record = registry.certificate(GPKI.cert.subject.rfc4514_string(), c.serial_number)
    registry.set_status(record.id, status="suspended", revoked_at=NOW - timedelta(days=2), reason="certificateHold",
                        source="test")
    talk.send("a_sig.cer", der(c))
    assert "상태: 효력정지" in talk.text() and "효력정지된 인증서예요(2026년 11월 23일부터)" in talk.text()
    assert "kb:suspend.restore" in [b.action for b in talk.buttons()]
