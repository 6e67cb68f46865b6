"""`helpdesk registry import|refresh|status|link-code`: the holder and certificate registry."""
from __future__ import annotations

import argparse
import sys

from bot.cli_common import open_helpdesk, print_json
from bot.clock import to_iso
from bot.registry import FileReport, ImportReport, Registry, RegistryError, iter_csv_errors


def register(sub: argparse._SubParsersAction) -> None:
    registry = sub.add_parser("registry", help="holders, their certificates and their status")
    reg_sub = registry.add_subparsers(dest="registry_command", metavar="REGISTRY_COMMAND")

    imp = reg_sub.add_parser("import", help="load a CSV (design.md columns), certificate files, a folder or a CRL")
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument("--json", action="store_true", help="one JSON object per file")
    imp.set_defaults(func=run_import)

    refresh = reg_sub.add_parser("refresh", help="re-check status from the configured CRLs and OCSP responder")
    refresh.add_argument("--json", action="store_true")
    refresh.set_defaults(func=run_refresh)

    status = reg_sub.add_parser("status", help="a holder's certificates: status and expiry")
    status.add_argument("employee_id", metavar="ID")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=run_status)

    code = reg_sub.add_parser("link-code", help="a one-time code that links a chat to a holder")
    code.add_argument("employee_id", metavar="ID")
    code.add_argument("--json", action="store_true", help='print {"code", "expires_at", "deep_link"}')
    code.set_defaults(func=run_link_code)

    registry.set_defaults(func=lambda args: registry.print_help() or 2)


def _err(message: str) -> None:
    print(f"helpdesk: {message}", file=sys.stderr)


def _file_json(report: FileReport) -> dict:
    out = {"file": report.path, "kind": report.kind, "ok": report.ok, "message": report.message}
    if isinstance(report.detail, ImportReport):
        detail = report.detail
        out.update(rows=detail.rows, holders=detail.holders, certificates_new=detail.certificates_new,
                   certificates_updated=detail.certificates_updated,
                   errors=[{"line": e.line, "message": e.message} for e in detail.errors],
                   warnings=detail.warnings, fatal=detail.fatal)
    return out


def run_import(args: argparse.Namespace) -> int:
    hd = open_helpdesk(args)
    registry = Registry(hd)
    reports: list[FileReport] = []
    for name in args.files:
        reports.extend(registry.import_path(name))
    for report in reports:
        if args.json:
            print_json(_file_json(report))
            continue
        print(f"{report.path}: {report.message}")
        if isinstance(report.detail, ImportReport):
            for warning in report.detail.warnings:
                print(f"  warning: {warning}")
            for line in iter_csv_errors(report.detail):
                print(f"  {line}")
    return 0 if all(r.ok for r in reports) else 1


def run_refresh(args: argparse.Namespace) -> int:
    from bot.status_refresh import refresh

    hd = open_helpdesk(args)
    report = refresh(hd)
    if args.json:
        print_json([s.as_json() for s in report.sources])
    elif not report.sources:
        print("nothing to refresh: no CRL URLs (config crl_urls or certificates' distribution points) "
              "and no OCSP responder with a known CA certificate")
    else:
        for source in report.sources:
            print(f"{source.kind} {source.url}: {source.outcome}: {source.message}")
    return 0 if report.ok else 1


def run_status(args: argparse.Namespace) -> int:
    hd = open_helpdesk(args)
    registry = Registry(hd)
    holder = registry.holder(args.employee_id)
    if holder is None:
        _err(f"no holder with id {args.employee_id!r}")
        return 1
    now = hd.now()
    certs = registry.certificates(holder.employee_id, now)
    if args.json:
        print_json({
            "employee_id": holder.employee_id, "name": holder.name, "agency": holder.agency,
            "agency_code": holder.agency_code, "department": holder.department, "email": holder.email,
            "phone_last4": holder.phone_last4, "linked": holder.chat_id is not None, "linked_at": holder.linked_at,
            "certificates": [c.as_json(now) for c in certs],
        })
        return 0
    linked = f"linked since {holder.linked_at}" if holder.chat_id else "not linked to a chat"
    print(f"{holder.employee_id} {holder.name} ({holder.agency or '-'} {holder.department or ''}, "
          f"agency code {holder.agency_code or '-'}), {linked}; as of {to_iso(now)}")
    if not certs:
        print("  no certificates")
    for cert in certs:
        checked = (f"confirmed {to_iso(cert.status_checked_at)} by {cert.status_source}"
                   if cert.status_checked_at else "status never confirmed")
        reason = f" ({cert.revocation_reason})" if cert.revocation_reason else ""
        print(f"  {cert.kind:<7} {cert.usage:<15} {cert.effective_status(now) + reason:<28} "
              f"not_after {to_iso(cert.not_after)}  days_left {cert.days_left(now):>5}  "
              f"serial {cert.serial}  {checked}")
    return 0


def run_link_code(args: argparse.Namespace) -> int:
    hd = open_helpdesk(args)
    try:
        code = Registry(hd).create_link_code(args.employee_id)
    except RegistryError as exc:
        _err(str(exc))
        return 1
    if args.json:
        print_json(code.as_json())
        return 0
    print(f"link code for {code.employee_id}: {code.code} (single use, expires {to_iso(code.expires_at)})")
    print(f"the user sends: /link {code.code}")
    if code.deep_link:
        print(f"or opens: {code.deep_link}")
    return 0
