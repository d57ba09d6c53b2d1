"""The ``helpdesk`` command line's argument types and how a verb is added to a group."""

from __future__ import annotations

import argparse
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from services.cli.commands import Command
    from services.cli.enums import EnumWords

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def positive_int(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive ID: {text!r}")
    return value


def ticket_id(text: str) -> int:
    """``42`` or ``#42``."""
    return positive_int(text.strip().removeprefix("#"))


def prog_ticket_id(text: str) -> int:
    """A programming ticket: ``12`` or ``P-12``."""
    cleaned = text.strip()
    if cleaned[:1] in ("P", "p"):
        cleaned = cleaned[1:].removeprefix("-")
    return positive_int(cleaned)


def local_date(text: str) -> datetime:
    """``YYYY-MM-DD``: that day's start in the local time zone."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    return datetime(day.year, day.month, day.day).astimezone()


def local_datetime(text: str) -> datetime:
    """ISO 8601 (``2026-12-01T20:00``, ``2026-12-01 20:00+01:00``); local time without offset."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date and time (YYYY-MM-DDTHH:MM): {text!r}"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()


def enum_list(
    p: argparse.ArgumentParser, flag: str, dest: str, words: EnumWords[Any], metavar: str
) -> None:
    """``--status open pending ...``: one or more values of an enum, by their words."""
    p.add_argument(
        flag,
        dest=dest,
        type=words,
        action="extend",
        nargs="+",
        metavar=metavar,
        help=", ".join(words.words),
    )


class Verbs:
    """Adds command groups and their verbs to ``helpdesk``; every verb also takes the
    ``common`` options after its name."""

    def __init__(self, groups: Subcommands, common: argparse.ArgumentParser) -> None:
        self._groups = groups
        self._common = common

    def group(self, name: str, help_text: str) -> Subcommands:
        return self._groups.add_parser(name, help=help_text).add_subparsers(
            dest="command", required=True, metavar="SUBCOMMAND"
        )

    def leaf(
        self, sub: Subcommands, name: str, func: Command, help_text: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[self._common])
        p.set_defaults(func=func)
        return p
