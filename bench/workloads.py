"""The rows every system of the benchmark reads, and what River makes of them offline.

Rows are JSON events of the streamlearn contract made from River's
``synth.Hyperplane(seed=3, n_features=F)``. A keyed workload gives each event an entity key
(``k<i % keys>``); the worker then adds windowed aggregates, and the offline reference adds the
very same ones (``app.windows``, ``app.features``) so that its metric is what the worker must
reach.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from river import datasets, evaluate, metrics

from app.datasets import encode_x
from app.features import enrich, one_hot, window_names, window_values
from app.model_spec import parse_spec
from app.windows import Windows

#: The models of the benchmark, and the one metric they are checked by (as in the peers).
MODELS = {
    "lr": parse_spec("StandardScaler | LogisticRegression @ Accuracy"),
    "tree": parse_spec("HoeffdingTreeClassifier @ Accuracy"),
}
#: The windows of the keyed workload: streamlearn's defaults, on feature "0" only.
WINDOWS = Windows(3600.0, 3600.0, 600.0, 7200.0)
WINDOW_FEATURES = ("0",)
TUMBLING, HOPPING = window_names(WINDOWS.window, WINDOWS.hop_window)


@dataclass
class Workload:
    name: str
    rows: list[bytes]
    keys: list[bytes]
    keyed: bool


def make(n: int, n_features: int = 10, keys: int = 0) -> Workload:
    """``n`` events; with ``keys`` > 0 each carries one of that many entity keys."""
    rows, kafka_keys = [], []
    generator = datasets.synth.Hyperplane(seed=3, n_features=n_features)
    for i, (x, y) in enumerate(generator):
        if i == n:
            break
        key = f"k{i % keys}" if keys else None
        event = {"id": f"b{i}", "key": key, "ts": float(i), "x": encode_x(x), "y": y}
        rows.append(orjson.dumps(event))
        kafka_keys.append((key or event["id"]).encode())
    name = f"{n_features} features" + (f", {keys} keys" if keys else "")
    return Workload(name, rows, kafka_keys, bool(keys))


def as_model_sees(workload: Workload) -> list[tuple[dict, object]]:
    """``(x, y)`` per event as the worker's model receives it (windows added when keyed)."""
    out = []
    states: dict[str, dict] = {}
    for raw in workload.rows:
        event = orjson.loads(raw)
        x = event["x"]
        key = event["key"]
        if key is not None:
            state = states.get(key)
            previous = state["t"] if state is not None else None
            values = window_values(x, frozenset(WINDOW_FEATURES))
            state = states[key] = WINDOWS.add(state, event["ts"], values)
            tumbling, hopping = WINDOWS.aggregates(state, event["ts"])
            x = enrich(x, {TUMBLING: tumbling, HOPPING: hopping}, previous, event["ts"])
        out.append((one_hot(x), event["y"]))
    return out


def offline_accuracy(workload: Workload, model: str) -> float:
    """River's ``progressive_val_score`` Accuracy over what the worker's model sees."""
    spec = MODELS[model]
    metric = metrics.Accuracy()
    evaluate.progressive_val_score(as_model_sees(workload), spec.build(), metric)
    return metric.get()


def river_loop(workload: Workload, model: str) -> tuple[float, float]:
    """The limit: events/s of River's plain loop over the JSON rows in memory, and Accuracy.

    Per event: JSON decode, ``predict_one``, ``Accuracy.update``, ``learn_one``; the same work
    as every peer. Keyed rows are taken as they are (no windows): the limit is the same loop
    for every row of the table.
    """
    estimator, metric = MODELS[model].build(), metrics.Accuracy()
    start = time.perf_counter()
    for raw in workload.rows:
        event = orjson.loads(raw)
        x, y = event["x"], event["y"]
        y_pred = estimator.predict_one(x)
        if y_pred is not None:  # as progressive_val_score: a model that knows nothing is not scored
            metric.update(y, y_pred)
        estimator.learn_one(x, y)
    return len(workload.rows) / (time.perf_counter() - start), metric.get()
