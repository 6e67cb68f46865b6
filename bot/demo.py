"""`helpdesk demo seed`: a demo agency whose holders have certificates in every state, made at seed time.

Everything is fake: the CAs are made here (`bot.certgen`), names, phone numbers (010-0000-XXXX) and
주민등록번호 are invented (and hashed like real ones). Dates are relative to `hd.now()`, so the states hold
whenever the seed runs; seeding again gives the same rows (fixed serials, a CA key derived from a constant).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from bot import certgen
from bot.registry import CertificateRecord, CrlReport, LinkCode, Registry, name_to_dn, normalize_serial, usage_for

if TYPE_CHECKING:
    from bot.helpdesk import Helpdesk

AGENCY = "데모시"
DEPARTMENT = "행정안전과"
AGENCY_CODE = "1234567"
SCHOOL = "데모초등학교"
SCHOOL_CODE = "7654321"
GPKI_CA_CN = "CA999000001"  # shaped like CA<7-digit agency code><2-digit seq>, with a code no agency has
EPKI_CA_CN = "CA999100031"
SERIAL_BASE = 0x5EED0000


@dataclass(frozen=True)
class DemoHolder:
    employee_id: str
    name: str
    shows: str  # what the holder demonstrates (operator output, English)
    policy_oid: str = certgen.PERSONAL_ADMIN
    valid_from_days: int = -300  # not_before relative to now
    valid_days: int = 700  # not_after relative to now
    pair: bool = True
    revoke: x509.ReasonFlags | None = None
    revoked_days_ago: int = 5
    epki: bool = False
    previous: bool = False  # also an older certificate, revoked as superseded (a reissue's leftover)


HOLDERS = (
    DemoHolder("S0001", "김하늘", "valid sig+env pair (행정기관 개인용)", valid_days=400),
    DemoHolder("S0002", "이서준", "expires in 20 days (sig+env)", valid_days=20),
    DemoHolder("S0003", "박지민", "expires in 3 days (sig+env)", valid_days=3),
    DemoHolder("S0004", "최유나", "expired 10 days ago (sig+env)", valid_from_days=-740, valid_days=-10),
    DemoHolder("S0005", "정민호", "revoked (keyCompromise)", revoke=x509.ReasonFlags.key_compromise, valid_days=500),
    DemoHolder("S0006", "강수빈", "suspended (certificateHold, 효력정지)", revoke=x509.ReasonFlags.certificate_hold,
               revoked_days_ago=2, valid_days=450),
    DemoHolder("S0007", "윤도현", "공공/민간 개인용 (2.2.2) issued by mistake", policy_oid=certgen.PERSONAL_PUBLIC,
               valid_days=600),
    DemoHolder("S0008", "임채원", "EPKI 개인용 (school staff)", policy_oid=certgen.EPKI_PERSONAL, epki=True,
               valid_days=250),
    DemoHolder("S0009", "한지우", "reissued: new valid pair, old pair revoked (superseded)", valid_from_days=-30,
               valid_days=700, previous=True),
)


@dataclass
class SeedResult:
    holders: list[DemoHolder]
    certificates: int
    crl: CrlReport
    link_code: LinkCode


def _demo_key(label: str) -> ec.EllipticCurvePrivateKey:
    """A fixed EC key per demo CA, so seeding twice gives the same CA certificate."""
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256
    value = int.from_bytes(hashlib.sha256(f"gpki-helpdesk demo CA {label}".encode()).digest(), "big")
    return ec.derive_private_key(value % (order - 1) + 1, ec.SECP256R1())


def _authority(registry: Registry, cn: str, scheme: str) -> certgen.Authority:
    """The demo CA: the certificate stored by an earlier seed if its key is ours, else a new one (stored)."""
    key = _demo_key(cn)
    subject = name_to_dn(certgen.authority_name(cn, scheme))
    for cert in registry.ca_certificates(subject):
        if cert.public_key().public_numbers() == key.public_key().public_numbers():
            return certgen.Authority(cert=cert, key=key, scheme=scheme)
    authority = certgen.make_authority(cn=cn, scheme=scheme, key=key)
    registry.add_ca_certificate(authority.cert, source="demo")
    return authority


def _fake_phone(index: int) -> str:
    return f"010-0000-{1000 + index:04d}"


def _fake_rrn(index: int) -> str:
    return f"900101-1{index:06d}"


DEMO_LINKED = ("S0002", "S0003")  # expiring in 20 and 3 days


def seed(hd: "Helpdesk", files_dir: str | Path | None = None) -> SeedResult:
    """Create (or bring up to date) the demo agency; returns what was made and a link code for S0001."""
    registry = Registry(hd)
    now = hd.now()
    gpki = _authority(registry, GPKI_CA_CN, "GPKI")
    epki = _authority(registry, EPKI_CA_CN, "EPKI")
    revoked: list[tuple[int, datetime, x509.ReasonFlags | None]] = []
    written: list[tuple[str, bytes]] = []
    count = 0
    for index, demo in enumerate(HOLDERS, start=1):
        agency, code = (SCHOOL, SCHOOL_CODE) if demo.epki else (AGENCY, AGENCY_CODE)
        registry.upsert_holder(demo.employee_id, demo.name, agency=agency, agency_code=code, department=DEPARTMENT
                               if not demo.epki else "교무실", email=f"{demo.employee_id.lower()}@demo.example",
                               phone=_fake_phone(index), rrn=_fake_rrn(index))
        authority = epki if demo.epki else gpki
        cn = f"{index:03d}{demo.name}001"
        generations = [(demo.valid_from_days, demo.valid_days, 0)]
        if demo.previous:
            generations.append((-760, 5, 8))  # the older pair, still inside its validity but revoked
        for from_days, to_days, offset in generations:
            not_before = now + timedelta(days=from_days)
            # The end of that day, so "expires in 3 days" still reads D-3 later on the seeding day.
            not_after = (now + timedelta(days=to_days)).replace(hour=23, minute=59, second=59, microsecond=0)
            serials = [SERIAL_BASE + index * 16 + offset + k for k in (0, 1)]
            kinds = ("sig", "env") if demo.pair else ("sig",)
            for kind, serial in zip(kinds, serials):
                cert, _key = certgen.issue(authority, cn=cn, agency=agency, kind=kind, policy_oid=demo.policy_oid,
                                           not_before=not_before, not_after=not_after, serial=serial)
                registry.upsert_certificate(CertificateRecord(
                    issuer=name_to_dn(cert.issuer), serial=normalize_serial(serial), subject=name_to_dn(cert.subject),
                    not_before=not_before, not_after=not_after, employee_id=demo.employee_id,
                    scheme="EPKI" if demo.epki else "GPKI", kind=kind,
                    usage=usage_for(demo.policy_oid), policy_oid=demo.policy_oid, source="demo",
                ))
                count += 1
                written.append((f"{demo.employee_id}_{cn}{'_old' if offset else ''}_{kind}.cer", certgen.to_der(cert)))
                if demo.revoke is not None and not offset:
                    revoked.append((serial, now - timedelta(days=demo.revoked_days_ago), demo.revoke))
                if offset:
                    revoked.append((serial, now - timedelta(days=30), x509.ReasonFlags.superseded))
    crl = certgen.make_crl(gpki, revoked, this_update=now - timedelta(hours=1), next_update=now + timedelta(days=7),
                           number=1)
    report = registry.apply_crl(crl, source="demo:crl")
    if files_dir is not None:
        folder = Path(files_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in written:
            (folder / name).write_bytes(data)
        (folder / "demo-ca.crl").write_bytes(certgen.to_der(crl))
        (folder / "demo-gpki-ca.cer").write_bytes(certgen.to_der(gpki.cert))
    # Two holders start linked to their terminal chats (`helpdesk chat --as ID`), so the reminders due for
    # them show in `helpdesk remind --dry-run` from the first run; a holder linked elsewhere is left alone.
    for employee_id in DEMO_LINKED:
        holder = registry.holder(employee_id)
        if holder is not None and holder.chat_id is None:
            registry.link_console(employee_id)
    code = registry.create_link_code("S0001")
    return SeedResult(list(HOLDERS), count, report, code)

