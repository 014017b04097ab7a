"""Random request bodies for ``POST /predict/``, from a seed: the fuzz tests' input.

Reads nothing; gives :class:`Body` values (the bytes, what they test, and the answer they must
get: ``200``, ``400``, or ``None`` when either is right, as for a valid event cut at a random
byte). Keeps nothing. The unit fuzz (``tests/unit/test_predict_fuzz.py``) feeds them to
``read_events`` in-process; the integration fuzz (``tests/integration/test_predict_fuzz.py``) to
real workers over HTTP.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Body:
    """One request body: ``kind`` says how it was made, ``expect`` the status it must get
    (None: 200 or 400), ``field`` the field a 400's reason must name (None: any reason)."""

    data: bytes
    kind: str
    expect: int | None
    field: str | None = None


#: values of every JSON type, and of none (text spliced in as it is: not JSON)
WRONG_SCALARS: list[Any] = [None, True, False, 0, -1, 1.5, "", "s", [], {}, [1, "a"], {"a": 1}]
HUGE: list[Any] = [10**30, -(10**30), 1e308, -1e308, 1.7976931348623157e308, 1e16, -1e16]
SMALL: list[Any] = [5e-324, -5e-324, 1e-300, 0.0, -0.0]
#: literals and texts orjson refuses (NaN, Infinity, numbers past a double, bad surrogates)
NOT_JSON_VALUES = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b'"\\ud800"', b"nul"]
STRINGS = ["", "a" * 300, "\ud800", "\udfff", "日本語", "e\u0301", "\U0001f600", "\u0000"]
STRINGS += ["\x7f", "\\", '"', "\u2028"]


def good_event(rng: random.Random, keys: list[str], now: float, i: int) -> dict:
    """A valid event of one of ``keys`` (or no key), a little before ``now``."""
    x: dict[str, Any] = {"amount": round(rng.uniform(0, 500), 2), "hour": float(rng.randrange(24))}
    if rng.random() < 0.3:
        x["merchant"] = rng.choice(["web", "shop", "atm"])
    if rng.random() < 0.2:
        x["online"] = rng.random() < 0.5
    event: dict[str, Any] = {"id": f"f{i}", "key": rng.choice(keys), "x": x}
    if rng.random() < 0.8:
        event["ts"] = now - rng.uniform(0, 60)
    if rng.random() < 0.1:
        event["key"] = None
    if rng.random() < 0.1:
        event["y"] = rng.random() < 0.5
    return event


def number(value: Any) -> bool:
    """Whether ``value`` is a number an event may hold (app.contracts.records.MAX_MAGNITUDE)."""
    return type(value) in (int, float) and abs(value) <= 1e15


def lone_surrogate(value: Any) -> bool:
    """Whether ``value`` is a string with a lone surrogate (not JSON, escaped or not)."""
    return type(value) is str and any(0xD800 <= ord(c) <= 0xDFFF for c in value)


def nested(depth: int, objects: bool = False) -> bytes:
    """JSON arrays (or objects) ``depth`` deep."""
    if objects:
        return b'{"a": ' * depth + b"1" + b"}" * depth
    return b"[" * depth + b"]" * depth


def bodies(
    seed: int,
    count: int,
    keys: list[str],
    now: float,
    most: int,
    most_bytes: int,
    max_future: float,
) -> Iterator[Body]:
    """``count`` bodies, the same for the same arguments: events of ``keys`` at about ``now``,
    for a worker that takes at most ``most`` events and ``most_bytes`` bytes, and refuses a
    ``ts`` more than ``max_future`` seconds ahead."""
    rng = random.Random(seed)

    def good(i: int) -> dict:
        return good_event(rng, keys, now, i)

    def dumps(value: Any) -> bytes:
        # (the standard library's: orjson does not write integers past 64 bits)
        return json.dumps(value, ensure_ascii=rng.random() < 0.5, allow_nan=False).encode(
            "utf-8", "surrogatepass"
        )

    def wrong_field(i: int) -> Body:
        event = good(i)
        event.setdefault("ts", now)
        field = rng.choice(["id", "key", "ts", "x", "y", "x.amount", "missing"])
        pool = WRONG_SCALARS + HUGE + SMALL + STRINGS
        if field == "missing":
            gone = rng.choice(["id", "x"])
            del event[gone]
            return Body(dumps(event), "missing " + gone, 400, gone)
        if field == "x.amount":
            value = rng.choice(WRONG_SCALARS + HUGE + [[[[1]]], {"a": {"b": {}}}])
            event["x"]["amount"] = value
            ok = type(value) in (bool, str) or number(value)
            return Body(dumps(event), "x value", 200 if ok else 400, "x['amount']")
        value = rng.choice(pool)
        event[field] = value
        if lone_surrogate(value):
            return Body(dumps(event), f"wrong {field}", 400)  # (not JSON: no field to name)
        ok = {
            "id": lambda v: type(v) is str and 0 < len(v) <= 256,
            "key": lambda v: v is None or (type(v) is str and 0 < len(v) <= 256),
            "ts": lambda v: type(v) in (int, float) and 0 <= v <= now + max_future,
            "x": lambda v: type(v) is dict
            and all(type(f) in (bool, str) or number(f) for f in v.values()),
            # any label is a label to some model (a binary classifier takes only true/false, 1
            # and 0): the model decides; null is no label
            "y": lambda v: None if type(v) in (bool, str) or number(v) else v is None,
        }[field](value)
        expect = None if ok is None else 200 if ok else 400
        return Body(dumps(event), f"wrong {field}", expect, field)

    def literal(i: int) -> Body:
        event = good(i)
        event.setdefault("ts", now)
        where = rng.choice(["ts", "x", "y", "id"])
        marker = b'"__v__"'
        if where == "x":
            event["x"]["amount"] = "__v__"
        else:
            event[where] = "__v__"
        text = dumps(event).replace(marker, rng.choice(NOT_JSON_VALUES), 1)
        return Body(text, "not JSON literal", 400)

    def truncated(i: int) -> Body:
        text = dumps(good(i))
        return Body(text[: rng.randrange(len(text))], "truncated", 400)

    def mutated(i: int) -> Body:
        text = bytearray(dumps(good(i)))
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(text))
            text[at] = rng.randrange(256)
        return Body(bytes(text), "mutated", None)

    def random_bytes(i: int) -> Body:
        return Body(rng.randbytes(rng.randrange(1, 200)), "random bytes", None)

    def time_travel(i: int) -> Body:
        event = good(i)
        choice = rng.randrange(4)
        if choice == 0:
            event["ts"] = now + max_future + rng.uniform(600, 1e6)
            return Body(dumps(event), "ts in the future", 400, "ts")
        if choice == 1:
            event["ts"] = -rng.uniform(1, 1e12)
            return Body(dumps(event), "negative ts", 400, "ts")
        if choice == 2:
            event["ts"] = now * 1000.0  # milliseconds
            return Body(dumps(event), "ts in ms", 400, "ts")
        event["ts"] = rng.uniform(0, now - 1e6)  # long ago: windows say too late, or nothing
        return Body(dumps(event), "ts long ago", 200)

    def odd_strings(i: int) -> Body:
        event = good(i)
        s = rng.choice(STRINGS[1:] + ["k" + "\U0001f600" * 5])
        where = rng.randrange(3)
        lone = lone_surrogate(s)
        if where == 0:
            event["id"] = s
            ok = 0 < len(s) <= 256 and not lone
            return Body(dumps(event), "odd id", 200 if ok else 400, None if ok or lone else "id")
        if where == 1:
            event["x"][s] = rng.choice([1.0, "v", True])
        else:
            event["x"]["merchant"] = s
        return Body(dumps(event), "odd feature", 400 if lone else 200)

    def mixed_array(i: int) -> Body:
        n = rng.randrange(1, min(most, 20) + 1)
        items: list[Any] = [good(i * 100 + j) for j in range(n)]
        bad = rng.random() < 0.5
        if bad:
            items[rng.randrange(n)] = rng.choice(
                [1, "e", None, [], {"id": "z"}, {"id": 1, "ts": now, "x": {}}]
            )
        return Body(dumps(items), "array, one bad" if bad else "array", 400 if bad else 200)

    def too_many(i: int) -> Body:
        items = [good(i * 100 + j) for j in range(most + 1 + rng.randrange(3))]
        return Body(dumps(items), "too many events", 400)

    def too_big(i: int) -> Body:
        event = good(i)
        event["x"]["pad"] = "p" * (most_bytes + rng.randrange(1, 5000))
        return Body(dumps(event), "too big", 400)

    def deep(i: int) -> Body:
        depth = rng.choice([2, 50, 600, 1000, 1023, 1100, 5000, most_bytes // 3])
        if rng.random() < 0.5:
            return Body(nested(depth), "deep array", 400)
        event = good(i)
        event.setdefault("ts", now)
        inner = nested(depth, objects=rng.random() < 0.5)
        text = dumps({**event, "x": {"a": "__v__"}}).replace(b'"__v__"', inner, 1)
        return Body(text, "deep in x", 400, None if len(text) > most_bytes else "x")

    def empty(i: int) -> Body:
        return Body(rng.choice([b"", b" ", b"\n", b"{}", b"[]", b"null", b'""']), "empty", 400)

    makers: list[tuple[Callable[[int], Body], float]] = [
        (lambda i: Body(dumps(good(i)), "good", 200), 0.12),
        (wrong_field, 0.22),
        (literal, 0.06),
        (truncated, 0.08),
        (mutated, 0.08),
        (random_bytes, 0.06),
        (time_travel, 0.08),
        (odd_strings, 0.06),
        (mixed_array, 0.1),
        (too_many, 0.01),
        (too_big, 0.01),
        (deep, 0.04),
        (empty, 0.03),
    ]
    weights = [w for _, w in makers]
    for i in range(count):
        ((make, _),) = rng.choices(makers, weights)
        yield make(i)
