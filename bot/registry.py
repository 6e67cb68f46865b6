"""The registry: who holds which certificate, its status, and which chat belongs to which holder.

Holders and certificates come from a CSV export of the registration authority's records
(`import_csv`), from certificate files (`import_file`) and from CRLs (`apply_crl`); `bot.status_refresh`
re-checks status over HTTP (CRL, OCSP). Personal identifiers are kept only as keyed hashes
(`rrn_hmac`, `phone_hmac`) plus the last four digits of the phone.

Statuses stored are `valid`, `revoked` and `suspended`; `expired` and `not_yet_valid` are derived from the
validity period at read time (`CertificateRecord.effective_status`), so they never go stale.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import math
import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, TextIO

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bot.clock import SEOUL, parse_instant, to_iso
from bot.privacy import hmac_id

if TYPE_CHECKING:
    from bot.helpdesk import Helpdesk

# -- vocabulary ---------------------------------------------------------------------------------------

STORED_STATUSES = ("valid", "revoked", "suspended")
KINDS = ("sig", "env", "unknown")
EXPIRING_DAYS = 30  # "expiring soon" on /status: the renewal hint and the ordering use it

# Policy OID -> usage (design.md `inspect --json`), from gpki-facts.md section 1.
USAGE_BY_OID = {
    "1.2.410.100001.2.1.1": "org",
    "1.2.410.100001.2.1.4": "org",
    "1.2.410.100001.2.1.2": "server",
    "1.2.410.100001.2.1.5": "server",
    "1.2.410.100001.2.1.3": "special",
    "1.2.410.100001.2.1.6": "special",
    "1.2.410.100001.2.2.1": "personal-admin",
    "1.2.410.100001.2.2.2": "personal-public",
    "1.2.410.100001.5.3.1.3": "epki-personal",
    "1.2.410.100001.5.3.1.1": "epki-org",
    "1.2.410.100001.5.3.1.7": "epki-server",
    "1.2.410.100001.5.3.1.9": "epki-server",
    "1.2.410.100001.5.3.1.5": "epki-special",
}

# Revocation reasons as RFC 5280 / the 표준API name them; CSV may use either spelling.
REASONS = {
    "unspecified": "unspecified", "keycompromise": "keyCompromise", "cacompromise": "cACompromise",
    "affiliationchanged": "affiliationChanged", "superseded": "superseded",
    "cessationofoperation": "cessationOfOperation", "certificatehold": "certificateHold",
    "removefromcrl": "removeFromCRL", "privilegewithdrawn": "privilegeWithdrawn", "aacompromise": "aACompromise",
}

_KIND_WORDS = {
    "sig": "sig", "sign": "sig", "signature": "sig", "서명": "sig", "서명용": "sig", "전자서명용": "sig",
    "env": "env", "km": "env", "encryption": "env", "암호화": "env", "암호화용": "env", "키분배용": "env",
    "unknown": "unknown",
}

CSV_REQUIRED = ("employee_id", "name", "agency", "agency_code", "department", "phone", "email", "serial",
                "issuer", "subject", "not_before", "not_after")
CSV_OPTIONAL = ("rrn", "status", "revoked_at", "revocation_reason", "policy_oid", "kind")
_HOLDER_FIELDS = ("employee_id", "name", "agency", "agency_code", "department", "email", "phone", "rrn")

# Link codes: letters and digits that cannot be misread for each other (no 0/O, 1/I/L).
LINK_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LINK_CODE_LENGTH = 8
LINK_MAX_FAILURES = 5
LINK_WINDOW = timedelta(hours=1)
LINK_LOCK = timedelta(hours=1)
LINK_CODE_SHAPE = re.compile(rf"^[{LINK_ALPHABET}]{{{LINK_CODE_LENGTH}}}$")


class RegistryError(ValueError):
    """An input the registry cannot use (English, for operators)."""


# -- normalisation ------------------------------------------------------------------------------------

_HEX = re.compile(r"^[0-9A-F]+$")
_CANONICAL_DN = re.compile(r"[A-Z][A-Z0-9.]*=[^,=\\\s][^,=\\]*(?<!\s)(?:,[A-Z][A-Z0-9.]*=[^,=\\\s][^,=\\]*(?<!\s))*")
_SERIAL_JUNK = re.compile(r"[\s:\-]")
_NON_DIGIT = re.compile(r"\D")
_PHONE_DIGITS = re.compile(r"0\d{8,10}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_OID = re.compile(r"\d+(\.\d+)+")


def normalize_serial(value: str | int) -> str:
    """A serial as X.509 tools print it: uppercase hex, even length (`0a:1b` -> `0A1B`, 255 -> `FF`)."""
    if isinstance(value, int):
        number = value
    else:
        text = _SERIAL_JUNK.sub("", str(value)).upper()
        if text.startswith("0X"):
            text = text[2:]
        if not text or not _HEX.match(text):
            raise RegistryError("serial must be hexadecimal (e.g. 1A2B3C)")
        number = int(text, 16)
    if number < 0:
        raise RegistryError("serial must not be negative")
    text = format(number, "X")
    return text if len(text) % 2 == 0 else "0" + text


def _split_dn(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


@lru_cache(maxsize=65536)
def canonical_dn(text: str) -> str:
    """One spelling per DN: `CN=..,OU=..,O=..,C=KR` (most specific first, no blanks around separators).

    Accepts RFC 4514 (`CN=a,O=b,C=KR`), the reverse (`C=KR, O=b, CN=a`), openssl's `/C=KR/O=b/CN=a`, and
    lower-case attribute names; anything it cannot parse is returned stripped, unchanged.
    """
    text = text.strip()
    if not text:
        return ""
    if _CANONICAL_DN.fullmatch(text) and not (text.startswith("C=") and "," in text):
        return text  # already in the one spelling (what exports and cryptography's rfc4514_string give)
    if text.startswith("/"):
        parts = [p for p in text.split("/") if p.strip()]
    else:
        parts = [p for p in (_split_dn(text, ",") if "\\" in text else text.split(",")) if p.strip()]
    pairs = []
    for part in parts:
        if "=" not in part:
            return text
        key, value = part.split("=", 1)
        key = key.strip().upper()
        if not key:
            return text
        pairs.append((key, value.strip()))
    if len(pairs) > 1 and pairs[0][0] == "C" and pairs[-1][0] != "C":
        pairs.reverse()
    return ",".join(f"{k}={v}" for k, v in pairs)


def name_to_dn(name: x509.Name) -> str:
    return canonical_dn(name.rfc4514_string())


def _digits(raw: str) -> str:
    return _NON_DIGIT.sub("", raw or "")


def normalize_phone(raw: str) -> str:
    """Digits of a Korean phone number (`+82 10-1234-5678` -> `01012345678`); RegistryError if not one."""
    digits = _digits(raw)
    if digits.startswith("82") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if not _PHONE_DIGITS.fullmatch(digits):
        raise RegistryError("phone must be a Korean phone number such as 010-1234-5678")
    return digits


def _rrn_digits(raw: str) -> str:
    digits = _digits(raw)
    if len(digits) != 13:
        raise RegistryError("rrn must have 13 digits (YYMMDD-NNNNNNN)")
    return digits


def rrn_hmac(key: str, raw: str) -> str:
    """The keyed hash kept instead of a 주민등록번호 (hyphens and spaces ignored)."""
    return hmac_id(key, f"rrn:{_rrn_digits(raw)}")


def phone_hmac(key: str, raw: str) -> str:
    """The keyed hash kept instead of a phone number (compare a number a user types with this)."""
    return hmac_id(key, f"phone:{normalize_phone(raw)}")


def usage_for(policy_oid: str | None) -> str:
    return USAGE_BY_OID.get(policy_oid or "", "unknown")


def scheme_for(policy_oid: str | None, default: str = "GPKI") -> str:
    if not policy_oid:
        return default
    if policy_oid.startswith("1.2.410.100001.5."):
        return "EPKI"
    if policy_oid.startswith("1.2.410.100001."):
        return "GPKI"
    if policy_oid.startswith("1.2.410."):
        return "NPKI"
    return "other"


def _start_of_day_or_instant(text: str) -> datetime:
    """not_before: a bare date is the start of that day (the rest of the file follows parse_instant)."""
    text = text.strip()
    if len(text) == 10:
        return datetime.combine(datetime.fromisoformat(text).date(), time(0, 0, 0), tzinfo=SEOUL)
    return parse_instant(text)


def _instant(value: str) -> datetime:
    return parse_instant(value)


# -- records ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """A certificate holder (an official). Identifiers are hashes; `phone_last4` is for staff to confirm."""

    employee_id: str
    name: str
    agency: str = ""
    agency_code: str = ""
    department: str = ""
    email: str = ""
    phone_last4: str | None = None
    rrn_hmac: str | None = None
    phone_hmac: str | None = None
    chat_id: str | None = None
    linked_at: str | None = None
    reminders_muted: bool = False

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Holder":
        return cls(
            employee_id=row["employee_id"], name=row["name"], agency=row["agency"], agency_code=row["agency_code"],
            department=row["department"], email=row["email"], phone_last4=row["phone_last4"],
            rrn_hmac=row["rrn_hmac"], phone_hmac=row["phone_hmac"], chat_id=row["chat_id"],
            linked_at=row["linked_at"], reminders_muted=bool(row["reminders_muted"]),
        )


@dataclass(frozen=True)
class CertificateRecord:
    """One certificate in the registry. `status` is the stored one; ask `effective_status(now)`."""

    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    subject: str = ""
    employee_id: str | None = None
    scheme: str = "GPKI"
    kind: str = "unknown"
    usage: str = "unknown"
    policy_oid: str | None = None
    status: str = "valid"
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    source: str = "csv"
    status_source: str | None = None
    status_checked_at: datetime | None = None
    crl_url: str | None = None
    ocsp_url: str | None = None
    id: int | None = None

    def effective_status(self, now: datetime) -> str:
        """revoked > expired (not_after passed) > not_yet_valid > the stored status (valid / suspended)."""
        if self.status == "revoked":
            return "revoked"
        if self.not_after < now:
            return "expired"
        if self.not_before > now:
            return "not_yet_valid"
        return self.status

    def days_left(self, now: datetime) -> int:
        """Whole days to not_after, negative once expired (as `inspect --json` counts them)."""
        return math.floor((self.not_after - now).total_seconds() / 86400)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "CertificateRecord":
        def when(value):
            return parse_instant(value) if value else None

        return cls(
            id=row["id"], employee_id=row["employee_id"], issuer=row["issuer"], serial=row["serial"],
            subject=row["subject"], scheme=row["scheme"], kind=row["kind"], usage=row["usage"],
            policy_oid=row["policy_oid"], not_before=parse_instant(row["not_before"]),
            not_after=parse_instant(row["not_after"]), status=row["status"], revoked_at=when(row["revoked_at"]),
            revocation_reason=row["revocation_reason"], source=row["source"], status_source=row["status_source"],
            status_checked_at=when(row["status_checked_at"]), crl_url=row.get("crl_url"),
            ocsp_url=row.get("ocsp_url"),
        )

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "serial": self.serial, "issuer": self.issuer, "subject": self.subject, "scheme": self.scheme,
            "kind": self.kind, "usage": self.usage, "policy_oid": self.policy_oid,
            "status": self.effective_status(now), "stored_status": self.status,
            "not_before": to_iso(self.not_before), "not_after": to_iso(self.not_after),
            "days_left": self.days_left(now),
            "revoked_at": to_iso(self.revoked_at) if self.revoked_at else None,
            "revocation_reason": self.revocation_reason, "source": self.source,
            "status_source": self.status_source,
            "status_checked_at": to_iso(self.status_checked_at) if self.status_checked_at else None,
        }


def urgency(cert: CertificateRecord, now: datetime) -> tuple[int, int]:
    """Sort key, most urgent first: revoked, suspended, expired, expiring soon, valid, not yet valid."""
    state = cert.effective_status(now)
    days = cert.days_left(now)
    rank = {"revoked": 0, "suspended": 1, "expired": 2, "valid": 3 if days <= EXPIRING_DAYS else 4,
            "not_yet_valid": 5}.get(state, 6)
    # Among the expired, the most recent first; among the rest, the soonest expiry first.
    return rank, -days if state == "expired" else days


@dataclass(frozen=True)
class RowError:
    """A CSV row that was not imported: its line number (header = line 1) and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportReport:
    """What one CSV import did."""

    source: str
    rows: int = 0  # good rows imported
    holders: int = 0  # distinct holders among them
    certificates_new: int = 0
    certificates_updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fatal: str | None = None  # the file as a whole could not be read (rows before it are kept)

    @property
    def ok(self) -> bool:
        return self.fatal is None and not self.errors


@dataclass
class CrlReport:
    """What applying one CRL did."""

    source: str
    ok: bool
    issuer: str = ""
    number: int | None = None
    entries: int = 0
    revoked: int = 0  # registry certificates now revoked/suspended by it
    restored: int = 0  # suspended certificates back to valid (removeFromCRL, or no longer listed)
    confirmed: int = 0  # registry certificates whose status it confirmed (status_checked_at set now)
    verified: bool | None = None  # signature checked against a known CA certificate (None: CA unknown)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class FileReport:
    """One file given to `registry import`: what it was and what happened."""

    path: str
    kind: str  # csv | certificate | ca-certificate | crl | skipped | error
    ok: bool
    message: str
    detail: Any = None


@dataclass(frozen=True)
class LinkCode:
    code: str
    employee_id: str
    expires_at: datetime
    deep_link: str | None

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "expires_at": to_iso(self.expires_at), "deep_link": self.deep_link}


@dataclass(frozen=True)
class LinkResult:
    """Outcome of `/link CODE`: linked, invalid, expired, used or locked."""

    outcome: str
    holder: Holder | None = None
    locked_until: datetime | None = None
    attempts_left: int = LINK_MAX_FAILURES


# -- the registry -------------------------------------------------------------------------------------

_HOLDER_UPSERT = """
INSERT INTO holders (employee_id, name, agency, agency_code, department, rrn_hmac, phone_hmac, phone_last4,
                     email, created_at, updated_at)
VALUES (:employee_id, :name, :agency, :agency_code, :department, :rrn_hmac, :phone_hmac, :phone_last4,
        :email, :now, :now)
ON CONFLICT (employee_id) DO UPDATE SET
    name = excluded.name, agency = excluded.agency, agency_code = excluded.agency_code,
    department = excluded.department,
    rrn_hmac = COALESCE(excluded.rrn_hmac, holders.rrn_hmac),
    phone_hmac = COALESCE(excluded.phone_hmac, holders.phone_hmac),
    phone_last4 = COALESCE(excluded.phone_last4, holders.phone_last4),
    email = CASE WHEN excluded.email = '' THEN holders.email ELSE excluded.email END,
    updated_at = excluded.updated_at
"""

# A row without a status keeps the status already known (a CRL may have revoked it since the last export),
# and a revocation learnt from a CRL or OCSP is never undone by a row that says otherwise: revocation is final.
_KEEP_STATUS = ("(:status IS NULL OR (certificates.status = 'revoked' AND :status != 'revoked'"
                " AND COALESCE(certificates.status_source, '') NOT IN ('csv', 'demo')))")
_CERT_UPSERT = f"""
INSERT INTO certificates (employee_id, issuer, serial, subject, scheme, kind, usage, policy_oid, not_before,
                          not_after, status, revoked_at, revocation_reason, source, status_source,
                          status_checked_at, crl_url, ocsp_url, created_at, updated_at)
VALUES (:employee_id, :issuer, :serial, :subject, :scheme, :kind, :usage, :policy_oid, :not_before,
        :not_after, COALESCE(:status, 'valid'), :revoked_at, :revocation_reason, :source, :status_source,
        :status_checked_at, :crl_url, :ocsp_url, :now, :now)
ON CONFLICT (issuer, serial) DO UPDATE SET
    employee_id = COALESCE(excluded.employee_id, certificates.employee_id),
    subject = CASE WHEN excluded.subject = '' THEN certificates.subject ELSE excluded.subject END,
    scheme = excluded.scheme,
    kind = CASE WHEN excluded.kind = 'unknown' THEN certificates.kind ELSE excluded.kind END,
    usage = CASE WHEN excluded.usage = 'unknown' THEN certificates.usage ELSE excluded.usage END,
    policy_oid = COALESCE(excluded.policy_oid, certificates.policy_oid),
    not_before = excluded.not_before, not_after = excluded.not_after,
    status = CASE WHEN {_KEEP_STATUS} THEN certificates.status ELSE excluded.status END,
    revoked_at = CASE WHEN {_KEEP_STATUS} THEN certificates.revoked_at ELSE excluded.revoked_at END,
    revocation_reason = CASE WHEN {_KEEP_STATUS} THEN certificates.revocation_reason
                             ELSE excluded.revocation_reason END,
    status_source = CASE WHEN {_KEEP_STATUS} THEN certificates.status_source ELSE excluded.status_source END,
    status_checked_at = CASE WHEN {_KEEP_STATUS} THEN certificates.status_checked_at
                             ELSE excluded.status_checked_at END,
    crl_url = COALESCE(excluded.crl_url, certificates.crl_url),
    ocsp_url = COALESCE(excluded.ocsp_url, certificates.ocsp_url),
    source = excluded.source,
    updated_at = excluded.updated_at
"""

_CERT_COLUMNS = ("id, employee_id, issuer, serial, subject, scheme, kind, usage, policy_oid, not_before, not_after, "
                 "status, revoked_at, revocation_reason, source, status_source, status_checked_at, crl_url, ocsp_url")
_HOLDER_COLUMNS = ("employee_id, name, agency, agency_code, department, email, phone_last4, rrn_hmac, phone_hmac, "
                   "chat_id, linked_at, reminders_muted")

CERT_SUFFIXES = {".cer", ".crt", ".der", ".pem"}
CRL_SUFFIXES = {".crl"}
KEY_SUFFIXES = {".key", ".p12", ".pfx"}


class Registry:
    """The registry over the helpdesk's store. Cheap to create: holds no state but the issuer spellings."""

    def __init__(self, hd: "Helpdesk") -> None:
        self.hd = hd
        self.store = hd.store
        self.db = hd.store.db
        self._issuers: dict[str, str] | None = None
        self._last_holder: tuple[tuple, dict] | None = None
        self._hmac = hmac.new(hd.pii_key.encode("utf-8"), digestmod=hashlib.sha256)

    def _keyed(self, value: str) -> str:
        """`bot.privacy.hmac_id(pii_key, value)`, from a prepared key (imports hash two values a row)."""
        mac = self._hmac.copy()
        mac.update(value.encode("utf-8"))
        return mac.hexdigest()

    def now(self) -> datetime:
        return self.hd.now()

    # -- reading ------------------------------------------------------------------------------------
    def holder(self, employee_id: str) -> Holder | None:
        row = self._one(f"SELECT {_HOLDER_COLUMNS} FROM holders WHERE employee_id = ?", [employee_id.strip()])
        return Holder.from_row(row) if row else None

    def holder_by_chat(self, chat_id: str) -> Holder | None:
        row = self._one(f"SELECT {_HOLDER_COLUMNS} FROM holders WHERE chat_id = ?", [chat_id])
        return Holder.from_row(row) if row else None

    def certificates(self, employee_id: str, now: datetime | None = None) -> list[CertificateRecord]:
        """A holder's certificates, the most urgent first (see `urgency`)."""
        now = now or self.now()
        rows = self._all(f"SELECT {_CERT_COLUMNS} FROM certificates WHERE employee_id = ?", [employee_id])
        certs = [CertificateRecord.from_row(r) for r in rows]
        return sorted(certs, key=lambda c: (urgency(c, now), KINDS.index(c.kind) if c.kind in KINDS else 9, c.serial))

    def certificate(self, issuer: str, serial: str | int) -> CertificateRecord | None:
        spelled = self._issuer_spelling(canonical_dn(issuer))
        row = self._one(f"SELECT {_CERT_COLUMNS} FROM certificates WHERE issuer = ? AND serial = ?",
                        [spelled, normalize_serial(serial)])
        return CertificateRecord.from_row(row) if row else None

    def revocation_lookup(self, issuer: str, serial: str | int) -> tuple[str, datetime | None, str | None] | None:
        """For `bot.certs.inspect_bytes(revocation_lookup=...)`: `(status, revoked_at, reason)` of a certificate
        the registry knows (status "valid", "revoked" or "suspended"), else None."""
        try:
            record = self.certificate(issuer, serial)
        except RegistryError:
            return None
        if record is None:
            return None
        return record.status, record.revoked_at, record.revocation_reason

    def _one(self, sql: str, params: list) -> dict[str, Any] | None:
        cursor = self.db.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row))

    def _all(self, sql: str, params: list) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    # -- issuer spellings -------------------------------------------------------------------------
    def _issuer_spelling(self, issuer: str) -> str:
        """The spelling already stored for an issuer that differs only in letter case (DNs compare so)."""
        if self._issuers is None:
            self._issuers = {row[0].casefold(): row[0] for row in
                             self.db.execute("SELECT DISTINCT issuer FROM certificates").fetchall()}
        return self._issuers.setdefault(issuer.casefold(), issuer)

    # -- writing --------------------------------------------------------------------------------------
    def upsert_holder(self, employee_id: str, name: str, *, agency: str = "", agency_code: str = "",
                      department: str = "", email: str = "", phone: str | None = None,
                      rrn: str | None = None) -> Holder:
        """Create or update a holder. `phone` and `rrn` are hashed here and never stored in clear."""
        params = self._holder_params(employee_id, name, agency, agency_code, department, email, phone or "",
                                     rrn or "")
        with self.store.transaction():
            self.db.execute(_HOLDER_UPSERT, params)
        return self.holder(employee_id)  # type: ignore[return-value]

    def _holder_params(self, employee_id: str, name: str, agency: str, agency_code: str, department: str,
                       email: str, phone: str, rrn: str, now_iso: str | None = None) -> dict[str, Any]:
        employee_id, name = employee_id.strip(), name.strip()
        if not employee_id:
            raise RegistryError("employee_id is empty")
        if len(employee_id) > 64:
            raise RegistryError("employee_id is longer than 64 characters")
        if not name:
            raise RegistryError("name is empty")
        email = email.strip()
        if email and not _EMAIL.fullmatch(email):
            raise RegistryError(f"email is not an e-mail address: {email[:60]!r}")
        phone_digits = normalize_phone(phone) if phone.strip() else None
        return {
            "employee_id": employee_id, "name": name, "agency": agency.strip(), "agency_code": agency_code.strip(),
            "department": department.strip(), "email": email,
            "rrn_hmac": self._keyed(f"rrn:{_rrn_digits(rrn)}") if rrn.strip() else None,
            "phone_hmac": self._keyed(f"phone:{phone_digits}") if phone_digits else None,
            "phone_last4": phone_digits[-4:] if phone_digits else None,
            "now": now_iso or to_iso(self.now()),
        }

    def upsert_certificate(self, record: CertificateRecord) -> CertificateRecord:
        """Create or update a certificate by (issuer, serial); returns it as stored."""
        params = self._cert_params_from_record(record)
        with self.store.transaction():
            self.db.execute(_CERT_UPSERT, params)
        return self.certificate(record.issuer, record.serial)  # type: ignore[return-value]

    def _cert_params_from_record(self, r: CertificateRecord) -> dict[str, Any]:
        status_given = r.source != "file"  # a certificate file says nothing about revocation
        now_iso = to_iso(self.now())
        return {
            "employee_id": r.employee_id, "issuer": self._issuer_spelling(canonical_dn(r.issuer)),
            "serial": normalize_serial(r.serial), "subject": canonical_dn(r.subject), "scheme": r.scheme,
            "kind": r.kind if r.kind in KINDS else "unknown", "usage": r.usage, "policy_oid": r.policy_oid,
            "not_before": to_iso(r.not_before), "not_after": to_iso(r.not_after),
            "status": r.status if status_given else None,
            "revoked_at": to_iso(r.revoked_at) if r.revoked_at else None,
            "revocation_reason": r.revocation_reason, "source": r.source,
            "status_source": (r.status_source or r.source) if status_given else None,
            "status_checked_at": (to_iso(r.status_checked_at) if r.status_checked_at else now_iso)
            if status_given else None,
            "crl_url": r.crl_url, "ocsp_url": r.ocsp_url, "now": now_iso,
        }

    # -- CSV import -----------------------------------------------------------------------------------
    def import_csv(self, source: str | Path | TextIO, *, batch_size: int = 5000) -> ImportReport:
        """Load holders and certificates from the CSV of design.md, streaming, in batches.

        Bad rows are reported with their line number and skipped; good rows are kept. Upserts by
        employee_id (holders) and issuer+serial (certificates), so importing the same file twice changes nothing.
        """
        name = str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "<stream>")
        report = ImportReport(source=name)
        if isinstance(source, (str, Path)):
            try:
                handle: TextIO = open(source, encoding="utf-8-sig", newline="")
            except OSError as exc:
                report.fatal = f"cannot open {name}: {exc.strerror or exc}"
                return report
        else:
            handle = source
        try:
            self._import_rows(handle, report, batch_size)
        finally:
            if isinstance(source, (str, Path)):
                handle.close()
        return report

    def _import_rows(self, handle: TextIO, report: ImportReport, batch_size: int) -> None:
        self._last_holder = None
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (UnicodeDecodeError, csv.Error) as exc:
            report.fatal = _unreadable(exc, 1)
            return
        if not header or not any(h.strip() for h in header):
            report.fatal = "the file is empty (a header row is required)"
            return
        columns = [h.strip().lstrip("\ufeff").lower() for h in header]
        missing = [c for c in CSV_REQUIRED if c not in columns]
        if missing:
            report.fatal = (f"header row lacks column(s) {', '.join(missing)} (required: {', '.join(CSV_REQUIRED)})")
            return
        duplicated = sorted({c for c in columns if columns.count(c) > 1 and c})
        if duplicated:
            report.fatal = f"header row names column(s) twice: {', '.join(duplicated)}"
            return
        unknown = [c for c in columns if c and c not in CSV_REQUIRED + CSV_OPTIONAL]
        if unknown:
            report.warnings.append(f"ignored unknown column(s): {', '.join(unknown)}")
        index = {c: i for i, c in enumerate(columns)}
        positions = tuple(index.get(c, -1) for c in CSV_REQUIRED + CSV_OPTIONAL)
        now = self.now()
        before = self._count_certificates()
        holders_seen: set[str] = set()
        holder_batch: dict[str, dict[str, Any]] = {}
        cert_batch: list[dict[str, Any]] = []
        rows = iter(reader)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            except (UnicodeDecodeError, csv.Error) as exc:
                report.fatal = _unreadable(exc, reader.line_num + 1)
                break
            line = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                report.errors.append(RowError(line, f"expected {len(columns)} fields, found {len(row)}"))
                continue
            try:
                holder, cert = self._parse_row(row, positions, now)
            except RegistryError as exc:
                report.errors.append(RowError(line, str(exc)))
                continue
            earlier = holder_batch.get(holder["employee_id"])
            if earlier is not None:  # the holder's rows repeat; a blank identifier in a later row keeps the earlier
                for key in ("rrn_hmac", "phone_hmac", "phone_last4", "email"):
                    if not holder[key]:
                        holder[key] = earlier[key]
            holder_batch[holder["employee_id"]] = holder
            cert_batch.append(cert)
            holders_seen.add(holder["employee_id"])
            report.rows += 1
            if len(cert_batch) >= batch_size:
                self._flush(holder_batch, cert_batch)
        self._flush(holder_batch, cert_batch)
        report.holders = len(holders_seen)
        report.certificates_new = self._count_certificates() - before
        report.certificates_updated = report.rows - report.certificates_new

    def _count_certificates(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM certificates").fetchone()[0])

    def _flush(self, holder_batch: dict[str, dict[str, Any]], cert_batch: list[dict[str, Any]]) -> None:
        if not cert_batch:
            return
        conn = self.db.conn
        with self.store.transaction():
            conn.executemany(_HOLDER_UPSERT, list(holder_batch.values()))
            conn.executemany(_CERT_UPSERT, cert_batch)
        holder_batch.clear()
        cert_batch.clear()

    def _parse_row(self, row: list[str], positions: tuple[int, ...], now: datetime) -> tuple[dict, dict]:
        """One CSV row -> (holder params, certificate params). `positions` gives the index of each column of
        CSV_REQUIRED + CSV_OPTIONAL in the row, -1 for an absent one (the row gets a trailing "" for it)."""
        row.append("")
        (employee_id, name, agency, agency_code, department, phone, email, serial_raw, issuer_raw, subject,
         not_before_raw, not_after_raw, rrn, status_raw, revoked_raw, reason_raw, policy_oid,
         kind_raw) = [row[i].strip() for i in positions]
        raw_holder = (employee_id, name, agency, agency_code, department, email, phone, rrn)
        if self._last_holder is not None and self._last_holder[0] == raw_holder:
            holder = dict(self._last_holder[1])  # the next row of the same holder (a sig/env pair): same result
        else:
            holder = self._holder_params(*raw_holder, now_iso=_iso(now))
            self._last_holder = (raw_holder, dict(holder))
        if not serial_raw:
            raise RegistryError("serial is empty")
        if not issuer_raw:
            raise RegistryError("issuer is empty")
        serial = normalize_serial(serial_raw)
        not_before = _parse_date("not_before", not_before_raw, start_of_day=True)
        not_after = _parse_date("not_after", not_after_raw)
        if not_after <= not_before:
            raise RegistryError("not_after must be later than not_before")
        policy_oid = policy_oid or None
        if policy_oid and not _OID.fullmatch(policy_oid):
            raise RegistryError(f"policy_oid is not an OID: {policy_oid[:40]!r}")
        kind = _KIND_WORDS.get(kind_raw.lower(), None) if kind_raw else "unknown"
        if kind is None:
            raise RegistryError(f"kind must be sig or env, not {kind_raw[:20]!r}")
        status, revoked_at, reason = _parse_status(status_raw, revoked_raw, reason_raw,
                                                   not_after, now)
        now_iso = holder["now"]
        cert = {
            "employee_id": holder["employee_id"], "issuer": self._issuer_spelling(canonical_dn(issuer_raw)),
            "serial": serial, "subject": canonical_dn(subject), "scheme": scheme_for(policy_oid),
            "kind": kind, "usage": usage_for(policy_oid), "policy_oid": policy_oid,
            "not_before": _iso(not_before), "not_after": _iso(not_after),
            "status": status, "revoked_at": _iso(revoked_at) if revoked_at else None,
            "revocation_reason": reason, "source": "csv",
            "status_source": "csv" if status else None, "status_checked_at": now_iso if status else None,
            "crl_url": None, "ocsp_url": None, "now": now_iso,
        }
        return holder, cert

    # -- certificate files ----------------------------------------------------------------------------
    def import_path(self, path: str | Path) -> list[FileReport]:
        """`registry import PATH`: a CSV, a certificate, a CRL, or a folder of certificates and CRLs."""
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file()
                           and p.suffix.lower() in CERT_SUFFIXES | CRL_SUFFIXES | KEY_SUFFIXES)
            # Certificates before .crl files, so a CA certificate in the folder can verify its CRL.
            files.sort(key=lambda p: p.suffix.lower() in CRL_SUFFIXES)
            reports = [self.import_file(p) for p in files]
            return reports or [FileReport(str(path), "skipped", False, "no certificate or CRL files in the folder")]
        if not path.exists():
            return [FileReport(str(path), "error", False, f"no such file or folder: {path}")]
        if path.suffix.lower() == ".csv":
            report = self.import_csv(path)
            return [FileReport(str(path), "csv", report.ok, describe_import(report), report)]
        return [self.import_file(path)]

    def import_file(self, path: str | Path) -> FileReport:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            return FileReport(str(path), "error", False, f"cannot read {path}: {exc.strerror or exc}")
        return self.import_bytes(path.name, data, source=f"file:{path.name}", path=str(path))

    def import_bytes(self, filename: str, data: bytes, *, source: str, path: str | None = None) -> FileReport:
        """A certificate (end-entity or CA) or a CRL given as DER or PEM bytes, read with `bot.certs`."""
        from bot import certs

        where = path or filename
        inspection = certs.inspect_bytes(filename, data, now=self.now())
        if not inspection.ok:
            if inspection.error_code == "private_key":
                return FileReport(where, "error", False,
                                  "this is a private key (개인키): it must never be sent to anyone; not imported")
            return FileReport(where, "error", False,
                              f"not a certificate or CRL ({inspection.error_code or 'unreadable'})")
        if inspection.is_crl:
            crl = _load_crl(data)
            if crl is None:
                return FileReport(where, "error", False, "a CRL in a form the registry cannot apply (use DER or PEM)")
            report = self.apply_crl(crl, source=source)
            return FileReport(where, "crl", report.ok, describe_crl(report), report)
        cert = inspection.certificate
        if inspection.is_ca and cert is not None:
            added = self.add_ca_certificate(cert, source=source)
            message = f"CA certificate {name_to_dn(cert.subject)} " + ("added" if added else "already known")
            return FileReport(where, "ca-certificate", True, message)
        record = self.upsert_certificate(self.record_from_inspection(inspection, source="file"))
        owner = f"holder {record.employee_id}" if record.employee_id else "no holder yet"
        return FileReport(where, "certificate", True,
                          f"certificate {record.serial} of {record.subject or '(no subject)'} ({owner})", record)

    def record_from_inspection(self, inspection: Any, *, source: str) -> CertificateRecord:
        """A registry record from a `bot.certs.Inspection` of a certificate. The holder is found through a
        certificate already in the registry with the same subject (the other half of a sig/env pair, or a CSV row)."""
        subject = canonical_dn(inspection.subject)
        row = self.db.execute(
            "SELECT employee_id FROM certificates WHERE subject = ? AND employee_id IS NOT NULL LIMIT 1", [subject]
        ).fetchone()
        return CertificateRecord(
            issuer=canonical_dn(inspection.issuer), serial=normalize_serial(inspection.serial), subject=subject,
            not_before=inspection.not_before_at.astimezone(SEOUL), not_after=inspection.not_after_at.astimezone(SEOUL),
            employee_id=row[0] if row else None, scheme=inspection.scheme if inspection.scheme != "other" else "GPKI",
            kind=inspection.kind if inspection.kind in KINDS else "unknown", usage=inspection.usage,
            policy_oid=inspection.policy_oid, source=source, crl_url=inspection.crl_url, ocsp_url=inspection.ocsp_url,
        )

    def add_ca_certificate(self, cert: x509.Certificate, *, source: str) -> bool:
        """Remember a CA certificate (to verify its CRLs and ask OCSP about its certificates); False if known."""
        der = cert.public_bytes(serialization.Encoding.DER)
        fingerprint = hashlib.sha256(der).hexdigest()
        with self.store.transaction():
            cursor = self.db.execute(
                "INSERT INTO ca_certs (subject, fingerprint, der, not_after, source, added_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(fingerprint) DO NOTHING",
                [name_to_dn(cert.subject), fingerprint, der, to_iso(cert.not_valid_after_utc), source,
                 to_iso(self.now())],
            )
        return cursor.rowcount > 0

    def ca_certificates(self, subject: str) -> list[x509.Certificate]:
        rows = self.db.execute("SELECT der FROM ca_certs WHERE subject = ? COLLATE NOCASE ORDER BY id DESC",
                               [canonical_dn(subject)]).fetchall()
        return [x509.load_der_x509_certificate(bytes(r[0])) for r in rows]

    # -- CRLs -----------------------------------------------------------------------------------------
    def import_crl(self, data: bytes, *, source: str) -> CrlReport:
        crl = _load_crl(data)
        if crl is None:
            return CrlReport(source=source, ok=False, error="not a CRL (DER or PEM)")
        return self.apply_crl(crl, source=source)

    def apply_crl(self, crl: x509.CertificateRevocationList, *, source: str) -> CrlReport:
        """Bring the registry in line with a CRL: listed certificates revoked or suspended (certificateHold),
        holds lifted (removeFromCRL, or no longer listed on a full CRL); every certificate of its issuer is
        marked as confirmed now by `source`. A CRL whose signature fails against a known CA, or older than
        one already applied, changes nothing."""
        now = self.now()
        now_iso = to_iso(now)
        issuer = name_to_dn(crl.issuer)
        report = CrlReport(source=source, ok=True, issuer=issuer, entries=len(crl))
        number_ext = _extension(crl.extensions, x509.CRLNumber)
        report.number = number_ext.crl_number if number_ext is not None else None
        delta = _extension(crl.extensions, x509.DeltaCRLIndicator) is not None
        cas = self.ca_certificates(issuer)
        if cas:
            report.verified = any(_crl_signed_by(crl, ca) for ca in cas)
            if not report.verified:
                report.ok = False
                report.error = "the CRL signature does not verify against the known CA certificate; not applied"
                return report
        if report.number is not None and not delta:
            newest = self._newest_crl_number(issuer)
            if newest is not None and report.number < newest:
                report.ok = False
                report.error = f"CRL number {report.number} is older than number {newest} already applied; not applied"
                return report
        next_update = crl.next_update_utc
        if next_update is not None and next_update < now:
            report.warnings.append(f"the CRL is past its nextUpdate ({to_iso(next_update)})")
        spelled = self._issuer_spelling(issuer)
        source_tag = source if source.startswith(("crl:", "demo")) else f"crl:{source}"
        revoke_rows, restore_serials = [], []
        listed: set[str] = set()
        for entry in crl:
            serial = normalize_serial(entry.serial_number)
            reason_ext = _extension(entry.extensions, x509.CRLReason)
            reason = _reason_name(reason_ext.reason) if reason_ext is not None else None
            if reason == "removeFromCRL":
                restore_serials.append(serial)
                continue
            listed.add(serial)
            status = "suspended" if reason == "certificateHold" else "revoked"
            revoked_at = to_iso(entry.revocation_date_utc)
            revoke_rows.append([status, revoked_at, reason or "unspecified", source_tag, now_iso, now_iso,
                                spelled, serial, status, status, revoked_at, reason or "unspecified"])
        conn = self.db.conn
        with self.store.transaction():
            before = conn.total_changes
            # The WHERE skips rows already so, which makes counting "newly revoked" exact.
            conn.executemany(
                "UPDATE certificates SET status = ?, revoked_at = ?, revocation_reason = ?, status_source = ?,"
                " status_checked_at = ?, updated_at = ? WHERE issuer = ? AND serial = ?"
                " AND NOT (status = 'revoked' AND ? = 'suspended')"
                " AND NOT (status = ? AND revoked_at IS ? AND revocation_reason IS ?)",
                revoke_rows,
            )
            report.revoked = conn.total_changes - before
            if not delta:
                held = [r[0] for r in self.db.execute(
                    "SELECT serial FROM certificates WHERE issuer = ? AND status = 'suspended'", [spelled]).fetchall()]
                restore_serials.extend(s for s in held if s not in listed)
            before = conn.total_changes
            conn.executemany(
                "UPDATE certificates SET status = 'valid', revoked_at = NULL, revocation_reason = NULL,"
                " status_source = ?, status_checked_at = ?, updated_at = ?"
                " WHERE issuer = ? AND serial = ? AND status = 'suspended'",
                [[source_tag, now_iso, now_iso, spelled, s] for s in restore_serials],
            )
            report.restored = conn.total_changes - before
            before = conn.total_changes
            if delta:
                conn.executemany(
                    "UPDATE certificates SET status_source = ?, status_checked_at = ? WHERE issuer = ? AND serial = ?",
                    [[source_tag, now_iso, spelled, s] for s in listed],
                )
            else:
                self.db.execute("UPDATE certificates SET status_source = ?, status_checked_at = ? WHERE issuer = ?",
                                [source_tag, now_iso, spelled])
            report.confirmed = conn.total_changes - before
            self._record_crl(crl, issuer, report, source_tag, now_iso)
        return report

    def _newest_crl_number(self, issuer: str) -> int | None:
        rows = self.db.execute("SELECT crl_number FROM crls WHERE issuer = ? AND crl_number IS NOT NULL",
                               [issuer]).fetchall()
        numbers = [int(r[0]) for r in rows if str(r[0]).isdigit()]
        return max(numbers) if numbers else None

    def _record_crl(self, crl, issuer: str, report: CrlReport, source: str, now_iso: str) -> None:
        number = str(report.number) if report.number is not None else None
        this_update = to_iso(crl.last_update_utc)
        next_update = to_iso(crl.next_update_utc) if crl.next_update_utc else None
        # A CRL number names one CRL of an issuer (RFC 5280), so the same number is the same CRL seen again.
        if number is not None:
            existing = self.db.execute("SELECT id FROM crls WHERE issuer = ? AND crl_number = ?",
                                       [issuer, number]).fetchone()
        else:
            existing = self.db.execute("SELECT id FROM crls WHERE issuer = ? AND crl_number IS NULL AND this_update = ?",
                                       [issuer, this_update]).fetchone()
        if existing:
            self.db.execute(
                "UPDATE crls SET this_update = ?, next_update = ?, entries = ?, source = ?, imported_at = ? WHERE id = ?",
                [this_update, next_update, report.entries, source, now_iso, existing[0]])
        else:
            self.db.execute(
                "INSERT INTO crls (issuer, crl_number, this_update, next_update, entries, source, imported_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [issuer, number, this_update, next_update, report.entries, source, now_iso])

    def set_status(self, cert_id: int, *, status: str, revoked_at: datetime | None, reason: str | None,
                   source: str) -> bool:
        """Record a status confirmed by `source` (e.g. an OCSP answer); True if the status changed."""
        now_iso = to_iso(self.now())
        with self.store.transaction():
            before = self.db.execute("SELECT status FROM certificates WHERE id = ?", [cert_id]).fetchone()
            self.db.execute(
                "UPDATE certificates SET status = ?, revoked_at = ?, revocation_reason = ?, status_source = ?,"
                " status_checked_at = ?, updated_at = ? WHERE id = ?",
                [status, to_iso(revoked_at) if revoked_at else None, reason, source, now_iso, now_iso, cert_id])
        return bool(before) and before[0] != status

    # -- linking a chat -------------------------------------------------------------------------------
    def _code_hash(self, code: str) -> str:
        return hmac_id(self.hd.pii_key, f"link:{code}")

    def create_link_code(self, employee_id: str) -> LinkCode:
        """A new one-time code for the holder (earlier unused codes of theirs stop working)."""
        holder = self.holder(employee_id)
        if holder is None:
            raise RegistryError(f"no holder with id {employee_id!r}")
        code = "".join(secrets.choice(LINK_ALPHABET) for _ in range(LINK_CODE_LENGTH))
        now = self.now()
        expires = now + timedelta(hours=self.hd.config.link_code_ttl_hours)
        with self.store.transaction():
            self.db.execute("DELETE FROM link_codes WHERE employee_id = ? AND used_at IS NULL", [holder.employee_id])
            self.db.execute(
                "INSERT INTO link_codes (code_hash, employee_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                [self._code_hash(code), holder.employee_id, to_iso(now), to_iso(expires)])
        username = self.hd.config.bot_username.strip().lstrip("@")
        deep_link = f"https://t.me/{username}?start={code}" if username else None
        return LinkCode(code, holder.employee_id, expires, deep_link)

    def link_locked_until(self, chat_id: str) -> datetime | None:
        """When linking opens again for a chat that entered five wrong codes within an hour (None: open)."""
        now = self.now()
        since = to_iso(now - LINK_WINDOW - LINK_LOCK)
        failures = [parse_instant(r[0]) for r in self.db.execute(
            "SELECT at FROM link_attempts WHERE chat_id = ? AND ok = 0 AND at >= ? ORDER BY at", [chat_id, since])]
        until = None
        for i in range(LINK_MAX_FAILURES - 1, len(failures)):
            if failures[i] - failures[i - LINK_MAX_FAILURES + 1] <= LINK_WINDOW:
                candidate = failures[i] + LINK_LOCK
                until = candidate if until is None or candidate > until else until
        return until if until is not None and until > now else None

    def _failures_in_window(self, chat_id: str) -> int:
        since = to_iso(self.now() - LINK_WINDOW)
        return int(self.db.execute("SELECT COUNT(*) FROM link_attempts WHERE chat_id = ? AND ok = 0 AND at > ?",
                                   [chat_id, since]).fetchone()[0])

    def redeem_link_code(self, chat_id: str, code: str) -> LinkResult:
        """`/link CODE`: link the chat to the code's holder, once; wrong codes count towards the lock."""
        locked = self.link_locked_until(chat_id)
        if locked is not None:
            return LinkResult("locked", locked_until=locked, attempts_left=0)
        now = self.now()
        now_iso = to_iso(now)
        cleaned = re.sub(r"[\s\-]", "", code).upper()
        row = self.db.execute(
            "SELECT employee_id, expires_at, used_at FROM link_codes WHERE code_hash = ?", [self._code_hash(cleaned)]
        ).fetchone() if cleaned else None
        outcome = "invalid"
        if row is not None:
            if row[2] is not None:
                outcome = "used"
            elif parse_instant(row[1]) <= now:
                outcome = "expired"
            else:
                outcome = "linked"
        if outcome != "linked":
            self.db.execute("INSERT INTO link_attempts (chat_id, ok, at) VALUES (?, 0, ?)", [chat_id, now_iso])
            locked = self.link_locked_until(chat_id)
            if locked is not None:
                return LinkResult("locked", locked_until=locked, attempts_left=0)
            return LinkResult(outcome, attempts_left=max(0, LINK_MAX_FAILURES - self._failures_in_window(chat_id)))
        employee_id = row[0]
        with self.store.transaction():
            self.db.execute("UPDATE link_codes SET used_at = ?, used_by_chat = ? WHERE code_hash = ?",
                            [now_iso, chat_id, self._code_hash(cleaned)])
            self._link(employee_id, chat_id, now_iso)
            self.db.execute("INSERT INTO link_attempts (chat_id, ok, at) VALUES (?, 1, ?)", [chat_id, now_iso])
        return LinkResult("linked", holder=self.holder(employee_id))

    def _link(self, employee_id: str, chat_id: str, now_iso: str) -> None:
        # One chat, one holder: whoever this chat spoke for before is unlinked first.
        self.db.execute("UPDATE holders SET chat_id = NULL, linked_at = NULL WHERE chat_id = ? AND employee_id != ?",
                        [chat_id, employee_id])
        self.db.execute("UPDATE holders SET chat_id = ?, linked_at = ?, unreachable_at = NULL, updated_at = ?"
                        " WHERE employee_id = ?", [chat_id, now_iso, now_iso, employee_id])

    def link_chat(self, employee_id: str, chat_id: str) -> Holder | None:
        """Link directly (staff tools, the console's --as); None if no such holder."""
        holder = self.holder(employee_id)
        if holder is None:
            return None
        with self.store.transaction():
            self._link(holder.employee_id, chat_id, to_iso(self.now()))
        return self.holder(holder.employee_id)

    def link_console(self, employee_id: str) -> str | None:
        """`helpdesk chat --as ID`: the console chat id now linked to the holder, or None if there is no such
        holder. A holder linked to a real (non-console) chat is not taken over: RegistryError."""
        holder = self.holder(employee_id)
        if holder is None:
            return None
        if holder.chat_id and not holder.chat_id.startswith("console:"):
            raise RegistryError(f"holder {holder.employee_id!r} is linked to a user's chat; the console will not "
                                "take the link over (the user can /unlink first)")
        chat_id = f"console:{holder.employee_id}"
        self.link_chat(holder.employee_id, chat_id)
        return chat_id

    def unlink(self, chat_id: str) -> Holder | None:
        """`/unlink`: the holder the chat was linked to (now unlinked), or None."""
        holder = self.holder_by_chat(chat_id)
        if holder is None:
            return None
        with self.store.transaction():
            self.db.execute("UPDATE holders SET chat_id = NULL, linked_at = NULL, updated_at = ? WHERE employee_id = ?",
                            [to_iso(self.now()), holder.employee_id])
        return holder


# -- helpers ------------------------------------------------------------------------------------------


def _unreadable(exc: Exception, line: int) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"line {line}: the file is not UTF-8 (save it as 'CSV UTF-8'); rows from here on were not read"
    return f"line {line}: the file is not valid CSV ({exc}); rows from here on were not read"


def _parse_date(column: str, value: str, start_of_day: bool = False) -> datetime:
    if not value:
        raise RegistryError(f"{column} is empty")
    try:
        return _cached_instant(value, start_of_day)
    except ValueError:
        raise RegistryError(f"{column} is not an ISO-8601 date: {value[:40]!r}") from None


@lru_cache(maxsize=8192)
def _cached_instant(value: str, start_of_day: bool) -> datetime:
    # A big export repeats the same few hundred dates: parse each once.
    return _start_of_day_or_instant(value) if start_of_day else _instant(value)


@lru_cache(maxsize=8192)
def _iso(moment: datetime) -> str:
    return to_iso(moment)


def _parse_status(status_raw: str, revoked_raw: str, reason_raw: str, not_after: datetime,
                  now: datetime) -> tuple[str | None, datetime | None, str | None]:
    """(status or None for "keep what is known", revoked_at, reason) from the optional CSV columns."""
    reason = None
    if reason_raw:
        reason = REASONS.get(re.sub(r"[\s_\-]", "", reason_raw).lower())
        if reason is None:
            raise RegistryError(f"revocation_reason is not a known reason: {reason_raw[:40]!r}")
    status = status_raw.lower() or None
    if status == "expired":
        if not_after > now:
            raise RegistryError("status is expired but not_after is in the future")
        status = "valid"  # expiry is derived from not_after; the stored status says "not revoked"
    if status is None and (revoked_raw or reason):
        status = "revoked"
    if status == "revoked" and reason == "certificateHold":
        status = "suspended"
    if status is not None and status not in STORED_STATUSES:
        raise RegistryError(f"status must be valid, revoked, suspended or expired, not {status_raw[:20]!r}")
    revoked_at = _parse_date("revoked_at", revoked_raw) if revoked_raw else None
    if status == "valid":
        return status, None, None
    if status == "suspended" and reason is None:
        reason = "certificateHold"
    return status, revoked_at, reason


def _reason_name(flag: x509.ReasonFlags) -> str:
    return REASONS.get(flag.value.lower(), flag.value)


def _extension(extensions: x509.Extensions, kind: type) -> Any:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _load_crl(data: bytes) -> x509.CertificateRevocationList | None:
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        return None


def _crl_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def describe_import(report: ImportReport) -> str:
    """One line for the operator."""
    text = (f"{report.rows} rows imported ({report.certificates_new} new, {report.certificates_updated} updated "
            f"certificates; {report.holders} holders), {len(report.errors)} bad rows")
    if report.fatal:
        text += f"; {report.fatal}"
    return text


def describe_crl(report: CrlReport) -> str:
    """One line for the operator."""
    if not report.ok:
        return f"CRL of {report.issuer or 'unknown issuer'}: {report.error}"
    verified = {True: "signature verified", False: "signature NOT verified", None: "CA unknown, signature not checked"}
    return (f"CRL of {report.issuer} number {report.number if report.number is not None else '-'}: "
            f"{report.entries} entries, {report.revoked} certificates newly revoked/suspended, "
            f"{report.restored} restored ({verified[report.verified]})")


def iter_csv_errors(report: ImportReport, limit: int = 20) -> Iterator[str]:
    for error in report.errors[:limit]:
        yield str(error)
    if len(report.errors) > limit:
        yield f"... and {len(report.errors) - limit} more bad rows"


def csv_text(rows: Iterable[dict[str, Any]], columns: Iterable[str] = CSV_REQUIRED + CSV_OPTIONAL) -> str:
    """Rows as CSV text in the import format (tests, benchmarks, the demo)."""
    out = io.StringIO()
    columns = list(columns)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return out.getvalue()
