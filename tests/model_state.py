"""A canonical, comparable form of a River model: equal iff every learned number is equal."""

from __future__ import annotations

import functools
import math
import random
from typing import Any


def canonical(obj: Any, _depth: int = 0) -> Any:
    """Nested tuples/dicts of plain values; floats kept exact (NaN compared as a marker)."""
    if _depth > 60:
        raise RecursionError("model state nested too deep")
    d = _depth + 1
    if obj is None or isinstance(obj, bool | int | str | bytes):
        return obj
    if isinstance(obj, float):
        return ("nan",) if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return ("dict", tuple((canonical(k, d), canonical(v, d)) for k, v in obj.items()))
    if isinstance(obj, list | tuple):
        return (type(obj).__name__, tuple(canonical(v, d) for v in obj))
    if isinstance(obj, set | frozenset):
        return ("set", tuple(sorted(repr(canonical(v, d)) for v in obj)))
    if isinstance(obj, random.Random):
        # River's Gaussian keeps an unseeded generator used only to sample; it is not learned.
        return ("Random",)
    if isinstance(obj, functools.partial):
        return ("partial", repr(obj.func), canonical(obj.args, d), canonical(obj.keywords, d))
    if callable(obj) and not hasattr(obj, "__dict__"):
        return ("callable", repr(obj))
    if hasattr(obj, "tolist"):
        return ("array", canonical(obj.tolist(), d))
    state = {}
    if hasattr(obj, "__dict__"):
        state.update(vars(obj))
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot != "__dict__" and hasattr(obj, slot):
                state[slot] = getattr(obj, slot)
    return (type(obj).__qualname__, canonical(dict(sorted(state.items())), d))


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two canonical forms first differ (for readable assertion messages)."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, tuple):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            label = x[0] if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) else i
            found = first_difference(x, y, f"{path}/{label}")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"
