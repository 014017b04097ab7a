"""The features a keyed event gets: the rules every feature spec shares (pure: no Faust, no Kafka).

Reads a :class:`app.features.spec.FeatureSpec` (the config file's ``[windows]`` and
``[[aggregate]]``, or without ``[[aggregate]]`` the default one of ``STREAMLEARN_WINDOW``,
``HOP_WINDOW``, ``HOP_STEP`` and ``WINDOW_FEATURES``), a key's state (None: a new key), an
event's time and its ``x``; writes the windowed features into ``x``; keeps nothing. The
arithmetic of every spec is :class:`app.features.aggregates.Aggregates`. The stream
(``tables/windows.py``) and the offline ``features`` command (``app/features/offline.py``) call the
same :meth:`Recipe.step`, so that both give the same values to the bit. The rules, for an event at
``ts`` of a key whose newest event time is ``t``:

* ``ts < t - expires``: too late; the event gets no windowed features and leaves the state as
  it was (the caller counts it);
* ``ts - t > expires``: the key was idle longer than ``expires``: forgotten, it starts again;
* else the event is counted in its windows, then gets its features, then ``secs_since_last``
  (``ts - t``; absent for a key's first event).
"""

from __future__ import annotations

from collections.abc import Callable

from app.features.aggregates import Aggregates
from app.features.spec import FeatureSpec, default_spec

#: flags :meth:`Recipe.step` returns
TOO_LATE = 1
DISTINCT_CAPPED = 2
#: (set by the store, not the recipe) the key's stored state was made by other features
STATE_RESET = 4
#: the counter each flag is counted in (the stream's ``/stats/``, the offline summary)
FLAG_COUNTERS = (
    (TOO_LATE, "too_late"),
    (DISTINCT_CAPPED, "distinct_capped"),
    (STATE_RESET, "windows_reset"),
)


def flag_counters(flags: int) -> list[str]:
    """The counters ``flags`` are counted in.

    >>> flag_counters(TOO_LATE | STATE_RESET), flag_counters(0)
    (['too_late', 'windows_reset'], [])
    """
    return [counter for flag, counter in FLAG_COUNTERS if flags & flag]


class Recipe:
    """What every keyed event gets: :meth:`step` is the one entry of the stream and of the
    offline command."""

    def __init__(self, spec: FeatureSpec, expires: float, distinct_max: int = 1000) -> None:
        self.spec = spec
        self.expires = expires
        self.arithmetic = Aggregates(spec, expires, distinct_max)
        #: a short text that changes whenever the layout of a key's state does: a state stored
        #: by other features is not read (the key starts again)
        self.fingerprint: str = self.arithmetic.fingerprint
        #: ``copy(state)``: a copy of a key's state that shares nothing mutable with it (the
        #: arithmetic's own function, called with nothing in between)
        self.copy: Callable[[dict], dict] = self.arithmetic.copy

    def made_by(self, fingerprint: str | None) -> bool:
        """Whether a state stored with ``fingerprint`` was made by these features (None:
        stored before fingerprints, by the fixed recipe: the default spec's layout)."""
        if fingerprint is None:
            return self.spec.numeric is not None
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
        """The recipe of ``spec``; if None, of the default spec of ``window``, ``hop_window``,
        ``hop_step`` and ``only`` (:func:`app.features.spec.default_spec`)."""
        if spec is None:
            spec = default_spec(window, hop_window, hop_step, only)
        return cls(spec, expires, distinct_max)

    def step(self, state: dict | None, ts: float, x: dict) -> tuple[dict, int]:
        """Count an event at ``ts`` in its key's ``state`` (None: a new key; changed in place)
        and write its features into ``x``: the key's state now, and the flags
        (:data:`TOO_LATE`, :data:`DISTINCT_CAPPED`).

        >>> recipe = Recipe.build(None, window=60, hop_window=60, hop_step=30, expires=120)
        >>> state, _ = recipe.step(None, 10.0, {"amount": 2.0})
        >>> x = {"amount": 4.0}
        >>> state, flags = recipe.step(state, 40.0, x)
        >>> x
        {'amount': 4.0, 'count_tumbling_1m': 2, 'amount_sum_tumbling_1m': 6.0, \
'amount_mean_tumbling_1m': 3.0, 'count_hopping_1m': 2, 'amount_sum_hopping_1m': 6.0, \
'amount_mean_hopping_1m': 3.0, 'secs_since_last': 30.0}
        >>> recipe.step(state, -90.0, {"amount": 1.0})[1] == TOO_LATE
        True
        """
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

    def forgettable(self, state: dict, now: float) -> bool:
        """Whether a key's state may be deleted at shard time ``now``: idle for twice
        ``expires``, so that only an event later than ``expires`` behind the shard's newest
        could still have used it."""
        return state["t"] < now - 2 * self.expires
