"""JSON request bodies parsed within bounds, before any Python object is built from them.

``json.loads`` recurses once per nesting level (100,000 nested ``[`` is a RecursionError) and
refuses integers over 4,300 digits with a bare ValueError: both would escape as HTTP 500. The
nesting depth is measured on the bytes first (strings removed, brackets counted in C by numpy),
so a hostile body costs one linear scan and a normal one a ``bytes.count``.
"""

from __future__ import annotations

import json
import re

import numpy as np

MAX_DEPTH = 8  # {"pixels": [N][28][28]} is 4 deep; a little room for clients that wrap it

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


class BodyError(ValueError):
    """The body is not JSON this service parses; the message is one line for the client."""


def nesting_depth(body: bytes) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, ignoring brackets inside strings."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, dtype=np.uint8)
    level = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1), dtype=np.int64)
    return int(level.max())


def load_bounded(body: bytes, max_depth: int = MAX_DEPTH) -> object:
    """``json.loads`` for a request body, refusing deep nesting, huge integers, NaN/Infinity and bad UTF-8."""
    if body.count(b"[") + body.count(b"{") > max_depth:  # cheap: fewer brackets than the bound cannot nest deeper
        depth = nesting_depth(body)
        if depth > max_depth:
            raise BodyError(f"JSON nests {depth} levels deep; at most {max_depth} are accepted")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except BodyError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        if "integer string conversion" in str(exc):
            raise BodyError("JSON holds an integer of over 4,300 digits; send plain decimals") from None
        raise BodyError(f"body is not valid JSON ({str(exc).splitlines()[0] or type(exc).__name__})") from None


def _reject_constant(name: str) -> float:
    raise BodyError(f"JSON contains {name}; send finite numbers")
