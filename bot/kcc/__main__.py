"""Staff accounts for the KCC console and the insights page.

    python -m bot.kcc add-user USERNAME --role kcc|redactie|manager [--password-stdin]
    python -m bot.kcc set-password USERNAME [--password-stdin]
    python -m bot.kcc disable-user USERNAME | enable-user USERNAME
    python -m bot.kcc list-users

Without ``--password-stdin`` the password is asked twice (not echoed).
The database is the case store (``CASES_DB_URL``, default ``var/cases.db``).
"""
from __future__ import annotations

import argparse
import getpass
import sys
from typing import List, Optional

from bot.staff import auth
from bot.staff.models import ROLES


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Wachtwoord: ")
    second = getpass.getpass("Nog een keer: ")
    if first != second:
        raise SystemExit("De wachtwoorden zijn niet gelijk.")
    return first


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.kcc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="database URL (default: CASES_DB_URL)")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-user", help="create a staff account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true")
    setpw = sub.add_parser("set-password", help="new password (also lifts a lock-out)")
    setpw.add_argument("username")
    setpw.add_argument("--password-stdin", action="store_true")
    for name in ("disable-user", "enable-user"):
        sub.add_parser(name).add_argument("username")
    sub.add_parser("list-users")
    args = parser.parse_args(argv)

    try:
        if args.command == "add-user":
            user = auth.create_user(args.db, args.username, _read_password(args.password_stdin),
                                    args.role)
            print(f"Account {user.username} ({user.role}) aangemaakt.")
        elif args.command == "set-password":
            auth.set_password(args.db, args.username, _read_password(args.password_stdin))
            print("Wachtwoord gewijzigd.")
        elif args.command in ("disable-user", "enable-user"):
            auth.set_disabled(args.db, args.username, args.command == "disable-user")
            print("Gedaan.")
        else:
            for user in auth.list_users(args.db):
                flags = " (uitgeschakeld)" if user["disabled"] else ""
                if user["locked_until"]:
                    flags += f" (geblokkeerd tot {user['locked_until']:%Y-%m-%d %H:%M} UTC)"
                print(f"{user['username']}\t{user['role']}{flags}")
    except auth.UserExists as exc:
        print(f"Account {exc} bestaat al. Gebruik set-password.", file=sys.stderr)
        return 1
    except auth.UnknownUser as exc:
        print(f"Account {exc} bestaat niet.", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"Fout: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
