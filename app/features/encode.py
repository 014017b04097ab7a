"""Feature engineering: window names, one-hot encoding, the default spec's aggregates as features
(pure, no Faust, no settings).

Pure functions of plain dicts, keeping nothing (but caches of names): :mod:`app.step` one-hot
encodes every event, :mod:`app.features.spec` names the default spec's windows, and
:mod:`app.features.aggregates` picks the values the default spec aggregates and writes its windows'
``[n, sums]`` into ``x``.
"""

from __future__ import annotations

from functools import lru_cache
from math import hypot


def window_label(seconds: float) -> str:
    """A short name for a window size.

    >>> window_label(3600), window_label(600), window_label(90), window_label(1.5)
    ('1h', '10m', '90s', '1.5s')
    """
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds}s"


def window_names(window: float, hop_window: float) -> tuple[str, str]:
    """The names of the tumbling and the hopping window in feature names.

    >>> window_names(3600, 600)
    ('tumbling_1h', 'hopping_10m')
    """
    return f"tumbling_{window_label(window)}", f"hopping_{window_label(hop_window)}"


def numeric(x: dict) -> dict:
    """The numeric features of ``x`` (bools and strings are not aggregated).

    >>> numeric({"amount": 3.0, "merchant": "m1", "online": True, "n": 2})
    {'amount': 3.0, 'n': 2}
    """
    return {k: v for k, v in x.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def window_values(x: dict, only: frozenset[str] | None = None) -> dict:
    """The features of ``x`` that windows aggregate: numeric ones, and only ``only`` if given.

    >>> window_values({"amount": 3.0, "n": 2, "m": "x"}, frozenset({"amount"}))
    {'amount': 3.0}
    """
    if only is None:
        return numeric(x)
    out = {}
    for name in _in_order(only):
        value = x.get(name)
        kind = type(value)
        if kind is float or kind is int:
            out[name] = value
    return out


@lru_cache(maxsize=64)
def _in_order(names: frozenset[str]) -> tuple[str, ...]:
    """``names`` sorted: a set's order changes between processes, and float sums with it."""
    return tuple(sorted(names))


def one_hot(x: dict) -> dict:
    """``x`` with each string feature ``name: "v"`` replaced by ``"name=v": 1`` (River's one-hot).

    Every River model can then take the event; numbers and bools pass unchanged, in order.

    >>> one_hot({"amount": 3.0, "merchant": "fuel", "online": False})
    {'amount': 3.0, 'merchant=fuel': 1, 'online': False}
    """
    try:  # numbers and bools only (the common case) have a norm; strings raise TypeError
        hypot(*x.values())
        return x
    except (TypeError, OverflowError):
        pass  # strings among numbers (or an int too large for a float, before a string)
    return {
        (f"{k}={v}" if isinstance(v, str) else k): (1 if isinstance(v, str) else v)
        for k, v in x.items()
    }


@lru_cache(maxsize=4096)
def _count_name(label: str) -> str:
    return f"count_{label}"


@lru_cache(maxsize=4096)
def _aggregate_names(name: str, label: str) -> tuple[str, str]:
    """Feature names are built once per (feature, window), not once per event."""
    return f"{name}_sum_{label}", f"{name}_mean_{label}"


def add_aggregates(x: dict, label: str, window: list) -> dict:
    """Add to ``x`` (in place; returned) the ``[n, sums]`` of the window named ``label``, under
    names that say what they are: ``count_<label>``, then ``<field>_sum_<label>`` and
    ``<field>_mean_<label>`` (the sum per event) of each field, in the order of ``sums``.

    >>> x = {"amount": 3.0}
    >>> add_aggregates(x, "tumbling_1h", [2, {"amount": 5.0}]) is x, x
    (True, {'amount': 3.0, 'count_tumbling_1h': 2, 'amount_sum_tumbling_1h': 5.0, \
'amount_mean_tumbling_1h': 2.5})
    >>> add_aggregates({}, "hopping_1h", [0, {}])
    {'count_hopping_1h': 0}
    """
    n, sums = window
    x[_count_name(label)] = n
    for name, total in sums.items():
        sum_name, mean_name = _aggregate_names(name, label)
        x[sum_name] = total
        x[mean_name] = total / n if n else 0.0
    return x
