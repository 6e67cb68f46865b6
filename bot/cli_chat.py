"""`helpdesk chat`: the terminal chat."""
from __future__ import annotations

import argparse

from bot.cli_common import open_helpdesk
from bot.console import run_console
from bot.render import to_plain


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("chat", help="terminal chat on the local database and knowledge base")
    parser.add_argument("--as", dest="as_holder", metavar="ID", help="chat as this already linked holder")
    parser.add_argument("--chat-id", default="console:local", help="conversation id (default console:local)")
    parser.add_argument("--staff", action="store_true",
                        help="the staff side: list, claim, answer and close tickets of other terminal chats")
    parser.add_argument("--name", default="", help="your name as shown in the chat (staff: shown to users masked)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    hd = open_helpdesk(args)
    if args.staff:
        desk = hd.feature("handoff")
        if desk is None:
            print("helpdesk: --staff needs the hand-off feature, which this build does not have")
            return 2
        print(to_plain(hd.msg("handoff.desk_banner")))
        return run_console(hd, chat_id=desk.staff_chat_id, user_name=args.name, opening="/tickets")
    chat_id = args.chat_id
    if args.as_holder:
        try:
            from bot.registry import Registry, RegistryError
        except ImportError:
            print("helpdesk: --as needs the holder registry, which this build does not have")
            return 2
        try:
            chat_id = Registry(hd).link_console(args.as_holder)
        except RegistryError as exc:
            print(f"helpdesk: {exc}")
            return 2
        if chat_id is None:
            print(f"helpdesk: no holder with id {args.as_holder!r} (try `helpdesk demo seed`)")
            return 2
    return run_console(hd, chat_id=chat_id, user_name=args.name)
