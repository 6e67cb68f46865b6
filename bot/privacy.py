"""Personal data: HMAC of identifiers with HELPDESK_PII_KEY, and masking for logs and transcripts."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

# 주민등록번호 (6+7 digits), Korean mobile numbers (also +82), with spaces, hyphens or dots between the
# groups; full-width digits and dashes are folded first, so "９００１０１－１２３４５６７" is masked too.
_SEP = r"[\s\-\u2010-\u2015\u2212.]{0,3}"
_RRN = re.compile(rf"(?<!\d)(\d{{6}}){_SEP}(\d)\d{{6}}(?!\d)")
_PHONE = re.compile(rf"(?<!\d)(\+?82{_SEP}0?1[016789]|01[016789]){_SEP}(\d{{3,4}}){_SEP}(\d{{4}})(?!\d)")
_FULLWIDTH = {0xFF10 + i: ord("0") + i for i in range(10)} | {0xFF0D: ord("-"), 0xFF0E: ord(".")}
_LINK_CODE = re.compile(r"(/(?:link|start)\s+)(\S{3})\S+", re.IGNORECASE)


def mask_pii(text: str) -> str:
    """Mask 주민등록번호, phone numbers and link codes so the text can be logged or shown to staff."""
    text = text.translate(_FULLWIDTH)
    text = _RRN.sub(lambda m: f"{m.group(1)}-{m.group(2)}******", text)
    text = _PHONE.sub(lambda m: f"{m.group(1)}-****-{m.group(3)[-2:].rjust(4, '*')}", text)
    return _LINK_CODE.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def hmac_id(key: str, value: str) -> str:
    """A stable keyed hash of an identifier (hex)."""
    return hmac.new(key.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).hexdigest()


def new_secret() -> str:
    return secrets.token_hex(32)


def resolve_pii_key(configured: str, store) -> str:
    """The configured HELPDESK_PII_KEY, or else a random key kept in this database (stable per database)."""
    if configured:
        return configured
    key = store.meta_get("pii_key")
    if key is None:
        key = new_secret()
        store.meta_set("pii_key", key)
    return key
