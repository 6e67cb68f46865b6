"""`helpdesk demo seed`: a demo agency with holders and certificates in every state (no real data)."""
from __future__ import annotations

import argparse

from bot.cli_common import open_helpdesk
from bot.clock import to_iso


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="demo data")
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="DEMO_COMMAND")
    seed = demo_sub.add_parser("seed", help="fill the database with a demo agency, holders and certificates")
    seed.add_argument("--files", metavar="DIR", help="also write the demo certificates and CRL there (no keys)")
    seed.add_argument("--quiet", action="store_true", help="one line instead of the full list")
    seed.set_defaults(func=run_seed)
    demo.set_defaults(func=lambda args: demo.print_help() or 2)


def run_seed(args: argparse.Namespace) -> int:
    from bot.demo import AGENCY, AGENCY_CODE, DEPARTMENT, seed

    hd = open_helpdesk(args)
    result = seed(hd, files_dir=args.files)
    if args.quiet:
        print(f"demo registry ready: holders {result.holders[0].employee_id}-{result.holders[-1].employee_id} "
              f"(chat as one: make chat HOLDER=S0003, or helpdesk chat --as S0003)")
        return 0
    print(f"demo agency {AGENCY} {DEPARTMENT} (agency code {AGENCY_CODE}): {len(result.holders)} holders, "
          f"{result.certificates} certificates; demo CRL applied ({result.crl.revoked} newly revoked/suspended)")
    for holder in result.holders:
        print(f"  {holder.employee_id}  {holder.name}  {holder.shows}")
    if args.files:
        print(f"certificate files and the CRL written to {args.files}")
    print("try: helpdesk chat --as S0003   (then /status)")
    print(f"or link a chat to S0001 with: /link {result.link_code.code}   (single use, expires "
          f"{to_iso(result.link_code.expires_at)})")
    return 0
