"""`registry refresh` against a CRL server and an OCSP responder running on 127.0.0.1 in the test.

The responder builds real OCSP responses with cryptography.x509.ocsp from the requests it receives; the
CA, certificates and CRLs are made with certgen. Failing sources (timeouts, garbage, forged signatures,
refusals) must leave every status and its `status_checked_at` as they were.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from bot import certgen
from bot.clock import FixedClock, to_iso
from bot.config import load_config
from bot.helpdesk import Helpdesk
from bot.registry import Registry, csv_text
from bot.status_refresh import refresh
from tests.conftest import NOW
from tests.test_kb import run_cli
from tests.test_registry import ISSUER, row, shared_kb  # noqa: F401  (fixture)

SLOW_SECONDS = 1.5
TIMEOUT = "0.4"
LDAP = "ldap://cen.dir.go.kr:389/cn=CRL1p1dp1,ou=CRL,o=Government of Korea,c=KR"


class StatusServer:
    """A CRL server and an OCSP responder for one CA; `requests` records every call."""

    def __init__(self, ca: certgen.Authority) -> None:
        self.ca = ca
        self.now = NOW
        self.revoked = {0x11: (NOW - timedelta(days=3), x509.ReasonFlags.key_compromise)}
        self.ocsp_revoked = {0x12: (NOW - timedelta(days=1), x509.ReasonFlags.certificate_hold)}
        self.requests: list[tuple[str, str, bytes]] = []
        self.impostor = certgen.make_authority()
        self.delegate = self._delegate()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout cases)

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, b""))
                if self.path == "/slow.crl":
                    time.sleep(SLOW_SECONDS)
                if self.path in ("/ca.crl", "/slow.crl"):
                    return self._send(200, certgen.to_der(server.crl(server.ca)), "application/pkix-crl")
                if self.path == "/ca.pem.crl":
                    return self._send(200, certgen.to_pem(server.crl(server.ca)), "application/x-pem-file")
                if self.path == "/forged.crl":
                    return self._send(200, certgen.to_der(server.crl(server.impostor)), "application/pkix-crl")
                if self.path == "/garbage.crl":
                    return self._send(200, b"<html>maintenance</html>", "text/html")
                return self._send(404, b"not found", "text/plain")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append(("POST", self.path, body))
                if self.path == "/ocsp-slow":
                    time.sleep(SLOW_SECONDS)
                if self.path == "/ocsp-garbage":
                    return self._send(200, b"\x30\x03\x02\x01", "application/ocsp-response")
                if self.path == "/ocsp-unauthorized":
                    answer = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
                    return self._send(200, answer.public_bytes(x509_der()), "application/ocsp-response")
                signer = {"/ocsp-forged": (server.impostor.cert, server.impostor.key),
                          "/ocsp-delegated": server.delegate}.get(self.path, (server.ca.cert, server.ca.key))
                answer = server.ocsp_answer(ocsp.load_der_ocsp_request(body), *signer,
                                            include=self.path == "/ocsp-delegated")
                return self._send(200, answer, "application/ocsp-response")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _delegate(self):
        key = certgen.new_key()
        cert = (x509.CertificateBuilder().subject_name(x509.Name.from_rfc4514_string("CN=OCSP Responder,O=Test"))
                .issuer_name(self.ca.cert.subject).public_key(key.public_key()).serial_number(77)
                .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
                .sign(self.ca.key, hashes.SHA256()))
        return cert, key

    def crl(self, authority: certgen.Authority) -> x509.CertificateRevocationList:
        entries = [(serial, when, reason) for serial, (when, reason) in self.revoked.items()]
        return certgen.make_crl(authority, entries, this_update=self.now - timedelta(hours=1),
                                next_update=self.now + timedelta(days=1), number=int(self.now.timestamp()))

    def ocsp_answer(self, request: ocsp.OCSPRequest, signer_cert, signer_key, include: bool) -> bytes:
        revoked = self.ocsp_revoked.get(request.serial_number)
        status = ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, request.serial_number, request.hash_algorithm,
            status, self.now - timedelta(minutes=10), self.now + timedelta(hours=12),
            revoked[0] if revoked else None, revoked[1] if revoked else None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
        if include:
            builder = builder.certificates([signer_cert])
        return builder.sign(signer_key, hashes.SHA256()).public_bytes(x509_der())

    def ocsp_serials(self) -> list[int]:
        return [ocsp.load_der_ocsp_request(body).serial_number for method, _, body in self.requests if method == "POST"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def x509_der():
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


@pytest.fixture(scope="module")
def ca() -> certgen.Authority:
    return certgen.make_authority()


@pytest.fixture
def server(ca):
    status_server = StatusServer(ca)
    yield status_server
    status_server.close()


@pytest.fixture
def desk(db_path: Path, tmp_path: Path, server: StatusServer, ca, clock: FixedClock, shared_kb):
    """A helpdesk whose registry holds S0001's certificates 11, 12, 13 and knows the CA."""
    config = load_config(environ={
        "HELPDESK_DB": str(db_path), "HELPDESK_PII_KEY": "test-pii-key", "HELPDESK_HTTP_TIMEOUT_SECONDS": TIMEOUT,
        "HELPDESK_CRL_URLS": f"{server.base}/ca.crl,{LDAP}", "HELPDESK_OCSP_URL": f"{server.base}/ocsp",
    })
    hd = Helpdesk(config, clock=clock, kb=shared_kb)
    registry = Registry(hd)
    csv_path = tmp_path / "h.csv"
    csv_path.write_text(csv_text([row(serial=s, issuer=ISSUER) for s in ("11", "12", "13")]), encoding="utf-8")
    registry.import_csv(csv_path)
    ca_file = tmp_path / "ca.cer"
    ca_file.write_bytes(certgen.to_der(ca.cert))
    assert registry.import_path(ca_file)[0].kind == "ca-certificate"
    yield hd
    hd.close()


def statuses(hd: Helpdesk) -> dict[str, tuple]:
    return {c.serial: (c.status, c.revocation_reason, c.status_source, c.status_checked_at)
            for c in Registry(hd).certificates("S0001")}


@pytest.mark.parametrize("ocsp_path", ["/ocsp", "/ocsp-delegated"])
def test_refresh_applies_crl_and_ocsp(desk: Helpdesk, server: StatusServer, ocsp_path: str) -> None:
    desk.config = desk.config.with_overrides(ocsp_url=server.base + ocsp_path)
    report = refresh(desk)
    outcomes = [(s.kind, s.url, s.outcome) for s in report.sources]
    assert outcomes == [("crl", f"{server.base}/ca.crl", "ok"), ("crl", LDAP, "unsupported"),
                        ("ocsp", server.base + ocsp_path, "ok")]
    crl_source, _, ocsp_source = report.sources
    assert (crl_source.checked, crl_source.changed) == (3, 1)
    assert (ocsp_source.checked, ocsp_source.changed) == (2, 1)
    assert sorted(server.ocsp_serials()) == [0x12, 0x13]  # the revoked one is not asked about
    got = statuses(desk)
    assert got["11"] == ("revoked", "keyCompromise", f"crl:{server.base}/ca.crl", NOW)
    assert got["12"] == ("suspended", "certificateHold", f"ocsp:{server.base}{ocsp_path}", NOW)
    assert got["13"] == ("valid", None, f"ocsp:{server.base}{ocsp_path}", NOW)


def test_many_ldap_crls_are_one_line(desk: Helpdesk, server: StatusServer) -> None:
    desk.config = desk.config.with_overrides(
        crl_urls=tuple(f"ldap://cen.dir.go.kr:389/cn=CRL1p1dp{i},ou=CRL,o=Government of Korea,c=KR" for i in range(40)),
        ocsp_url="")
    [source] = refresh(desk).sources
    assert source.outcome == "unsupported" and source.url.endswith("and 39 more")
    assert "ldap:// CRLs are not supported" in source.message


def test_a_hold_lifted_at_the_responder_is_lifted_here(desk: Helpdesk, server: StatusServer, clock) -> None:
    refresh(desk)
    server.ocsp_revoked.clear()
    clock.advance(hours=2)
    server.now = clock.now()
    refresh(desk)
    assert statuses(desk)["12"][:2] == ("valid", None)


FAILURES = [
    # (CRL URLs, OCSP path, the failing source's outcome, words in its message)
    ("/slow.crl", None, "timeout", "no answer within"),
    ("/garbage.crl", None, "bad-response", "not a CRL"),
    ("/missing.crl", None, "bad-response", "HTTP 404"),
    ("/forged.crl", None, "bad-response", "signature does not verify"),
    ("http://127.0.0.1:1/closed.crl", None, "error", "cannot connect"),
    ("", "/ocsp-slow", "timeout", "no answer within"),
    ("", "/ocsp-garbage", "bad-response", "not an OCSP response"),
    ("", "/ocsp-forged", "bad-response", "not signed by the CA"),
    ("", "/ocsp-unauthorized", "bad-response", "UNAUTHORIZED"),
]


@pytest.mark.parametrize("crl, ocsp_path, outcome, words", FAILURES)
def test_failing_sources_leave_the_last_known_status(desk: Helpdesk, server: StatusServer, clock: FixedClock,
                                                      crl: str, ocsp_path: str | None, outcome: str,
                                                      words: str) -> None:
    refresh(desk)
    before = statuses(desk)
    assert {v[3] for v in before.values()} == {NOW}
    clock.advance(hours=1)
    server.now = clock.now()
    server.revoked[0x13] = (clock.now(), x509.ReasonFlags.superseded)  # news the failing source cannot deliver
    server.ocsp_revoked[0x13] = (clock.now(), x509.ReasonFlags.superseded)
    crl_url = (crl if crl.startswith("http") else server.base + crl) if crl else ""
    desk.config = desk.config.with_overrides(crl_urls=(crl_url,) if crl_url else (),
                                             ocsp_url=server.base + ocsp_path if ocsp_path else "")
    started = time.monotonic()
    report = refresh(desk)
    assert time.monotonic() - started < 5 * float(TIMEOUT) + SLOW_SECONDS
    [failed] = [s for s in report.sources if s.outcome != "ok"]
    assert failed.outcome == outcome and words in failed.message, failed
    assert not report.ok
    assert statuses(desk) == before  # same statuses, still confirmed at NOW, by the same sources


def test_refresh_from_the_command_line(desk: Helpdesk, server: StatusServer, db_path: Path) -> None:
    env = {"HELPDESK_PII_KEY": "test-pii-key", "HELPDESK_NOW": to_iso(NOW), "HELPDESK_HTTP_TIMEOUT_SECONDS": TIMEOUT,
           "HELPDESK_CRL_URLS": f"{server.base}/ca.pem.crl,{LDAP}", "HELPDESK_OCSP_URL": f"{server.base}/ocsp"}
    desk.close()
    result = run_cli("--db", str(db_path), "registry", "refresh", "--json", env_extra=env)
    sources = json.loads(result.stdout)
    assert [s["outcome"] for s in sources] == ["ok", "unsupported", "ok"]
    assert result.returncode == 1  # a source (the LDAP one) could not be used
    text = run_cli("--db", str(db_path), "registry", "status", "S0001", env_extra=env).stdout.decode()
    assert "revoked (keyCompromise)" in text and "suspended (certificateHold)" in text
    assert f"by crl:{server.base}/ca.pem.crl" in text and f"by ocsp:{server.base}/ocsp" in text
