"""Stage 1: add per-key windowed aggregates to each valid event.

In: clean (event dict, key = entity key or event id).
Out: scoring (``{"kind": "event", ...}`` with the enriched ``x``, same key).
State: tables.features (tumbling and hopping windows per key, last event time per key).
Events without a ``key`` get no aggregates. String features are then one-hot encoded for every
event (``"merchant": "fuel"`` becomes ``"merchant=fuel": 1``) so that any River model can take it.
"""

from __future__ import annotations

from app import app, settings
from app.topics import clean, declare, scoring
from tables.features import key_activity_hopping, key_activity_tumbling, key_last_seen


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


TUMBLING = f"tumbling_{window_label(settings.window)}"
HOPPING = f"hopping_{window_label(settings.hop_window)}"


def numeric(x: dict) -> dict:
    """The numeric features of ``x`` (bools and strings are not aggregated).

    >>> numeric({"amount": 3.0, "merchant": "m1", "online": True, "n": 2})
    {'amount': 3.0, 'n': 2}
    """
    return {k: v for k, v in x.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def one_hot(x: dict) -> dict:
    """``x`` with each string feature ``name: "v"`` replaced by ``"name=v": 1`` (River's one-hot).

    Every River model can then take the event; numbers and bools pass unchanged, in order.

    >>> one_hot({"amount": 3.0, "merchant": "fuel", "online": False})
    {'amount': 3.0, 'merchant=fuel': 1, 'online': False}
    """
    if not any(isinstance(v, str) for v in x.values()):
        return x
    return {
        (f"{k}={v}" if isinstance(v, str) else k): (1 if isinstance(v, str) else v)
        for k, v in x.items()
    }


def add_to_window(window: dict, values: dict) -> dict:
    """A window's aggregates with one more event's numeric ``values`` added (a new dict).

    >>> w = add_to_window({}, {"amount": 2.0})
    >>> add_to_window(w, {"amount": 3.0, "n": 1})
    {'n': 2, 'sum': {'amount': 5.0, 'n': 1}}
    """
    sums = dict(window.get("sum", {}))
    for name, value in values.items():
        sums[name] = sums.get(name, 0) + value
    return {"n": window.get("n", 0) + 1, "sum": sums}


def enrich(x: dict, windows: dict[str, dict], previous_ts: float | None, ts: float) -> dict:
    """Return ``x`` plus the aggregates of each window under names that say what they are.

    >>> enrich({"amount": 3.0}, {"tumbling_1h": {"n": 2, "sum": {"amount": 5.0}}}, 10.0, 25.0)
    {'amount': 3.0, 'count_tumbling_1h': 2, 'amount_sum_tumbling_1h': 5.0, \
'amount_mean_tumbling_1h': 2.5, 'secs_since_last': 15.0}
    """
    out = dict(x)
    for label, window in windows.items():
        n = window.get("n", 0)
        out[f"count_{label}"] = n
        for name, total in window.get("sum", {}).items():
            out[f"{name}_sum_{label}"] = total
            out[f"{name}_mean_{label}"] = total / n if n else 0.0
    if previous_ts is not None:
        out["secs_since_last"] = float(ts - previous_ts)
    return out


@app.agent(clean)
async def add_features(stream):
    await declare(scoring)
    async for event in stream:
        key = event["key"]
        if key is not None:
            values = numeric(event["x"])
            key_activity_tumbling[key].apply(add_to_window, values)
            key_activity_hopping[key].apply(add_to_window, values)
            windows = {
                TUMBLING: key_activity_tumbling[key].value(),
                HOPPING: key_activity_hopping[key].value(),
            }
            previous = key_last_seen.get(key)
            if previous is None or event["ts"] >= previous:
                key_last_seen[key] = event["ts"]
            event["x"] = enrich(event["x"], windows, previous, event["ts"])
        event["x"] = one_hot(event["x"])
        event["kind"] = "event"
        await scoring.send(key=stream.current_event.key, value=event)
