"""The label join's rules (pure, no Faust): what a parked event or a label does to what waits.

``agents/labels.py`` applies :func:`join` to each ``<id>-join`` message (key = event id) against
the entry the ``pending-by-id`` table holds for that id, and sweeps expired entries with an
:class:`Expiry` index. An entry is ``{"park": features} | {"label": label} | {"joined": True}``,
plus ``"since"`` (the event time it was stored at) and ``"p"`` (its partition).

The join's clock, per partition of ``<id>-join``, is the time of the message it handles: when a
message stamped ``t`` arrives, the entries of its partition stored at a time before
``t - STREAMLEARN_LABEL_TTL`` expire. No message is stamped more than ``STREAMLEARN_MAX_FUTURE``
after the wall clock (the engine and the label check refuse it), so an entry whose time is within
``LABEL_TTL - MAX_FUTURE`` of the wall clock cannot expire, however far its neighbours' times.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Joined:
    """What one ``join`` message does: the entry to store for its id (None: leave it), the
    ``scoring`` message to send (None: none) to the model shard ``shard``, and the counter to
    add one to (None: none)."""

    entry: dict | None = None
    send: dict | None = None
    shard: int | None = None
    counter: str | None = None


def joined(park: dict, label: dict, partition: int, offset: int) -> dict:
    """The ``scoring`` message that teaches the model a delayed label.

    ``src`` names the ``join`` message that completed the join, so that the learner can drop a
    copy of it sent again after a crash.

    >>> m = joined({"id": "e1", "key": "k", "x": {"a": 1}, "y_pred": {}, "ts": 5, "shard": 0},
    ...            {"id": "e1", "y": True, "ts": 9}, 1, 42)
    >>> m["y"], m["src"]
    (True, ['j', 1, 42])
    """
    return {
        "src": ["j", partition, offset],
        "kind": "label",
        "id": park["id"],
        "key": park["key"],
        "ts": label["ts"],
        "x": park["x"],
        "y": label["y"],
        "y_pred": park["y_pred"],
    }


def join(
    waiting: dict | None, message: dict, partition: int, offset: int, ttl: float = float("inf")
) -> Joined:
    """Take ``message`` (``{"kind": "park" | "label", "id", "ts", ...}``) of ``join`` partition
    ``partition`` at ``offset``, given what ``waiting`` for its id.

    * the other half waits, and the label's time is within ``ttl`` (STREAMLEARN_LABEL_TTL) of
      the event's: send the joined label, keep a ``joined`` marker (for the TTL);
    * the other half waits, but the label's time is further than ``ttl`` from the event's:
      the label is ``late_labels`` and not learned, whichever half came first (the event waits
      on, and expires: nothing else decides whether a label is in time);
    * joined already: a second label (``duplicate_labels``), or features parked again after a
      crash (``parks_dropped``), dropped;
    * a label while a label waits: ``duplicate_labels``, the first one kept;
    * else: the message waits.

    >>> park = {"kind": "park", "id": "e", "key": None, "ts": 1.0, "x": {}, "y_pred": {},
    ...         "shard": 0}
    >>> first = join(None, park, 0, 7)
    >>> first.entry["park"] is park, first.send
    (True, None)
    >>> done = join(first.entry, {"kind": "label", "id": "e", "y": 1, "ts": 2.0}, 0, 8)
    >>> done.send["y"], done.entry
    (1, {'joined': True, 'since': 2.0, 'p': 0})
    >>> join(done.entry, park, 0, 9).counter
    'parks_dropped'
    >>> late = join(first.entry, {"kind": "label", "id": "e", "y": 1, "ts": 90.0}, 0, 8, ttl=60.0)
    >>> late.counter, late.send, late.entry
    ('late_labels', None, None)
    """
    kind = message["kind"]
    other = "label" if kind == "park" else "park"
    if waiting is not None and "joined" in waiting:
        return Joined(counter="duplicate_labels" if kind == "label" else "parks_dropped")
    if waiting is not None and other in waiting:
        park, label = (message, waiting["label"]) if kind == "park" else (waiting["park"], message)
        if abs(label["ts"] - park["ts"]) > ttl:
            entry = {"park": park, "since": park["ts"], "p": partition} if kind == "park" else None
            return Joined(entry=entry, counter="late_labels")
        return Joined(
            entry={"joined": True, "since": message["ts"], "p": partition},
            send=joined(park, label, partition, offset),
            shard=park["shard"],
        )
    if waiting is not None and kind == "label":
        return Joined(counter="duplicate_labels")
    return Joined(entry={kind: message, "since": message["ts"], "p": partition})


#: a joined label a default makes is numbered ``offset * DEFAULT_SEQ + k`` (the ``k``-th entry
#: the join message at ``offset`` expired), so that the learner drops a copy by its number
DEFAULT_SEQ = 1 << 20


def expire(
    entry: dict, partition: int, offset: int, k: int, ttl: float, default: tuple | None
) -> Joined:
    """What the ``k``-th entry that the ``join`` message at ``offset`` expires does: a parked
    event never labelled is ``expired_events``, or, with a default label (``(value,)``:
    STREAMLEARN_LABEL_DEFAULT), learned with it once (``labels_defaulted``: the ``scoring``
    message is sent to its shard, stamped with its deadline); a label whose event never came is
    ``orphan_labels``; a joined marker goes silently.

    >>> park = {"kind": "park", "id": "e", "key": None, "ts": 1.0, "x": {}, "y_pred": {},
    ...         "shard": 2}
    >>> expire({"park": park, "since": 1.0, "p": 0}, 0, 7, 0, 60.0, None).counter
    'expired_events'
    >>> done = expire({"park": park, "since": 1.0, "p": 0}, 0, 7, 3, 60.0, (False,))
    >>> done.counter, done.shard, done.send["y"], done.send["ts"], done.send["src"]
    ('labels_defaulted', 2, False, 61.0, ['d', 0, 7340035])
    """
    kind = kind_of(entry)
    if kind == "joined":
        return Joined()
    if kind == "label":
        return Joined(counter="orphan_labels")
    if default is None:
        return Joined(counter="expired_events")
    park = entry["park"]
    label = {"id": park["id"], "y": default[0], "ts": park["ts"] + ttl}
    send = joined(park, label, partition, offset)
    send["src"] = ["d", partition, offset * DEFAULT_SEQ + k]
    send["defaulted"] = True
    return Joined(send=send, shard=park["shard"], counter="labels_defaulted")


def kind_of(entry: dict) -> str:
    """``"park"``, ``"label"`` or ``"joined"``: what an entry holds."""
    return next(k for k in ("park", "label", "joined") if k in entry)


class Expiry:
    """When each waiting entry expires, per partition: a sweep costs what expires, not the
    size of the table.

    A heap of ``(since, id)`` per partition; an entry replaced since (its ``since`` or partition
    changed, or it is gone) is skipped when its old item comes up.

    >>> index = Expiry()
    >>> table = {"a": {"park": {}, "since": 0.0, "p": 0}, "b": {"label": {}, "since": 50.0, "p": 0}}
    >>> index.load(0, table.items())
    >>> index.add(0, "c", 5.0); table["c"] = {"joined": True, "since": 5.0, "p": 0}
    >>> table["a"] = {"joined": True, "since": 60.0, "p": 0}; index.add(0, "a", 60.0)
    >>> index.expired(0, 100.0, 40.0, table.get)
    [('c', 'joined'), ('b', 'label')]
    """

    def __init__(self) -> None:
        self.heaps: dict[int, list[tuple[float, str]]] = {}

    def knows(self, partition: int) -> bool:
        return partition in self.heaps

    def load(self, partition: int, entries: Iterable[tuple[str, dict | None]]) -> None:
        """Index the entries of ``partition`` among ``entries`` (the table, once per assignment)."""
        heap = [(e["since"], k) for k, e in entries if e is not None and e["p"] == partition]
        heapq.heapify(heap)
        self.heaps[partition] = heap

    def add(self, partition: int, event_id: str, since: float) -> None:
        heapq.heappush(self.heaps.setdefault(partition, []), (since, event_id))

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.heaps.pop(partition, None)

    def expired(
        self,
        partition: int,
        now_ts: float,
        ttl: float,
        current: Callable[[str], dict | None],
    ) -> list[tuple[str, str]]:
        """``(id, kind)`` of the entries of ``partition`` stored more than ``ttl`` before
        ``now_ts``, oldest first (ties: by id), taken out of the index; ``current(id)`` reads
        the table."""
        heap = self.heaps.get(partition, [])
        out = []
        while heap and now_ts - heap[0][0] > ttl:
            since, event_id = heapq.heappop(heap)
            entry = current(event_id)
            if entry is None or entry["since"] != since or entry["p"] != partition:
                continue  # replaced or gone since this item was added
            out.append((event_id, kind_of(entry)))
        return out
