"""Phone numbers as the front desk hears them (seed 000): the same number written with
spaces, dots, dashes or the Italian prefix (+39 / 0039) is the same number."""

from __future__ import annotations

import re

ITALY = ("+39", "0039")


def digits(raw: str) -> str:
    return re.sub(r"\D", "", raw)


def phone_key(raw: str) -> str:
    """A number without its separators: "+39 0932 653167" -> "+390932653167"."""
    text = raw.strip()
    return ("+" + digits(text)) if text.startswith("+") else digits(text)


def phone_forms(raw: str) -> list[str]:
    """The ``phone_key`` forms of the same number as ``raw``: with or without the Italian
    prefix for a national number; +CC and 00CC for a foreign one."""
    key = phone_key(raw)
    for prefix in ITALY:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    else:
        if key.startswith("+"):
            return [key, "00" + key[1:]]
    return [key, *(p + key for p in ITALY)]


def same_number(a: str, b: str) -> bool:
    return bool(phone_key(a)) and phone_key(b) in phone_forms(a)
