"""Drift that acts (the config file's ``[drift]``): a river.drift detector on each model's error
stream, per shard, and what a detection on the champion does. Pure: no Faust, no Kafka.

Reads the ``[drift]`` table; gives a :class:`DriftRule`, checked (an error names the field).
Keeps nothing: each model of a shard keeps its own detector (:meth:`DriftRule.new_detector`),
fed after each label it scores with its error (:func:`error`: 0/1 for a classifier, the absolute
error for a regressor); ``app/models/shard.py`` records each detection and, for the champion's,
takes the action. Detectors are deterministic: the same labels in the same order give the same
detections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from river import drift

from app.models.spec import ModelSpecError, parse_call

#: what ``[drift]`` may hold, with the defaults
DEFAULTS: dict[str, Any] = {"detector": "ADWIN", "action": "alert"}
#: ``alert``: recorded only; ``reset_challengers``: a drift of the champion restarts every
#: challenger fresh; ``promote_best``: it promotes the challenger that leads on the rule's metric
ACTIONS = ("alert", "reset_challengers", "promote_best")


class DriftError(ValueError):
    """The ``[drift]`` table cannot be applied; the text names the field."""


def _detectors() -> dict[str, type]:
    return {
        name: cls
        for name in drift.__all__
        if isinstance(cls := getattr(drift, name, None), type)
        and hasattr(cls, "drift_detected")
        and name not in ("DriftRetrainingClassifier", "NoDrift")
    }


@dataclass(frozen=True)
class DriftRule:
    """Watch each model's errors with ``detector`` (a river.drift class and its arguments, in
    the spec grammar: ``ADWIN(delta=0.001)``); on a drift of the champion, ``action``."""

    detector: str = "ADWIN"
    action: str = "alert"

    @classmethod
    def parse(cls, table: Any) -> DriftRule:
        """The rule of a ``[drift]`` table.

        >>> DriftRule.parse({"detector": "PageHinkley(threshold=20)"}).action
        'alert'
        >>> DriftRule.parse({"detector": "ADWON"})
        Traceback (most recent call last):
        app.models.drift.DriftError: [drift]: detector = 'ADWON': unknown river.drift detector ...
        """
        if not isinstance(table, dict):
            raise DriftError("[drift] must be a table")
        unknown = sorted(set(table) - set(DEFAULTS))
        if unknown:
            raise DriftError(f"[drift]: unknown field {unknown[0]!r} (it has detector, action)")
        values = {**DEFAULTS, **table}
        if not isinstance(values["detector"], str):
            raise DriftError('[drift]: detector must be a string, e.g. "ADWIN"')
        if values["action"] not in ACTIONS:
            raise DriftError(f"[drift]: action = {values['action']!r}: one of {', '.join(ACTIONS)}")
        rule = cls(values["detector"], values["action"])
        rule.new_detector()
        return rule

    def new_detector(self) -> Any:
        """A fresh detector."""
        try:
            kind, kwargs = parse_call(self.detector, _detectors(), "river.drift detector")
        except ModelSpecError as exc:
            raise DriftError(f"[drift]: detector = {self.detector!r}: {exc}") from None
        return kind(**kwargs)


def error(y: Any, predicted: Any, is_classifier: bool) -> float:
    """What a model's detector reads for one scored label (``predicted``: the likeliest label,
    or a regressor's value): 0/1 (wrong) for a classifier, the absolute error for a regressor.

    >>> error(True, False, True), error(2.0, 3.5, False)
    (1, 1.5)
    """
    if is_classifier:
        return int(predicted != y)
    return abs(y - predicted)
