"""Per-key activity over event-time windows, changelog-backed and expiring.

Key: entity key (the event's ``key``). Value: ``{"n": count, "sum": {feature: sum}}`` over the
numeric features of the key's events in the window. Windows are placed by the event's own ``ts``.
Written only by ``agents/features.py``; sizes and expiry come from settings.
"""

from __future__ import annotations

from app import app, settings


def _event_time(event) -> float:
    return event.value["ts"]


key_activity_tumbling = (
    app.Table(
        "key-activity-tumbling",
        default=dict,
        help="Count and feature sums per key per tumbling window (str to dict).",
    )
    .tumbling(settings.window, expires=settings.window_expires)
    .relative_to(_event_time)
)

key_activity_hopping = (
    app.Table(
        "key-activity-hopping",
        default=dict,
        help="Count and feature sums per key per hopping window (str to dict).",
    )
    .hopping(settings.hop_window, settings.hop_step, expires=settings.window_expires)
    .relative_to(_event_time)
)

key_last_seen = app.Table(
    "key-last-seen",
    default=None,
    help="Event time of each key's latest event (str to float).",
)
