"""`helpdesk inspect FILE... [--json]`: certificate and CRL inspection (bot/certs.py) from the command line."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any, Callable

from bot.certs import USAGES, Inspection, Required, inspect_paths
from bot.cli_common import config_from_args, print_json
from bot.clock import Clock, FixedClock, parse_instant
from bot.config import Config

EPILOG = """\
output:
  --json prints one JSON array with one object per FILE, in the order given (design.md's `inspect --json`
  object: file, ok, error, scheme, kind, usage, policy_oid, subject, issuer, serial, not_before, not_after,
  days_left, status, findings). Without --json: a short summary per file.
  A CRL among the files is applied to the certificates of the same call (and to the registry's when the
  database HELPDESK_DB / --db exists). Private keys (.key, .p12/.pfx, PEM/DER private keys) are refused unread.

exit status:
  0  every file was read (ok: true), whatever its findings
  1  at least one file could not be read or was refused (ok: false)
  2  usage error (no FILE, unknown option, bad settings)
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "inspect", help="inspect certificate / CRL files (one object per file)",
        description="Read X.509 certificates (DER or PEM, chains, PKCS#7) and CRLs: scheme, sig/env, usage, "
                    "validity, status and findings.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="certificate (.cer/.der/.pem/.p7b) or CRL files")
    parser.add_argument("--json", action="store_true", help="print a JSON array of objects, one per FILE")
    parser.add_argument("--need-scheme", choices=("GPKI", "EPKI", "any"), default="GPKI",
                        help="scheme the target system accepts (default GPKI)")
    parser.add_argument("--need-kind", choices=("sig", "env", "any"), default="sig",
                        help="sig or env certificate the target system needs (default sig)")
    parser.add_argument("--need-usage", choices=[u for u in USAGES if u not in ("npki", "unknown")] + ["any"],
                        default="personal-admin", help="usage the target system needs (default personal-admin)")
    parser.set_defaults(func=run)


def _clock(config: Config) -> Clock:
    return FixedClock(parse_instant(config.fixed_now)) if config.fixed_now else Clock()


def _registry(config: Config):
    """A Registry over the configured database when it exists and bot.registry offers one, else None."""
    if not Path(config.db_path).is_file():
        return None, None
    try:
        module = importlib.import_module("bot.registry")
    except ImportError:
        return None, None
    registry_class = getattr(module, "Registry", None)
    if registry_class is None:
        return None, None
    from bot.helpdesk import Helpdesk

    try:
        hd = Helpdesk(config)
    except Exception as exc:  # the files can still be inspected without the registry
        print(f"helpdesk inspect: registry not used ({config.db_path}: {exc})", file=sys.stderr)
        return None, None
    return hd, registry_class(hd)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    now = _clock(config).now()
    required = Required(
        scheme=None if args.need_scheme == "any" else args.need_scheme,
        kind=None if args.need_kind == "any" else args.need_kind,
        usage=None if args.need_usage == "any" else args.need_usage,
    )
    hd, registry = _registry(config)
    lookup: Callable[[str, str], Any] | None = getattr(registry, "revocation_lookup", None)
    try:
        results = inspect_paths(args.files, now=now, revocation_lookup=lookup, required=required)
        if registry is not None:
            _apply_crls(registry, results)
    finally:
        if hd is not None:
            hd.close()
    if args.json:
        print_json([r.as_json() for r in results])
    else:
        for result in results:
            sys.stdout.write(summary(result) + "\n")
    return 0 if all(r.ok for r in results) else 1


def _apply_crls(registry, results: list[Inspection]) -> None:
    """Bring the registry in line with the CRLs given (design.md); reported on stderr, one line each."""
    apply = getattr(registry, "apply_crl", None)
    if apply is None:
        return
    for result in results:
        if result.crl_x509 is None:
            continue
        report = apply(result.crl_x509, source=f"file:{Path(result.file).name}")
        if getattr(report, "ok", True):
            print(f"helpdesk inspect: {result.file}: CRL applied to the registry", file=sys.stderr)
        else:
            print(f"helpdesk inspect: {result.file}: CRL not applied to the registry: "
                  f"{getattr(report, 'error', '')}", file=sys.stderr)


def summary(result: Inspection) -> str:
    """A few lines for a terminal: what the file is, its dates and status, then its findings."""
    if not result.ok:
        return f"{result.file}: NOT READ ({result.error_code}): {result.error}"
    if result.is_crl:
        head = f"{result.file}: CRL from {result.issuer}, next update {result.not_after or '-'}"
    else:
        head = (f"{result.file}: {result.scheme} {result.usage} {result.kind}, {result.status}, "
                f"{result.not_before} .. {result.not_after} ({result.days_left} days left)\n"
                f"  subject: {result.subject}\n  issuer:  {result.issuer}\n  serial:  {result.serial}")
    lines = [head]
    lines.extend(f"  [{f.severity}] {f.code}: {f.message}" for f in result.findings)
    return "\n".join(lines)
