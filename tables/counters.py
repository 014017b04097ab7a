"""Counts of what the pipeline did, per stage and partition (dead letters, expired joins, ...).

Key: ``"<counter>:<partition>"`` so that each partition's count lives in that partition's
changelog. Value: int. ``GET /models/`` and ``GET /stats/`` add them up. Also the last few
reasons of each refusal (``recent-rejects``), and :meth:`Counters.refuse`, what every refused
message goes through (events, labels, joined labels) before its dead letter is written.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from app.contracts.records import dead_letter_headers

log = logging.getLogger(__name__)

RECENT = 5


class Counters:
    """The ``pipeline-counts`` and ``recent-rejects`` tables of one app, and what is counted in
    them. Write (:meth:`count`, :meth:`refuse`) only while handling a message of the partition
    named, or inside ``tables.anchor.writing_to``."""

    def __init__(self, counts: Any, recent_rejects: Any) -> None:
        #: ``"<counter>:<partition>"`` to int (a missing key reads 0)
        self.counts = counts
        #: ``"<counter>:<partition>"`` to the last reasons (a missing key reads [])
        self.recent_rejects = recent_rejects

    @classmethod
    def of(cls, app: faust.App) -> Counters:
        """The counters of ``app``, in its ``pipeline-counts`` and ``recent-rejects`` tables."""
        counts = app.Table(
            "pipeline-counts",
            default=int,
            help="Counts of dead letters, orphan labels and expired events ('name:partition' to "
            "int).",
        )
        recent_rejects = app.Table(
            "recent-rejects",
            default=list,
            help="The last few dead-letter reasons ('kind:partition' to list of dicts).",
        )
        return cls(counts, recent_rejects)

    def remember_reject(
        self, kind: str, partition: int, reason: str, offset: int, now: float
    ) -> None:
        """Keep the last RECENT reasons of ``kind`` for ``partition``."""
        key = f"{kind}:{partition}"
        entries = [*self.recent_rejects[key], {"reason": reason, "offset": offset, "t": now}]
        self.recent_rejects[key] = entries[-RECENT:]  # re-assign: only this reaches the changelog

    def recent(self) -> list[dict]:
        """The most recent dead-letter reasons over this worker's partitions, newest first."""
        out = []
        for key, entries in self.recent_rejects.items():
            kind, partition = key.rsplit(":", 1)
            out.extend({"kind": kind, "partition": int(partition), **e} for e in entries)
        return sorted(out, key=lambda e: e["t"], reverse=True)[:RECENT]

    def count(self, name: str, partition: int, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` of ``partition``."""
        self.counts[f"{name}:{partition}"] += n

    def totals(self) -> dict[str, int]:
        """Every counter summed over the partitions this worker holds."""
        out: dict[str, int] = {}
        for key, value in self.counts.items():
            name = key.rsplit(":", 1)[0]
            out[name] = out.get(name, 0) + value
        return out

    def refuse(
        self, counter: str, partition: int, reason: str, source: tuple[str, int, int], now: float
    ) -> list:
        """A message of ``partition`` is refused: log it, count it under ``counter``, keep its
        reason; the headers of its dead letter (``source``: the topic, partition and offset it
        was read from)."""
        topic, source_partition, offset = source
        log.warning("rejected %s[%d]@%d: %s", topic, source_partition, offset, reason)
        self.count(counter, partition)
        self.remember_reject(counter, partition, reason, offset, now)
        return dead_letter_headers(reason, topic, source_partition, offset)
