"""The Temporal SDK's JSON converter, spared its type-hint resolution per payload.

Decoding a payload into a dataclass (a workflow's input, an activity's argument or result,
an update's input) resolves the type hints of every dataclass in it with
``typing.get_type_hints``, uncached: with postponed annotations that evaluates every field's
annotation string again, each time. For the ticket workflow's input that is most of the
decoding (about 1.3 ms of 1.4 ms on a 2-core machine). ``cache_type_hints`` makes the
converter look each class up once; a dataclass's hints do not change while the process runs.
"""

from __future__ import annotations

import functools
import typing
from typing import Any

from temporalio.converter import _payload_converter

_resolve = typing.get_type_hints


@functools.lru_cache(maxsize=1024)
def _cached(hint: Any) -> dict[str, Any]:
    return _resolve(hint)


def cached_type_hints(hint: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``typing.get_type_hints``, remembered per class for the converter's one-argument
    calls (a copy each time: callers may change the dict they get)."""
    if args or kwargs:
        return _resolve(hint, *args, **kwargs)
    try:
        return dict(_cached(hint))
    except TypeError:  # an unhashable hint: resolved as the SDK would
        return _resolve(hint)


def cache_type_hints() -> None:
    """Make the SDK's converter (this process's, the workflow sandbox's too: the SDK is
    passed through to it) use ``cached_type_hints``. Idempotent."""
    _payload_converter.get_type_hints = cached_type_hints  # type: ignore[attr-defined,assignment]
