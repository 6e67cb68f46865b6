"""`helpdesk diagnose "TEXT" [--json]`: an error report -> cause, numbered steps, KB entry, staff needed."""
from __future__ import annotations

import argparse
import sys

from bot.cli_common import open_helpdesk, print_json


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("diagnose", help="diagnose an error report (a code, an ERR_ name or a client message)")
    parser.add_argument("text", nargs="?", help="the error report, in quotes (or '-' to read stdin)")
    parser.add_argument("--json", action="store_true",
                        help='print {"diagnosis", "cause", "steps", "kb_id", "needs_staff", "confidence"}')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.text is None:
        print("helpdesk diagnose: give the error text in quotes (or '-' to read it from stdin)", file=sys.stderr)
        return 2
    text = sys.stdin.read() if args.text == "-" else args.text
    hd = open_helpdesk(args)
    try:
        feature = hd.feature("diagnosis")
        if feature is None:
            print("helpdesk diagnose: the diagnosis feature is not enabled (bot/features.py)", file=sys.stderr)
            return 2
        diagnosis = feature.diagnose(text)
        if args.json:
            print_json(diagnosis.as_json())
            return 0
        print(_as_text(diagnosis))
        return 0
    finally:
        hd.close()


def _as_text(d) -> str:
    """Plain text for operators: the label, cause, numbered steps, KB id and whether staff are needed."""
    if d.is_unknown_code:
        what = f"code {d.code}" if d.code else d.name
        return f"unknown-code: {what} is not in knowledge/diagnosis/codes.yaml; offer a hand-off to staff"
    if not d.recognized:
        return "not-recognized: no error code or known client message in the text"
    lines = [f"{d.diagnosis} ({d.label}), confidence {d.confidence:.2f}", f"cause: {d.cause}"]
    lines += [f"  {i}. {step}" for i, step in enumerate(d.steps, start=1)]
    lines.append(f"kb: {d.kb_id}   needs staff: {'yes' if d.needs_staff else 'no'}")
    return "\n".join(lines)
