"""One events message through intake, windows and models: the per-event logic (pure: no Faust,
no Kafka clients, no settings).

Reads one message's bytes (with where it came from and when it entered Kafka), the state it
needs (its key's windows, through a :class:`KeyWindows`, and the shard's models, if any) and the
deployment's :class:`app.contracts.intake.Intake`. Gives a :class:`Taken` (the event as the models
saw it, their predictions, what to park until the label comes, the window flags) or a
:class:`Refused` (a counter and a reason). Keeps nothing itself: the key's windows and the models
change.

The engine (``agents/engine.py``) routes every record through :meth:`Step.take` and writes what
it gives; the offline ``features`` command (``app/features/offline.py``) calls it without
models, so that both compute the same rows; the unit tests call it as production does.
"""

from __future__ import annotations

from typing import Any, Protocol

from app.contracts.intake import Intake
from app.contracts.mapping import Origin
from app.features.encode import one_hot

#: the counter of an event a model raised on (its dead letter says which and why)
MODEL_ERRORS = "model_errors"


class KeyWindows(Protocol):
    """A shard's window states by key: ``tables/windows.py``'s ``ShardWindows`` in the stream,
    :class:`MemoryWindows` offline."""

    def update(self, key: str, ts: float, x: dict) -> int:
        """Count an event at ``ts`` in ``key``'s windows, write its features into ``x``; the
        flags of ``app.features.recipe`` (``TOO_LATE``, ``DISTINCT_CAPPED``, ``STATE_RESET``)."""
        ...


class Models(Protocol):
    """A shard's models (``app.models.shard.ShardModels``)."""

    def take_event(
        self, event: dict, now: float, t_in: float | None = None
    ) -> tuple[list[dict], dict | None]: ...


class MemoryWindows:
    """Window states held in a dict (the offline command's): one per key seen."""

    def __init__(self, recipe: Any) -> None:
        self.recipe = recipe
        self.states: dict[str, dict] = {}

    def update(self, key: str, ts: float, x: dict) -> int:
        state, flags = self.recipe.step(self.states.get(key), ts, x)
        self.states[key] = state
        return flags


class Taken:
    """A message that became an event: the event as the models saw it (``x`` with its windowed
    features, one-hot), their predictions, what to park for the label join (None: labelled
    inline, or no models), and the window flags."""

    __slots__ = ("event", "predictions", "park", "flags")

    def __init__(self, event: dict, predictions: list, park: dict | None, flags: int) -> None:
        self.event = event
        self.predictions = predictions
        self.park = park
        self.flags = flags


class Refused:
    """A message that is not taken: its counter and the reason of its dead letter (None: the
    transform dropped it, counted only); ``flags``: the window flags of an event a model raised
    on (it was counted in its windows before)."""

    __slots__ = ("counter", "reason", "flags")

    def __init__(self, counter: str, reason: str | None, flags: int = 0) -> None:
        self.counter = counter
        self.reason = reason
        self.flags = flags

    def __repr__(self) -> str:
        return f"Refused({self.counter!r}, {self.reason!r})"


class Step:
    """The per-event logic of one deployment; :meth:`take` is the one entry."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    def take(
        self,
        raw: bytes | None,
        origin: Origin | None,
        now: float,
        windows: KeyWindows,
        models: Models | None = None,
        t_in: float | None = None,
    ) -> Taken | Refused:
        """Take one events message: intake (parse or map, transform, checks), the key's
        windowed features, one-hot strings, then, with ``models``, predict, and score and learn
        an inline label (else park). ``origin`` is needed with a mapping; ``now`` is the wall
        clock; ``t_in`` when the message entered Kafka (the predictions' latency).

        >>> class Count:  # a recipe that counts each key's events
        ...     def step(self, state, ts, x):
        ...         state = {"n": (state or {"n": 0})["n"] + 1}
        ...         x["n"] = state["n"]
        ...         return state, 0
        >>> step, windows = Step(Intake(None, None, 3600.0, lambda y: None)), MemoryWindows(Count())
        >>> raw = b'{"id": "e1", "key": "k", "ts": 5, "x": {"a": 2.0, "m": "web"}}'
        >>> taken = step.take(raw, None, 10.0, windows)
        >>> taken.event["x"], taken.predictions, taken.park, windows.states
        ({'a': 2.0, 'm=web': 1, 'n': 1}, [], None, {'k': {'n': 1}})
        >>> step.take(b"nope", None, 10.0, windows).counter
        'dead_letters'
        """
        event = self.intake.event(raw, origin, now)
        if type(event) is tuple:
            return Refused(*event)
        key = event["key"]
        flags = windows.update(key, event["ts"], event["x"]) if key is not None else 0
        event["x"] = one_hot(event["x"])
        if models is None:
            return Taken(event, [], None, flags)
        try:
            predictions, park = models.take_event(event, now, t_in)
        except Exception as exc:  # a model that cannot take this event must not stop the shard
            reason = f"model failed on event {event['id']!r}: {type(exc).__name__}: {exc}"
            return Refused(MODEL_ERRORS, reason, flags)
        return Taken(event, predictions, park, flags)
