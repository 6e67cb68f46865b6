"""A file sent in chat: inspected in memory (bot/certs.py), summarised in Korean, and never kept.

A private key is refused before anything reads it: the user is warned (its content is never echoed or
logged) and the bytes are dropped with the inbound.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any, Callable

from bot.certs import Inspection, inspect_bytes, label
from bot.features import Feature, Replies
from bot.privacy import mask_pii
from bot.types import Button, Inbound, Reply

log = logging.getLogger(__name__)

MAX_KB_BUTTONS = 3
ERROR_KB_IDS = ("storage.location", "kind.files")  # where the right file is, which file is which
PRIVATE_KEY_KB_IDS = ("revoke.lost-media", "kind.files")


class CertFileFeature(Feature):
    """Answers a document with what the certificate is, its validity and status, and what to do."""

    name = "certs"

    def on_document(self, inbound: Inbound) -> Replies:
        document = inbound.document
        if document is None:
            return None
        staff_chat = self.hd.is_staff_chat(inbound)
        # In the staff chat only keys are stopped here; other files are staff business (hand-off, ...).
        result = inspect_bytes(document.filename, document.content, now=self.hd.now(),
                               revocation_lookup=None if staff_chat else self._lookup())
        if result.error_code == "private_key":
            log.info("private key refused in chat %s (content dropped)", self.hd.chat_key(inbound.chat_id))
            return [self._private_key_reply(result)]
        if staff_chat:
            return None
        return [self.summary_reply(result)]

    # -- replies ----------------------------------------------------------------------------------
    def summary_reply(self, result: Inspection) -> Reply:
        """The Korean summary of one inspection, with buttons to the KB entries that explain its findings."""
        text = self.hd.text("certs/summary.j2", **self._view(result))
        if not result.ok:
            kb_ids = list(ERROR_KB_IDS)
            tag = f"certs:error:{result.error_code}"
        else:
            kb_ids = list(dict.fromkeys(f.kb_id for f in result.findings if f.kb_id))
            tag = "certs:crl" if result.is_crl else f"certs:summary:{result.status}"
        rows = self._kb_rows(kb_ids)
        if not result.is_crl and self.hd.has_action("status"):
            rows.append((self.hd.action_button("status"),))
        rows.append((self.hd.home_button(),))
        return Reply(text, tuple(rows), tags=(tag, *(f"finding:{c}" for c in result.codes)))

    def _private_key_reply(self, result: Inspection) -> Reply:
        rows = self._kb_rows(list(PRIVATE_KEY_KB_IDS))
        rows.append((self.hd.home_button(),))
        text = self.hd.text("certs/private_key.j2", file=mask_pii(_base_name(result.file)))
        return Reply(text, tuple(rows), tags=("certs:private_key",))

    def _kb_rows(self, kb_ids: list[str]) -> list[tuple[Button, ...]]:
        rows: list[tuple[Button, ...]] = []
        for kb_id in kb_ids:
            entry = self.hd.kb.get(kb_id)
            if entry is not None and len(rows) < MAX_KB_BUTTONS:
                rows.append((Button(entry.title, f"kb:{entry.id}"),))
        return rows

    @staticmethod
    def _view(result: Inspection) -> dict[str, Any]:
        return {
            "ok": result.ok,
            "error": result.error,
            "file": mask_pii(_base_name(result.file)),
            "is_crl": result.is_crl,
            "scheme": label("scheme", result.scheme),
            "usage": label("usage", result.usage),
            "kind": label("kind", result.kind),
            "status": label("status", result.status) if result.status else "",
            "subject": mask_pii(result.subject),
            "issuer": result.issuer,
            "not_before": result.not_before_at,
            "not_after": result.not_after_at,
            "next_update": result.not_after_at if result.is_crl else None,
            "days_left": result.days_left if result.days_left is not None else 0,
            "findings": result.findings,
        }

    # -- the registry, when there is one ------------------------------------------------------------
    def _lookup(self) -> Callable[[str, str], Any] | None:
        """The registry's known statuses (revoked / suspended), if bot.registry offers a lookup."""
        try:
            module = importlib.import_module("bot.registry")
        except ImportError:
            return None
        registry_class = getattr(module, "Registry", None)
        if registry_class is None:
            return None
        try:
            return getattr(registry_class(self.hd), "revocation_lookup", None)
        except Exception:  # a registry that cannot open must not stop the file check
            log.warning("registry unavailable for certificate inspection", exc_info=True)
            return None


def _base_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]
