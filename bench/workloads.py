"""The rows every system of the benchmark reads, and what River makes of them offline.

Rows are JSON events of the streamlearn contract made from River's
``synth.Hyperplane(seed=3, n_features=F)``. A keyed workload gives each event an entity key
(``k<i % keys>``); the worker then adds windowed aggregates, and the offline reference adds the
very same ones (the worker's own :meth:`app.features.recipe.Recipe.step`: the fixed recipe of the
windows row, or the declared one of ``bench/rich_features.toml``) so that its metric is what the
worker must reach. The rich row's events also carry a small-cardinality int field
(:data:`CATEGORY`) for its ``distinct``.
"""

from __future__ import annotations

import io
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import fastavro
import orjson
from river import datasets, evaluate, metrics

from app.commands.datasets import encode_x
from app.features.encode import one_hot, window_names
from app.features.recipe import Recipe
from app.features.spec import FeatureSpec, parse
from app.features.windows import Windows
from app.models.spec import parse_spec

#: The models of the benchmark, and the one metric they are checked by (as in the peers).
MODELS = {
    "lr": parse_spec("StandardScaler | LogisticRegression @ Accuracy"),
    "tree": parse_spec("HoeffdingTreeClassifier @ Accuracy"),
    # [lr] with the metrics a user gets when naming none: Accuracy, ROCAUC and LogLoss (the
    # worker of the default-metrics row; checked against River on all three)
    "lr-defaults": parse_spec("StandardScaler | LogisticRegression"),
}
#: [lr] as the champion with one challenger beside it (its predictions go to the shadow topic):
#: the worker of the challenger row; its champion is [lr] and is checked as [lr] is
CHALLENGER = "lr-challenger"
CHALLENGER_SPECS = (
    "StandardScaler | LogisticRegression @ Accuracy; StandardScaler | Perceptron @ Accuracy"
)
MODELS[CHALLENGER] = SimpleNamespace(text=CHALLENGER_SPECS, name=MODELS["lr"].name)
#: The windows of the keyed workload: streamlearn's defaults, on feature "0" only.
WINDOWS = Windows(3600.0, 3600.0, 600.0, 7200.0)
WINDOW_FEATURES = ("0",)
TUMBLING, HOPPING = window_names(WINDOWS.window, WINDOWS.hop_window)
#: the rich row's declared features (the worker reads the file as its STREAMLEARN_CONFIG)
RICH_FEATURES = Path(__file__).resolve().parent / "rich_features.toml"
#: the rich row's ``distinct`` field: an int in ``range(categories)`` (see :func:`make`)
CATEGORY = "category"
#: its number of values in the rich row
CATEGORIES = 7


@dataclass
class Workload:
    name: str
    rows: list[bytes]
    keys: list[bytes]
    keyed: bool


def make(n: int, n_features: int = 10, keys: int = 0, categories: int = 0) -> Workload:
    """``n`` events; with ``keys`` > 0 each carries one of that many entity keys; with
    ``categories`` > 0 each has one more feature, :data:`CATEGORY`, ``i % categories`` (an int,
    so that every system's model takes it as it is; it varies within a key unless ``keys`` is a
    multiple of ``categories``).

    >>> [orjson.loads(r)["x"]["category"] for r in make(4, n_features=2, categories=3).rows]
    [0, 1, 2, 0]
    """
    rows, kafka_keys = [], []
    generator = datasets.synth.Hyperplane(seed=3, n_features=n_features)
    for i, (x, y) in enumerate(generator):
        if i == n:
            break
        key = f"k{i % keys}" if keys else None
        features = encode_x(x)
        if categories:
            features[CATEGORY] = i % categories
        event = {"id": f"b{i}", "key": key, "ts": float(i), "x": features, "y": y}
        rows.append(orjson.dumps(event))
        kafka_keys.append((key or event["id"]).encode())
    name = f"{n_features} features" + (f", {keys} keys" if keys else "")
    name += f", {CATEGORY} of {categories} values" if categories else ""
    return Workload(name, rows, kafka_keys, bool(keys))


def fixed_recipe() -> Recipe:
    """The worker's recipe in the windows row: the fixed one, on :data:`WINDOW_FEATURES`."""
    return declared_recipe(None)


def rich_spec(path: Path = RICH_FEATURES) -> FeatureSpec:
    """The declared features of ``path`` (a config file's [windows] and [[aggregate]])."""
    with open(path, "rb") as f:
        table = tomllib.load(f)
    spec = parse(table.get("windows"), table.get("aggregate"), str(path), WINDOWS.expires)
    if spec is None:
        raise ValueError(f"{path}: no [[aggregate]]")
    return spec


def declared_recipe(spec: FeatureSpec | None, distinct_max: int = 1000) -> Recipe:
    """The worker's recipe of ``spec`` (None: the fixed one, on :data:`WINDOW_FEATURES`) with
    the bench's settings (``distinct_max``: the default of STREAMLEARN_DISTINCT_MAX)."""
    return Recipe.build(
        spec,
        window=WINDOWS.window,
        hop_window=WINDOWS.hop_window,
        hop_step=WINDOWS.hop_step,
        expires=WINDOWS.expires,
        only=frozenset(WINDOW_FEATURES) if spec is None else None,
        distinct_max=distinct_max,
    )


def as_model_sees(workload: Workload, recipe: Recipe | None = None) -> list[tuple[dict, object]]:
    """``(x, y)`` per event as the worker's model receives it: keyed events through ``recipe``
    (default: :func:`fixed_recipe`), the engine's own per-key step, then one-hot."""
    recipe = recipe or fixed_recipe()
    out = []
    states: dict[str, dict] = {}
    for raw in workload.rows:
        event = orjson.loads(raw)
        x = event["x"]
        key = event["key"]
        if key is not None:
            state, _ = recipe.step(states.get(key), event["ts"], x)
            if state is not None:
                states[key] = state
        out.append((one_hot(x), event["y"]))
    return out


def offline_accuracy(workload: Workload, model: str, recipe: Recipe | None = None) -> float:
    """River's ``progressive_val_score`` Accuracy over what the worker's model sees."""
    spec = MODELS[model]
    metric = metrics.Accuracy()
    evaluate.progressive_val_score(as_model_sees(workload, recipe), spec.build(), metric)
    return metric.get()


def offline_metrics(workload: Workload, model: str) -> dict[str, float]:
    """River's ``progressive_val_score`` of every metric of ``MODELS[model]`` (its defaults
    when it names none), by class name, over what the worker's model sees."""
    spec = MODELS[model]
    metric = spec.new_metrics()
    evaluate.progressive_val_score(as_model_sees(workload), spec.build(), metric)
    return {type(m).__name__: m.get() for m in metric}


def featured_loop(workload: Workload, model: str, recipe: Recipe) -> tuple[float, float]:
    """River's plain loop with the worker's features (not a reference of the table, which
    keeps one limit for every row; what the features and the wider model cost in memory):
    events/s and Accuracy. Per event: JSON decode, ``recipe.step`` of a keyed event (per-key
    states in a dict), one-hot, predict, ``Accuracy.update``, learn."""
    estimator, metric = MODELS[model].build(), metrics.Accuracy()
    states: dict[str, dict] = {}
    step = recipe.step
    start = time.perf_counter()
    for raw in workload.rows:
        event = orjson.loads(raw)
        x, key = event["x"], event["key"]
        if key is not None:
            state, _ = step(states.get(key), event["ts"], x)
            if state is not None:
                states[key] = state
        x = one_hot(x)
        y = event["y"]
        y_pred = estimator.predict_one(x)
        if y_pred is not None:
            metric.update(y, y_pred)
        estimator.learn_one(x, y)
    return len(workload.rows) / (time.perf_counter() - start), metric.get()


def river_loop_with_challenger(workload: Workload) -> tuple[float, float]:
    """River's plain loop (as :func:`river_loop`) with [lr] and the challenger of
    :data:`CHALLENGER_SPECS` each predicting, scored and learning every row: events/s, and
    [lr]'s Accuracy. What one more model costs without Kafka."""
    specs = [parse_spec(text) for text in CHALLENGER_SPECS.split(";")]
    estimators = [spec.build() for spec in specs]
    scores = [metrics.Accuracy() for _ in specs]
    start = time.perf_counter()
    for raw in workload.rows:
        event = orjson.loads(raw)
        x, y = event["x"], event["y"]
        for estimator, metric in zip(estimators, scores, strict=True):
            y_pred = estimator.predict_one(x)
            if y_pred is not None:
                metric.update(y, y_pred)
            estimator.learn_one(x, y)
    return len(workload.rows) / (time.perf_counter() - start), scores[0].get()


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


#: the ``[events]`` mapping of the flat rows (:func:`as_avro`, :func:`as_flat_json`): the same
#: id, no key (so no windows), the same time and label; every other field (``f0``..) a feature,
#: in the same order as the JSON rows' ``x``, so that the model sees the same numbers
FLAT_MAPPING = """[events]
format = "{format}"
id = "id"
key = "key"
time = "ts"
label = "y"
"""


def flat_config(value_format: str, directory: Path) -> Path:
    """A config file (STREAMLEARN_CONFIG) in ``directory`` with :data:`FLAT_MAPPING` for
    ``value_format`` (``json`` or ``avro``); its path."""
    path = directory / f"flat-{value_format}-events.toml"
    path.write_text(FLAT_MAPPING.format(format=value_format))
    return path


def avro_schema(workload: Workload) -> dict:
    """The flat Avro record a team would write ``workload``'s rows as: ``id``, a null ``key``,
    ``ts``, one double ``f<name>`` per feature (an Avro name cannot be ``"0"``), ``y``.

    >>> [f["name"] for f in avro_schema(make(1, n_features=2))["fields"]]
    ['id', 'key', 'ts', 'f0', 'f1', 'y']
    """
    first = orjson.loads(workload.rows[0])
    features = [{"name": f"f{name}", "type": "double"} for name in first["x"]]
    return {
        "type": "record",
        "name": "BenchEvent",
        "namespace": "bench",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "key", "type": ["null", "string"], "default": None},
            {"name": "ts", "type": "double"},
            *features,
            {"name": "y", "type": "long"},
        ],
    }


def _flat(raw: bytes) -> dict:
    """One JSON row as the flat record of :func:`avro_schema`.

    >>> _flat(make(1, n_features=2).rows[0])
    {'id': 'b0', 'key': None, 'ts': 0.0, 'f0': 0.9956448355104628, 'f1': 0.47026350752244794, 'y': 1}
    """  # noqa: E501
    event = orjson.loads(raw)
    record = {"id": event["id"], "key": event["key"], "ts": event["ts"]}
    record.update((f"f{name}", value) for name, value in event["x"].items())
    record["y"] = event["y"]
    return record


def as_flat_json(workload: Workload) -> Workload:
    """``workload``'s rows as flat JSON records (:func:`_flat`), the same Kafka keys."""
    rows = [orjson.dumps(_flat(raw)) for raw in workload.rows]
    return Workload(f"{workload.name}, flat JSON", rows, workload.keys, workload.keyed)


def as_avro(workload: Workload, schema_id: int) -> Workload:
    """``workload``'s rows in Confluent's wire format (schema :func:`avro_schema`, registered as
    ``schema_id``), the same Kafka keys.

    >>> rows = make(2, n_features=2)
    >>> raw = as_avro(rows, 9).rows[0]
    >>> raw[:5], fastavro.schemaless_reader(io.BytesIO(raw[5:]), avro_schema(rows), None)["y"]
    (b'\\x00\\x00\\x00\\x00\\t', 1)
    """
    schema = fastavro.parse_schema(avro_schema(workload))
    header = b"\x00" + schema_id.to_bytes(4, "big")
    rows = []
    for raw in workload.rows:
        out = io.BytesIO()
        out.write(header)
        fastavro.schemaless_writer(out, schema, _flat(raw))
        rows.append(out.getvalue())
    return Workload(f"{workload.name}, as Avro", rows, workload.keys, workload.keyed)
