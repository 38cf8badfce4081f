"""`adagent users ...` and `adagent keys ...`: manage accounts in the configured event store, no server needed."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Awaitable, Callable

from services.cli.admin_store import admin_store
from services.gateway.accounts import AccountError, Accounts

COMMANDS = ("users", "keys")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="add, list and remove the users who may call the API")
    users_sub = users.add_subparsers(dest="action", required=True)
    add = users_sub.add_parser("add", help="add a user (prompts for the password)")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input, for scripts")
    users_sub.add_parser("list", help="print every user, one a line")
    remove = users_sub.add_parser("remove", help="remove a user and revoke their API keys")
    remove.add_argument("name")

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="create an API key and print it (it is shown only this once)")
    create.add_argument("user")
    create.add_argument("--label", default="", help="what the key is for, shown by `keys list`")
    listing = keys_sub.add_parser("list", help="print a user's API keys (ids, not the keys themselves)")
    listing.add_argument("user")
    revoke = keys_sub.add_parser("revoke", help="revoke an API key by its id")
    revoke.add_argument("key_id")


class UsageError(Exception):
    """The command cannot run as given (exit code 2, like argparse's own errors)."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        # getpass would fall back to echoing, or fail on EOF with a traceback: scripts must say what they mean.
        raise UsageError("no terminal to ask for the password on: pipe it in with --password-stdin")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise AccountError("the passwords differ")
    return password


async def _users(accounts: Accounts, args: argparse.Namespace) -> None:
    if args.action == "add":
        await accounts.add_user(args.name, _read_password(args.password_stdin))
        print(f"added user {args.name.strip().lower()}", file=sys.stderr)
    elif args.action == "list":
        for name in await accounts.list_users():
            print(name)
    else:
        await accounts.remove_user(args.name)
        print(f"removed user {args.name.strip().lower()} and revoked their API keys", file=sys.stderr)


async def _keys(accounts: Accounts, args: argparse.Namespace) -> None:
    if args.action == "create":
        print(await accounts.create_api_key(args.user, args.label))
        print("store this key now: it cannot be shown again", file=sys.stderr)
    elif args.action == "list":
        for key in await accounts.list_api_keys(args.user):
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(key.created_at))
            print(f"{key.key_id}\t{created}\t{'revoked' if key.revoked else 'active'}\t{key.label}")
    else:
        await accounts.revoke_api_key(args.key_id)
        print(f"revoked API key {args.key_id}", file=sys.stderr)


async def run(args: argparse.Namespace) -> int:
    """Exit code 0; 1 with the reason on stderr when the accounts refuse the change; 2 when misused."""
    handler: Callable[[Accounts, argparse.Namespace], Awaitable[None]] = _users if args.command == "users" else _keys
    try:
        async with admin_store() as store:
            await handler(Accounts(store), args)
    except AccountError as exc:
        print(f"adagent: {exc}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"adagent: {exc}", file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print("\nadagent: cancelled", file=sys.stderr)
        return 1
    return 0
