"""The label join's rules (pure, no Faust): what a parked event or a label does to what waits.

``agents/labels.py`` applies :func:`join` to each ``<id>-join`` message (key = event id) against
the entry the ``pending-by-id`` table holds for that id, and :func:`expired` to sweep the table.
An entry is ``{"park": features} | {"label": label} | {"joined": True}``, plus ``"since"`` (the
event time it was stored at) and ``"p"`` (its partition).
"""

from __future__ import annotations

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


def join(waiting: dict | None, message: dict, partition: int, offset: int) -> Joined:
    """Take ``message`` (``{"kind": "park" | "label", "id", "ts", ...}``) of ``join`` partition
    ``partition`` at ``offset``, given what ``waiting`` for its id.

    * the other half waits: send the joined label, keep a ``joined`` marker (for the TTL);
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
    """
    kind = message["kind"]
    other = "label" if kind == "park" else "park"
    if waiting is not None and "joined" in waiting:
        return Joined(counter="duplicate_labels" if kind == "label" else "parks_dropped")
    if waiting is not None and other in waiting:
        park, label = (message, waiting["label"]) if kind == "park" else (waiting["park"], message)
        return Joined(
            entry={"joined": True, "since": message["ts"], "p": partition},
            send=joined(park, label, partition, offset),
            shard=park["shard"],
        )
    if waiting is not None and kind == "label":
        return Joined(counter="duplicate_labels")
    return Joined(entry={kind: message, "since": message["ts"], "p": partition})


def expired(entries, now_ts: float, ttl: float, partition: int) -> list[tuple[str, str]]:
    """``(id, "park" | "label" | "joined")`` of the entries of ``partition`` older than ``ttl``.

    >>> expired([("a", {"since": 0, "p": 0, "park": {}}), ("b", {"since": 90, "p": 0,
    ...          "label": {}}), ("c", {"since": 0, "p": 1, "label": {}}),
    ...          ("d", {"since": 0, "p": 0, "joined": True})], 100, 50, 0)
    [('a', 'park'), ('d', 'joined')]
    """
    return [
        (key, next(k for k in ("park", "label", "joined") if k in entry))
        for key, entry in entries
        if entry is not None and entry["p"] == partition and now_ts - entry["since"] > ttl
    ]
