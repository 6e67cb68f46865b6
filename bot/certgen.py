"""GPKI/EPKI/NPKI-shaped certificates, keys and CRLs for tests, benchmarks and the demo seed.

Nothing here is a real certificate: every authority is self-signed and made on the spot. The names follow
the DN rules in gpki-facts.md section 3 (`CN=001홍길동001, OU=people, OU=<agency>, O=Government of Korea,
C=KR`; servers `CN=SVR..., OU=Group of Server`), the policy OIDs of section 1, and the sig/env Key Usage
split seen in decoded GPKI certificates. Keys are EC P-256 because they are fast to make; real GPKI uses
RSA, and inspection (`bot.certs`) handles any key type.

Example:

    ca = make_authority()                                   # CN=CA131100001, OU=GPKI, O=Government of Korea, C=KR
    cert, key = issue(ca, cn="001홍길동001", not_before=start, not_after=end)
    pair = issue_pair(ca, cn="001홍길동001", agency="행정안전부", policy_oid=PERSONAL_ADMIN,
                      not_before=start, not_after=end)     # pair.sig_cert, pair.env_cert, ...
    crl = make_crl(ca, [(cert.serial_number, revoked_at, x509.ReasonFlags.certificate_hold)],
                   this_update=start, next_update=end)
    open("001홍길동001_sig.cer", "wb").write(to_der(cert))
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

# Policy OIDs (gpki-facts.md section 1).
ORG_ADMIN = "1.2.410.100001.2.1.1"
SERVER_ADMIN = "1.2.410.100001.2.1.2"
SPECIAL_ADMIN = "1.2.410.100001.2.1.3"
ORG_PUBLIC = "1.2.410.100001.2.1.4"
SERVER_PUBLIC = "1.2.410.100001.2.1.5"
SPECIAL_PUBLIC = "1.2.410.100001.2.1.6"
PERSONAL_ADMIN = "1.2.410.100001.2.2.1"
PERSONAL_PUBLIC = "1.2.410.100001.2.2.2"
EPKI_ORG = "1.2.410.100001.5.3.1.1"
EPKI_PERSONAL = "1.2.410.100001.5.3.1.3"
EPKI_SPECIAL = "1.2.410.100001.5.3.1.5"
EPKI_SERVER = "1.2.410.100001.5.3.1.7"
EPKI_SSL = "1.2.410.100001.5.3.1.9"
NPKI_PERSONAL = "1.2.410.200005.1.1.1"  # a yessign 개인 범용 policy, for NPKI-shaped test certs

GOV_ORG = "Government of Korea"
DEFAULT_CA_CN = "CA131100001"
_DEFAULT_CN_BY_SCHEME = {"GPKI": DEFAULT_CA_CN, "EPKI": "CA134100031", "NPKI": "yessignCA Class 2",
                         "OTHER": "Example Test CA"}
# Authorities get a long, fixed validity unless told otherwise, so generated corpora are reproducible.
DEFAULT_CA_NOT_BEFORE = datetime(2015, 1, 1, tzinfo=timezone.utc)
DEFAULT_CA_NOT_AFTER = datetime(2045, 1, 1, tzinfo=timezone.utc)


@dataclass
class Authority:
    """A certification authority made by `make_authority`: its self-signed certificate and private key.

    `scheme` ("GPKI", "EPKI" or "NPKI") decides the shape of the subjects `issue` gives.
    """

    cert: x509.Certificate
    key: Any
    scheme: str = "GPKI"

    @property
    def name(self) -> x509.Name:
        return self.cert.subject


@dataclass
class IssuedPair:
    """A subscriber's two certificates (전자서명용 `_sig` and 암호화용 `_env`) and their private keys."""

    sig_cert: x509.Certificate
    sig_key: Any
    env_cert: x509.Certificate
    env_key: Any

    @property
    def sig(self) -> tuple[x509.Certificate, Any]:
        return self.sig_cert, self.sig_key

    @property
    def env(self) -> tuple[x509.Certificate, Any]:
        return self.env_cert, self.env_key


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def _hash_for(key) -> hashes.HashAlgorithm | None:
    # Ed25519/Ed448 sign without a separate hash; everything else uses SHA-256.
    return None if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    """An X.509 name from (OID, value) pairs, most significant first (C, O, OU..., CN)."""
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts if value])


C, O, OU, CN = NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME


def authority_name(cn: str, scheme: str = "GPKI") -> x509.Name:
    """The subject of a CA: GPKI `CN=..,OU=GPKI,O=Government of Korea,C=KR`; EPKI `OU=EPKI`; NPKI yessign-like;
    OTHER `CN=..,O=Example Org,C=US` (an issuer no Korean scheme knows)."""
    if scheme == "OTHER":
        return _name((C, "US"), (O, "Example Org"), (CN, cn))
    if scheme == "NPKI":
        return _name((C, "kr"), (O, "yessign"), (OU, "AccreditedCA"), (CN, cn))
    return _name((C, "KR"), (O, GOV_ORG), (OU, "EPKI" if scheme == "EPKI" else "GPKI"), (CN, cn))


def make_authority(cn: str = DEFAULT_CA_CN, scheme: str = "GPKI", not_before: datetime | None = None,
                   not_after: datetime | None = None, key=None) -> Authority:
    """A self-signed CA for `scheme` ("GPKI", "EPKI", "NPKI", or "OTHER" for an unknown foreign issuer).

    With the default `cn`, EPKI gets `CA134100031` (교육), NPKI `yessignCA Class 2`, OTHER `Example Test CA`.
    Validity defaults to 2015-01-01 .. 2045-01-01 (UTC). `key` defaults to a new EC P-256 key.
    """
    scheme = scheme.upper()
    if scheme not in _DEFAULT_CN_BY_SCHEME:
        raise ValueError(f"unknown scheme {scheme!r} (GPKI, EPKI, NPKI or OTHER)")
    if cn == DEFAULT_CA_CN:
        cn = _DEFAULT_CN_BY_SCHEME[scheme]
    key = key or new_key()
    name = authority_name(cn, scheme)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or DEFAULT_CA_NOT_BEFORE)
        .not_valid_after(not_after or DEFAULT_CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, _hash_for(key))
    )
    return Authority(cert=cert, key=key, scheme=scheme)


def subscriber_name(cn: str, agency: str = "행정안전부", scheme: str = "GPKI") -> x509.Name:
    """A subscriber's subject per the DN rules: people, servers (`CN=SVR...`: `OU=Group of Server`), NPKI."""
    if scheme == "OTHER":
        return _name((C, "US"), (O, "Example Org"), (CN, cn))
    if scheme == "NPKI":
        return _name((C, "kr"), (O, "yessign"), (OU, "personal4IB"), (OU, agency or "KFB"), (CN, cn))
    group = "Group of Server" if cn.upper().startswith("SVR") else "people"
    return _name((C, "KR"), (O, GOV_ORG), (OU, agency), (OU, group), (CN, cn))


def _key_usage(kind: str) -> x509.KeyUsage:
    if kind not in ("sig", "env"):
        raise ValueError(f"kind must be 'sig' or 'env', not {kind!r}")
    sig = kind == "sig"
    return x509.KeyUsage(digital_signature=sig, content_commitment=sig, key_encipherment=not sig,
                         data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def issue(authority: Authority, *, cn: str, agency: str = "행정안전부", kind: str = "sig",
          policy_oid: str | None = PERSONAL_ADMIN, not_before: datetime, not_after: datetime,
          serial: int | None = None, crl_url: str | None = None, ocsp_url: str | None = None, key=None,
          subject: x509.Name | None = None, key_usage: bool = True) -> tuple[x509.Certificate, Any]:
    """Issue one end-entity certificate; returns (certificate, its private key).

    Subject: `CN=<cn>, OU=people, OU=<agency>, O=Government of Korea, C=KR` (RFC 4514 order; servers whose
    CN starts with SVR get `OU=Group of Server`; an NPKI authority gives a yessign-shaped subject), unless
    `subject` is given. Key Usage: digitalSignature+nonRepudiation for `kind="sig"`, keyEncipherment for
    `kind="env"` (`key_usage=False` leaves the extension out). `policy_oid=None` leaves out CertificatePolicies.
    `crl_url` adds a CRL distribution point, `ocsp_url` an AIA OCSP entry. `serial` defaults to a random one,
    `key` to a new EC P-256 key.
    """
    key = key or new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or subscriber_name(cn, agency, authority.scheme))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
                       critical=False)
    )
    if key_usage:
        builder = builder.add_extension(_key_usage(kind), critical=True)
    if policy_oid:
        builder = builder.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(policy_oid), None)]),
            critical=False,
        )
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints([x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(crl_url)], relative_name=None, reasons=None,
                crl_issuer=None)]),
            critical=False,
        )
    if ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]),
            critical=False,
        )
    return builder.sign(authority.key, _hash_for(authority.key)), key


def issue_pair(authority: Authority, *, cn: str, agency: str = "행정안전부", policy_oid: str | None = PERSONAL_ADMIN,
               not_before: datetime, not_after: datetime, sig_serial: int | None = None,
               env_serial: int | None = None, crl_url: str | None = None, ocsp_url: str | None = None,
               ) -> IssuedPair:
    """The subscriber's sig and env certificates (same subject, policy and validity) with their keys."""
    common = dict(cn=cn, agency=agency, policy_oid=policy_oid, not_before=not_before, not_after=not_after,
                  crl_url=crl_url, ocsp_url=ocsp_url)
    sig_cert, sig_key = issue(authority, kind="sig", serial=sig_serial, **common)
    env_cert, env_key = issue(authority, kind="env", serial=env_serial, **common)
    return IssuedPair(sig_cert, sig_key, env_cert, env_key)


def make_crl(authority: Authority, revoked: Iterable[tuple[int, datetime, x509.ReasonFlags | None]], *,
             this_update: datetime, next_update: datetime, number: int = 1) -> x509.CertificateRevocationList:
    """A CRL signed by `authority`: one entry per (serial, revoked_at, reason or None).

    `x509.ReasonFlags.certificate_hold` marks a suspension (효력정지) rather than a revocation.
    """
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
                       critical=False)
    )
    for serial, revoked_at, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
        if reason is not None and reason != x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(authority.key, _hash_for(authority.key))


def _is_private_key(obj) -> bool:
    return hasattr(obj, "private_bytes")


def to_pem(obj) -> bytes:
    """PEM bytes of a certificate, CRL, private key (unencrypted PKCS#8), or a list of those (concatenated)."""
    if isinstance(obj, (list, tuple)):
        return b"".join(to_pem(item) for item in obj)
    if _is_private_key(obj):
        return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return obj.public_bytes(serialization.Encoding.PEM)


def to_der(obj) -> bytes:
    """DER bytes of a certificate, CRL or private key (unencrypted PKCS#8)."""
    if _is_private_key(obj):
        return obj.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return obj.public_bytes(serialization.Encoding.DER)
