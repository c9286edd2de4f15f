"""``flowyard users …`` and ``flowyard api-keys …``: manage identities on the database.

These commands work on the database directly (``--database-url`` / ``--config``, like
``flowyard migrate``), so an operator can create the first users and keys before any
server runs, or regain access when every admin is locked out. Changes are audited with
the actor ``cli:<os user>``.

* ``users create NAME --role R [--email E] [--password-stdin]``: without
  ``--password-stdin`` a random password is generated and printed once;
* ``users list``; ``users disable NAME`` (``--enable`` to undo);
* ``api-keys create NAME --role R``: prints the key once;
* ``api-keys list``; ``api-keys revoke ID_OR_PREFIX``;
* ``api-keys generate``: print a fresh random key value, touching no database (for
  ``FLOWYARD_BOOTSTRAP_ADMIN_KEY``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from server.config import load_settings
from server.errors import FlowyardError
from server.identity import SEED_ROLES
from server.security.apikeys import ApiKeyService, generate_key
from server.security.audit import AuditLog
from server.security.users import UserService
from server.store.database import Database
from server.store.migrate import upgrade

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
Command = Callable[[argparse.Namespace, UserService, ApiKeyService], Awaitable[int]]


def add_commands(commands: Any) -> None:
    """Register ``users`` and ``api-keys`` on the ``flowyard`` sub-command parser."""
    users = commands.add_parser("users", help="create, list and disable users (on the database)")
    user_commands = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    create = user_commands.add_parser("create", help="create a user")
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=SEED_ROLES)
    create.add_argument("--email")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (default: generate and print one)",
    )
    _database_flags(create)
    create.set_defaults(run=_runner(_create_user))
    listing = user_commands.add_parser("list", help="list users")
    _database_flags(listing)
    listing.set_defaults(run=_runner(_list_users))
    disable = user_commands.add_parser("disable", help="disable a user (--enable to undo)")
    disable.add_argument("username")
    disable.add_argument("--enable", action="store_true", help="enable the user again")
    _database_flags(disable)
    disable.set_defaults(run=_runner(_disable_user))

    keys = commands.add_parser("api-keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    make = key_commands.add_parser("create", help="create a key (shown once)")
    make.add_argument("name")
    make.add_argument("--role", required=True, choices=SEED_ROLES)
    _database_flags(make)
    make.set_defaults(run=_runner(_create_key))
    shown = key_commands.add_parser("list", help="list keys (prefixes only)")
    _database_flags(shown)
    shown.set_defaults(run=_runner(_list_keys))
    revoke = key_commands.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key", metavar="ID_OR_PREFIX")
    _database_flags(revoke)
    revoke.set_defaults(run=_runner(_revoke_key))
    generate = key_commands.add_parser(
        "generate", help="print a new random key value (for FLOWYARD_BOOTSTRAP_ADMIN_KEY)"
    )
    generate.set_defaults(run=_generate)


def _generate(_args: argparse.Namespace) -> int:
    _print(generate_key())
    return EXIT_OK


def _database_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="default: the server's (settings, data dir)")
    parser.add_argument("--config", help="TOML settings file (also FLOWYARD_CONFIG)")


def _runner(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = load_settings(
            {"server.database_url": args.database_url}, config_file=args.config
        )

        async def main() -> int:
            database = Database(settings.server.resolved_database_url)
            try:
                await upgrade(database)
                audit = AuditLog(database)
                return await command(
                    args, UserService(database, audit), ApiKeyService(database, audit)
                )
            finally:
                await database.dispose()

        try:
            return asyncio.run(main())
        except FlowyardError as error:
            _print(f"flowyard: {error.message}", error=True)
            for detail in error.details:
                _print(f"  {detail.path or '/'}: {detail.message}", error=True)
            return EXIT_USAGE

    return run


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _print(text: str, *, error: bool = False) -> None:
    stream = sys.stderr if error else sys.stdout
    stream.write(text + "\n")
    stream.flush()


async def _create_user(args: argparse.Namespace, users: UserService, _: ApiKeyService) -> int:
    generated = not args.password_stdin
    password = secrets.token_urlsafe(18) if generated else sys.stdin.readline().rstrip("\r\n")
    user = await users.create(args.username, password, args.role, args.email, by=_actor())
    _print(f"created user {user.username} ({user.role}), id {user.id}")
    if generated:
        _print(f"password (shown once): {password}")
    return EXIT_OK


async def _list_users(_args: argparse.Namespace, users: UserService, _: ApiKeyService) -> int:
    page = await users.list(limit=10_000, offset=0)
    if not page["users"]:
        _print("no users")
    for user in page["users"]:
        state = "disabled" if user["disabled"] else "enabled"
        _print(f"{user['username']:<24} {user['role']:<9} {state:<8} {user['email'] or ''}")
    return EXIT_OK


async def _disable_user(args: argparse.Namespace, users: UserService, _: ApiKeyService) -> int:
    found = await users.find(args.username)
    if found is None:
        _print(f"flowyard: no user named {args.username!r}", error=True)
        return EXIT_FAILED
    await users.update(found.id, disabled=not args.enable, by=_actor())
    _print(f"{'enabled' if args.enable else 'disabled'} user {found.username}")
    return EXIT_OK


async def _create_key(args: argparse.Namespace, _: UserService, keys: ApiKeyService) -> int:
    created = await keys.create(args.name, args.role, by=_actor())
    _print(f"created API key {created['name']} ({created['role']}), id {created['id']}")
    _print(f"key (shown once, store it now): {created['key']}")
    return EXIT_OK


async def _list_keys(_args: argparse.Namespace, _: UserService, keys: ApiKeyService) -> int:
    page = await keys.list(limit=10_000, offset=0)
    if not page["api_keys"]:
        _print("no API keys")
    for key in page["api_keys"]:
        state = "revoked" if key["revoked"] else "active"
        used = key["last_used_at"] or "never used"
        _print(
            f"{key['prefix']}…  {key['role']:<9} {state:<8} {key['name']}  ({used}; {key['id']})"
        )
    return EXIT_OK


async def _revoke_key(args: argparse.Namespace, _: UserService, keys: ApiKeyService) -> int:
    key_id = await keys.resolve_id(args.key)
    changed = await keys.revoke(key_id, by=_actor())
    _print(f"{'revoked' if changed else 'already revoked:'} API key {key_id}")
    return EXIT_OK
