"""The promotion rule (the config file's ``[promotion]``): when a challenger becomes a shard's
champion. Pure: no Faust, no Kafka.

Reads the ``[promotion]`` table and the models' specs; gives a :class:`PromotionRule`, checked
(an error names the field). Keeps nothing: each model of a shard keeps its own window of the
rule's metric (:meth:`PromotionRule.window_metric`) and the labels it scored since the shard's
last change of champion; ``app/models/shard.py`` applies :meth:`PromotionRule.winner` after
each scored label, so that the same labels in the same order give the same promotions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from river import metrics, utils

from app.models.spec import ModelSpec

#: what a ``[promotion]`` table may hold, with the defaults
DEFAULTS: dict[str, Any] = {
    "metric": None,
    "window": 2000,
    "margin": 0.02,
    "min_scored": 1000,
    "mode": "auto",
}
MODES = ("auto", "off")


class PromotionError(ValueError):
    """The ``[promotion]`` table cannot be applied; the text names the field."""


@dataclass(frozen=True)
class PromotionRule:
    """Promote a challenger when, on a shard, both it and the champion scored ``min_scored``
    labels since the last change of champion, and its ``metric`` over its last ``window`` scored
    labels beats the champion's by more than ``margin`` (lower beats for a metric where lower
    is better). ``mode = "off"``: only by command."""

    metric: str
    window: int = 2000
    margin: float = 0.02
    min_scored: int = 1000
    mode: str = "auto"

    @classmethod
    def parse(cls, table: Any, specs: Sequence[ModelSpec]) -> PromotionRule:
        """The rule of a ``[promotion]`` table for the models ``specs``.

        >>> from app.models.spec import parse_specs
        >>> PromotionRule.parse({"metric": "Accuracy", "window": 500},
        ...                     parse_specs("LogisticRegression; GaussianNB")).window
        500
        >>> PromotionRule.parse({"metric": "MAE"}, parse_specs("LogisticRegression"))
        Traceback (most recent call last):
        app.models.promotion.PromotionError: [promotion]: metric = 'MAE' is not a metric ...
        """
        if not isinstance(table, dict):
            raise PromotionError("[promotion] must be a table")
        unknown = sorted(set(table) - set(DEFAULTS))
        if unknown:
            raise PromotionError(
                f"[promotion]: unknown field {unknown[0]!r} (it has {', '.join(DEFAULTS)})"
            )
        values = {**DEFAULTS, **table}
        name = values["metric"]
        if not isinstance(name, str) or not name:
            raise PromotionError('[promotion]: metric must name a River metric, e.g. "Accuracy"')
        computed = [{type(m).__name__ for m in spec.new_metrics()} for spec in specs]
        if not all(name in names for names in computed):
            common = sorted(set.intersection(*computed)) if computed else []
            raise PromotionError(
                f"[promotion]: metric = {name!r} is not a metric every model computes "
                f"(they all compute: {', '.join(common) or 'none in common'}; name others "
                "after '@' in the specs)"
            )
        for key, kind, least in (("window", int, 1), ("min_scored", int, 0)):
            value = values[key]
            if type(value) is not kind or value < least:
                raise PromotionError(f"[promotion]: {key} = {value!r}: an integer >= {least}")
        margin = values["margin"]
        if type(margin) not in (int, float) or margin < 0:
            raise PromotionError(f"[promotion]: margin = {margin!r}: a number >= 0")
        if values["mode"] not in MODES:
            raise PromotionError(f'[promotion]: mode = {values["mode"]!r}: "auto" or "off"')
        rule = cls(name, values["window"], float(margin), values["min_scored"], values["mode"])
        rule.window_metric()  # (a metric River cannot roll is refused here)
        return rule

    @property
    def metric_type(self) -> type:
        return getattr(metrics, self.metric)

    @property
    def bigger_is_better(self) -> bool:
        return self.metric_type().bigger_is_better

    @property
    def wants_labels(self) -> bool:
        """Whether the metric takes the likeliest label (else the probabilities)."""
        return self.metric_type().requires_labels

    def window_metric(self) -> Any:
        """A fresh window of the metric over the last ``window`` scored labels."""
        try:
            return utils.Rolling(self.metric_type, window_size=self.window)
        except Exception as exc:  # noqa: BLE001 - River's own reason
            raise PromotionError(
                f"[promotion]: metric = {self.metric!r} cannot be computed over a window "
                f"({type(exc).__name__}: {exc})"
            ) from None

    def winner(self, champion: str, standings: Iterable[tuple[str, int, float]]) -> str | None:
        """The challenger to promote, given each model's ``(name, labels scored since the
        last change of champion, metric over its window)``, or None. Ties: the first listed.

        >>> rule = PromotionRule("Accuracy", margin=0.02, min_scored=10)
        >>> rule.winner("a", [("a", 10, 0.70), ("b", 10, 0.73), ("c", 10, 0.75)])
        'c'
        >>> rule.winner("a", [("a", 10, 0.70), ("b", 9, 0.90), ("c", 10, 0.715)]) is None
        True
        """
        table = {name: (n, value) for name, n, value in standings}
        n_champion, held = table[champion]
        if n_champion < self.min_scored:
            return None
        sign = 1.0 if self.bigger_is_better else -1.0
        best, best_lead = None, self.margin
        for name, (n, value) in table.items():
            if name == champion or n < self.min_scored:
                continue
            lead = sign * (value - held)
            if lead > best_lead:
                best, best_lead = name, lead
        return best
