"""Certificate inspection: what a file is (scheme, sig/env, usage), whether it is valid now, and what is wrong.

`inspect_bytes` reads one file in memory; `inspect_many` / `inspect_paths` read several, so that a CRL
among them is applied to the certificates of the same call. The result, `Inspection`, serialises to the
exact `inspect --json` object of design.md with `as_json()`.

Safety comes before parsing: a private key (by file name, PEM label or DER shape, including GPKI/NPKI
encrypted PKCS#8 that no library here can decrypt) is refused without reading its content, and a file
over `MAX_BYTES` is refused unread. Whatever the bytes, the result is an `Inspection`, never an exception.

User-facing texts (errors, findings, labels) come from knowledge/messages/certs.yaml.
"""
from __future__ import annotations

import binascii
import logging
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtensionOID, NameOID

from bot.clock import SEOUL, to_iso
from bot.config import DEFAULT_KNOWLEDGE_DIR
from bot.render import date_ko

log = logging.getLogger(__name__)

MAX_BYTES = 1_000_000  # a certificate is a few KB; anything over 1 MB is refused unread (as the console)
EXPIRING_DAYS = 30  # "expiring" finding from this many days left
EXPIRING_SOON_DAYS = 7  # a more urgent wording from here

GPKI_ARC = "1.2.410.100001."
EPKI_ARC = "1.2.410.100001.5.3.1."
# Korean accredited (NPKI / 공동인증서) CAs: KISA's arc and the CAs' own arcs.
NPKI_ARCS = ("1.2.410.200004.", "1.2.410.200005.", "1.2.410.200012.")
NPKI_ORGS = {"yessign", "signkorea", "kica", "crosscert", "tradesign", "kisa", "koscom", "ncasign",
             "korea information certificate authority inc.", "kftc"}
EPKI_CA_CNS = {"CA134040001", "CA134100031"}

# Policy OID -> usage (design.md; OIDs from gpki-facts.md section 1).
USAGE_BY_OID = {
    "1.2.410.100001.2.2.1": "personal-admin",
    "1.2.410.100001.2.2.2": "personal-public",
    "1.2.410.100001.2.1.1": "org",
    "1.2.410.100001.2.1.4": "org",
    "1.2.410.100001.2.1.2": "server",
    "1.2.410.100001.2.1.5": "server",
    "1.2.410.100001.2.1.3": "special",
    "1.2.410.100001.2.1.6": "special",
    "1.2.410.100001.5.3.1.3": "epki-personal",
    "1.2.410.100001.5.3.1.1": "epki-org",
    "1.2.410.100001.5.3.1.7": "epki-server",
    "1.2.410.100001.5.3.1.9": "epki-server",
    "1.2.410.100001.5.3.1.5": "epki-special",
}
USAGES = ("personal-admin", "personal-public", "org", "server", "special", "epki-personal", "epki-org",
          "epki-server", "epki-special", "npki", "unknown")
PERSONAL_USAGES = {"personal-admin", "personal-public", "epki-personal"}
SERVER_USAGES = {"server", "epki-server"}
ORG_USAGES = {"org", "special", "epki-org", "epki-special"}
STATUSES = ("valid", "expired", "not_yet_valid", "revoked", "suspended")

# What each finding code means for the user: severity and the KB entry that explains it.
FINDINGS: dict[str, tuple[str, str]] = {
    "cert.expired": ("error", "validity.expired"),
    "cert.expiring": ("warning", "validity.check-expiry"),
    "cert.not_yet_valid": ("warning", "validity.check-expiry"),
    "cert.revoked": ("error", "login.revoked-message"),
    "cert.suspended": ("error", "suspend.restore"),
    "cert.env_not_sig": ("warning", "kind.sig-vs-env"),
    "cert.sig_not_env": ("warning", "kind.sig-vs-env"),
    "cert.kind_from_name": ("info", "kind.sig-vs-env"),
    "cert.name_kind_mismatch": ("warning", "login.key-pair-mismatch"),
    "cert.public_not_admin": ("warning", "kind.public-institution"),
    "cert.admin_not_public": ("warning", "kind.public-institution"),
    "cert.org_not_personal": ("warning", "kind.personal-vs-org"),
    "cert.server_not_personal": ("warning", "kind.server"),
    "cert.usage_mismatch": ("warning", "login.policy-not-allowed"),
    "cert.unknown_policy": ("info", "login.policy-not-allowed"),
    "cert.npki": ("error", "scheme.gpki-vs-npki"),
    "cert.epki_not_gpki": ("info", "scheme.gpki-vs-epki"),
    "cert.gpki_not_epki": ("info", "scheme.gpki-vs-epki"),
    "cert.unknown_issuer": ("warning", "login.path-error"),
    "cert.ca": ("info", "login.path-error"),
    "cert.chain": ("info", "kind.files"),
    "cert.extensions_unreadable": ("warning", "login.path-error"),
    "crl.info": ("info", "login.revoked-message"),
    "crl.stale": ("warning", "login.revoked-message"),
}

# x509.ReasonFlags value -> message key suffix.
_REASON_KEYS = {
    "unspecified": "unspecified", "keyCompromise": "key_compromise", "cACompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed", "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation", "certificateHold": "certificate_hold",
    "removeFromCRL": "remove_from_crl", "privilegeWithdrawn": "privilege_withdrawn", "aACompromise": "aa_compromise",
}

_KEY_NAME = re.compile(r"\.(key|pfx|p12|p8|pk8|pvk|ppk|jks|keystore)$", re.IGNORECASE)
_PEM_PRIVATE = re.compile(rb"-----BEGIN [^-\r\n]{0,40}PRIVATE KEY[^-\r\n]{0,20}-----")
_PEM_MARKER = re.compile(rb"-----(BEGIN|END) ([A-Z0-9 #]{1,40})-----")
_KIND_HINT = re.compile(r"[_\-.](sig|env)(?:\.[^.]*)?$", re.IGNORECASE)


# -- results ----------------------------------------------------------------------------------------

@dataclass
class Finding:
    """One thing worth telling the user about a file."""

    code: str
    severity: str  # info | warning | error
    message: str  # short Korean sentence (plain text)
    kb_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "kb_id": self.kb_id}


@dataclass
class CrlInfo:
    """What a CRL says: its issuer, number, dates and entries (serial hex -> (revoked_at, reason))."""

    issuer: str
    number: int | None
    this_update: datetime | None
    next_update: datetime | None
    entries: dict[str, tuple[datetime, str | None]]


@dataclass
class Inspection:
    """The result of inspecting one file. `as_json()` is the `inspect --json` object of design.md.

    Fields after `findings` are extras for callers in Python (the registry import, the chat feature);
    they are not part of the JSON contract.
    """

    file: str
    ok: bool
    error: str | None = None
    scheme: str = "other"
    kind: str = "unknown"
    usage: str = "unknown"
    policy_oid: str | None = None
    subject: str = ""
    issuer: str = ""
    serial: str = ""
    not_before: str | None = None
    not_after: str | None = None
    days_left: int | None = None
    status: str | None = None
    findings: list[Finding] = field(default_factory=list)
    # -- extras
    error_code: str | None = None  # e.g. "private_key", "too_large" (stable, for code and tests)
    is_crl: bool = False
    is_ca: bool = False
    chain_length: int = 0
    not_before_at: datetime | None = None
    not_after_at: datetime | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None  # x509 reason name, e.g. "keyCompromise"
    status_source: str | None = None  # "crl" (a CRL of the same call) or "registry"
    crl_url: str | None = None
    ocsp_url: str | None = None
    crl: CrlInfo | None = None
    crl_x509: x509.CertificateRevocationList | None = field(default=None, repr=False)
    certificate: x509.Certificate | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "ok": self.ok,
            "error": self.error,
            "scheme": self.scheme,
            "kind": self.kind,
            "usage": self.usage,
            "policy_oid": self.policy_oid,
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "days_left": self.days_left,
            "status": self.status,
            "findings": [f.as_json() for f in self.findings],
        }

    def finding(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]


@dataclass(frozen=True)
class Required:
    """What the target system needs; the sig/env and 행정기관/공공 findings fire against it.

    `None` in a field means "anything". The default is a GPKI 행정기관 개인용 signing login.
    """

    scheme: str | None = "GPKI"
    kind: str | None = "sig"
    usage: str | None = "personal-admin"

    @classmethod
    def of(cls, value: "Required | Mapping[str, Any] | None") -> "Required":
        if value is None:
            return DEFAULT_REQUIRED
        if isinstance(value, Required):
            return value
        return cls(**{k: value[k] for k in ("scheme", "kind", "usage") if k in value})


DEFAULT_REQUIRED = Required()

# (issuer RFC 4514, serial hex) -> (status, revoked_at, reason); status "revoked" | "suspended" | "valid"
# (a record with .status/.revoked_at/.revocation_reason, like bot.registry.CertificateRecord, also does)
RevocationLookup = Callable[[str, str], Any]


class CrlIndex:
    """Revocations known from CRLs, by (issuer, serial hex): what `crl_index=` of `inspect_bytes` takes."""

    def __init__(self, crls: Iterable[CrlInfo] = ()) -> None:
        self._entries: dict[tuple[str, str], tuple[datetime, str | None]] = {}
        self.crls: list[CrlInfo] = []
        for crl in crls:
            self.add(crl)

    def add(self, crl: CrlInfo) -> None:
        self.crls.append(crl)
        for serial, entry in crl.entries.items():
            self._entries[(crl.issuer.casefold(), serial)] = entry

    def lookup(self, issuer: str, serial: str) -> tuple[datetime, str | None] | None:
        return self._entries.get((issuer.casefold(), serial))

    def __len__(self) -> int:
        return len(self._entries)


# -- messages ---------------------------------------------------------------------------------------

_renderer = None


def _msg(key: str, **context: Any) -> str:
    """A plain-text message from knowledge/messages/certs.yaml (the bundled knowledge directory)."""
    return _cached_msg(key, tuple(sorted(context.items())))


@lru_cache(maxsize=8192)
def _cached_msg(key: str, context: tuple[tuple[str, Any], ...]) -> str:
    # Bulk inspection repeats the same few messages with the same dates: render each once.
    global _renderer
    if _renderer is None:
        from bot.render import Renderer

        _renderer = Renderer(DEFAULT_KNOWLEDGE_DIR)
    from bot.render import to_plain

    return to_plain(_renderer.message(f"certs.{key}", **dict(context)))


def label(group: str, value: str) -> str:
    """The Korean label of a scheme / usage / kind / status / reason value (certs.<group>.<value>)."""
    return _msg(f"{group}.{value}")


def _finding(code: str, message_key: str | None = None, **context: Any) -> Finding:
    severity, kb_id = FINDINGS[code]
    return Finding(code, severity, _msg(f"finding.{message_key or code}", **context), kb_id)


def _failure(filename: str, code: str, **context: Any) -> Inspection:
    return Inspection(file=filename, ok=False, error=_msg(f"error.{code}", **context), error_code=code)


# -- a tiny DER reader: shapes only, never content --------------------------------------------------

class _DerError(ValueError):
    pass


@dataclass
class _Tlv:
    tag: int
    start: int  # offset of the contents
    end: int  # offset after the contents (for indefinite lengths: after the end-of-contents octets)
    content_end: int  # offset after the last content byte

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)


def _read_tlv(data: bytes, pos: int, limit: int, depth: int = 0) -> _Tlv:
    if depth > 16:
        raise _DerError("too deep")
    if pos + 2 > limit:
        raise _DerError("short")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise _DerError("high tag")  # not used by any structure we look for
    length = data[pos + 1]
    pos += 2
    if length == 0x80:  # BER indefinite length (some PKCS#12 writers): walk the children to the 00 00
        if not tag & 0x20:
            raise _DerError("indefinite primitive")
        child = pos
        while True:
            if child + 2 > limit:
                raise _DerError("unterminated")
            if data[child] == 0 and data[child + 1] == 0:
                return _Tlv(tag, pos, child + 2, child)
            child = _read_tlv(data, child, limit, depth + 1).end
    if length & 0x80:
        count = length & 0x7F
        if count > 4 or pos + count > limit:
            raise _DerError("bad length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > limit:
        raise _DerError("truncated")
    return _Tlv(tag, pos, pos + length, pos + length)


def _children(data: bytes, tlv: _Tlv, most: int = 12) -> list[_Tlv]:
    out: list[_Tlv] = []
    pos = tlv.start
    while pos < tlv.content_end and len(out) < most:
        child = _read_tlv(data, pos, tlv.content_end)
        out.append(child)
        pos = child.end
    return out


def _small_int(data: bytes, tlv: _Tlv) -> int | None:
    if tlv.tag != 0x02 or not 0 < tlv.content_end - tlv.start <= 2:
        return None
    return int.from_bytes(data[tlv.start:tlv.content_end], "big", signed=True)


def _oid_starts(data: bytes, tlv: _Tlv) -> bytes:
    return data[tlv.start:tlv.content_end] if tlv.tag == 0x06 else b""


_OID_PKCS7_DATA = bytes.fromhex("2a864886f70d010701")
_OID_PKCS7_SIGNED = bytes.fromhex("2a864886f70d010702")


def _der_is_private_key(data: bytes) -> bool:
    """Whether DER bytes have the shape of a private key container (checked by structure, not by loading).

    PKCS#8 PrivateKeyInfo `SEQ{INT 0|1, SEQ{OID..}, OCTET STRING, ..}`; EncryptedPrivateKeyInfo
    `SEQ{SEQ{OID..}, OCTET STRING}` (GPKI/NPKI SEED-encrypted keys included); PKCS#1 RSA / DSA
    `SEQ{INT 0, INT, INT, ...}` (6+ integers); SEC1 EC `SEQ{INT 1, OCTET STRING, ..}`;
    PKCS#12 `SEQ{INT 3, SEQ{OID pkcs7-data|signedData, ..}, ..}`.
    """
    try:
        top = _read_tlv(data, 0, len(data))
        if top.tag != 0x30:
            return False
        kids = _children(data, top)
    except _DerError:
        return False
    if len(kids) < 2:
        return False
    first, second = kids[0], kids[1]
    version = _small_int(data, first)
    if version is not None:
        if version in (0, 1) and second.tag == 0x30 and len(kids) >= 3 and kids[2].tag == 0x04:
            try:
                algo = _children(data, second, 2)
            except _DerError:
                return False
            return bool(algo) and algo[0].tag == 0x06  # PKCS#8
        if version == 1 and second.tag == 0x04:
            return True  # SEC1 EC private key
        if version == 0 and len(kids) >= 6 and all(k.tag == 0x02 for k in kids[:6]):
            return True  # PKCS#1 RSA (9 integers) or OpenSSL DSA (6 integers)
        if version == 3 and second.tag == 0x30:
            try:
                content = _children(data, second, 2)
            except _DerError:
                return False
            return bool(content) and _oid_starts(data, content[0]) in (_OID_PKCS7_DATA, _OID_PKCS7_SIGNED)
        return False
    if first.tag == 0x30 and second.tag == 0x04 and len(kids) == 2:
        try:
            algo = _children(data, first, 2)
        except _DerError:
            return False
        return bool(algo) and algo[0].tag == 0x06  # EncryptedPrivateKeyInfo
    return False


def _der_truncated(data: bytes) -> bool:
    """A SEQUENCE whose declared length runs past the end of the data."""
    if len(data) < 2 or data[0] != 0x30:
        return False
    try:
        _read_tlv(data, 0, len(data))
    except _DerError as exc:
        return str(exc) in ("truncated", "unterminated")
    return False


# -- reading: bytes -> certificates or a CRL ---------------------------------------------------------

@dataclass
class _Parsed:
    filename: str
    certs: list[x509.Certificate] = field(default_factory=list)
    crl: x509.CertificateRevocationList | None = None


def _pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """(label, DER) of each BEGIN/END pair, in one linear pass (a flood of BEGIN lines cannot make it slow)."""
    blocks = []
    open_label, open_end = None, 0
    for marker in _PEM_MARKER.finditer(data):
        word, name = marker.group(1), marker.group(2)
        if word == b"BEGIN":
            open_label, open_end = name, marker.end()
        elif open_label == name:
            body = b"\n".join(line for line in data[open_end:marker.start()].splitlines() if b":" not in line)
            try:
                der = binascii.a2b_base64(body)
            except (binascii.Error, ValueError):
                der = b""
            blocks.append((name.decode("ascii"), der))
            open_label = None
    return blocks


def _utf16_text(data: bytes) -> str | None:
    """The text of a UTF-16 file (with BOM, or ASCII-ish with every other byte zero), else None."""
    encoding = None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    elif len(data) >= 8 and data[1:64:2].count(0) == len(data[1:64:2]) and 0 not in data[0:64:2]:
        encoding = "utf-16-le"
    if encoding is None:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _file_type(data: bytes) -> str | None:
    """A recognised non-certificate file type (message key suffix), or None."""
    head = data[:8]
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")) or data[4:12] in (b"ftypheic", b"ftypavif"):
        return "image"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")):
        return "archive"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "office"
    return None


def _read(filename: str, data: bytes) -> _Parsed | Inspection:
    """Refusals first (key, size, empty), then PEM or DER certificates / CRL; an Inspection on failure."""
    if _KEY_NAME.search(filename or ""):
        return _failure(filename, "private_key")
    if len(data) > MAX_BYTES:
        return _failure(filename, "too_large")
    if not data.strip():
        return _failure(filename, "empty")
    utf16 = _utf16_text(data)
    if utf16 is not None:
        if _PEM_PRIVATE.search(utf16.encode("ascii", "ignore")):
            return _failure(filename, "private_key")
        return _failure(filename, "not_certificate", what=label("filetype", "utf16"))
    if _PEM_PRIVATE.search(data):
        return _failure(filename, "private_key")
    if _der_is_private_key(data):
        return _failure(filename, "private_key")
    if b"-----BEGIN " in data:
        blocks = _pem_blocks(data)
        for _, der in blocks:
            if _der_is_private_key(der):
                return _failure(filename, "private_key")
        return _read_pem(filename, data, blocks)
    kind = _file_type(data)
    if kind is not None:
        return _failure(filename, "not_certificate", what=label("filetype", kind))
    if data[0] != 0x30:
        if _looks_like_text(data):
            return _failure(filename, "not_certificate", what=label("filetype", "text"))
        return _failure(filename, "unreadable")
    return _read_der(filename, data)


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # only a character cut at the 4 KB mark


def _read_der(filename: str, data: bytes) -> _Parsed | Inspection:
    try:
        return _Parsed(filename, certs=[x509.load_der_x509_certificate(data)])
    except ValueError:
        pass
    try:  # a certificate followed by padding (some export tools): read the first DER object alone
        end = _read_tlv(data, 0, len(data)).end
        if end < len(data):
            return _Parsed(filename, certs=[x509.load_der_x509_certificate(data[:end])])
    except (_DerError, ValueError):
        pass
    try:
        return _Parsed(filename, crl=x509.load_der_x509_crl(data))
    except ValueError:
        pass
    try:
        certs = pkcs7.load_der_pkcs7_certificates(data)
        if certs:
            return _Parsed(filename, certs=list(certs))
    except (ValueError, TypeError):
        pass
    except Exception:  # unsupported PKCS#7 content raises library-specific errors
        log.debug("pkcs7 failed for %s", filename, exc_info=True)
    try:
        x509.load_der_x509_csr(data)
        return _failure(filename, "csr")
    except ValueError:
        pass
    if _looks_like_text(data):  # a text file that happens to start with "0"
        return _failure(filename, "not_certificate", what=label("filetype", "text"))
    return _failure(filename, "truncated" if _der_truncated(data) else "unreadable")


def _read_pem(filename: str, data: bytes, blocks: list[tuple[str, bytes]]) -> _Parsed | Inspection:
    if not blocks:
        return _failure(filename, "truncated")
    certs: list[x509.Certificate] = []
    crl = None
    broken = 0
    labels = set()
    for name, der in blocks:
        labels.add(name)
        try:
            if name in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
                if name == "TRUSTED CERTIFICATE":  # OpenSSL appends trust settings after the certificate
                    der = der[:_read_tlv(der, 0, len(der)).end]
                certs.append(x509.load_der_x509_certificate(der))
            elif name == "X509 CRL" and crl is None:
                crl = x509.load_der_x509_crl(der)
            elif name in ("PKCS7", "CMS"):
                certs.extend(pkcs7.load_der_pkcs7_certificates(der))
        except _DerError:
            broken += 1
        except ValueError:
            broken += 1
        except Exception:
            log.debug("PEM block %s of %s failed", name, filename, exc_info=True)
            broken += 1
    if certs:
        return _Parsed(filename, certs=certs)
    if crl is not None:
        return _Parsed(filename, crl=crl)
    if broken:
        return _failure(filename, "unreadable")
    if labels & {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}:
        return _failure(filename, "csr")
    if labels & {"PUBLIC KEY", "RSA PUBLIC KEY"}:
        return _failure(filename, "public_key")
    return _failure(filename, "no_certificate")


# -- evaluating: certificate -> Inspection ----------------------------------------------------------

def serial_hex(serial: int) -> str:
    """Uppercase hex, even length, as X.509 tools print it (a minus sign for the odd negative serial)."""
    text = f"{abs(serial):X}"
    if len(text) % 2:
        text = "0" + text
    return ("-" if serial < 0 else "") + text


def _name(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except Exception:  # a malformed attribute value
        return ""


def _attr(name: x509.Name, oid) -> list[str]:
    try:
        return [str(a.value) for a in name.get_attributes_for_oid(oid)]
    except Exception:
        return []


def _days_left(not_after: datetime, now: datetime) -> int:
    """Whole calendar days (Asia/Seoul) from today to the expiry day, as the registry counts them;
    negative once expired (on the expiry day itself, after the expiry time, -1)."""
    days = (not_after.astimezone(SEOUL).date() - now.astimezone(SEOUL).date()).days
    return min(days, -1) if now > not_after else days


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca)
    except Exception:
        return False


def _end_entity(certs: list[x509.Certificate]) -> x509.Certificate:
    """The certificate a chain is about: not a CA, and not the issuer of another one in the file."""
    if len(certs) == 1:
        return certs[0]
    leaves = [c for c in certs if not _is_ca(c)] or certs
    issuers = {_name(c.issuer) for c in certs}
    for cert in leaves:
        if _name(cert.subject) not in issuers or _name(cert.subject) == _name(cert.issuer):
            return cert
    return leaves[0]


def _scheme(issuer: x509.Name, policy_oids: list[str]) -> str:
    for oid in policy_oids:
        if oid.startswith(EPKI_ARC):
            return "EPKI"
    for oid in policy_oids:
        if oid.startswith(GPKI_ARC):
            return "GPKI"
        if oid.startswith(NPKI_ARCS):
            return "NPKI"
    orgs = {o.strip().lower() for o in _attr(issuer, NameOID.ORGANIZATION_NAME)}
    if "government of korea" in orgs:
        units = {u.strip().upper() for u in _attr(issuer, NameOID.ORGANIZATIONAL_UNIT_NAME)}
        cns = set(_attr(issuer, NameOID.COMMON_NAME))
        return "EPKI" if "EPKI" in units or cns & EPKI_CA_CNS else "GPKI"
    if orgs & NPKI_ORGS:
        return "NPKI"
    return "other"


def _kind(key_usage: x509.KeyUsage | None, filename: str) -> tuple[str, bool]:
    """(sig | env | unknown, whether it came from the file name)."""
    if key_usage is not None:
        if key_usage.digital_signature or key_usage.content_commitment:
            return "sig", False
        if key_usage.key_encipherment or key_usage.data_encipherment or key_usage.key_agreement:
            return "env", False
        return "unknown", False
    hint = _KIND_HINT.search(filename or "")
    return (hint.group(1).lower(), True) if hint else ("unknown", False)


def _date(moment: datetime) -> str:
    return date_ko(moment.astimezone(SEOUL))


def _reason_label(reason: str | None) -> str:
    return label("reason", _REASON_KEYS.get(reason or "unspecified", "unspecified"))


def _extensions(cert: x509.Certificate):
    try:
        return cert.extensions, True
    except Exception:  # duplicate or malformed extensions: report what the rest says
        return x509.Extensions([]), False


def _evaluate_cert(parsed: _Parsed, now: datetime, crl_index: CrlIndex | None, lookup: RevocationLookup | None,
                   required: Required) -> Inspection:
    filename = parsed.filename
    cert = _end_entity(parsed.certs)
    extensions, extensions_ok = _extensions(cert)

    def ext(oid):
        try:
            return extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            return None

    policies = ext(ExtensionOID.CERTIFICATE_POLICIES)
    policy_oids = [p.policy_identifier.dotted_string for p in policies] if policies else []
    known = [o for o in policy_oids if o in USAGE_BY_OID]
    policy_oid = known[0] if known else (policy_oids[0] if policy_oids else None)
    scheme = _scheme(cert.issuer, policy_oids)
    usage = USAGE_BY_OID.get(policy_oid or "", "unknown")
    if scheme == "NPKI":
        usage = "npki"
    key_usage = ext(ExtensionOID.KEY_USAGE)
    kind, kind_from_name = _kind(key_usage, filename)
    is_ca = _is_ca(cert)
    if is_ca:
        kind, kind_from_name, usage = "unknown", False, "unknown"

    not_before = cert.not_valid_before_utc.astimezone(SEOUL)
    not_after = cert.not_valid_after_utc.astimezone(SEOUL)
    issuer = _name(cert.issuer)
    serial = serial_hex(cert.serial_number)
    result = Inspection(
        file=filename, ok=True, scheme=scheme, kind=kind, usage=usage, policy_oid=policy_oid,
        subject=_name(cert.subject), issuer=issuer, serial=serial,
        not_before=to_iso(not_before), not_after=to_iso(not_after), days_left=_days_left(not_after, now),
        is_ca=is_ca, chain_length=len(parsed.certs), not_before_at=not_before, not_after_at=not_after,
        certificate=cert,
    )
    result.crl_url, result.ocsp_url = _status_urls(ext)

    # Status, in the registry's order: revoked > expired > not_yet_valid > suspended > valid.
    # Revocation comes from a CRL of this call first, else from the registry.
    hit = crl_index.lookup(issuer, serial) if crl_index is not None else None
    if hit is not None:
        result.revoked_at, result.revocation_reason = hit
        result.status_source = "crl"
    elif lookup is not None:
        known = _safe_lookup(lookup, issuer, serial)
        if known is not None and known[0] in ("revoked", "suspended"):
            result.revoked_at = _as_datetime(known[1])
            result.revocation_reason = known[2] or ("certificateHold" if known[0] == "suspended" else None)
            result.status_source = "registry"
    findings = result.findings
    held = result.status_source is not None and result.revocation_reason == "certificateHold"
    revoked = result.status_source is not None and not held
    if revoked:
        status = "revoked"
    elif now > not_after:
        status = "expired"
    elif now < not_before:
        status = "not_yet_valid"
    else:
        status = "suspended" if held else "valid"
    when = _date(result.revoked_at) if result.revoked_at else "-"
    if revoked:
        findings.append(_finding("cert.revoked", date=when, reason=_reason_label(result.revocation_reason)))
    elif held:
        findings.append(_finding("cert.suspended", date=when))
    result.status = status

    if now > not_after:
        findings.append(_finding("cert.expired", date=_date(not_after), days=-result.days_left))
    elif now < not_before:
        findings.append(_finding("cert.not_yet_valid", date=_date(not_before)))
    elif result.days_left <= EXPIRING_DAYS and result.status_source is None:
        key = "expiring_soon" if result.days_left <= EXPIRING_SOON_DAYS else "expiring"
        findings.append(_finding("cert.expiring", f"cert.{key}", days=result.days_left, date=_date(not_after)))

    findings.extend(_fit_findings(result, required, policy_oids))
    if kind_from_name:
        findings.append(_finding("cert.kind_from_name", kind=label("kind", kind)))
    elif kind in ("sig", "env"):
        hint = _KIND_HINT.search(filename or "")
        if hint and hint.group(1).lower() != kind:
            findings.append(_finding("cert.name_kind_mismatch", hint=hint.group(1).lower(), kind=label("kind", kind)))
    if is_ca:
        findings.append(_finding("cert.ca"))
    if len(parsed.certs) > 1:
        findings.append(_finding("cert.chain", count=len(parsed.certs)))
    if not extensions_ok:
        findings.append(_finding("cert.extensions_unreadable"))
    return result


def _fit_findings(result: Inspection, required: Required, policy_oids: list[str]) -> list[Finding]:
    """Does the certificate fit what the target system needs (scheme, kind, usage)?"""
    out: list[Finding] = []
    scheme, usage, kind = result.scheme, result.usage, result.kind
    if scheme == "NPKI":
        if required.scheme in ("GPKI", "EPKI"):
            out.append(_finding("cert.npki"))
    elif scheme == "other":
        if not result.is_ca:
            out.append(_finding("cert.unknown_issuer", issuer=result.issuer or "-"))
    elif required.scheme == "GPKI" and scheme == "EPKI":
        out.append(_finding("cert.epki_not_gpki"))
    elif required.scheme == "EPKI" and scheme == "GPKI":
        out.append(_finding("cert.gpki_not_epki"))
    elif not result.is_ca:
        out.extend(_usage_findings(usage, required))
    if scheme in ("GPKI", "EPKI") and not result.is_ca and usage == "unknown":
        out.append(_finding("cert.unknown_policy", oid=result.policy_oid or "-"))
    if not result.is_ca and required.kind == "sig" and kind == "env":
        out.append(_finding("cert.env_not_sig"))
    elif not result.is_ca and required.kind == "env" and kind == "sig":
        out.append(_finding("cert.sig_not_env"))
    return out


def _usage_findings(usage: str, required: Required) -> list[Finding]:
    want = required.usage
    if not want or usage == "unknown" or usage == want:
        return []
    if {usage, want} == {"personal-admin", "personal-public"}:
        code = "cert.public_not_admin" if usage == "personal-public" else "cert.admin_not_public"
        return [_finding(code)]
    names = dict(have=label("usage", usage), want=label("usage", want))
    if want in PERSONAL_USAGES and usage in SERVER_USAGES:
        return [_finding("cert.server_not_personal", **names)]
    if want in PERSONAL_USAGES and usage in ORG_USAGES:
        return [_finding("cert.org_not_personal", **names)]
    return [_finding("cert.usage_mismatch", **names)]


def _status_urls(ext) -> tuple[str | None, str | None]:
    crl_url = ocsp_url = None
    points = ext(ExtensionOID.CRL_DISTRIBUTION_POINTS)
    for point in points or []:
        for name in point.full_name or []:
            if isinstance(name, x509.UniformResourceIdentifier):
                crl_url = crl_url or name.value
    aia = ext(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    for desc in aia or []:
        if desc.access_method.dotted_string == "1.3.6.1.5.5.7.48.1" and isinstance(
                desc.access_location, x509.UniformResourceIdentifier):
            ocsp_url = ocsp_url or desc.access_location.value
    return crl_url, ocsp_url


def _safe_lookup(lookup: RevocationLookup, issuer: str, serial: str) -> tuple[str, Any, str | None] | None:
    """(status, revoked_at, reason) from the lookup, which may return that tuple or a record with
    `status`, `revoked_at` and `revocation_reason` attributes (`bot.registry.CertificateRecord`)."""
    try:
        found = lookup(issuer, serial)
    except Exception:  # the registry is advisory here; inspection still answers
        log.warning("revocation lookup failed for %s/%s", issuer, serial, exc_info=True)
        return None
    if found is None:
        return None
    if isinstance(found, (tuple, list)):
        padded = list(found) + [None, None, None]
        return str(padded[0]), padded[1], padded[2]
    status = getattr(found, "status", None)
    if status is None:
        return None
    return str(status), getattr(found, "revoked_at", None), getattr(found, "revocation_reason", None)


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        from bot.clock import parse_instant

        return parse_instant(str(value))
    except ValueError:
        return None


def crl_info(crl: x509.CertificateRevocationList) -> CrlInfo:
    """The entries of a CRL, keyed by serial hex; reasons as x509 names (e.g. "certificateHold")."""
    entries: dict[str, tuple[datetime, str | None]] = {}
    for revoked in crl:
        reason = None
        try:
            reason = revoked.extensions.get_extension_for_oid(x509.oid.CRLEntryExtensionOID.CRL_REASON).value.reason.value
        except x509.ExtensionNotFound:
            pass
        except Exception:
            log.debug("unreadable CRL entry extensions", exc_info=True)
        entries[serial_hex(revoked.serial_number)] = (revoked.revocation_date_utc.astimezone(SEOUL), reason)
    number = None
    try:
        number = crl.extensions.get_extension_for_oid(ExtensionOID.CRL_NUMBER).value.crl_number
    except Exception:
        pass
    next_update = crl.next_update_utc
    return CrlInfo(
        issuer=_name(crl.issuer), number=number,
        this_update=crl.last_update_utc.astimezone(SEOUL),
        next_update=next_update.astimezone(SEOUL) if next_update else None,
        entries=entries,
    )


def _evaluate_crl(filename: str, info: CrlInfo, now: datetime) -> Inspection:
    result = Inspection(file=filename, ok=True, issuer=info.issuer, is_crl=True, crl=info, status="valid",
                        not_before=to_iso(info.this_update) if info.this_update else None,
                        not_before_at=info.this_update, not_after_at=info.next_update)
    holds = sum(1 for _, reason in info.entries.values() if reason == "certificateHold")
    result.findings.append(_finding("crl.info", issuer=info.issuer or "-", count=len(info.entries), holds=holds,
                                    number=info.number if info.number is not None else "-"))
    if info.next_update is not None:
        result.not_after = to_iso(info.next_update)
        result.days_left = _days_left(info.next_update, now)
        if now > info.next_update:
            result.status = "expired"
            result.findings.append(_finding("crl.stale", date=_date(info.next_update)))
    return result


# -- the public entry points -------------------------------------------------------------------------

def _guard(filename: str, work: Callable[[], Inspection]) -> Inspection:
    try:
        # Odd but readable certificates (negative serials, bad string types) make cryptography warn;
        # the inspection still answers, so the warnings are noise here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return work()
    except Exception:  # whatever the bytes, the caller gets an answer, never a traceback
        log.debug("inspection of %s failed", filename, exc_info=True)
        return _failure(filename, "unreadable")


def _evaluate(parsed: _Parsed, now: datetime, crl_index: CrlIndex | None, lookup: RevocationLookup | None,
              required: Required) -> Inspection:
    if parsed.crl is not None:
        result = _evaluate_crl(parsed.filename, crl_info(parsed.crl), now)
        result.crl_x509 = parsed.crl
        return result
    return _evaluate_cert(parsed, now, crl_index, lookup, required)


def inspect_bytes(filename: str, data: bytes, *, now: datetime, crl_index: CrlIndex | None = None,
                  revocation_lookup: RevocationLookup | None = None,
                  required: Required | Mapping[str, Any] | None = None) -> Inspection:
    """Inspect one file held in memory (DER or PEM certificate, chain, PKCS#7, or CRL).

    `now`: an aware datetime (from `hd.now()`). `crl_index`: revocations from CRLs read earlier (see
    `inspect_many`). `revocation_lookup(issuer_rfc4514, serial_hex)` returns `(status, revoked_at, reason)` or
    None, status "revoked" / "suspended" / "valid". `required`: what the target system needs
    (`Required` or a dict with scheme/kind/usage); default a GPKI 행정기관 개인용 signing login.
    """
    required = Required.of(required)

    def work() -> Inspection:
        parsed = _read(filename, data)
        if isinstance(parsed, Inspection):
            return parsed
        return _evaluate(parsed, now, crl_index, revocation_lookup, required)

    return _guard(filename, work)


def inspect_many(files: Iterable[tuple[str, bytes]], *, now: datetime, crl_index: CrlIndex | None = None,
                 revocation_lookup: RevocationLookup | None = None,
                 required: Required | Mapping[str, Any] | None = None) -> list[Inspection]:
    """Inspect several files; the CRLs among them are applied to the certificates among them. Same order."""
    required = Required.of(required)
    index = CrlIndex(crl_index.crls if crl_index is not None else ())
    read: list[_Parsed | Inspection] = []
    for filename, data in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                read.append(_read(filename, data))
        except Exception:  # as in _guard: never a traceback
            log.debug("reading %s failed", filename, exc_info=True)
            read.append(_failure(filename, "unreadable"))
    for item in read:
        if isinstance(item, _Parsed) and item.crl is not None:
            try:
                index.add(crl_info(item.crl))
            except Exception:
                log.debug("unreadable CRL %s", item.filename, exc_info=True)
    results = []
    for item in read:
        if isinstance(item, Inspection):
            results.append(item)
        else:
            results.append(_guard(item.filename, lambda: _evaluate(item, now, index, revocation_lookup, required)))
    return results


def read_path(path: str | Path) -> tuple[bytes | None, Inspection | None]:
    """The bytes of a file for inspection, or the failure (missing, a directory, too large, a key by name)."""
    path = Path(path)
    filename = str(path)
    if _KEY_NAME.search(path.name):
        return None, _failure(filename, "private_key")  # never even opened
    try:
        if path.is_dir():
            return None, _failure(filename, "directory")
        if not path.exists():
            return None, _failure(filename, "missing")
        if not path.is_file():
            return None, _failure(filename, "unreadable")
        if path.stat().st_size > MAX_BYTES:
            return None, _failure(filename, "too_large")
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except PermissionError:
        return None, _failure(filename, "no_access")
    except OSError:
        return None, _failure(filename, "unreadable")
    return data, None


def inspect_path(path: str | Path, *, now: datetime, crl_index: CrlIndex | None = None,
                 revocation_lookup: RevocationLookup | None = None,
                 required: Required | Mapping[str, Any] | None = None) -> Inspection:
    """Inspect one file on disk; a directory or a missing file gives ok=false with a clear error."""
    data, failure = read_path(path)
    if failure is not None:
        return failure
    return inspect_bytes(str(path), data, now=now, crl_index=crl_index, revocation_lookup=revocation_lookup,
                         required=required)


def inspect_paths(paths: Iterable[str | Path], *, now: datetime, crl_index: CrlIndex | None = None,
                  revocation_lookup: RevocationLookup | None = None,
                  required: Required | Mapping[str, Any] | None = None) -> list[Inspection]:
    """Inspect files on disk together (CRLs among them apply to the certificates among them). Same order."""
    paths = list(paths)
    loaded: list[tuple[str, bytes | None, Inspection | None]] = []
    for path in paths:
        data, failure = read_path(path)
        loaded.append((str(path), data, failure))
    readable = [(name, data) for name, data, failure in loaded if failure is None]
    inspected = iter(inspect_many(readable, now=now, crl_index=crl_index, revocation_lookup=revocation_lookup,
                                  required=required))
    return [failure if failure is not None else next(inspected) for _, _, failure in loaded]
