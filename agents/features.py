"""Stage 1: add per-key windowed aggregates to each valid event.

In: clean (event dict, key = entity key or event id).
Out: scoring (``{"kind": "event", ...}`` with the enriched ``x``, same key).
State: tables.features (tumbling and hopping windows per key, last event time per key).
Events without a ``key`` get no aggregates. String features are then one-hot encoded for every
event (``"merchant": "fuel"`` becomes ``"merchant=fuel": 1``) so that any River model can take it.
"""

from __future__ import annotations

from app import app, settings
from app.features import HOPPING, TUMBLING, enrich, one_hot, window_values
from app.topics import clean, declare, scoring
from tables.features import key_activity_hopping, key_activity_tumbling, key_last_seen


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


WINDOW_FEATURES = settings.window_feature_names


async def add_features(stream):
    await declare(scoring)
    async for event in stream:
        key = event["key"]
        if key is not None:
            values = window_values(event["x"], WINDOW_FEATURES)
            key_activity_tumbling[key].apply(add_to_window, values)
            key_activity_hopping[key].apply(add_to_window, values)
            windows = {
                label: [window.get("n", 0), window.get("sum", {})]
                for label, window in (
                    (TUMBLING, key_activity_tumbling[key].value()),
                    (HOPPING, key_activity_hopping[key].value()),
                )
            }
            previous = key_last_seen.get(key)
            if previous is None or event["ts"] >= previous:
                key_last_seen[key] = event["ts"]
            event["x"] = enrich(event["x"], windows, previous, event["ts"])
        event["x"] = one_hot(event["x"])
        event["kind"] = "event"
        await scoring.send(key=stream.current_event.key, value=event)


if settings.engine == "agents":  # else agents/engine.py adds the features
    add_features = app.agent(clean)(add_features)
