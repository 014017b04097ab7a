"""Events waiting for their label, and labels waiting for their event.

Key: event id. Value: ``{"park": {...}}`` (features and the prediction made when the event was
scored) or ``{"label": {...}}`` (a label that arrived first), plus ``"since"`` (event time it was
parked at) and ``"p"`` (its partition, for expiry). Written only by ``agents/labels.py``; entries
older than ``STREAMLEARN_LABEL_TTL`` seconds of event time are dropped and counted.
"""

from __future__ import annotations

from typing import Any

import faust


def pending_table(app: faust.App) -> Any:
    """The ``pending-by-id`` table of ``app``."""
    return app.Table(
        "pending-by-id",
        default=None,
        help="Parked features or early labels per event id (str to dict).",
    )
