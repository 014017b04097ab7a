"""The features a keyed event gets: today's fixed recipe or the declared one, and the rules both
share (pure: no Faust, no Kafka, no settings).

Reads a key's state (None: a new key), an event's time and its ``x``; writes the windowed
features into ``x``; keeps nothing. The stream (``tables/windows.py``) and the offline
``features`` command (``app/offline.py``) call the same :meth:`Recipe.step`, so that both give
the same values to the bit. The rules of both recipes, for an event at ``ts`` of a key whose
newest event time is ``t``:

* ``ts < t - expires``: too late; the event gets no windowed features and leaves the state as
  it was (the caller counts it);
* ``ts - t > expires``: the key was idle longer than ``expires``: forgotten, it starts again;
* else the event is counted in its windows, then gets its features, then ``secs_since_last``
  (``ts - t``; absent for a key's first event).
"""

from __future__ import annotations

import hashlib

import orjson

from app.aggregates import Aggregates
from app.feature_spec import FeatureSpec
from app.features import add_aggregates, window_names, window_values
from app.windows import Windows, copy_state

#: the version of the declared state's layout (app/aggregates.py), part of its fingerprint
STATE_LAYOUT = 2

#: flags :meth:`Recipe.step` returns
TOO_LATE = 1
DISTINCT_CAPPED = 2
#: (set by the store, not the recipe) the key's stored state was made by other features
STATE_RESET = 4


class Fixed:
    """Today's recipe: count, sum and mean of the numeric features over one tumbling and one
    hopping window (``app/windows.py``)."""

    def __init__(self, windows: Windows, only: frozenset[str] | None) -> None:
        self.windows = windows
        self.only = only
        self.names = window_names(windows.window, windows.hop_window)
        only = ",".join(sorted(only)) if only is not None else "*"
        #: what a stored state must have been made by (see :attr:`Recipe.fingerprint`)
        self.fingerprint = f"fixed:{windows.window:g}:{windows.hop_window:g}:{windows.hop_step:g}"
        self.fingerprint += f":{only}"

    def add(self, state: dict | None, ts: float, x: dict) -> tuple[dict, bool]:
        state, tumbling, hopping = self.windows.step(state, ts, window_values(x, self.only))
        tumbling_name, hopping_name = self.names
        add_aggregates(x, {tumbling_name: tumbling, hopping_name: hopping}, None, ts)
        return state, False

    def write(self, state: dict, ts: float, x: dict) -> bool:
        tumbling, hopping = self.windows.aggregates(state, ts)
        add_aggregates(x, dict(zip(self.names, (tumbling, hopping), strict=True)), None, ts)
        return False


class Recipe:
    """What every keyed event gets: :meth:`step` is the one entry of the stream and of the
    offline command."""

    def __init__(self, arithmetic: Fixed | Aggregates, expires: float, declared: bool) -> None:
        self.arithmetic = arithmetic
        self.expires = expires
        #: whether the features come from the config file's [[aggregate]] entries
        self.declared = declared
        #: a short text that changes whenever the layout of a key's state does: a state stored
        #: by other features is not read (the key starts again)
        if declared:
            made_of = repr((STATE_LAYOUT, arithmetic.spec, expires, arithmetic.distinct_max))
            self.fingerprint = "declared:" + hashlib.sha256(made_of.encode()).hexdigest()[:16]
        else:
            self.fingerprint = f"{arithmetic.fingerprint}:{expires:g}"

    def made_by(self, fingerprint: str | None) -> bool:
        """Whether a state stored with ``fingerprint`` was made by these features (None:
        stored before fingerprints, by the fixed recipe)."""
        if fingerprint is None:
            return not self.declared
        return fingerprint == self.fingerprint

    @classmethod
    def build(
        cls,
        spec: FeatureSpec | None,
        *,
        window: float,
        hop_window: float,
        hop_step: float,
        expires: float,
        only: frozenset[str] | None = None,
        distinct_max: int = 1000,
    ) -> Recipe:
        """The declared recipe of ``spec``, or today's fixed one if ``spec`` is None."""
        if spec is None:
            return cls(Fixed(Windows(window, hop_window, hop_step, expires), only), expires, False)
        return cls(Aggregates(spec, expires, distinct_max), expires, True)

    def step(self, state: dict | None, ts: float, x: dict) -> tuple[dict, int]:
        """Count an event at ``ts`` in its key's ``state`` (None: a new key; changed in place)
        and write its features into ``x``: the key's state now, and the flags
        (:data:`TOO_LATE`, :data:`DISTINCT_CAPPED`)."""
        previous = None
        if state is not None:
            newest = state["t"]
            if ts < newest - self.expires:
                return state, TOO_LATE
            if ts - newest > self.expires:
                state = None  # idle longer than expires: forgotten
            else:
                previous = newest
        state, capped = self.arithmetic.add(state, ts, x)
        if previous is not None:
            x["secs_since_last"] = float(ts - previous)
        return state, DISTINCT_CAPPED if capped else 0

    def latest(self, state: dict) -> dict:
        """The features an event at the key's newest time would see (the web view)."""
        x: dict = {}
        self.arithmetic.write(state, state["t"], x)
        return x

    def copy(self, state: dict) -> dict:
        """A copy of ``state`` that shares nothing mutable with it."""
        if self.declared:
            return orjson.loads(orjson.dumps(state))
        return copy_state(state)

    def forgettable(self, state: dict, now: float) -> bool:
        """Whether a key's state may be deleted at shard time ``now``: idle for twice
        ``expires``, so that only an event later than ``expires`` behind the shard's newest
        could still have used it."""
        return state["t"] < now - 2 * self.expires
