"""The messages streamlearn reads and writes, and the checks raw input must pass.

Raw input in streamlearn's own shape (the events and labels topics) is decoded and checked here;
a team's own shape is read by ``app/contracts/mapping.py`` with the same checks. A payload that
fails raises :class:`Malformed` with a reason a person can act on. Everything downstream of the
engine's read of an event (``agents/engine.py``) and of ``agents/validate.py`` for labels carries
plain dicts that passed these checks.

Event (``events`` topic)::

    {"id": str, "key": str | null, "ts": float, "x": {name: number | str | bool}, "y": label?}

Label (``labels`` topic)::

    {"id": str, "y": label, "ts": float}
"""

from __future__ import annotations

import math
from math import hypot
from typing import Any

import orjson

MAX_ID_LENGTH = 256
#: Largest magnitude a feature or label may have: beyond it sums overflow and scalers break.
MAX_MAGNITUDE = 1e15
#: Event times are epoch seconds; anything past this (year 5138) is taken for milliseconds.
MAX_TS = 1e11


class Malformed(ValueError):
    """A raw message that is not a well-formed event or label; the text says why."""


def _decode(raw: bytes | None) -> dict:
    if raw is None:
        raise Malformed("empty message (no value)")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Malformed(f"expected a JSON object, got {type(value).__name__}")
    return value


def _check_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"{what} must be a number, got {type(value).__name__}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int past any float (from a transform, or Python's own JSON)
        finite = True
    if not finite:
        raise Malformed(f"{what} must be finite, got {value!r}")
    if abs(value) > MAX_MAGNITUDE:
        big = type(value) is not float and abs(value) >= 10**30  # (its digits could be many)
        shown = f"an int of {value.bit_length()} bits" if big else repr(value)
        raise Malformed(f"{what} is out of range (|{what}| > {MAX_MAGNITUDE:g}): {shown}")
    return value


def _check_ts(value: Any) -> float:
    """Event time in epoch seconds.

    >>> _check_ts(1767225600000)
    Traceback (most recent call last):
    app.contracts.records.Malformed: ts must be epoch seconds; 1767225600000 looks like milliseconds
    """
    kind = type(value)
    if (kind is float or kind is int) and 0 <= value <= MAX_TS:
        return value  # the common case, checked in one comparison
    ts = _check_number(value, "ts")
    if ts > MAX_TS:
        raise Malformed(f"ts must be epoch seconds; {value!r} looks like milliseconds")
    if ts < 0:
        raise Malformed(f"ts must be >= 0, got {value!r}")
    return ts


def _check_id(value: Any, what: str = "id") -> str:
    if type(value) is str and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    if not isinstance(value, str) or not value:
        raise Malformed(f"{what} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise Malformed(f"{what} is longer than {MAX_ID_LENGTH} characters")
    return value


def _check_label(value: Any) -> Any:
    kind = type(value)
    if kind is bool or kind is str:
        return value
    if (kind is int or kind is float) and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
        return value  # the common case, checked in one comparison
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return _check_number(value, "y")
    raise Malformed(f"y must be a number, string or bool, got {type(value).__name__}")


def _check_features(x: dict) -> None:
    """Check each feature of ``x``: a finite number in range, a string or a bool.

    >>> _check_features({"a": 1.5, "b": "s", "c": None})
    Traceback (most recent call last):
    app.contracts.records.Malformed: x['c'] must be a number, string or bool, got null
    """
    for name, v in x.items():
        kind = type(v)
        if kind is float or kind is int:
            if not -MAX_MAGNITUDE <= v <= MAX_MAGNITUDE:
                _check_number(v, f"x[{name!r}]")
        elif kind is not str and kind is not bool:
            kind_name = "null" if v is None else kind.__name__
            raise Malformed(f"x[{name!r}] must be a number, string or bool, got {kind_name}")


def ahead_of_clock(ts: float, now: float, max_future: float) -> str | None:
    """Why a message stamped ``ts`` is refused at wall-clock time ``now``, else None: event
    time may run at most ``max_future`` seconds ahead of the clock (a message from the future
    would move the windows' and the label join's clocks for every message after it).

    >>> print(ahead_of_clock(5000.0, 1000.0, 3600.0))
    ts 5000.0 is 4000 s after the worker's clock (more than STREAMLEARN_MAX_FUTURE, 3600 s)
    >>> ahead_of_clock(4600.0, 1000.0, 3600.0) is None
    True
    """
    if ts - now > max_future:
        return (
            f"ts {ts!r} is {ts - now:.0f} s after the worker's clock (more than "
            f"STREAMLEARN_MAX_FUTURE, {max_future:g} s)"
        )
    return None


def parse_event(raw: bytes | None) -> dict:
    """Decode and check one raw event; return ``{"id", "key", "ts", "x"}`` plus ``"y"`` if given.

    >>> parse_event(b'{"id": "e1", "key": "card-7", "ts": 10, "x": {"amount": 3.5}, "y": true}')
    {'id': 'e1', 'key': 'card-7', 'ts': 10, 'x': {'amount': 3.5}, 'y': True}
    >>> parse_event(b'{"id": "e2", "ts": 1.5, "x": {}}')
    {'id': 'e2', 'key': None, 'ts': 1.5, 'x': {}}
    >>> parse_event(b'{"id": "e3", "ts": 1, "x": {"a": [1, 2]}}')
    Traceback (most recent call last):
    app.contracts.records.Malformed: x['a'] must be a number, string or bool, got list
    """
    return check_event(_decode(raw))


def check_event(value: dict) -> dict:
    """Check a decoded event (from the events topic, a mapping or a transform); return
    ``{"id", "key", "ts", "x"}`` plus ``"y"`` if given (``value`` itself when it is exactly that).
    """
    if type(value) is not dict:
        raise Malformed(f"expected an event object, got {type(value).__name__}")
    try:
        ident, ts, x = value["id"], value["ts"], value["x"]
    except KeyError as exc:
        raise Malformed(f"missing field {exc.args[0]!r}") from None
    _check_id(ident)
    _check_ts(ts)
    if type(x) is not dict:
        raise Malformed(f"x must be an object of features, got {type(x).__name__}")
    if x:
        # all numbers in range (the common case), checked by one C loop: the Euclidean norm of
        # the features is at least the largest magnitude among them; it is NaN or inf when one
        # is, and strings, lists, objects or null raise TypeError (ints past a float, Overflow)
        try:
            in_range = hypot(*x.values()) <= MAX_MAGNITUDE
        except (TypeError, OverflowError):
            in_range = False
        if not in_range:
            _check_features(x)  # raises, unless strings or a large norm of values in range
    key = value.get("key")
    if key is not None:
        _check_id(key, "key")
    y = value.get("y")
    if y is None:
        return {"id": ident, "key": key, "ts": ts, "x": x}
    _check_label(y)
    if len(value) == 5 and "key" in value:
        return value  # exactly the five fields (the common case): no copy
    return {"id": ident, "key": key, "ts": ts, "x": x, "y": y}


def parse_label(raw: bytes | None) -> dict:
    """Decode and check one raw label; return ``{"id", "y", "ts"}``.

    >>> parse_label(b'{"id": "e1", "y": 0, "ts": 20}')
    {'id': 'e1', 'y': 0, 'ts': 20}
    >>> parse_label(b'{"id": "e1", "ts": 20}')
    Traceback (most recent call last):
    app.contracts.records.Malformed: missing field 'y'
    """
    value = _decode(raw)
    for field in ("id", "y", "ts"):
        if field not in value or value[field] is None:
            raise Malformed(f"missing field {field!r}")
    return {
        "id": _check_id(value["id"]),
        "y": _check_label(value["y"]),
        "ts": _check_ts(value["ts"]),
    }


def dead_letter_headers(reason: str, topic: str, partition: int, offset: int) -> list:
    """Kafka headers that say why and where a message was rejected.

    >>> dead_letter_headers("not JSON", "events", 0, 7)[0]
    ('reason', b'not JSON')
    """
    return [
        ("reason", reason.encode()),
        ("source_topic", topic.encode()),
        ("source_partition", str(partition).encode()),
        ("source_offset", str(offset).encode()),
    ]
