"""`helpdesk reissue list|show|approve|reject|cancel|sweep`: reissue requests for staff at a terminal."""
from __future__ import annotations

import argparse
import sys

from bot.cli_common import open_helpdesk, print_json
from bot.reissue import REQUEST_STATUSES, Reissue, Request, TransitionError


def register(sub: argparse._SubParsersAction) -> None:
    reissue = sub.add_parser("reissue", help="reissue (재발급) requests: list, show, approve, reject, sweep")
    rsub = reissue.add_subparsers(dest="reissue_command", metavar="REISSUE_COMMAND")

    listing = rsub.add_parser("list", help="requests, oldest first")
    listing.add_argument("--status", choices=REQUEST_STATUSES, help="only requests with this status")
    listing.add_argument("--json", action="store_true", help="a JSON array of requests")
    listing.set_defaults(func=run_list)

    show = rsub.add_parser("show", help="one request with its status history")
    show.add_argument("ref", metavar="REF")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_show)

    approve = rsub.add_parser("approve", help="approve a submitted request (the user is told)")
    approve.add_argument("ref", metavar="REF")
    approve.set_defaults(func=run_approve)

    reject = rsub.add_parser("reject", help="reject a submitted request (the user is told why)")
    reject.add_argument("ref", metavar="REF")
    reject.add_argument("--reason", required=True, help="why, in Korean: the user reads it")
    reject.set_defaults(func=run_reject)

    cancel = rsub.add_parser("cancel", help="cancel a submitted or approved request (the user is told)")
    cancel.add_argument("ref", metavar="REF")
    cancel.add_argument("--reason", default=None, help="why, in Korean: the user reads it")
    cancel.set_defaults(func=run_cancel)

    sweep = rsub.add_parser("sweep", help="remind idle flows (24 h), drop abandoned ones (7 days), close issued")
    sweep.add_argument("--json", action="store_true")
    sweep.set_defaults(func=run_sweep)

    reissue.set_defaults(func=lambda args: reissue.print_help() or 2)


def _err(message: str) -> int:
    print(f"helpdesk: {message}", file=sys.stderr)
    return 1


def _line(request: Request) -> str:
    return (f"{request.ref}\t{request.status}\t{request.employee_id}\t{request.form.get('name', '')}\t"
            f"{request.reason}\t{request.cert_serial or '-'}\t{request.created_at}")


def run_list(args: argparse.Namespace) -> int:
    engine = Reissue(open_helpdesk(args))
    requests = engine.requests(args.status)
    if args.json:
        print_json([r.as_json() for r in requests])
        return 0
    if not requests:
        print("no reissue requests" + (f" with status {args.status}" if args.status else ""))
    for request in requests:
        print(_line(request))
    return 0


def run_show(args: argparse.Namespace) -> int:
    engine = Reissue(open_helpdesk(args))
    request = engine.request(args.ref)
    if request is None:
        return _err(f"no reissue request {args.ref}")
    history = engine.history(request)
    if args.json:
        print_json({**request.as_json(), "history": history})
        return 0
    print(_line(request))
    for key in ("chat_id", "cert_usage", "cert_not_after", "revoke_method", "phone_masked", "status_note",
                "decided_by", "new_certificate_id", "updated_at"):
        value = getattr(request, key)
        if value is not None:
            print(f"  {key}: {value}")
    for step in history:
        note = f" ({step['note']})" if step["note"] else ""
        print(f"  {step['at']} {step['from'] or '-'} -> {step['to']} by {step['actor']}{note}")
    return 0


def _decide(args: argparse.Namespace, target: str, note: str | None) -> int:
    engine = Reissue(open_helpdesk(args))
    try:
        request, _ = engine.decide(args.ref.upper(), target, "cli", note)
    except LookupError:
        return _err(f"no reissue request {args.ref}")
    except TransitionError as exc:
        return _err(f"{args.ref}: {exc}")
    print(f"{request.ref} is now {request.status}; the user is told")
    return 0


def run_approve(args: argparse.Namespace) -> int:
    return _decide(args, "approved", None)


def run_reject(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        return _err("--reason must not be empty")
    return _decide(args, "rejected", args.reason.strip())


def run_cancel(args: argparse.Namespace) -> int:
    return _decide(args, "cancelled", (args.reason or "").strip() or None)


def run_sweep(args: argparse.Namespace) -> int:
    counts = Reissue(open_helpdesk(args)).sweep()
    if args.json:
        print_json(counts)
    else:
        print(f"{counts['reminded']} reminded, {counts['expired']} expired, {counts['issued']} issued")
    return 0
