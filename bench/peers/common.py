"""What every benchmark peer shares: the CLI, the model, the per-event work, the result line.

Each peer (plain_aiokafka.py, plain_confluent.py, quix.py, bytewax_flow.py, and the limit,
limit_aiokafka.py) drains a Kafka topic that already holds a backlog of JSON events and, per
event, in order:

    event = orjson.loads(value)
    x, y = event["x"], event["y"]
    y_pred = model.predict_proba_one(x)
    metric.update(y, <label of y_pred>)
    model.learn_one(x, y)

then writes one prediction message per event to ``--output`` (key: the event's id, as the
backlog's Kafka key is here), shaped and sized like a streamlearn worker's:

    {"id", "key", "model", "version", "y_pred", "proba", "ts", "latency_ms"}

(``version``: events learned before this one; ``proba``: null, as a streamlearn worker writes it
for a model scored by Accuracy, a metric of labels; ``latency_ms``: from the event's Kafka
timestamp to now). ``Learner.process`` does the work and returns that
message as JSON bytes (orjson, as streamlearn); ``Learner.predict`` returns the dict, for a peer
whose framework serializes (Quix Streams' JSON serializer is orjson too). How the message is
produced is each peer's own, written as its framework's documentation does it.

``metrics.Accuracy`` wants a label, not River's probability dict (``update(y, dict)`` raises
TypeError: unhashable type 'dict'), so the metric gets the label ``predict_one`` would give
(the most probable class), and, like ``evaluate.progressive_val_score``, an empty prediction
(a model that has seen nothing yet) is not scored. The final Accuracy is therefore exactly that
of progressive_val_score over the same rows, which is how the driver checks a peer; the driver
also counts the messages of ``--output`` after the run (one per event, or the run is INVALID).

The clock runs from just before the first event is processed to just after the N-th (its
prediction made, handed to the producer right after, as a streamlearn worker's engine times its
reads); each peer stops after exactly N events, waits until its producer has delivered every
prediction, and prints one JSON line, its last on stdout:
{"system": ..., "events": N, "events_s": ..., "accuracy": ..., "seconds": ...}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable

import orjson
from river import base, linear_model, metrics, preprocessing, tree

MODELS: dict[str, Callable[[], base.Classifier]] = {
    "lr": lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(),
    "tree": lambda: tree.HoeffdingTreeClassifier(),
}
#: The name a streamlearn worker gives each model in its prediction messages (ModelSpec.name).
MODEL_NAMES = {"lr": "StandardScaler-LogisticRegression", "tree": "HoeffdingTreeClassifier"}


def make_model(name: str) -> base.Classifier:
    """A fresh, untrained model: ``lr`` or ``tree``."""
    return MODELS[name]()


def parser(description: str) -> argparse.ArgumentParser:
    """The options every peer takes; a peer may add its own before parsing."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--broker", default="127.0.0.1:9092", help="bootstrap server host:port")
    p.add_argument("--topic", required=True, help="topic holding the backlog of events")
    p.add_argument(
        "--output", required=True, help="topic to write one prediction message per event to"
    )
    p.add_argument("--events", type=int, required=True, help="stop after this many events")
    p.add_argument("--model", choices=sorted(MODELS), default="lr")
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=30.0,
        help="give up (exit 1) after this many seconds without a new event",
    )
    return p


def unique_id(system: str) -> str:
    """A fresh consumer group / application id, so every run reads the topic from the start."""
    return f"bench-peer-{system}-{uuid.uuid4().hex[:12]}"


class Learner:
    """The per-event work of the benchmark and the clock around it.

    ``process(raw, timestamp_ms)`` (or ``predict``) is the only thing a peer calls per event:
    it returns the event's prediction message. ``left`` is how many events are still wanted;
    peers hand ``process`` at most that many.
    """

    def __init__(self, model: str, events: int):
        if events < 1:
            raise SystemExit("--events must be at least 1")
        self.model = make_model(model)
        self.name = MODEL_NAMES[model]
        self.metric = metrics.Accuracy()
        self.events = events
        self.count = 0
        self.started = 0.0
        self.finished = 0.0
        # bound once: the per-event path does no attribute look-ups on River objects
        self._loads = orjson.loads
        self._dumps = orjson.dumps
        self._predict = self.model.predict_proba_one
        self._learn = self.model.learn_one
        self._update = self.metric.update

    @property
    def left(self) -> int:
        return self.events - self.count

    @property
    def done(self) -> bool:
        return self.count >= self.events

    def predict(self, raw: bytes, timestamp_ms: float | None) -> dict:
        """Learn from one event; its prediction message (``timestamp_ms``: its Kafka time)."""
        count = self.count
        if not count:
            self.started = time.perf_counter()
        now = time.time()
        event = self._loads(raw)
        x, y = event["x"], event["y"]
        y_pred = self._predict(x)
        label = None
        if y_pred:
            label = max(y_pred, key=y_pred.get)
            self._update(y, label)
        self._learn(x, y)
        self.count = count + 1
        if count + 1 == self.events:
            self.finished = time.perf_counter()
        return {
            "id": event["id"],
            "key": event["key"],
            "model": self.name,
            "version": count,
            "y_pred": label,
            "proba": None,  # as streamlearn's: a model scored by Accuracy predicts labels
            "ts": event["ts"],
            # milliseconds to the microsecond, as a streamlearn worker writes it
            "latency_ms": round((now - timestamp_ms / 1000) * 1e6) / 1e3 if timestamp_ms else None,
        }

    def process(self, raw: bytes, timestamp_ms: float | None) -> bytes:
        """Learn from one event; its prediction message as JSON bytes."""
        return self._dumps(self.predict(raw, timestamp_ms))

    def result(self, system: str) -> dict:
        seconds = self.finished - self.started
        return {
            "system": system,
            "events": self.count,
            "events_s": self.count / seconds if seconds > 0 else float("inf"),
            "accuracy": self.metric.get(),
            "seconds": seconds,
        }

    def report(self, system: str) -> int:
        """Print the result line (exit code 0), or say on stderr why there is none (1)."""
        if not self.done:
            print(
                f"{system}: only {self.count} of {self.events} events arrived before the "
                "idle timeout / end of topic",
                file=sys.stderr,
            )
            return 1
        sys.stderr.flush()
        print(json.dumps(self.result(system)), flush=True)
        return 0


class IdleClock:
    """Tells a polling loop when no event has arrived for ``timeout`` seconds."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.last = time.monotonic()

    def got(self) -> None:
        self.last = time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() - self.last > self.timeout
