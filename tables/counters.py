"""Counts of what the pipeline did, per stage and partition (dead letters, expired joins, ...).

Key: ``"<counter>:<partition>"`` so that each partition's count lives in that partition's
changelog. Value: int. ``GET /models/`` and ``GET /stats/`` add them up.
"""

from __future__ import annotations

from app import app

pipeline_counts = app.Table(
    "pipeline-counts",
    default=int,
    help="Counts of dead letters, orphan labels and expired events ('name:partition' to int).",
)


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
