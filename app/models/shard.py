"""The models of one shard and the prequential steps they take (pure, no Faust).

A shard holds one live River model per model spec, each with its metrics and counters, the last
``scoring`` offset it has taken and the origin offsets it has taken (events, joined labels).
Two entries, one per kind of message:

* :meth:`ShardModels.take_event` (called by ``app/step.py`` for every event): predict; with
  ``y``, score and learn (test-then-train, as River's ``evaluate.progressive_val_score``);
  without, return what must be parked until the label arrives;
* :meth:`ShardModels.step` (the learner, for each joined label from ``<id>-scoring``): score the
  prediction made when the event arrived, then learn; a copy sent again upstream is dropped.

A shard also governs its models: which one is the champion (its predictions are the
predictions topic's; :meth:`ShardModels.set_champion`), the promotion rule and the drift
detectors applied after each scored label (``app/models/promotion.py``, ``app/models/drift.py``),
the versions it keeps (:meth:`ShardModels.take_version`), the commands of the control topic
(:meth:`ShardModels.command`), and the records of all of it for the model-events topic. All of
it is in the shard's checkpoint, so the same labels in the same order give the same decisions.
"""

from __future__ import annotations

import copy
import pickle
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from river import base

from app.models import metric_batch
from app.models.drift import DriftRule, error
from app.models.promotion import PromotionRule
from app.models.spec import ModelSpec, champion_of

HISTORY_POINTS = 500
#: model events (promotions, drifts, rollbacks, snapshots) a shard keeps for the web view
RECENT_EVENTS = 100
#: Size of the rolling window of the "recent" metrics the web view shows beside the totals.
ROLLING_WINDOW = 1000
#: Seconds the "recent" metrics may be behind the shard (they are recomputed when asked for).
ROLLING_REFRESH = 0.5
#: Scored events a model keeps for its batched metrics before it applies them anyway
#: (app/models/metric_batch.py): a bound on their memory; reading the metrics applies them too.
PENDING_MAX = 1024


class LiveModel:
    """One model of a shard: the River estimator, its metrics and its counters.

    The metrics are River's own objects, up to date whenever they are read: Accuracy, ROCAUC
    and LogLoss (:mod:`app.models.metric_batch`) are not updated per event but per batch of the
    scored events they are due, in exactly the state River's per-event updates leave; the batch is
    applied whenever ``metric`` (or :meth:`metric_values`, :meth:`rolling_values`) is read,
    and every PENDING_MAX scored events. Other metrics are updated per event.
    """

    def __init__(
        self,
        spec: ModelSpec,
        model: base.Estimator,
        metric: Any,
        n_learned: int = 0,
        n_predicted: int = 0,
        n_scored: int = 0,
        recent: deque | None = None,
    ) -> None:
        self.spec = spec
        self.model = model
        self.n_learned = n_learned
        self.n_predicted = n_predicted
        self.n_scored = n_scored
        #: the last ROLLING_WINDOW ``(y, y_pred)`` scored, for the "recent" metrics of the web
        #: view (computed when asked for, so that the per-event cost is one append)
        self.recent = deque(maxlen=ROLLING_WINDOW) if recent is None else recent
        self._rolling_cache: tuple[int, float, dict] = (-1, float("-inf"), {})
        #: what :meth:`peek` predicts with: (the model and n_learned it copies, the copy's
        #: predict)
        self._peek_copy: tuple[Any, int, Any] | None = None
        #: scored ``(y, y_pred)`` the batched metrics have not taken yet (see :meth:`flush`)
        self._pending: list = []
        self._metric = metric
        #: the promotion rule's metric over this model's last scored labels (None: no rule),
        #: and the labels it scored since the shard's last change of champion
        self.judged: Any = None
        self.n_judged = 0
        self.judged_wants_label = True
        #: the drift detector on this model's errors (None: no [drift]), whether it detected a
        #: drift at the last scored label, and how many it detected
        self.detector: Any = None
        self.drifted = False
        self.n_drifts = 0
        #: snapshots of this model kept so far (the version its predictions name)
        self.version = 0
        self.bind()

    def __repr__(self) -> str:
        return (
            f"LiveModel({self.spec.text!r}, n_learned={self.n_learned}, "
            f"n_predicted={self.n_predicted}, n_scored={self.n_scored})"
        )

    @property
    def metric(self) -> Any:
        """The River metrics (a ``metrics.base.Metrics``), every scored event applied."""
        self.flush()
        return self._metric

    @metric.setter
    def metric(self, metric: Any) -> None:
        self.flush()  # (what the metrics replaced were due, they get)
        self._metric = metric
        self.bind()

    def bind(self) -> None:
        """Look up once what every event needs (done again when ``metric`` is replaced)."""
        self.flush()
        #: whether River's progressive validation would predict probabilities for the metrics
        self.uses_proba = self.spec.is_classifier and not self._metric.requires_labels
        self._predict = self.model.predict_proba_one if self.uses_proba else self.model.predict_one
        self._peek_copy = None
        self._updates, self._batched = metric_batch.plan(self._metric)

    def flush(self) -> None:
        """Apply the scored events the batched metrics have not taken yet."""
        pending = self._pending
        if pending:
            # (taken first: a batch that raised is not applied twice)
            self._pending = []
            metric_batch.apply(self._batched, pending)

    @classmethod
    def fresh(cls, spec: ModelSpec) -> LiveModel:
        return cls(spec=spec, model=spec.build(), metric=spec.new_metrics())

    def predict(self, x: dict) -> Any:
        """What River's progressive validation would hand to the metric for ``x``."""
        self.n_predicted += 1
        return self._predict(x)

    def peek(self, x: dict) -> Any:
        """What :meth:`predict` gives for ``x``, counting and changing nothing (a score on
        request).

        River's models are not read-only when they predict: a feature they have not seen is
        added to their statistics (StandardScaler's running means and variances, GaussianNB's
        Gaussians are defaultdicts), which changes the model's state, its checkpoint, and the
        order of its dicts from then on. So the answer comes from a copy of the model, taken
        again once the model has learned since (or was replaced). Entries a request adds to
        the copy are at their initial state, as the live model would create them: they do not
        change a later answer.
        """
        held = self._peek_copy
        if held is None or held[0] is not self.model or held[1] != self.n_learned:
            model = copy.deepcopy(self.model)
            predict = model.predict_proba_one if self.uses_proba else model.predict_one
            self._peek_copy = held = (self.model, self.n_learned, predict)
        return held[2](x)

    def score_and_learn(self, x: dict, y: Any, y_pred: Any) -> None:
        """Score ``y_pred`` (if there was one), then learn ``(x, y)``."""
        if y_pred is not None and y_pred != {}:
            scored = (y, y_pred)
            if self._updates:
                # as river.metrics.base.Metrics.update: label metrics get the likeliest label
                label = label_of(y_pred) if isinstance(y_pred, dict) else y_pred
                for update, wants_label in self._updates:
                    update(y, label if wants_label else y_pred)
            if self._batched:
                pending = self._pending
                pending.append(scored)
                if len(pending) >= PENDING_MAX:
                    self.flush()
            self.n_scored += 1
            self.recent.append(scored)
            judged = self.judged
            if judged is not None:
                wants = self.judged_wants_label and isinstance(y_pred, dict)
                judged.update(y, label_of(y_pred) if wants else y_pred)
                self.n_judged += 1
            detector = self.detector
            if detector is not None:
                detector.update(error(y, label_of(y_pred), self.spec.is_classifier))
                if detector.drift_detected:
                    self.drifted = True
                    self.n_drifts += 1
        self.model.learn_one(x, y)
        self.n_learned += 1

    def metric_values(self) -> dict[str, float]:
        """Each metric's current value by its class name."""
        return {type(m).__name__: m.get() for m in self.metric}

    def rolling_values(self) -> dict[str, float]:
        """Each metric over the last ROLLING_WINDOW scored labels, by class name.

        Recomputed at most every ROLLING_REFRESH seconds (a dashboard polled while the shard
        learns thousands of events a second would otherwise replay the window on every request),
        by fresh metrics of the same classes, batched as the totals are (each checkpoint asks).
        """
        seen, at, values = self._rolling_cache
        now = time.monotonic()
        if seen != self.n_scored and now - at >= ROLLING_REFRESH:
            fresh = [type(metric)() for metric in self._metric]
            per_event, batched = metric_batch.plan(fresh)
            scored = list(self.recent)
            metric_batch.apply(batched, scored)
            for update, wants_label in per_event:
                for y, y_pred in scored:
                    update(y, label_of(y_pred) if wants_label else y_pred)
            values = {type(m).__name__: m.get() for m in fresh}
            self._rolling_cache = (self.n_scored, now, values)
        return values


def _same_window(saved: Any, fresh: Any) -> bool:
    """Whether a saved window of the promotion metric is one of the rule now (same metric and
    size): else the model starts a new window."""
    return (
        saved is not None
        and type(saved.obj) is type(fresh.obj)
        and saved.window_size == fresh.window_size
    )


def label_of(y_pred: Any) -> Any:
    """The predicted label of a probability dict (River's ``predict_one`` rule), else ``y_pred``.

    >>> label_of({False: 0.2, True: 0.8}), label_of({}), label_of(3.5)
    (True, None, 3.5)
    """
    if type(y_pred) is dict and len(y_pred) == 2:  # (app.models.metric_batch.likeliest, inline)
        first, second = y_pred
        return second if y_pred[second] > y_pred[first] else first
    if isinstance(y_pred, dict):
        return max(y_pred, key=y_pred.get) if y_pred else None
    return y_pred


def to_pairs(y_pred: Any) -> Any:
    """A JSON-safe form of ``y_pred``: probability dicts become ``[[label, p], ...]``.

    Labels keep their type (bool, int, str) through JSON this way; dict keys would not.

    >>> to_pairs({False: 0.25, True: 0.75}), to_pairs(1.5)
    ([[False, 0.25], [True, 0.75]], 1.5)
    """
    if type(y_pred) is dict and len(y_pred) == 2:  # (a binary classifier's, without a loop)
        (first, p), (second, q) = y_pred.items()
        return [[first, p], [second, q]]
    return [[k, v] for k, v in y_pred.items()] if isinstance(y_pred, dict) else y_pred


def from_pairs(value: Any) -> Any:
    """Inverse of :func:`to_pairs`.

    >>> from_pairs([[False, 0.25], [True, 0.75]])
    {False: 0.25, True: 0.75}
    """
    return {k: v for k, v in value} if isinstance(value, list) else value


def _prediction(event: dict, name: str, version: int, y_pred: Any, latency: float | None) -> dict:
    """The prediction message of one model for one event (see the README's contract)."""
    return {
        "id": event["id"],
        "key": event["key"],
        "model": name,
        "version": version,
        "y_pred": label_of(y_pred),
        "proba": to_pairs(y_pred) if isinstance(y_pred, dict) else None,
        "ts": event["ts"],
        "latency_ms": latency,
    }


@dataclass
class ShardModels:
    """The live models of one shard and the ``scoring`` offset they have taken."""

    shard: int
    models: dict[str, LiveModel]
    offset: int = -1
    #: highest origin offset taken per upstream partition ("e<p>": events, "j<p>": joins)
    origins: dict[str, int] = field(default_factory=dict)
    n_duplicates: int = 0
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY_POINTS))
    #: the model whose predictions go to the predictions topic ("": the first); the first in
    #: :attr:`models` (:meth:`set_champion`)
    champion: str = ""
    #: the champion the config named when this shard's models were made or restored
    config_champion: str = ""
    #: what a restore changed ("'tree': spec changed, starts fresh", ...), for the log
    changes: list[str] = field(default_factory=list)
    #: the promotion rule applied after each scored label (None, or mode "off": none)
    rule: PromotionRule | None = None
    #: the drift detectors' rule (None: no [drift])
    drift: DriftRule | None = None
    #: a version of a model is kept every this many labels it learns (0: never by count)
    snapshot_every: int = 0
    #: versions taken and not yet written by a checkpoint: (what it is, its pickle)
    pending_versions: list = field(default_factory=list)
    #: champions promoted on this shard since it began, and models rolled back by command
    n_promotions: int = 0
    n_rollbacks: int = 0
    #: records of what happened to the models (promotions, changes at a restore) not yet
    #: written to the model-events topic (:meth:`take_model_events`)
    model_events: list = field(default_factory=list)
    #: the last RECENT_EVENTS records written, for the web view (``GET /model-events/``)
    recent_events: deque = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))

    @classmethod
    def fresh(
        cls,
        shard: int,
        specs: list[ModelSpec],
        rule: PromotionRule | None = None,
        drift: DriftRule | None = None,
        snapshot_every: int = 0,
    ) -> ShardModels:
        champion = champion_of(specs).name if specs else ""
        models = cls(
            shard=shard,
            models={s.name: LiveModel.fresh(s) for s in specs},
            config_champion=champion,
            rule=rule if rule is not None and rule.mode == "auto" else None,
            drift=drift,
            snapshot_every=snapshot_every,
        )
        if champion:
            models.set_champion(champion)
        for live in models.models.values():
            models.watch(live)
        return models

    def watch(self, live: LiveModel) -> None:
        """Give ``live`` a fresh window of the promotion rule's metric and a fresh detector."""
        if self.rule is not None:
            live.judged, live.n_judged = self.rule.window_metric(), 0
            live.judged_wants_label = self.rule.wants_labels
        if self.drift is not None:
            live.detector = self.drift.new_detector()

    def after_label(self, event_id: str, ts: float) -> None:
        """After a scored label (the event ``event_id`` at ``ts``): record the drifts detected,
        act on the champion's, then apply the promotion rule."""
        if self.drift is not None:
            for name, live in list(self.models.items()):
                if live.drifted:
                    live.drifted = False
                    self.drifted(name, event_id, ts)
        if self.rule is not None:
            self.judge(event_id, ts)

    def drifted(self, name: str, event_id: str, ts: float) -> None:
        """Model ``name`` drifted: record it; the champion's drift takes the rule's action."""
        action = self.drift.action if name == self.champion else "alert"
        self.model_events.append(
            {
                "type": "drift",
                "shard": self.shard,
                "model": name,
                "role": "champion" if name == self.champion else "challenger",
                "detector": self.drift.detector,
                "action": action,
                "version": self.models[name].version,
                "n_learned": self.models[name].n_learned,
                "event_id": event_id,
                "ts": ts,
                "scoring_offset": self.offset,
                "reason": f"{self.drift.detector} detected a change in {name}'s errors",
            }
        )
        if action != "alert":
            self.take_version(name, f"drift of the champion ({action})", event_id, ts)
        if action == "reset_challengers":
            for other, live in list(self.models.items()):
                if other != self.champion:
                    self.take_version(other, "reset: the champion drifted", event_id, ts)
                    fresh = LiveModel.fresh(live.spec)
                    fresh.n_drifts, fresh.version = live.n_drifts, live.version
                    self.models[other] = fresh
                    self.watch(fresh)
        elif action == "promote_best" and len(self.models) > 1:
            best = self.best_challenger()
            if best is not None:
                self.promote(
                    best,
                    {
                        "event_id": event_id,
                        "ts": ts,
                        "reason": f"the champion drifted ({self.drift.detector}): {best} leads "
                        "the challengers",
                    },
                )

    def best_challenger(self) -> str | None:
        """The challenger that leads on the promotion rule's metric over its window, or else on
        each model's first metric over its last scored labels (None: none scored yet)."""
        bigger, scores = True, {}
        for name, live in self.models.items():
            if name == self.champion:
                continue
            if live.judged is not None:
                bigger = self.rule.bigger_is_better
                scores[name] = live.judged.get()
            elif live.recent:
                first = next(iter(live.metric))
                bigger = first.bigger_is_better
                scores[name] = live.rolling_values().get(type(first).__name__)
        scores = {n: v for n, v in scores.items() if v is not None}
        if not scores:
            return None
        pick = max if bigger else min
        return pick(scores, key=scores.get)

    @property
    def watching(self) -> bool:
        """Whether scored labels feed a promotion rule or drift detectors."""
        return self.rule is not None or self.drift is not None

    def take_model_events(self) -> list[dict]:
        """The model events recorded since the last call (for the model-events topic)."""
        out, self.model_events = self.model_events, []
        return out

    def take_version(
        self, name: str, reason: str, event_id: str | None = None, ts: float | None = None
    ) -> None:
        """Keep a version of model ``name`` as it is now: its number rises by one; the model,
        its metrics and what it is are pickled now (a checkpoint signs and writes them to the
        versions table, ``tables/versions.py``), and recorded on the model-events topic."""
        live = self.models[name]
        live.flush()
        live.version += 1
        meta = {
            "name": name,
            "shard": self.shard,
            "version": live.version,
            "spec": live.spec.text,
            "role": "champion" if name == self.champion else "challenger",
            "n_learned": live.n_learned,
            "metrics": {k: float(v) for k, v in live.metric_values().items()},
            "event_id": event_id,
            "ts": ts,
            "scoring_offset": self.offset,
            "reason": reason,
        }
        state = {"model": live.model, "metric": live.metric, "meta": meta}
        self.pending_versions.append((meta, pickle.dumps(state, pickle.HIGHEST_PROTOCOL)))
        self.model_events.append({"type": "snapshot", "model": name, **meta})

    def command(self, command: dict, offset: int, version: dict | None = None) -> dict:
        """Apply a command of the control topic (``<id>-control`` at ``offset`` of this shard's
        partition): ``promote`` a model, or ``rollback`` one to ``version`` (``{"model",
        "metric", "meta"}`` of a kept version, read by the caller). Recorded on the model-events
        topic, and the offset in :attr:`origins` (``c<shard>``), so that a checkpoint covers it
        and a copy read again is not applied twice. Returns the record (``type``:
        ``promotion``, ``rollback`` or ``command_refused``, with the reason)."""
        self.origins[f"c{self.shard}"] = offset
        action, name = command.get("action"), command.get("model")
        base = {"shard": self.shard, "command": command.get("id"), "control_offset": offset}
        refused = None
        if name not in self.models:
            refused = f"no model named {name!r} on this shard"
        elif action == "promote" and name == self.champion:
            refused = f"{name} is the champion already"
        elif action == "rollback" and version is None:
            wanted = command.get("version")
            refused = (
                f"version {wanted} of {name} is not kept"
                if wanted is not None
                else f"no version of {name} was taken at a promotion or drift action"
            )
        elif action not in ("promote", "rollback"):
            refused = f"unknown action {action!r}"
        if refused is not None:
            record = {"type": "command_refused", "model": name, "reason": refused, **base}
            self.model_events.append(record)
            return record
        if action == "promote":
            self.promote(name, {"reason": "promoted by command", **base})
            return self.model_events[-1]
        live, meta = self.models[name], version["meta"]
        before = live.version
        live.model, live.metric = version["model"], version["metric"]
        live.n_learned = meta["n_learned"]
        live.bind()
        was_champion = meta.get("role") == "champion"
        if was_champion and name != self.champion:
            self.set_champion(name)
        record = {
            "type": "rollback",
            "model": name,
            "versions": {"before": before, "restored": meta["version"]},
            "n_learned": live.n_learned,
            "champion": self.champion,
            "reason": f"rolled back by command to version {meta['version']} ({meta['reason']})",
            **base,
        }
        self.model_events.append(record)
        self.n_rollbacks += 1
        self.take_version(name, f"rollback to version {meta['version']}")
        return record

    def take_pending_versions(self) -> list[tuple[dict, bytes]]:
        """The versions taken since the last call (a checkpoint writes them)."""
        out, self.pending_versions = self.pending_versions, []
        return out

    def _count_versions(self, event_id: str, ts: float) -> None:
        every = self.snapshot_every
        for name, live in self.models.items():
            if live.n_learned % every == 0:
                self.take_version(name, f"every {every} labels learned", event_id, ts)

    def judge(self, event_id: str, ts: float) -> None:
        """Apply the promotion rule after a scored label (the event ``event_id`` at ``ts``): a
        challenger that qualifies becomes the champion from the next event on."""
        rule = self.rule
        standings = [(n, m.n_judged, m.judged.get()) for n, m in self.models.items()]
        winner = rule.winner(self.champion, standings)
        if winner is None:
            return
        before = self.champion
        values = {name: value for name, _, value in standings}
        lead = abs(values[winner] - values[before])
        self.promote(
            winner,
            {
                "metric": rule.metric,
                "values": {before: values[before], winner: values[winner]},
                "event_id": event_id,
                "ts": ts,
                "reason": (
                    f"{rule.metric} over the last {rule.window} scored labels: {winner} "
                    f"{values[winner]:.6g}, {before} {values[before]:.6g}; leads by {lead:.6g} "
                    f"> margin {rule.margin:g}, both scored >= {rule.min_scored} since the last "
                    "change of champion"
                ),
            },
        )

    def promote(self, name: str, record: dict) -> None:
        """Make ``name`` champion and record it (``record``: what decided it)."""
        before = self.champion
        self.set_champion(name)
        for live in self.models.values():
            live.n_judged = 0
        self.n_promotions += 1
        for model in (before, name):
            self.take_version(
                model, f"promotion of {name}", record.get("event_id"), record.get("ts")
            )
        self.model_events.append(
            {
                "type": "promotion",
                "shard": self.shard,
                "model": name,
                "before": before,
                "after": name,
                "versions": {n: self.models[n].version for n in (before, name)},
                "n_learned": self.models[name].n_learned,
                "scoring_offset": self.offset,
                **record,
            }
        )

    def set_champion(self, name: str) -> None:
        """Make ``name`` the shard's champion: its prediction is the one of every event on the
        predictions topic (the others' go to the shadow topic)."""
        live = self.models[name]
        self.models = {name: live, **{n: m for n, m in self.models.items() if n != name}}
        self.champion = name

    def covers(self, offset: int) -> bool:
        """Whether the message at ``offset`` was already taken (a replay after a restart)."""
        return offset <= self.offset

    def is_duplicate(self, value: dict) -> bool:
        """Whether ``value`` is a copy of a message already taken, re-sent upstream after a crash.

        Messages from one upstream partition reach a shard in the order of their origin offsets,
        so one number per upstream partition is enough.

        >>> s = ShardModels(0, {}, origins={"e0": 7})
        >>> s.is_duplicate({"src": ["e", 0, 7]}), s.is_duplicate({"src": ["e", 0, 8]})
        (True, False)
        """
        src = value.get("src")
        if src is None:
            return False
        kind, partition, offset = src
        return offset <= self.origins.get(f"{kind}{partition}", -1)

    def step(self, value: dict, offset: int) -> None:
        """Take one joined label at ``scoring`` ``offset`` (a copy already taken: dropped)."""
        if self.is_duplicate(value):
            self.n_duplicates += 1
            self.offset = offset
            return
        if value["kind"] != "label":
            raise ValueError(f"unknown scoring message kind {value['kind']!r}")
        x = value["x"]
        for name, live in self.models.items():
            y_pred = from_pairs(value["y_pred"].get(name)) if name in value["y_pred"] else None
            live.score_and_learn(x, value["y"], y_pred)
        src = value.get("src")
        if src is not None:
            self.origins[f"{src[0]}{src[1]}"] = src[2]
        self.offset = offset
        if self.snapshot_every:
            self._count_versions(value["id"], value["ts"])
        if self.watching:
            self.after_label(value["id"], value["ts"])

    def answer(self, event: dict, all_models: bool = False) -> list[dict]:
        """The champion's answer for ``event`` (a checked event whose ``x`` holds the features
        the model sees), then, with ``all_models``, each challenger's: ``model``, ``version``,
        ``y_pred``, ``proba``. Nothing changes: no model, metric or counter."""
        out = []
        for name, live in self.models.items():
            y_pred = live.peek(event["x"])
            out.append(
                {
                    "model": name,
                    "role": "champion" if name == self.champion else "challenger",
                    "version": live.version,
                    "y_pred": label_of(y_pred),
                    "proba": to_pairs(y_pred) if isinstance(y_pred, dict) else None,
                }
            )
            if not all_models:
                break
        return out

    def take_event(
        self, event: dict, now: float, t_in: float | None = None
    ) -> tuple[list[dict], dict | None]:
        """Predict ``event`` with every model: the predictions to publish, the champion's first
        (then the challengers', for the shadow topic), and, when the event has no label, the
        features and predictions to park until it arrives (else None).

        A labelled event is learned at once (test-then-train). ``event`` is a checked event
        (``app.contracts.records.parse_event``); ``t_in``, if given, is when it entered Kafka.
        """
        x = event["x"]
        # milliseconds to the microsecond (round(v, 3) costs several times more per event)
        latency = round((now - t_in) * 1e6) / 1e3 if t_in else None
        labelled = "y" in event
        predictions, parked = [], {}
        for name, live in self.models.items():
            version = live.version
            y_pred = live.predict(x)
            if labelled:
                live.score_and_learn(x, event["y"], y_pred)
            else:
                parked[name] = to_pairs(y_pred)
            predictions.append(_prediction(event, name, version, y_pred, latency))
        if labelled:
            if self.snapshot_every:
                self._count_versions(event["id"], event["ts"])
            if self.watching:
                self.after_label(event["id"], event["ts"])
            return predictions, None
        park = {
            "kind": "park",
            "id": event["id"],
            "key": event["key"],
            "ts": event["ts"],
            "x": x,
            "y_pred": parked,
            "shard": self.shard,
        }
        return predictions, park

    def snapshot(self) -> dict:
        """The checkpoint of this shard: every model, its metrics and counters, and the offset."""
        return {
            "offset": self.offset,
            "origins": dict(self.origins),
            "n_duplicates": self.n_duplicates,
            "champion": self.champion,
            "config_champion": self.config_champion,
            "n_promotions": self.n_promotions,
            "n_rollbacks": self.n_rollbacks,
            "recent_events": list(self.recent_events),
            "models": {
                name: {
                    "spec": live.spec.text,
                    "model": live.model,
                    "metric": live.metric,
                    "n_learned": live.n_learned,
                    "n_predicted": live.n_predicted,
                    "n_scored": live.n_scored,
                    "recent": list(live.recent),
                    "judged": live.judged,
                    "n_judged": live.n_judged,
                    "detector": live.detector,
                    "n_drifts": live.n_drifts,
                    "version": live.version,
                }
                for name, live in self.models.items()
            },
        }

    @classmethod
    def restore(
        cls,
        shard: int,
        specs: list[ModelSpec],
        snapshot: dict,
        rule: PromotionRule | None = None,
        drift: DriftRule | None = None,
        snapshot_every: int = 0,
    ) -> ShardModels:
        """Rebuild a shard from :meth:`snapshot` for the models ``specs`` name now: a model
        still there with the same spec keeps its state; a new one, or one whose spec changed,
        starts fresh (said in :attr:`changes`). The shard keeps the champion it held (a
        promotion stands), unless the config now names another champion than it did when the
        snapshot was taken: then the config's."""
        shard_models = cls.fresh(shard, specs, rule, drift, snapshot_every)
        shard_models.offset = snapshot["offset"]
        shard_models.n_promotions = snapshot.get("n_promotions", 0)
        shard_models.n_rollbacks = snapshot.get("n_rollbacks", 0)
        shard_models.recent_events.extend(snapshot.get("recent_events", ()))
        shard_models.origins = dict(snapshot.get("origins", {}))
        shard_models.n_duplicates = snapshot.get("n_duplicates", 0)
        changes = shard_models.changes
        restored = set()
        for name, saved in snapshot["models"].items():
            live = shard_models.models.get(name)
            if live is None:
                changes.append(f"{name!r}: no longer configured, dropped")
                continue
            if saved["spec"].strip() != live.spec.text.strip():
                changes.append(
                    f"{name!r}: spec changed from {saved['spec'].strip()!r}, starts fresh"
                )
                continue
            restored.add(name)
            live.model, live.metric = saved["model"], saved["metric"]
            live.n_learned, live.n_predicted = saved["n_learned"], saved["n_predicted"]
            live.n_scored = saved.get("n_scored", 0)
            live.bind()
            live.recent.extend(saved.get("recent", ()))
            judged = saved.get("judged")
            if live.judged is not None and _same_window(judged, live.judged):
                live.judged, live.n_judged = judged, saved.get("n_judged", 0)
            detector = saved.get("detector")
            if live.detector is not None and type(detector) is type(live.detector):
                live.detector = detector  # (the same class: its state goes on)
            live.n_drifts = saved.get("n_drifts", 0)
            live.version = saved.get("version", 0)
        changes.extend(
            f"{n!r}: new, starts fresh" for n in shard_models.models if n not in snapshot["models"]
        )
        held, config = snapshot.get("champion", ""), shard_models.config_champion
        if snapshot.get("config_champion", config) != config:
            changes.append(f"the config names {config!r} champion now: it serves")
        elif held and held != config and held in restored:
            shard_models.set_champion(held)  # promoted on the stream: it stands
        shard_models.model_events.extend(
            {"type": "config_change", "shard": shard, "reason": change} for change in changes
        )
        return shard_models

    def record_history(self, now: float) -> None:
        """Append the current metrics to the bounded history the web view shows."""
        self.history.append(
            {
                "t": now,
                "offset": self.offset,
                "models": {
                    name: {
                        "n_learned": m.n_learned,
                        "n_predicted": m.n_predicted,
                        "metrics": m.metric_values(),
                        "rolling": m.rolling_values(),
                    }
                    for name, m in self.models.items()
                },
            }
        )
