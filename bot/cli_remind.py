"""`helpdesk remind`: send the expiry reminders due now (or list them with --dry-run)."""
from __future__ import annotations

import argparse
import importlib
import sys

from bot.cli_common import open_helpdesk, print_json
from bot.reminders import due_reminders, group_reminders, in_quiet_hours

# The Telegram side of sending, named like bot/cli.py names its COMMAND_MODULES: loaded only when sending,
# so `--dry-run` (and every other command) runs without telegram, and bot/ never imports the adapter.
SENDER = "handlers.reminders_job:send_from_cli"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("remind", help="send the expiry reminders due now (--dry-run lists them)")
    parser.add_argument("--dry-run", action="store_true", help="list what is due; send nothing, no token needed")
    parser.add_argument("--json", action="store_true", help="with --dry-run: one JSON row per certificate")
    parser.add_argument("--ignore-quiet-hours", action="store_true", help="send even during the quiet hours")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    hd = open_helpdesk(args)
    try:
        now = hd.now()
        settings = hd.config.reminders
        quiet = in_quiet_hours(now, settings)
        if args.dry_run:
            due = due_reminders(hd.store, now, settings)
            if args.json:
                print_json([d.as_json() for d in due])
                return 0
            for d in due:
                print(f"{d.employee_id}\t{d.serial}\tD-{d.step}\t{d.not_after}\t{d.usage}/{d.kind}\t{d.days_left} days left")
            held = (f"; `helpdesk remind` would hold them now: quiet hours {settings.quiet_start}-{settings.quiet_end}"
                    if quiet else "")
            print(f"{len(due)} certificate(s) due, {len(group_reminders(due))} message(s){held}")
            listed = {(d.employee_id, d.serial) for d in due}
            missed = [d for d in due_reminders(hd.store, now, settings, any_holder=True)
                      if (d.employee_id, d.serial) not in listed]
            if missed:
                holders = sorted({d.employee_id for d in missed})
                shown = ", ".join(holders[:10]) + (", ..." if len(holders) > 10 else "")
                print(f"also due, but the holder is not linked, has muted reminders or blocked the bot: "
                      f"{len(missed)} certificate(s) of {len(holders)} holder(s) ({shown}); /digest lists them")
            return 0
        if args.json:
            print("helpdesk remind: --json goes with --dry-run", file=sys.stderr)
            return 2
        if not hd.config.telegram_token:
            print("helpdesk remind: no Telegram token (set HELPDESK_TELEGRAM_TOKEN), or use --dry-run to list",
                  file=sys.stderr)
            return 2
        if quiet and not args.ignore_quiet_hours:
            print(f"quiet hours ({settings.quiet_start}-{settings.quiet_end} Asia/Seoul): nothing sent; "
                  "--ignore-quiet-hours sends anyway")
            return 0
        module_name, function_name = SENDER.split(":")
        send = getattr(importlib.import_module(module_name), function_name)
        summary = send(hd, ignore_quiet_hours=args.ignore_quiet_hours)
        print(summary.describe())
        return 0 if summary.ok else 1
    finally:
        hd.close()
