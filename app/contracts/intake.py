"""What a raw events message goes through before windows and models, for the stream and offline.

Reads one message's bytes, or its value already decoded from JSON (``POST /predict/``), and,
with an ``[events]`` mapping, where it came from; gives the event, or why it is refused; keeps
nothing. The engine (``agents/engine.py``) and the offline
``features`` command (``app/features/offline.py``) both call :meth:`Intake.event`, so that both take
the same events: streamlearn's own shape or the mapping, then the user's transform, then the clock
and the label checks (docs/contracts.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from app.contracts.mapping import EventMapping, Origin
from app.contracts.records import Malformed, ahead_of_clock, check_event, parse_event
from app.contracts.transform import configured as configured_transform
from app.models.label_rules import LabelCheck

if TYPE_CHECKING:
    from app.config import Config

#: counters of what :meth:`Intake.event` refuses
DEAD_LETTERS = "dead_letters"
TRANSFORM_ERRORS = "transform_errors"
TRANSFORM_DROPPED = "transform_dropped"


class Intake:
    """The checks of one deployment: its mapping, transform, clock tolerance and models."""

    def __init__(
        self,
        mapping: EventMapping | None,
        transform: Callable[[dict], dict | None] | None,
        max_future: float,
        check_label: LabelCheck,
    ) -> None:
        self.mapping = mapping
        self.transform = transform
        self.max_future = max_future
        self.check_label = check_label

    @classmethod
    def configured(cls, config: Config) -> Intake:
        """The checks ``config`` sets: its ``[events]`` mapping, its transform (imported), its
        clock tolerance and its models' labels (the engine's and the offline command's)."""
        return cls(
            config.event_mapping,
            configured_transform(config),
            config.max_future,
            config.check_label,
        )

    def event(
        self, raw: bytes | None, origin: Origin | None, now: float
    ) -> dict | tuple[str, str | None]:
        """The event ``raw`` holds, checked; else ``(counter, reason)``: a dead letter with its
        reason, or ``(TRANSFORM_DROPPED, None)`` when the transform dropped it. ``origin`` is
        needed only with a mapping; ``now`` is the wall clock."""
        try:
            event = parse_event(raw) if self.mapping is None else self.mapping.read(raw, origin)
        except Malformed as exc:
            return DEAD_LETTERS, str(exc)
        return self._checked(event, now)

    def event_of(
        self, value: object, origin: Origin | None, now: float
    ) -> dict | tuple[str, str | None]:
        """As :meth:`event`, for a message already decoded from JSON (``POST /predict/``'s
        events: a body is decoded once, and a value orjson reads may be nested deeper than it
        writes, so it is not written again)."""
        try:
            if self.mapping is None:
                event = check_event(value)
            elif type(value) is dict:
                event = self.mapping.read_value(value, origin)
            else:
                raise Malformed(f"expected a JSON object, got {type(value).__name__}")
        except Malformed as exc:
            return DEAD_LETTERS, str(exc)
        return self._checked(event, now)

    def _checked(self, event: dict, now: float) -> dict | tuple[str, str | None]:
        """The transform, the clock and the label checks of a well-formed ``event``."""
        if self.transform is not None:
            try:
                out = self.transform(event)
            except Exception as exc:  # the user's code: any error dead-letters this event only
                return TRANSFORM_ERRORS, f"transform raised {type(exc).__name__}: {exc}"
            if out is None:
                return TRANSFORM_DROPPED, None
            try:
                event = check_event(out)
            except Malformed as exc:
                return TRANSFORM_ERRORS, f"transform returned an invalid event: {exc}"
            # Python objects JSON cannot hold (a lone surrogate in a string, a feature name that
            # is not a string, a float subclass such as numpy's) pass the checks above but would
            # stop the worker at its next write of the event: refused here instead
            try:
                orjson.dumps(event)
            except orjson.JSONEncodeError as exc:
                return TRANSFORM_ERRORS, f"transform returned an event JSON cannot hold: {exc}"
        if event["ts"] - now > self.max_future:  # (the cheap test first: reasons are rare)
            return DEAD_LETTERS, ahead_of_clock(event["ts"], now, self.max_future)
        if "y" in event:  # a label the models cannot learn: before any of them counts the event
            problem = self.check_label(event["y"])
            if problem is not None:
                return DEAD_LETTERS, problem
        return event
