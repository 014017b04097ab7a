"""Counts of what the pipeline did, per stage and partition (dead letters, expired joins, ...).

Key: ``"<counter>:<partition>"`` so that each partition's count lives in that partition's
changelog. Value: int. ``GET /models/`` and ``GET /stats/`` add them up. Also the last few
reasons of each refusal (``recent-rejects``), and :func:`refuse`, what every refused message
goes through (events, labels, joined labels) before its dead letter is written.
"""

from __future__ import annotations

import logging

from app.contracts.records import dead_letter_headers
from app.faust_app import app

log = logging.getLogger(__name__)

pipeline_counts = app.Table(
    "pipeline-counts",
    default=int,
    help="Counts of dead letters, orphan labels and expired events ('name:partition' to int).",
)


recent_rejects = app.Table(
    "recent-rejects",
    default=list,
    help="The last few dead-letter reasons ('kind:partition' to list of dicts).",
)

RECENT = 5


def remember_reject(kind: str, partition: int, reason: str, offset: int, now: float) -> None:
    """Keep the last RECENT reasons of ``kind`` for ``partition`` (during its event only)."""
    key = f"{kind}:{partition}"
    entries = [*recent_rejects[key], {"reason": reason, "offset": offset, "t": now}][-RECENT:]
    recent_rejects[key] = entries  # re-assign: only this reaches the changelog


def recent() -> list[dict]:
    """The most recent dead-letter reasons over this worker's partitions, newest first."""
    out = []
    for key, entries in recent_rejects.items():
        kind, partition = key.rsplit(":", 1)
        out.extend({"kind": kind, "partition": int(partition), **e} for e in entries)
    return sorted(out, key=lambda e: e["t"], reverse=True)[:RECENT]


def count(name: str, partition: int, n: int = 1) -> None:
    """Add ``n`` to counter ``name`` of ``partition``; call only while handling an event of it."""
    key = f"{name}:{partition}"
    pipeline_counts[key] += n


def totals() -> dict[str, int]:
    """Every counter summed over the partitions this worker holds."""
    out: dict[str, int] = {}
    for key, value in pipeline_counts.items():
        name = key.rsplit(":", 1)[0]
        out[name] = out.get(name, 0) + value
    return out


def refuse(
    counter: str, partition: int, reason: str, source: tuple[str, int, int], now: float
) -> list:
    """A message of ``partition`` is refused: log it, count it under ``counter``, keep its
    reason; the headers of its dead letter (``source``: the topic, partition and offset it was
    read from). Call only while handling a message of ``partition``."""
    topic, source_partition, offset = source
    log.warning("rejected %s[%d]@%d: %s", topic, source_partition, offset, reason)
    count(counter, partition)
    remember_reject(counter, partition, reason, offset, now)
    return dead_letter_headers(reason, topic, source_partition, offset)
