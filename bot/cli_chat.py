"""`helpdesk chat`: the terminal chat."""
from __future__ import annotations

import argparse

from bot.cli_common import open_helpdesk
from bot.console import run_console


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("chat", help="terminal chat on the local database and knowledge base")
    parser.add_argument("--as", dest="as_holder", metavar="ID", help="chat as this already linked holder")
    parser.add_argument("--chat-id", default="console:local", help="conversation id (default console:local)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    hd = open_helpdesk(args)
    chat_id = args.chat_id
    link_as = getattr(hd, "link_console_as", None)
    if args.as_holder:
        if link_as is None:
            print("helpdesk: --as needs the holder registry, which this build does not have")
            return 2
        chat_id = link_as(args.as_holder)
        if chat_id is None:
            print(f"helpdesk: no holder with id {args.as_holder!r} (try `helpdesk demo seed`)")
            return 2
    return run_console(hd, chat_id=chat_id)
