"""`helpdesk ask`: one question -> the answer text, or the decision as JSON; --jsonl streams."""
from __future__ import annotations

import argparse
import sys

from bot.cli_common import open_helpdesk, print_json
from bot.helpdesk import Helpdesk
from bot.render import to_plain
from bot.types import Inbound


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ask", help="ask one question (or one per stdin line with --jsonl)")
    parser.add_argument("question", nargs="?", help="the question, in quotes")
    parser.add_argument("--json", action="store_true", help="print the decision object")
    parser.add_argument("--jsonl", action="store_true", help="one question per stdin line -> one JSON object per line")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    hd = open_helpdesk(args)
    if args.jsonl:
        return ask_stream(hd, sys.stdin.buffer)
    if args.question is None:
        print("helpdesk ask: give a question, or use --jsonl with questions on stdin", file=sys.stderr)
        return 2
    if args.json:
        print_json(hd.decide(args.question).as_json())
        return 0
    replies = hd.handle(Inbound(chat_id="cli:ask", user_id="cli:ask", text=args.question, channel="cli"))
    for reply in replies:
        print(to_plain(reply.text))
    return 0


def ask_stream(hd: Helpdesk, stream) -> int:
    """Answer each line as it arrives; an unreadable line gives an error object and the rest go on."""
    for number, raw in enumerate(stream, start=1):
        try:
            question = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            print_json({"action": "error", "line": number, "message": f"line {number} is not valid UTF-8: {exc.reason}"})
            continue
        if not question.strip():
            print_json({"question": question, "action": "error", "line": number, "message": "empty question"})
            continue
        print_json(hd.decide(question).as_json())
    return 0
