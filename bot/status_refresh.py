"""`helpdesk registry refresh`: re-check certificate status over the network (CRLs over HTTP, OCSP).

Sources: the CRLs named in config (`crl_urls`) and in the certificates' own CRL distribution points, and,
for certificates whose issuing CA certificate the registry holds, the OCSP responder of config (`ocsp_url`)
or of the certificate's AIA entry. Each source is reported as ok / timeout / bad-response / unsupported.
A source that fails changes nothing: the last known status stays, with the time it was last confirmed
(`certificates.status_checked_at`) and by what (`status_source`).
"""
from __future__ import annotations

import hashlib
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from bot.clock import SEOUL, to_iso
from bot.registry import REASONS, Registry, _load_crl, canonical_dn, describe_crl, normalize_serial

if TYPE_CHECKING:
    from bot.helpdesk import Helpdesk

MAX_CRL_BYTES = 50_000_000
MAX_OCSP_BYTES = 1_000_000
USER_AGENT = "gpki-helpdesk/0.1 (registry refresh)"
# A response older than this is not accepted as "confirmed now" (RFC 6960 leaves freshness to the client).
OCSP_MAX_AGE = timedelta(days=7)


@dataclass
class SourceResult:
    """What one source (a CRL URL or an OCSP responder) gave."""

    kind: str  # crl | ocsp
    url: str
    outcome: str  # ok | timeout | bad-response | unsupported | error
    message: str
    checked: int = 0  # certificates confirmed by it
    changed: int = 0  # certificates whose status it changed

    def as_json(self) -> dict:
        return {"kind": self.kind, "url": self.url, "outcome": self.outcome, "message": self.message,
                "checked": self.checked, "changed": self.changed}


@dataclass
class RefreshReport:
    sources: list[SourceResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.outcome == "ok" for s in self.sources)


class FetchError(Exception):
    """A source did not answer usefully; `outcome` is timeout, bad-response or error."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (TimeoutError, socket.timeout)) or isinstance(getattr(exc, "reason", None),
                                                                          (TimeoutError, socket.timeout))


def http_request(url: str, *, timeout: float, data: bytes | None = None, content_type: str | None = None,
                 accept: str | None = None, limit: int) -> bytes:
    """GET (or POST `data`) over HTTP(S); FetchError on timeouts, HTTP errors and oversize bodies."""
    headers = {"User-Agent": USER_AGENT}
    if content_type:
        headers["Content-Type"] = content_type
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError("bad-response", f"HTTP {exc.code} {exc.reason}") from None
    except Exception as exc:  # URLError, OSError, http.client errors: all mean "no usable answer"
        if _is_timeout(exc):
            raise FetchError("timeout", f"no answer within {timeout:g} s") from None
        reason = getattr(exc, "reason", None) or exc
        raise FetchError("error", f"cannot connect: {reason}") from None
    if len(body) > limit:
        raise FetchError("bad-response", f"answer larger than {limit} bytes")
    return body


class StatusRefresher:
    """Runs one refresh over the registry."""

    def __init__(self, hd: "Helpdesk", registry: Registry | None = None) -> None:
        self.hd = hd
        self.registry = registry or Registry(hd)
        self.timeout = float(hd.config.http_timeout_seconds)

    def run(self) -> RefreshReport:
        report = RefreshReport()
        unsupported: list[str] = []
        for url in self.crl_urls():
            if url.lower().startswith(("http://", "https://")):
                report.sources.append(self.refresh_crl(url))
            else:
                unsupported.append(url)
        if unsupported:
            # Real GPKI certificates name partitioned LDAP CRLs: one line for all of them, not one each.
            label = unsupported[0] if len(unsupported) == 1 else f"{unsupported[0]} and {len(unsupported) - 1} more"
            schemes = sorted({u.split(":", 1)[0].lower() for u in unsupported})
            report.sources.append(SourceResult("crl", label, "unsupported",
                                               f"{', '.join(s + '://' for s in schemes)} CRLs are not supported "
                                               "(only http/https); skipped"))
        report.sources.extend(self.refresh_ocsp())
        return report

    # -- CRLs -----------------------------------------------------------------------------------------
    def crl_urls(self) -> list[str]:
        """Configured CRLs first, then the certificates' distribution points, each once."""
        urls = list(self.hd.config.crl_urls)
        rows = self.registry.db.execute(
            "SELECT DISTINCT crl_url FROM certificates WHERE crl_url IS NOT NULL AND crl_url != ''").fetchall()
        urls.extend(r[0] for r in rows)
        return list(dict.fromkeys(urls))

    def refresh_crl(self, url: str) -> SourceResult:
        if not url.lower().startswith(("http://", "https://")):
            scheme = url.split(":", 1)[0] if ":" in url else url
            return SourceResult("crl", url, "unsupported", f"{scheme}:// CRLs are not supported (only http/https); skipped")
        try:
            body = http_request(url, timeout=self.timeout, accept="application/pkix-crl", limit=MAX_CRL_BYTES)
        except FetchError as exc:
            return SourceResult("crl", url, exc.outcome, exc.message)
        crl = _load_crl(body)
        if crl is None:
            return SourceResult("crl", url, "bad-response", f"the answer is not a CRL ({len(body)} bytes)")
        applied = self.registry.apply_crl(crl, source=f"crl:{url}")
        if not applied.ok:
            return SourceResult("crl", url, "bad-response", describe_crl(applied))
        return SourceResult("crl", url, "ok", describe_crl(applied), checked=applied.confirmed,
                            changed=applied.revoked + applied.restored)

    # -- OCSP -----------------------------------------------------------------------------------------
    def ocsp_candidates(self) -> list[tuple[str, object, x509.Certificate]]:
        """(responder URL, certificate record, issuing CA) for every live certificate OCSP can be asked about."""
        now_iso = to_iso(self.hd.now())
        rows = self.registry._all(
            "SELECT id, employee_id, issuer, serial, subject, scheme, kind, usage, policy_oid, not_before, not_after,"
            " status, revoked_at, revocation_reason, source, status_source, status_checked_at, crl_url, ocsp_url"
            " FROM certificates WHERE status != 'revoked' AND not_after >= ?"
            " AND issuer IN (SELECT subject FROM ca_certs) ORDER BY id", [now_iso])
        from bot.registry import CertificateRecord

        cas: dict[str, list[x509.Certificate]] = {}
        out = []
        for row in rows:
            record = CertificateRecord.from_row(row)
            url = self.hd.config.ocsp_url or record.ocsp_url
            if not url:
                continue
            if record.issuer not in cas:
                cas[record.issuer] = self.registry.ca_certificates(record.issuer)
            if cas[record.issuer]:
                out.append((url, record, cas[record.issuer][0]))
        return out

    def refresh_ocsp(self) -> list[SourceResult]:
        results: dict[str, SourceResult] = {}
        for url, record, ca in self.ocsp_candidates():
            result = results.setdefault(url, SourceResult("ocsp", url, "ok", ""))
            if result.outcome in ("timeout", "error"):
                continue  # one unreachable responder is not asked again for each certificate
            if not url.lower().startswith(("http://", "https://")):
                result.outcome, result.message = "unsupported", "only http/https OCSP responders are supported"
                continue
            try:
                answer = self.ask_ocsp(url, record.serial, ca)
            except FetchError as exc:
                if result.outcome == "ok" or exc.outcome != "bad-response":
                    result.outcome, result.message = exc.outcome, f"{record.serial}: {exc.message}"
                continue
            status, revoked_at, reason = answer
            if status is None:
                continue  # "unknown" to the responder: nothing to confirm
            result.checked += 1
            if self._apply_ocsp(record, status, revoked_at, reason, url):
                result.changed += 1
        for result in results.values():
            if result.outcome == "ok":
                result.message = f"{result.checked} certificates confirmed, {result.changed} changed"
        return list(results.values())

    def _apply_ocsp(self, record, status: str, revoked_at: datetime | None, reason: str | None, url: str) -> bool:
        if record.status == "revoked" and status != "revoked":
            status, revoked_at, reason = record.status, record.revoked_at, record.revocation_reason
        return self.registry.set_status(record.id, status=status, revoked_at=revoked_at, reason=reason,
                                        source=f"ocsp:{url}")

    def ask_ocsp(self, url: str, serial_hex: str, ca: x509.Certificate) -> tuple[str | None, datetime | None, str | None]:
        """Ask the responder about one certificate; (status, revoked_at, reason), status None for "unknown".

        The answer must be successful, about the certificate asked, fresh, and signed by the CA or by a
        responder certificate the CA issued for OCSP signing; otherwise FetchError("bad-response").
        """
        serial = int(normalize_serial(serial_hex), 16)
        name_hash = hashlib.sha1(ca.subject.public_bytes()).digest()
        key_hash = x509.SubjectKeyIdentifier.from_public_key(ca.public_key()).digest  # SHA-1 of the key bits
        request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1()).build()
        body = http_request(url, timeout=self.timeout, data=request.public_bytes(serialization.Encoding.DER),
                            content_type="application/ocsp-request", accept="application/ocsp-response",
                            limit=MAX_OCSP_BYTES)
        try:
            response = ocsp.load_der_ocsp_response(body)
        except ValueError:
            raise FetchError("bad-response", "the answer is not an OCSP response") from None
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise FetchError("bad-response", f"responder said {response.response_status.name}")
        if not _ocsp_signed_by_ca(response, ca):
            raise FetchError("bad-response", "the OCSP response is not signed by the CA or its OCSP responder")
        single = next((r for r in response.responses if r.serial_number == serial
                       and r.issuer_name_hash == name_hash and r.issuer_key_hash == key_hash), None)
        if single is None:
            raise FetchError("bad-response", "the OCSP response is about another certificate")
        now = self.hd.now()
        if single.this_update_utc > now + timedelta(minutes=5) or single.this_update_utc < now - OCSP_MAX_AGE:
            raise FetchError("bad-response", f"the OCSP response is not current (thisUpdate {to_iso(single.this_update_utc)})")
        if single.next_update_utc is not None and single.next_update_utc < now:
            raise FetchError("bad-response", f"the OCSP response is stale (nextUpdate {to_iso(single.next_update_utc)})")
        if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
            return "valid", None, None
        if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            flag = single.revocation_reason
            reason = REASONS.get(flag.value.lower(), flag.value) if flag is not None else "unspecified"
            status = "suspended" if reason == "certificateHold" else "revoked"
            if reason == "removeFromCRL":
                return "valid", None, None
            revoked = single.revocation_time_utc.astimezone(SEOUL) if single.revocation_time_utc else None
            return status, revoked, reason
        return None, None, None


def _verify(key, signature: bytes, data: bytes, algorithm) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _ocsp_signed_by_ca(response: ocsp.OCSPResponse, ca: x509.Certificate) -> bool:
    """Signed by the CA itself, or by a certificate in the response that the CA issued with id-kp-OCSPSigning."""
    signers = [ca]
    for cert in response.certificates:
        try:
            cert.verify_directly_issued_by(ca)
            usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (InvalidSignature, ValueError, TypeError, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in usage:
            signers.append(cert)
    for signer in signers:
        by_name = response.responder_name is not None and \
            canonical_dn(response.responder_name.rfc4514_string()) == canonical_dn(signer.subject.rfc4514_string())
        by_key = response.responder_key_hash is not None and \
            response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(signer.public_key()).digest
        if (by_name or by_key) and _verify(signer.public_key(), response.signature, response.tbs_response_bytes,
                                           response.signature_hash_algorithm):
            return True
    return False


def refresh(hd: "Helpdesk") -> RefreshReport:
    """One `registry refresh` run."""
    return StatusRefresher(hd).run()
